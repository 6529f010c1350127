// The bench at its --quick size, so that it never rots: it runs every phase on both dets and its
// results are consistent. Nothing here looks at a timing.
import assert from "node:assert/strict";
import { CHANGE_FACTOR } from "../../src/bench/changes.ts";
import { REMATCH_V8_FLAGS } from "../../src/bench/phase.ts";
import { formatBenchMarkdown, formatBenchText } from "../../src/bench/report.ts";
import { type BenchCase, consistencyProblems, runBench } from "../../src/bench/run.ts";
import { benchCommand } from "../../src/cli/bench.ts";
import { runCli, serverBackendExpected } from "../_harness.ts";
import { perEntryBaseline } from "./baseline.ts";

const hooks = {
  baseline: perEntryBaseline,
  entrypoint: new URL("../../scripts/bench.ts", import.meta.url),
};
const ENTRIES = 2000;
const near = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.abs(b);

function serverUrl(): string | undefined {
  if (!serverBackendExpected()) return undefined;
  return Deno.env.get("TEST_DATABASE_URL") ?? Deno.env.get("DATABASE_URL");
}

Deno.test({
  name: "bench --quick: every phase runs on it and plane and the results are consistent",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const report = await runBench(hooks, {
      dets: ["it", "plane"],
      entries: [ENTRIES],
      changes: new Set(["all", "none", "one-percent"]),
      profile: true,
      baselineSample: 20_000,
      importRows: 1500,
      serverUrl: serverUrl(),
    });
    assert.equal(report.backend, serverUrl() ? "server" : "embedded");
    assert.deepEqual(report.cases.map((c) => [c.det, c.entries]), [
      ["it", ENTRIES],
      ["plane", ENTRIES],
    ]);
    for (const c of report.cases) {
      assert.ok(c.units > 1, `${c.det}: spread over several modules`);
      assert.deepEqual(
        c.timings.map((t) => t.what),
        ["floor A", "floor B", "rematch", "no-op", "forced full no-op", "baseline", "one-percent"],
      );
      for (const t of c.timings) {
        assert.ok(t.seconds > 0 && Number.isFinite(t.seconds), `${c.det} ${t.what} ran`);
        assert.ok(t.peakRssBytes > 0, `${c.det} ${t.what}: peak RSS measured`);
      }
      for (const what of ["rematch", "forced full no-op", "one-percent"]) {
        const parts = c.timings.find((t) => t.what === what)!.profile!.map((p) => p.part);
        for (const part of ["setup", "read", "compute/compare", "slice state", "client CPU"]) {
          assert.ok(parts.includes(part), `${c.det} ${what}: profile has ${part}`);
        }
      }
      // The no-op read the slice state and nothing else.
      const noopParts = c.timings.find((t) => t.what === "no-op")!.profile!.map((p) => p.part);
      assert.ok(!noopParts.includes("read"), `${c.det} no-op: ${noopParts}`);
      assert.ok(noopParts.includes("slice state"), `${c.det} no-op: ${noopParts}`);
      assertConsistent(c);
    }
    assert.deepEqual(
      report.factorImport && {
        rows: report.factorImport.rows,
        inserted: report.factorImport.inserted,
        unchanged: report.factorImport.unchanged,
      },
      { rows: 1500, inserted: 1500, unchanged: 1500 },
    );
    const markdown = formatBenchMarkdown(report);
    assert.match(markdown, /^\| it \| 2000 \| rematch, every factor changed \|/m);
    assert.match(markdown, /^\| plane \| 2000 \| per-entry baseline \|/m);
    assert.match(formatBenchText(report), /one-percent: factor \d+ covered/);
  },
});

function assertConsistent(c: BenchCase): void {
  const { fullChange, noop, forcedNoop, baseline, onePercent, runs } = c.checks;
  assert.ok(
    fullChange && noop && forcedNoop && baseline && onePercent,
    `${c.det}: every check recorded`,
  );
  // Profiled or not, each timed rematch ran the product's path: its run is recorded.
  assert.deepEqual(runs, { timed: 4, recorded: 4 });
  // Every generated entry of these dets resolves to a factor: one row each.
  assert.equal(c.emissionRows, ENTRIES);
  assert.equal(fullChange.entriesWithRows, ENTRIES);
  assert.equal(fullChange.entriesWritten, ENTRIES, `${c.det}: the full change rewrote every entry`);
  assert.equal(fullChange.errors, 0);
  // kg is linear in the emission factor: scaling every ef_* value scales the slice's kg.
  assert.ok(near(fullChange.kgAfter, fullChange.kgBefore * CHANGE_FACTOR), `${c.det}: kg scaled`);
  assert.ok(near(fullChange.kgStored, fullChange.kgAfter), `${c.det}: stored kg is the result's`);

  // The slice knew it was current: nothing read. Forced, it read everything and wrote nothing.
  assert.deepEqual([noop.scope, noop.entriesRead, noop.recalculated], ["none", 0, 0]);
  assert.equal(noop.emissionsWritten, 0, `${c.det}: the no-op wrote nothing`);
  assert.ok(noop.rowsUntouched, `${c.det}: no stored row moved`);
  assert.deepEqual(
    [forcedNoop.scope, forcedNoop.entriesRead, forcedNoop.recalculated, forcedNoop.unchanged],
    ["full", ENTRIES, ENTRIES, ENTRIES],
  );
  assert.equal(forcedNoop.emissionsWritten, 0, `${c.det}: the forced no-op wrote nothing`);
  assert.ok(forcedNoop.rowsUntouched, `${c.det}: no stored row moved (forced)`);

  // The baseline recomputed every entry by its own queries: the same kg, and rows a rematch
  // right after it finds exactly right.
  assert.equal(baseline.entries, ENTRIES);
  assert.equal(baseline.sampled, false);
  assert.ok(near(baseline.kgAfter, fullChange.kgAfter), `${c.det}: baseline kg = rematch kg`);
  assert.equal(baseline.rematchAfterWrites, 0);

  assert.equal(onePercent.entriesWritten, onePercent.coveredEntries);
  assert.deepEqual([onePercent.scope, onePercent.entriesRead], [
    "targeted",
    onePercent.coveredEntries,
  ]);
  assert.ok(
    onePercent.share >= 0.005 && onePercent.share <= 0.02,
    `${c.det}: about 1 % (${onePercent.share})`,
  );
  assert.deepEqual(consistencyProblems(c), []);
}

