// `bench`: the rematch's performance against the write floor and the per-entry baseline
// (spec/performance.md). The baseline is handed in by scripts/bench.ts from tests/bench/.
import { z } from "zod";
import { redactDatabaseUrl } from "../db/connection.ts";
import { dropLiveBenchDatabases } from "../bench/database.ts";
import { type BenchHooks, stopRunningPhases } from "../bench/phase.ts";
import { README_BLOCK_NAME, writeReadmeBlock } from "../bench/readme.ts";
import { formatBenchMarkdown, formatBenchText } from "../bench/report.ts";
import { type ChangeKind, consistencyProblems, embeddedProblems, runBench } from "../bench/run.ts";
import { isBenchDet } from "../bench/slice.ts";
import type { SeedDet } from "../seed/generate.ts";
import { defineCommand, EXIT, SIGNAL_EXIT, UsageError } from "./command.ts";

const DEFAULT_ENTRIES = [10_000, 100_000];
const QUICK_ENTRIES = 2_000;
const CHANGES: readonly ChangeKind[] = ["all", "none", "one-percent"];

const USAGE = `Usage: deno task bench [--entries N[,N...]] [--det D[,D...]]
         [--change all|one-percent|none] [--quick] [--profile] [--json | --markdown]
         [--readme NAME] [--baseline-sample N] [--import-rows N] [--server-only]
         [--database-url URL]

Times the rematch of seeded slices against the physical write floor and the per-entry
baseline, in ONE run on this machine. Each (det, size) case gets a fresh database: created
beside the one DATABASE_URL (or --database-url) names and dropped at the end, or an embedded
database in a temporary directory when no URL is given. Every timed phase runs in its own
process, which gives its peak RSS. The report ends with each target of spec/performance.md:
whether this run meets it, or what the run would need to measure it (a size, a change).

  --entries N,...       slice sizes (default ${
  DEFAULT_ENTRIES.join(",")
}; 1000000 is the large size)
  --det D,...           data entry types (default it,plane)
  --change C,...        which changes to time (default all three): all = every factor's values
                        changed, then the rematch and the per-entry baseline; none = the no-op
                        rematch (the slice knows it is current), the forced full no-op (--full)
                        and the no-op in a warm worker; one-percent = one factor covering about
                        1 % of the entries, in a fresh process and in a warm worker (a process
                        whose connection ran a rematch of another such change before)
  --quick               ${QUICK_ENTRIES} entries per det, a small import: what the test suite runs
  --profile             where each rematch spends its time: setup, waiting for chunks (read),
                        compute/compare, waiting for writes, stats; and meanwhile the writes in
                        flight and the CPU of the client and (local server) of its backends
  --baseline-sample N   the baseline runs on at most N entries, extrapolated beyond (default 20000)
  --import-rows N       rows of the factor CSV import measurement (default 50000; 0 skips it)
  --server-only         on a server, skip the embedded database's full change of each det's
                        10000 entries, timed by default beside the server's for the embedded
                        target
  --json                the measurements as one JSON document
  --markdown            the table for the README
  --readme NAME         also write that table into README.md (of the current directory), between
                        its lines <!-- NAME:begin --> and <!-- NAME:end --> (bench: the default
                        sizes with --profile; bench-1m: --entries 100000,1000000), formatted as
                        deno fmt formats it; not when some results were inconsistent

Exit codes: 0 done, 3 done but some results were inconsistent (listed), 1 failed, 2 bad usage.`;

const count = (name: string, min: number) =>
  z.string().regex(/^\d+$/, `expected an integer for ${name}`).transform(Number)
    .refine((n) => n >= min, `must be ≥ ${min}`);

const list = <T extends string>(what: string, ok: (value: string) => value is T) =>
  z.string().transform((text, ctx) => {
    const values = text.split(",").map((v) => v.trim());
    const bad = values.filter((v) => !ok(v));
    if (bad.length) {
      ctx.addIssue({ code: "custom", message: `unknown ${what}: ${bad.join(", ")}` });
      return z.NEVER;
    }
    return [...new Set(values as T[])];
  });

/** The validated arguments of `bench`. */
export interface BenchArgs {
  readonly entries: readonly number[];
  readonly dets: readonly SeedDet[];
  readonly changes: ReadonlySet<ChangeKind>;
  readonly profile: boolean;
  readonly markdown: boolean;
  /** The README block to write the markdown table into. */
  readonly readme?: string;
  readonly baselineSample: number;
  readonly importRows: number;
  readonly serverOnly: boolean;
}

const schema = z.object({
  positionals: z.array(z.string()).max(0, "bench takes flags only"),
  entries: z.string().regex(/^\d+(,\d+)*$/, "expected sizes such as 10000,100000")
    .transform((s) => s.split(",").map(Number))
    .refine((sizes) => sizes.every((n) => n >= 100), "each size must be ≥ 100 entries")
    .refine((sizes) => sizes.every((n) => n <= 10_000_000), "each size must be ≤ 10000000 entries")
    .optional(),
  det: list(
    "data entry type (the seed generator writes every det but building_embodied_energy)",
    isBenchDet,
  )
    .default(["it", "plane"]),
  change: list(
    `change (expected ${CHANGES.join(", ")})`,
    (v): v is ChangeKind => (CHANGES as readonly string[]).includes(v),
  ).default([...CHANGES]),
  quick: z.boolean().default(false),
  profile: z.boolean().default(false),
  markdown: z.boolean().default(false),
  readme: z.string().regex(
    README_BLOCK_NAME,
    "expected a block name of lower-case letters, digits and dashes, such as bench or bench-1m",
  ).optional(),
  "baseline-sample": count("--baseline-sample", 1).default(20_000),
  "import-rows": count("--import-rows", 0).optional(),
  "server-only": z.boolean().default(false),
}).refine((a) => !(a.quick && a.entries), {
  message: "--quick sets the size: leave out --entries",
  path: ["quick"],
}).transform((a): BenchArgs => ({
  entries: a.quick ? [QUICK_ENTRIES] : a.entries ?? DEFAULT_ENTRIES,
  dets: a.det,
  changes: new Set(a.change),
  profile: a.profile,
  markdown: a.markdown,
  ...(a.readme ? { readme: a.readme } : {}),
  baselineSample: a["baseline-sample"],
  importRows: a["import-rows"] ?? (a.quick ? QUICK_ENTRIES : 50_000),
  serverOnly: a["server-only"],
}));

