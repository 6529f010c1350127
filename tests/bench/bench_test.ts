// The bench at its --quick size, so that it never rots: it runs every phase on both dets and its
// results are consistent. Nothing here looks at a timing.
import assert from "node:assert/strict";
import { join } from "node:path";
import { CHANGE_FACTOR } from "../../src/bench/changes.ts";
import { PHASE_ENV, REMATCH_V8_FLAGS, runPhase } from "../../src/bench/phase.ts";
import { formatBenchMarkdown, formatBenchText } from "../../src/bench/report.ts";
import {
  type BenchCase,
  type BenchReport,
  compareWithEmbedded,
  consistencyProblems,
  embeddedProblems,
  runBench,
} from "../../src/bench/run.ts";
import { evaluateTargets } from "../../src/bench/targets.ts";
import { benchCommand, updateReadme } from "../../src/cli/bench.ts";
import { runCli, serverBackendExpected } from "../_harness.ts";
import { perEntryBaseline } from "./baseline.ts";

const hooks = {
  baseline: perEntryBaseline,
  entrypoint: new URL("../../scripts/bench.ts", import.meta.url),
};
const ENTRIES = 2000;
const near = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.abs(b);

// `--readme`: the run's markdown lands in its block of a README, formatted, the rest kept; an
// inconsistent run or a missing block writes nothing.
async function readmeHoldsTheRun(report: BenchReport) {
  const markdown = formatBenchMarkdown(report);
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "README.md");
    const before = "# Figures\n\n<!-- bench:begin -->\n\nold\n\n<!-- bench:end -->\n\nEnd.\n";
    await Deno.writeTextFile(file, before);
    assert.deepEqual(await updateReadme(file, "bench", markdown, ["it 2000: a no-op wrote"]), {
      line: `${file}: not written, some results were inconsistent`,
      failed: false,
    });
    assert.equal(await Deno.readTextFile(file), before);
    const missing = await updateReadme(file, "bench-1m", markdown, []);
    assert.deepEqual(missing, {
      line: `${file}: no line "<!-- bench-1m:begin -->"`,
      failed: true,
    });
    assert.equal(await Deno.readTextFile(file), before);

    assert.deepEqual(await updateReadme(file, "bench", markdown, []), {
      line: `${file}: block bench now holds this run`,
      failed: false,
    });
    const written = await Deno.readTextFile(file);
    const block = written.slice(
      written.indexOf("<!-- bench:begin -->") + "<!-- bench:begin -->".length,
      written.indexOf("<!-- bench:end -->"),
    );
    // The same text as --markdown prints, but for how `deno fmt` lays it out: spaces and line
    // breaks, and the width of the tables' dashed lines.
    const bare = (text: string) => text.replace(/[\s-]+/g, "");
    assert.equal(bare(block), bare(formatBenchMarkdown(report)));
    assert.ok(
      written.startsWith("# Figures\n") && written.endsWith("<!-- bench:end -->\n\nEnd.\n"),
    );
    assert.match(block, /^\| it {4}\| {4}2000 \| rematch, every factor changed +\|/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

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
    // The machine line names what the server's memory settings are (both backends answer them),
    // and for a server on this Linux machine the huge pages its kernel holds.
    assert.match(report.machine.database, /, shared_buffers \S+, huge_pages (try|on|off)/);
    const local = serverUrl() &&
      ["localhost", "127.0.0.1"].includes(new URL(serverUrl()!).hostname);
    if (local && Deno.build.os === "linux") {
      assert.match(report.machine.database, /\(\d+ huge pages reserved by the kernel\)$/);
    }
    assert.deepEqual(report.cases.map((c) => [c.det, c.entries]), [
      ["it", ENTRIES],
      ["plane", ENTRIES],
    ]);
    for (const c of report.cases) {
      assert.ok(c.units > 1, `${c.det}: spread over several modules`);
      assert.deepEqual(
        c.timings.map((t) => t.what),
        [
          "floor A",
          "floor B",
          "rematch",
          "no-op",
          "forced full no-op",
          "no-op, warm",
          "baseline",
          "one-percent",
          "one-percent, warm",
        ],
      );
      for (const t of c.timings) {
        assert.ok(t.seconds > 0 && Number.isFinite(t.seconds), `${c.det} ${t.what} ran`);
        assert.ok(t.peakRssBytes > 0, `${c.det} ${t.what}: peak RSS measured`);
      }
      for (const what of ["rematch", "forced full no-op", "one-percent", "one-percent, warm"]) {
        const parts = c.timings.find((t) => t.what === what)!.profile!.map((p) => p.part);
        for (const part of ["setup", "read", "compute/compare", "slice state", "client CPU"]) {
          assert.ok(parts.includes(part), `${c.det} ${what}: profile has ${part}`);
        }
      }
      // The no-ops read the slice state and nothing else.
      for (const what of ["no-op", "no-op, warm"]) {
        const noopParts = c.timings.find((t) => t.what === what)!.profile!.map((p) => p.part);
        assert.ok(!noopParts.includes("read"), `${c.det} ${what}: ${noopParts}`);
        assert.ok(noopParts.includes("slice state"), `${c.det} ${what}: ${noopParts}`);
      }
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
    await readmeHoldsTheRun(report);
    assert.match(
      markdown,
      /^\| it \| 2000 \| rematch, one factor \(~1 %\) changed, in a warm worker \|/m,
    );
    // Every target of performance.md is listed with what this run measured for it; what a quick
    // run cannot judge (targets set from 100k, 1M, 50,000 rows, two sizes) says so, not passes.
    const judged = new Map(report.targets.map((v) => [v.target.split(" ")[0], v]));
    assert.equal(report.targets.length, 10);
    // Judged on a server; an embedded run shows what it measured without a verdict.
    if (serverUrl()) assert.notEqual(judged.get("full")?.holds, null);
    else assert.equal(judged.get("full")?.holds, null);
    assert.match(judged.get("full")!.measured, /^it 2k: [\d.]+; plane 2k: [\d.]+$/);
    const unjudged = ["per-entry", "one-percent", "no-op", "forced", "time", "peak", "factor"];
    for (const start of [...unjudged, "entries", "embedded"]) {
      assert.equal(judged.get(start)?.holds, null, `${start}: not judged on a quick run`);
      assert.match(judged.get(start)!.remark!, /^needs |^this run imported|^judged on a server/);
    }
    assert.match(markdown, /^\| full change, every size ≤ 2 × floor A \| it 2k: [\d.]+; plane/m);
    assert.match(
      formatBenchText(report),
      /^ {2}not measured: per-entry baseline ÷ rematch at 100k ≥ 50 × \(needs --entries 100000/m,
    );

    // On a server, the embedded target's measurement at this size: the same seeded slices come
    // out of the full change the same on the embedded database, and the target is judged.
    if (!serverUrl()) return;
    const embedded = await compareWithEmbedded(hooks, report.cases, { size: ENTRIES });
    assert.deepEqual(embedded.map((e) => [e.det, e.entries, e.entriesWritten]), [
      ["it", ENTRIES, ENTRIES],
      ["plane", ENTRIES, ENTRIES],
    ]);
    for (const e of embedded) {
      const server = report.cases.find((c) => c.det === e.det)!;
      assert.ok(near(e.kgAfter, server.checks.fullChange!.kgAfter), `${e.det}: same kg`);
      const rematch = server.timings.find((t) => t.what === "rematch")!;
      assert.ok(e.embeddedSeconds > 0 && e.serverSeconds === rematch.seconds);
    }
    assert.deepEqual(embeddedProblems({ cases: report.cases, embedded }), []);
    const verdict = evaluateTargets({ ...report, embedded }).at(-1)!;
    assert.match(verdict.target, /^embedded/);
    assert.notEqual(verdict.holds, null);
    assert.match(verdict.measured, /^it: [\d.]+ s against [\d.]+ s \([\d.]+ ×\); plane: /);
  },
});

