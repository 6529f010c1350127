// The targets of spec/performance.md judged on made-up runs: each threshold as the spec states it
// (≤ where it says "≤", < where it says "<"), only the phases and sizes each target names.
import assert from "node:assert/strict";
import type { BenchCase, BenchReport, BenchTiming } from "./run.ts";
import { evaluateTargets, type TargetVerdict } from "./targets.ts";

const MB = 2 ** 20;

/** A timing with what the targets read; the rest is filler. */
function timing(
  what: BenchTiming["what"],
  fields: { seconds?: number; floor?: number | null; baseline?: number | null; rssMb?: number },
): BenchTiming {
  return {
    what,
    label: what,
    seconds: fields.seconds ?? 1,
    entriesPerSecond: 1,
    floorRatio: fields.floor ?? null,
    baselineRatio: fields.baseline ?? null,
    peakRssBytes: (fields.rssMb ?? 100) * MB,
  };
}

function benchCase(
  det: "it" | "plane",
  entries: number,
  timings: BenchTiming[],
  seedRate = 25_000,
): BenchCase {
  return {
    det,
    entries,
    units: 1,
    emissionRows: entries,
    seed: { seconds: entries / seedRate, entriesPerSecond: seedRate, peakRssBytes: 0 },
    timings,
    checks: {},
  };
}

function verdicts(
  cases: BenchCase[],
  extra: Partial<Pick<BenchReport, "backend" | "factorImport" | "embedded" | "embeddedError">> = {},
): TargetVerdict[] {
  return evaluateTargets({ backend: "server", cases, ...extra });
}

const find = (list: TargetVerdict[], start: string) => {
  const found = list.find((v) => v.target.startsWith(start));
  assert.ok(found, `no target starting "${start}"`);
  return found;
};

Deno.test("the full change holds at 2 × floor A and not above, over every case", () => {
  const at = (a: number, b: number) =>
    find(
      verdicts([
        benchCase("it", 10_000, [timing("rematch", { floor: a })]),
        benchCase("it", 100_000, [timing("rematch", { floor: b })]),
      ]),
      "full change",
    );
  assert.equal(at(2, 1.5).holds, true);
  assert.equal(at(1.5, 2.01).holds, false);
  assert.equal(at(1.5, 2.01).measured, "it 10k: 1.50; it 100k: 2.01");
  const none = find(verdicts([benchCase("it", 10_000, [])]), "full change");
  assert.deepEqual([none.holds, none.remark], [null, "needs --change all"]);
});

Deno.test("the baseline ratio is judged at 100k only, at 50 × or more", () => {
  const small = benchCase("it", 10_000, [timing("rematch", { floor: 1, baseline: 10 })]);
  const at100k = (ratio: number) =>
    find(
      verdicts([
        small,
        benchCase("it", 100_000, [timing("rematch", { floor: 1, baseline: ratio })]),
      ]),
      "per-entry baseline",
    );
  assert.equal(at100k(50).holds, true);
  assert.equal(at100k(49.9).holds, false);
  assert.equal(at100k(49.9).measured, "it 100k: 49.9");
  const without = find(verdicts([small]), "per-entry baseline");
  assert.equal(without.holds, null);
  assert.match(without.remark!, /--entries 100000/);
});

Deno.test("the one-percent and no-op targets judge the fresh process from 100k, warm beside", () => {
  const list = verdicts([
    // 10k: the fixed costs of a fresh process weigh; the targets are set for 100k and 1M.
    benchCase("it", 10_000, [
      timing("one-percent", { floor: 0.5 }),
      timing("no-op", { floor: 0.5 }),
    ]),
    benchCase("plane", 100_000, [
      timing("one-percent", { floor: 0.06 }),
      timing("one-percent, warm", { floor: 0.04 }),
      timing("no-op", { floor: 0.01 }),
      timing("no-op, warm", { floor: 0.0012 }),
      timing("forced full no-op", { floor: 0.51 }),
    ]),
  ]);
  const onePercent = find(list, "one-percent");
  assert.equal(onePercent.holds, false);
  assert.equal(onePercent.measured, "plane 100k: 0.06 (warm worker 0.04)");
  const noop = find(list, "no-op");
  assert.equal(noop.holds, true);
  assert.equal(noop.measured, "plane 100k: 0.01 (warm worker 0.0012)");
  assert.equal(find(list, "forced full no-op").holds, false);
});

Deno.test("time per entry is flat when its largest is at most 1.5 × its smallest, per det", () => {
  // 37.5 µs at 10k against 25 µs at 1M: exactly 1.5.
  const run = (tenK: number, plane?: number[]) =>
    find(
      verdicts([
        benchCase("it", 10_000, [timing("rematch", { seconds: tenK })]),
        benchCase("it", 1_000_000, [timing("rematch", { seconds: 25 })]),
        ...(plane
          ? [
            benchCase("plane", 10_000, [timing("rematch", { seconds: plane[0] })]),
            benchCase("plane", 100_000, [timing("rematch", { seconds: plane[1] })]),
          ]
          : []),
      ]),
      "time per entry",
    );
  assert.equal(run(0.375).holds, true);
  assert.equal(run(0.375).remark, undefined);
  assert.equal(run(0.376).holds, false);
  assert.match(run(0.376).measured, /^it: 37\.6 µs → 25\.0 µs \(10k → 1M; 1\.50 ×\)/);
  // plane only from 10k to 100k: judged, with the span named.
  const partial = run(0.375, [0.2, 2.5]);
  assert.equal(partial.holds, true);
  assert.match(partial.remark!, /not the whole 10k → 1M span/);
  const single = find(
    verdicts([benchCase("it", 10_000, [timing("rematch", {})])]),
    "time per entry",
  );
  assert.equal(single.holds, null);
});