/**
 * Writes the run's markdown table (`--markdown`'s text) into the `block` of `file` (`--readme`),
 * unless some results were inconsistent; what was done, as a line for the report. A failed write
 * keeps the report.
 */
export async function updateReadme(
  file: string,
  block: string,
  markdown: string,
  problems: readonly string[],
): Promise<{ line: string; failed: boolean }> {
  if (problems.length) {
    return { line: `${file}: not written, some results were inconsistent`, failed: false };
  }
  try {
    await writeReadmeBlock(file, block, markdown);
    return { line: `${file}: block ${block} now holds this run`, failed: false };
  } catch (error) {
    return { line: error instanceof Error ? error.message : String(error), failed: true };
  }
}

/** The `bench` command, with the per-entry baseline and the phase script handed in. */
export function benchCommand(hooks: BenchHooks) {
  return defineCommand({
    name: "bench",
    usage: USAGE,
    options: {
      entries: { type: "string" },
      det: { type: "string" },
      change: { type: "string" },
      quick: { type: "boolean" },
      profile: { type: "boolean" },
      markdown: { type: "boolean" },
      readme: { type: "string" },
      "baseline-sample": { type: "string" },
      "import-rows": { type: "string" },
      "server-only": { type: "boolean" },
    },
    schema,
    // The runner's own handler exits at once, before any `finally`: the bench's databases and
    // phase processes would outlive the run.
    handlesStopSignals: true,
    async run(args, context) {
      if (context.json && args.markdown) {
        throw new UsageError("--markdown: the table, or --json: the document; not both");
      }
      const signals = dropOnStopSignals(context.json);
      // As for every command, an empty --database-url means the embedded database.
      const serverUrl = (context.databaseUrl ?? Deno.env.get("DATABASE_URL")) || undefined;
      // Every command says which database it uses: here, the server its cases are created on.
      console.error(
        serverUrl
          ? `database: ${redactDatabaseUrl(serverUrl)} (a fresh database per case beside it)`
          : "database: embedded, a temporary directory per case",
      );
      const report = await runBench(hooks, {
        dets: args.dets,
        entries: args.entries,
        changes: args.changes,
        profile: args.profile,
        baselineSample: args.baselineSample,
        importRows: args.importRows,
        serverUrl,
        compareEmbedded: !args.serverOnly,
        onStatus: (line) => console.error(line),
      }).catch((error) =>
        // Stopped by a signal: its handler drops the databases, says so and exits.
        signals.stopping() ? new Promise<never>(() => {}) : Promise.reject(error)
      ).finally(signals.undo);
      const problems = [
        ...report.cases.flatMap((c) =>
          consistencyProblems(c).map((p) => `${c.det} ${c.entries}: ${p}`)
        ),
        ...embeddedProblems(report),
      ];
      const markdown = formatBenchMarkdown(report);
      const text = args.markdown ? markdown : formatBenchText(report);
      const readme = args.readme
        ? await updateReadme("README.md", args.readme, markdown, problems)
        : undefined;
      // Said beside the status lines: stdout keeps the report alone.
      if (readme) console.error(readme.line);
      return {
        exitCode: problems.length ? EXIT.partial : readme?.failed ? EXIT.failed : EXIT.ok,
        json: { ...report, problems, ...(readme ? { readme: readme.line } : {}) },
        text: problems.length ? `${text}\n\nINCONSISTENT:\n${problems.join("\n")}` : text,
      };
    },
  });
}

/**
 * While a run goes on, SIGINT and SIGTERM stop its phase processes, drop its databases (a server
 * database, an embedded directory), say so and exit.
 */
function dropOnStopSignals(json: boolean): { stopping(): boolean; undo(): void } {
  const listeners: [Deno.Signal, () => void][] = [];
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const listener = async () => {
      if (stopping) return;
      stopping = true;
      const timeout = new Promise((resolve) => setTimeout(resolve, 15_000));
      await Promise.race([stopRunningPhases().then(dropLiveBenchDatabases), timeout]);
      const message = `interrupted by ${signal}: the run's phases were stopped and its databases ` +
        "dropped; nothing was measured";
      if (json) console.log(JSON.stringify({ error: { code: "interrupted", message } }));
      else console.error(`bench: ${message}`);
      Deno.exit(SIGNAL_EXIT[signal]);
    };
    try {
      Deno.addSignalListener(signal, listener);
      listeners.push([signal, listener]);
    } catch {
      // a platform without this signal
    }
  }
  return {
    stopping: () => stopping,
    undo() {
      for (const [signal, listener] of listeners.splice(0)) {
        Deno.removeSignalListener(signal, listener);
      }
    },
  };
}