function assertConsistent(c: BenchCase): void {
  const { fullChange, noop, noopWarm, forcedNoop, baseline, onePercent, onePercentWarm, runs } =
    c.checks;
  assert.ok(
    fullChange && noop && noopWarm && forcedNoop && baseline && onePercent && onePercentWarm,
    `${c.det}: every check recorded`,
  );
  // Profiled or not, each timed rematch ran the product's path: its run is recorded.
  assert.deepEqual(runs, { timed: 6, recorded: 6 });
  // Every generated entry of these dets resolves to a factor: one row each.
  assert.equal(c.emissionRows, ENTRIES);
  assert.equal(fullChange.entriesWithRows, ENTRIES);
  assert.equal(fullChange.entriesWritten, ENTRIES, `${c.det}: the full change rewrote every entry`);
  assert.equal(fullChange.errors, 0);
  // kg is linear in the emission factor: scaling every ef_* value scales the slice's kg.
  assert.ok(near(fullChange.kgAfter, fullChange.kgBefore * CHANGE_FACTOR), `${c.det}: kg scaled`);
  assert.ok(near(fullChange.kgStored, fullChange.kgAfter), `${c.det}: stored kg is the result's`);

  // The slice knew it was current: nothing read. Forced, it read everything and wrote nothing.
  for (const run of [noop, noopWarm]) {
    assert.deepEqual([run.scope, run.entriesRead, run.recalculated], ["none", 0, 0]);
    assert.equal(run.emissionsWritten, 0, `${c.det}: the no-op wrote nothing`);
    assert.ok(run.rowsUntouched, `${c.det}: no stored row moved`);
  }
  // The warm worker's first rematch ran in its process, a no-op as well.
  assert.equal(noopWarm.warmUpScope, "none");
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
  // ... having deleted and inserted every row: a baseline that only computes is no baseline.
  assert.equal(baseline.emissionsWritten, ENTRIES, `${c.det}: the baseline wrote every row`);
  assert.deepEqual([baseline.rowsAfter, baseline.idsMoved], [ENTRIES, true]);
  // Each write floor wrote as many rows as the slice has, counted in its table.
  assert.deepEqual(c.checks.floorRows, { A: ENTRIES, B: ENTRIES });

  // Each change of one factor read and rewrote exactly the entries using it: the cold one, the
  // warm worker's first (untimed) and its second; three different factors.
  for (const run of [onePercent, onePercentWarm.warmUp, onePercentWarm]) {
    assert.equal(run.entriesWritten, run.coveredEntries);
    assert.deepEqual([run.scope, run.entriesRead], ["targeted", run.coveredEntries]);
    assert.ok(run.share >= 0.005 && run.share <= 0.02, `${c.det}: about 1 % (${run.share})`);
  }
  assert.equal(
    new Set([onePercent.factorId, onePercentWarm.warmUp.factorId, onePercentWarm.factorId]).size,
    3,
  );
  assert.deepEqual(consistencyProblems(c), []);
}