Deno.test("bench consistency: a no-op that wrote, a one-percent change that spread or a run not recorded is reported", () => {
  const c: BenchCase = {
    det: "it",
    entries: 10,
    units: 1,
    emissionRows: 10,
    seed: { seconds: 1, entriesPerSecond: 10, peakRssBytes: 1 },
    timings: [],
    checks: {
      fullChange: {
        factorsChanged: 2,
        entriesWithRows: 10,
        entriesWritten: 10,
        errors: 0,
        kgBefore: 100,
        kgAfter: 110,
        kgStored: 110,
      },
      noop: {
        scope: "none",
        entriesRead: 0,
        recalculated: 0,
        unchanged: 0,
        emissionsWritten: 0,
        rowsUntouched: true,
      },
      forcedNoop: {
        scope: "full",
        entriesRead: 10,
        recalculated: 10,
        unchanged: 10,
        emissionsWritten: 0,
        rowsUntouched: true,
      },
      onePercent: {
        scope: "targeted",
        entriesRead: 1,
        factorId: 7,
        coveredEntries: 1,
        share: 0.1,
        entriesWritten: 1,
      },
      runs: { timed: 4, recorded: 4 },
    },
  };
  assert.deepEqual(consistencyProblems(c), []);
  const broken: BenchCase = {
    ...c,
    checks: {
      fullChange: { ...c.checks.fullChange!, kgAfter: 100, kgStored: 100 },
      noop: { ...c.checks.noop!, emissionsWritten: 3, recalculated: 9, scope: "full" },
      forcedNoop: { ...c.checks.forcedNoop!, scope: "targeted" },
      onePercent: { ...c.checks.onePercent!, entriesWritten: 4, entriesRead: 10 },
      runs: { timed: 4, recorded: 3 },
    },
  };
  const problems = consistencyProblems(broken);
  assert.equal(problems.length, 7);
  assert.match(problems[0], /^rematch runs: 4 timed, 3 recorded/);
  assert.match(problems[1], /^full change: kg 100 → 100/);
  assert.match(problems[2], /^no-op: 3 rows written/);
  assert.match(problems[3], /^no-op: scope full, 0 entries read/);
  assert.match(problems[4], /^forced full no-op: scope targeted, 0 rows written/);
  assert.match(problems[5], /^one-percent: scope targeted, 10 entries read, 1 covered by factor 7/);
  assert.match(problems[6], /^one-percent: 4 entries rewritten, 1 covered by factor 7/);
});

Deno.test("bench usage: bad sizes, dets and changes are refused with exit code 2", async () => {
  const command = benchCommand(hooks);
  for (
    const [argv, message] of [
      [["--quick", "--entries", "5000"], /--quick sets the size/],
      [["--det", "building_embodied_energy"], /unknown data entry type/],
      [["--change", "some"], /unknown change \(expected all, none, one-percent\): some/],
      [["--entries", "10k"], /expected sizes such as 10000,100000/],
    ] as const
  ) {
    const { code, err } = await runCli(command, [...argv]);
    assert.equal(code, 2, argv.join(" "));
    assert.match(err, message);
  }
});

Deno.test("bench phases run with the V8 flags of the tasks that rematch", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  ) as { tasks: Record<string, string> };
  for (const task of ["rematch", "factors", "demo", "serve", "worker"]) {
    assert.match(config.tasks[task], new RegExp(`--v8-flags=${REMATCH_V8_FLAGS}( |$)`), task);
  }
  // The binary keeps the flags `deno compile` was given.
  const compile = await Deno.readTextFile(new URL("../../scripts/compile.ts", import.meta.url));
  assert.ok(compile.includes(`"--v8-flags=${REMATCH_V8_FLAGS}"`), "scripts/compile.ts");
});