Deno.test("peak RSS at 1M counts the rematch's phases, under 200 MB", () => {
  const at1M = (rematchMb: number) =>
    find(
      verdicts([
        benchCase("it", 100_000, [timing("rematch", { rssMb: 500 })]),
        benchCase("it", 1_000_000, [
          timing("floor A", { rssMb: 250 }),
          timing("baseline", { rssMb: 250 }),
          timing("rematch", { rssMb: rematchMb }),
          timing("one-percent", { rssMb: 90 }),
        ]),
      ]),
      "peak RSS",
    );
  assert.deepEqual([at1M(199).holds, at1M(199).measured], [true, "it: 199 MB"]);
  assert.equal(at1M(200).holds, false);
  assert.equal(find(verdicts([]), "peak RSS").holds, null);
});

Deno.test("the factor import is judged on 50,000 rows: under 3 s, unchanged under 1 s", () => {
  const importOf = (rows: number, fresh: number, unchanged: number) => ({
    factorImport: {
      rows,
      freshSeconds: fresh,
      unchangedSeconds: unchanged,
      inserted: rows,
      unchanged: rows,
      peakRssBytes: 0,
    },
  });
  const judge = (rows: number, fresh: number, unchanged: number) =>
    find(verdicts([], importOf(rows, fresh, unchanged)), "factor CSV");
  assert.equal(judge(50_000, 2.99, 0.99).holds, true);
  assert.equal(judge(50_000, 3, 0.5).holds, false);
  assert.equal(judge(50_000, 1, 1).holds, false);
  const quick = judge(1500, 0.1, 0.1);
  assert.equal(quick.holds, null);
  assert.match(quick.remark!, /1500 rows/);
});

Deno.test("seeding is judged on a server from 100k, at 20,000 entries/s or more", () => {
  const small = benchCase("it", 10_000, [], 10_000);
  const cases = [
    small,
    benchCase("it", 100_000, [], 20_000),
    benchCase("plane", 100_000, [], 19_999),
  ];
  const seeding = find(verdicts(cases), "entries import");
  assert.equal(seeding.holds, false);
  assert.equal(seeding.measured, "it 100k: 20000/s; plane 100k: 19999/s");
  assert.equal(find(verdicts(cases.slice(0, 2)), "entries import").holds, true);
  assert.equal(find(verdicts([small]), "entries import").holds, null);
  assert.equal(find(verdicts(cases, { backend: "embedded" }), "entries import").holds, null);
});

Deno.test("the embedded full change of 10k is judged at 3 × the server's of the same run", () => {
  const compared = (embeddedSeconds: number) => ({
    embedded: [
      {
        det: "it" as const,
        entries: 10_000,
        embeddedSeconds,
        serverSeconds: 0.25,
        entriesWritten: 10_000,
        kgAfter: 1,
      },
    ],
  });
  const judge = (seconds: number) => find(verdicts([], compared(seconds)), "embedded");
  assert.equal(judge(0.75).holds, true);
  assert.equal(judge(0.75).measured, "it: 0.750 s against 0.250 s (3.00 ×)");
  assert.equal(judge(0.76).holds, false);
  const none = find(verdicts([]), "embedded");
  assert.equal(none.holds, null);
  assert.match(none.remark!, /--server-only/);
  assert.match(find(verdicts([], { backend: "embedded" }), "embedded").remark!, /on a server/);
  const failed = find(verdicts([], { embeddedError: "PGlite cannot be loaded" }), "embedded");
  assert.deepEqual([failed.holds, failed.remark], [
    null,
    "the embedded run failed: PGlite cannot be loaded",
  ]);
});

Deno.test("an embedded run shows what it measured against the server targets, judges none", () => {
  const cases = [
    benchCase("it", 10_000, [timing("rematch", { floor: 1.5 })]),
    benchCase("it", 100_000, [
      timing("rematch", { floor: 1.5, baseline: 60 }),
      timing("no-op", { floor: 0.5 }),
    ]),
  ];
  const embedded = verdicts(cases, { backend: "embedded" });
  const server = verdicts(cases);
  assert.equal(find(server, "full change").holds, true);
  assert.equal(find(server, "no-op").holds, false);
  for (const start of ["full change", "per-entry", "no-op", "time per entry"]) {
    const v = find(embedded, start);
    assert.equal(v.holds, null, start);
    assert.equal(v.measured, find(server, start).measured, start);
    assert.match(v.remark!, /^judged on a server/);
  }
  assert.equal(embedded.length, server.length);
});