Deno.test("bench consistency: a no-op that wrote, a one-percent change that spread (cold or warm) or a run not recorded is reported", () => {
  const noop = {
    scope: "none",
    entriesRead: 0,
    recalculated: 0,
    unchanged: 0,
    emissionsWritten: 0,
    rowsUntouched: true,
  };
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
      noop,
      forcedNoop: {
        scope: "full",
        entriesRead: 10,
        recalculated: 10,
        unchanged: 10,
        emissionsWritten: 0,
        rowsUntouched: true,
      },
      noopWarm: { ...noop, warmUpScope: "none" },
      onePercent: {
        scope: "targeted",
        entriesRead: 1,
        factorId: 7,
        coveredEntries: 1,
        share: 0.01,
        entriesWritten: 1,
      },
      onePercentWarm: {
        scope: "targeted",
        entriesRead: 2,
        factorId: 9,
        coveredEntries: 2,
        share: 0.015,
        entriesWritten: 2,
        warmUp: {
          scope: "targeted",
          entriesRead: 1,
          factorId: 8,
          coveredEntries: 1,
          share: 0.01,
          entriesWritten: 1,
        },
      },
      runs: { timed: 6, recorded: 6 },
    },
  };
  assert.deepEqual(consistencyProblems(c), []);
  const broken: BenchCase = {
    ...c,
    checks: {
      fullChange: { ...c.checks.fullChange!, kgAfter: 100, kgStored: 100 },
      noop: { ...c.checks.noop!, emissionsWritten: 3, recalculated: 9, scope: "full" },
      forcedNoop: { ...c.checks.forcedNoop!, scope: "targeted" },
      noopWarm: { ...c.checks.noopWarm!, rowsUntouched: false, warmUpScope: "full" },
      onePercent: { ...c.checks.onePercent!, entriesWritten: 4, entriesRead: 10 },
      onePercentWarm: {
        ...c.checks.onePercentWarm!,
        entriesWritten: 0,
        warmUp: { ...c.checks.onePercentWarm!.warmUp, scope: "full" },
      },
      runs: { timed: 6, recorded: 5 },
    },
  };
  const problems = consistencyProblems(broken);
  assert.equal(problems.length, 11);
  assert.match(problems[0], /^rematch runs: 6 timed, 5 recorded/);
  assert.match(problems[1], /^full change: kg 100 → 100/);
  assert.match(problems[2], /^no-op: 3 rows written/);
  assert.match(problems[3], /^no-op: scope full, 0 entries read/);
  assert.match(problems[4], /^warm no-op: 0 rows written/);
  assert.match(problems[5], /^warm no-op: its first rematch's scope was full/);
  assert.match(problems[6], /^forced full no-op: scope targeted, 0 rows written/);
  assert.match(problems[7], /^one-percent: scope targeted, 10 entries read, 1 covered by factor 7/);
  assert.match(problems[8], /^one-percent: 4 entries rewritten, 1 covered by factor 7/);
  assert.match(problems[9], /^warm one-percent: 0 entries rewritten, 2 covered by factor 9/);
  assert.match(
    problems[10],
    /^warm one-percent's first rematch: scope full, 1 entries read, 1 covered by factor 8/,
  );
});

/** A case of `entries` entries of `det` (one row each, one unit) with only `checks` recorded. */
function benchCaseOf(
  det: BenchCase["det"],
  entries: number,
  checks: BenchCase["checks"],
): BenchCase {
  return {
    det,
    entries,
    units: 1,
    emissionRows: entries,
    seed: { seconds: 1, entriesPerSecond: entries, peakRssBytes: 1 },
    timings: [],
    checks,
  };
}

Deno.test("bench consistency: a write floor or a per-entry baseline that wrote nothing is reported", () => {
  const c = benchCaseOf("it", 10, {
    floorRows: { A: 10, B: 10 },
    baseline: {
      entries: 10,
      sampled: false,
      errors: 0,
      kgAfter: 1,
      emissionsWritten: 10,
      rowsAfter: 10,
      idsMoved: true,
      rematchAfterWrites: 0,
    },
  });
  assert.deepEqual(consistencyProblems(c), []);
  const broken: BenchCase = {
    ...c,
    checks: {
      floorRows: { A: 0, B: 10 },
      baseline: { ...c.checks.baseline!, emissionsWritten: 0, idsMoved: false },
    },
  };
  assert.deepEqual(consistencyProblems(broken), [
    "floor A: 0 rows written, the slice has 10",
    "baseline: 10 entries recomputed, no row written",
    "baseline: 0 rows written, the slice has 10, its rows kept their ids",
  ]);
  // A sampled baseline is rolled back: only its own count tells.
  const sampled: BenchCase = {
    ...c,
    checks: {
      baseline: { entries: 10, sampled: true, errors: 0, kgAfter: 1, emissionsWritten: 0 },
    },
  };
  assert.deepEqual(consistencyProblems(sampled), [
    "baseline: 10 entries recomputed, no row written",
  ]);
});

Deno.test("bench consistency: a one-percent change whose factor covers far more than 1 % is reported", () => {
  const run = {
    scope: "targeted",
    entriesRead: 100,
    factorId: 3,
    coveredEntries: 100,
    share: 1,
    entriesWritten: 100,
  };
  const c = benchCaseOf("member", 100, { onePercent: run });
  assert.deepEqual(consistencyProblems(c), [
    "one-percent: factor 3 covers 100.00 % of the entries, not about 1 %",
  ]);
  const near: BenchCase = {
    ...c,
    checks: {
      onePercent: { ...run, entriesRead: 1, coveredEntries: 1, entriesWritten: 1, share: 0.01 },
    },
  };
  assert.deepEqual(consistencyProblems(near), []);
});

Deno.test("bench usage: bad sizes, dets and changes are refused with exit code 2", async () => {
  const command = benchCommand(hooks);
  for (
    const [argv, message] of [
      [["--quick", "--entries", "5000"], /--quick sets the size/],
      [["--quick", "--readme", "Bench figures"], /--readme: expected a block name of lower-case/],
      [["--det", "building_embodied_energy"], /unknown data entry type/],
      [["--change", "some"], /unknown change \(expected all, none, one-percent\): some/],
      [["--entries", "10k"], /expected sizes such as 10000,100000/],
      [["--entries", "99999999999999999999"], /each size must be ≤ 10000000 entries/],
      [["--quick", "--markdown", "--json"], /--markdown: the table, or --json: the document/],
    ] as const
  ) {
    // With --json the error is the JSON document on standard output.
    const { code, err, out } = await runCli(command, [...argv]);
    assert.equal(code, 2, argv.join(" "));
    assert.match(err + out, message);
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

Deno.test("an embedded full change that differs from the server's is reported", () => {
  const fullChange = {
    factorsChanged: 1,
    entriesWithRows: 10,
    entriesWritten: 10,
    errors: 0,
    kgBefore: 1,
    kgAfter: 1.1,
    kgStored: 1.1,
  };
  const cases = [{
    det: "it" as const,
    entries: 10,
    units: 1,
    emissionRows: 10,
    seed: { seconds: 1, entriesPerSecond: 10, peakRssBytes: 0 },
    timings: [],
    checks: { fullChange },
  }];
  const embedded = (entriesWritten: number, kgAfter: number) => [{
    det: "it" as const,
    entries: 10,
    embeddedSeconds: 1,
    serverSeconds: 1,
    entriesWritten,
    kgAfter,
  }];
  assert.deepEqual(embeddedProblems({ cases, embedded: embedded(10, 1.1) }), []);
  assert.deepEqual(embeddedProblems({ cases, embedded: embedded(9, 1.2) }), [
    "it 10 embedded: rewrote 9 entries, the server 10",
    "it 10 embedded: kg after 1.2, the server's 1.1",
  ]);
});

Deno.test("a phase process gets its phase (the database URL with its password) off the command line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rematch-phase-" });
  try {
    // A stand-in entrypoint that reports what it was given, as a phase reports its outcome.
    const script = `${dir}/phase.ts`;
    await Deno.writeTextFile(
      script,
      `console.log(JSON.stringify({ args: Deno.args, phase: Deno.env.get("${PHASE_ENV}") }));\n`,
    );
    const url = "postgres://ops:s3cret-pw@127.0.0.1:5432/bench";
    const seen = await runPhase({ ...hooks, entrypoint: script }, {
      kind: "floor",
      target: { kind: "server", url },
      det: "it",
      variant: "A",
    }) as unknown as { args: string[]; phase: string };
    assert.deepEqual(seen.args, ["--phase"]);
    assert.equal(JSON.parse(seen.phase).target.url, url);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
