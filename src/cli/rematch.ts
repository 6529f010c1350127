// `rematch`: recompute the emissions of a (det, year) slice, or of every det with --all.
import { z } from "zod";
import { listHandlers } from "../handlers/mod.ts";
import { findDataEntryType, getDataEntryType } from "../reference/enums.ts";
import { recalculateForDataEntryType } from "../rematch/run.ts";
import { type SliceStatus, sliceStatus } from "../rematch/state.ts";
import { ModulesNotInSliceError, type RematchResult } from "../rematch/types.ts";
import { type CommandOutcome, defineCommand, EXIT, flag, UsageError } from "./command.ts";
import { reportLockWait, RunProgress, stderrLines } from "./progress.ts";
import { formatTable, type TableColumn } from "./table.ts";
import { plural } from "../text/plural.ts";

const USAGE = `Usage:
  deno task rematch --det D --year Y [--modules ID,ID] [--full] [--dry-run [--diff]] [--no-wait] [--no-stats] [--json]
  deno task rematch --all --year Y [--full] [--dry-run] [--no-wait] [--no-stats] [--json]
  deno task rematch --stale [--year Y] [--full] [--dry-run] [--no-wait] [--no-stats] [--json]
  deno task rematch history [--det D] [--year Y] [--json]   (the runs recorded; --help there)

Recomputes the emissions of the data entries of the (det, year) slice against the current
factors, in one transaction under the slice's lock. Only entries whose rows change are written.
A slice remembers what its last rematch computed against: when nothing changed since, the
rematch returns at once (scope none); when only numeric values of factors changed, it reads only
the entries using those factors plus the entries left failing (scope targeted); anything else
reads the whole slice (scope full).

  --det D         data entry type, by name (plane) or id (20)
  --year Y        the report year of the slice
  --all           every data entry type, one transaction each (each commits alone)
  --stale         every slice with entries that is not current (see deno task status), one
                  transaction each; --year narrows it to one year
  --full          read and recompute every entry, whatever the slice's state says
  --modules IDS   only these carbon report module ids (comma separated)
  --dry-run       compute and report, write nothing; --diff lists per-entry kg changes
  --no-wait       fail at once if another rematch or factor import holds the slice
  --no-stats      leave carbon_report_modules.stats as they are (the modules rewritten are
                  marked not computed: the next rematch or entry write touching them sums
                  them again)
  --progress      show progress off a terminal too (on a pipe or in a log: a line every 5 s on
                  stderr); on a terminal it is the status line, always
  --json          print one JSON document

Each slice is its own transaction: with --all or --stale, a slice that fails (busy with
--no-wait, a database error) is rolled back alone and reported, and the next one runs.

Exit codes: 0 done; 3 done with per-entry errors, or (--all) some dets committed and some failed;
1 nothing committed (with --det: the slice failed, nothing written); 2 bad usage.`;

const schema = z.object({
  det: flag.det().optional(),
  year: flag.year().optional(),
  all: z.boolean().optional(),
  stale: z.boolean().optional(),
  full: z.boolean().optional(),
  modules: z.string().regex(/^\d+(,\d+)*$/, "expected comma-separated module ids, e.g. 12,15")
    .transform((s) => s.split(",").map(Number)).optional(),
  "dry-run": z.boolean().optional(),
  diff: z.boolean().optional(),
  "no-wait": z.boolean().optional(),
  "no-stats": z.boolean().optional(),
  progress: z.boolean().optional(),
  positionals: z.array(z.string()).max(0, "rematch takes flags only"),
}).refine((a) => [a.det, a.all, a.stale].filter(Boolean).length === 1, {
  message: "give exactly one of --det D, --all or --stale",
  path: ["det"],
})
  .refine((a) => a.stale || a.year !== undefined, {
    message: "is required (e.g. --year 2025)",
    path: ["year"],
  })
  .refine((a) => !a.diff || a["dry-run"], { message: "--diff needs --dry-run", path: ["diff"] })
  .refine((a) => !a.modules || a.det, { message: "--modules needs --det", path: ["modules"] });

/** The `rematch` command. */
export const rematchCommand = defineCommand({
  name: "rematch",
  summary: "recompute the emissions of a (det, year) slice, or of many",
  usage: USAGE,
  options: {
    det: { type: "string" },
    year: { type: "string" },
    all: { type: "boolean" },
    stale: { type: "boolean" },
    full: { type: "boolean" },
    modules: { type: "string" },
    "dry-run": { type: "boolean" },
    diff: { type: "boolean" },
    "no-wait": { type: "boolean" },
    "no-stats": { type: "boolean" },
    progress: { type: "boolean" },
  },
  schema,
  // A dry run only reads: it never migrates a database.
  access: (args) => args["dry-run"] ? "read" : "write",
  async run(args, context): Promise<CommandOutcome> {
    const db = await context.database();
    // One status line for the whole run (the runner clears it before printing the outcome); off a
    // terminal only when asked, as lines of their own.
    const progress = context.interactive && !context.json
      ? new RunProgress({ label: "rematch", slices: 1 })
      : args.progress
      ? new RunProgress({ label: "rematch", slices: 1, target: stderrLines })
      : undefined;
    const rematch = async (det: string, year = args.year!): Promise<RematchResult> => {
      progress?.startSlice(`${det} ${year}`);
      return await recalculateForDataEntryType(db, {
        dataEntryType: det,
        year,
        full: args.full,
        carbonReportModuleIds: args.modules,
        dryRun: args["dry-run"],
        diff: args.diff,
        noWait: args["no-wait"],
        noStats: args["no-stats"],
        onProgress: progress && ((done, total) => progress.update(done, total)),
        onLockWait: reportLockWait("rematch", progress),
      });
    };
    if (args.det) {
      // One det, one transaction: a failure throws and nothing was written (exit 1).
      const result = await rematch(findDataEntryType(args.det!)!.name).catch((error) => {
        // A module id that is not the slice's is a flag error (exit 2), found under the lock.
        if (error instanceof ModulesNotInSliceError) {
          throw new UsageError(`--modules: ${error.message}`);
        }
        throw error;
      });
      return {
        exitCode: result.errors > 0 ? EXIT.partial : EXIT.ok,
        json: result,
        text: describeRematches([result]),
      };
    }
    const databaseAnswers = async () => {
      try {
        await db.sql`select 1`;
        return true;
      } catch {
        return false;
      }
    };
    const dryRun = Boolean(args["dry-run"]);
    if (args.stale) {
      const stale = (await sliceStatus(db.sql, { year: args.year }))
        .filter((s) => s.state !== "current");
      progress?.plan(stale.length, entriesToRead(stale, args.full));
      const outcomes = await rematchEachSlice(
        stale.map((s) => ({ dataEntryType: s.dataEntryType, year: s.year })),
        (slice) => rematch(slice.dataEntryType, slice.year),
        databaseAnswers,
      );
      const where = args.year === undefined ? "" : ` of ${args.year}`;
      return {
        exitCode: allDetsExitCode(outcomes),
        json: describeAllDetsJson(args.year ?? null, dryRun, outcomes),
        text: outcomes.length
          ? describeAllDets(outcomes)
          : `every slice with entries${where} is current: nothing to rematch`,
      };
    }
    const dets = listHandlers().map((h) => h.det);
    if (progress) {
      // What each slice will read, for the ETA (only when the line is shown).
      const slices = await sliceStatus(db.sql, { year: args.year });
      progress.plan(dets.length, entriesToRead(slices, args.full));
    }
    const outcomes = await rematchEachDet(
      dets,
      rematch,
      databaseAnswers,
    );
    return {
      exitCode: allDetsExitCode(outcomes),
      json: describeAllDetsJson(args.year!, dryRun, outcomes),
      text: describeAllDets(outcomes),
    };
  },
});

// Entries the rematches of these slices will read: all of them with --full, else what their
// state says (none when current, the candidates when targeted).
function entriesToRead(slices: readonly SliceStatus[], full?: boolean): number {
  return slices.reduce((sum, s) => sum + (full ? s.entries : s.entriesToRead), 0);
}

/** What became of one det (one slice with --stale) in `rematch --all`. */
export type DetOutcome =
  /** Its transaction committed (or, dry, ran to the end and rolled back). */
  | { readonly dataEntryType: string; readonly status: "done"; readonly result: RematchResult }
  /** Its transaction failed and rolled back: nothing of this det was written. */
  | {
    readonly dataEntryType: string;
    readonly year?: number;
    readonly status: "failed";
    readonly error: string;
  }
  /** Not run: the database was gone after an earlier det failed. */
  | {
    readonly dataEntryType: string;
    readonly year?: number;
    readonly status: "skipped";
    readonly error: string;
  };

/** A slice `rematch --stale` runs. */
export interface SliceTarget {
  readonly dataEntryType: string;
  readonly year: number;
}

/**
 * Runs the rematch of each det in turn, each in its own transaction. A det that fails is
 * reported and the next one runs; when the database no longer answers after a failure, the
 * remaining dets are reported as not run.
 */
export function rematchEachDet(
  dets: readonly string[],
  rematch: (det: string) => Promise<RematchResult>,
  databaseAnswers: () => Promise<boolean>,
): Promise<DetOutcome[]> {
  return inTurn(
    dets.map((det) => ({ dataEntryType: det })),
    (t) => rematch(t.dataEntryType),
    databaseAnswers,
  );
}

/** {@linkcode rematchEachDet} over (det, year) slices: what `rematch --stale` runs. */
export function rematchEachSlice(
  slices: readonly SliceTarget[],
  rematch: (slice: SliceTarget) => Promise<RematchResult>,
  databaseAnswers: () => Promise<boolean>,
): Promise<DetOutcome[]> {
  return inTurn(slices, rematch, databaseAnswers);
}

async function inTurn<T extends { readonly dataEntryType: string; readonly year?: number }>(
  targets: readonly T[],
  rematch: (target: T) => Promise<RematchResult>,
  databaseAnswers: () => Promise<boolean>,
): Promise<DetOutcome[]> {
  const outcomes: DetOutcome[] = [];
  let gone: string | undefined;
  for (const target of targets) {
    const { dataEntryType, year } = target;
    const which = year === undefined ? {} : { year };
    if (gone) {
      outcomes.push({ dataEntryType, ...which, status: "skipped", error: gone });
      continue;
    }
    try {
      outcomes.push({ dataEntryType, status: "done", result: await rematch(target) });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      outcomes.push({ dataEntryType, ...which, status: "failed", error: message });
      if (!(await databaseAnswers())) {
        const slice = year === undefined ? dataEntryType : `${dataEntryType} ${year}`;
        gone = `not run: the database stopped answering after ${slice} failed`;
      }
    }
  }
  return outcomes;
}

/**
 * The exit code of `rematch --all` (and `--stale`): 0 when every det committed cleanly (or there
 * was nothing to rematch), 3 when some committed and some failed (or had per-entry errors), 1
 * only when none of them committed.
 */
export function allDetsExitCode(outcomes: readonly DetOutcome[]): number {
  if (outcomes.length === 0) return EXIT.ok;
  const committed = outcomes.filter((o) => o.status === "done");
  if (committed.length === 0) return EXIT.failed;
  if (committed.length < outcomes.length) return EXIT.partial;
  return committed.some((o) => o.result.errors > 0) ? EXIT.partial : EXIT.ok;
}

/**
 * The `--json` document of `rematch --all`: one item per det with its status (`committed`,
 * `dry-run`, `failed` with `error`, `skipped` with `error`) and the count of each status.
 */
export function describeAllDetsJson(
  year: number | null,
  dryRun: boolean,
  outcomes: readonly DetOutcome[],
) {
  const results = outcomes.map((o) =>
    o.status === "done" ? { status: o.result.dryRun ? "dry-run" : "committed", ...o.result } : {
      status: o.status,
      dataEntryType: o.dataEntryType,
      dataEntryTypeId: getDataEntryType(o.dataEntryType).id,
      year: o.year ?? year,
      error: o.error,
    }
  );
  const count = (status: string) => results.filter((r) => r.status === status).length;
  return {
    year,
    dryRun,
    counts: {
      committed: count("committed"),
      "dry-run": count("dry-run"),
      failed: count("failed"),
      skipped: count("skipped"),
    },
    results,
  };
}

/**
 * The human report of `rematch --all`: a row per det (a det that failed or did not run says so
 * beside its name), a total row, then why each failed det failed.
 */
export function describeAllDets(outcomes: readonly DetOutcome[]): string {
  const done = outcomes.flatMap((o) => (o.status === "done" ? [o.result] : []));
  const dryRun = done[0]?.dryRun ?? false;
  const lines = dryRun ? ["dry run: nothing written"] : [];
  const dash = "-";
  lines.push(formatTable(
    ["det", ...RESULT_COLUMNS],
    outcomes.map((o) =>
      o.status === "done" ? [o.dataEntryType, ...resultCells(o.result)] : [
        `${o.dataEntryType} ${o.status === "failed" ? "FAILED" : "not run"}`,
        o.year ?? dash,
        ...RESULT_COLUMNS.slice(1).map(() => dash),
      ]
    ),
    outcomes.length > 1 ? { total: "total" } : {},
  ));
  for (const o of outcomes) {
    if (o.status === "failed") {
      const slice = o.year === undefined ? o.dataEntryType : `${o.dataEntryType} ${o.year}`;
      lines.push(`${slice}: failed, nothing of it written: ${o.error}`);
    }
  }
  const skipped = outcomes.filter((o) => o.status === "skipped");
  if (skipped.length) lines.push(skipped[0].error);
  append(lines, scopeLines(done.filter((r) => r.entriesRead > 0)));
  append(lines, errorLines(done));
  append(lines, frozenLines(done));
  append(lines, diffLines(done));
  const failed = outcomes.filter((o) => o.status === "failed").length;
  const verb = dryRun ? "computed" : "committed";
  lines.push(
    `${done.length} ${verb}, ${failed} failed, ${skipped.length} not run (one transaction per det)`,
  );
  return lines.join("\n");
}

// What a slice's rematch did, then the emission rows it wrote. At 80 columns the optional ones
// give way, last first (recalculated = entries − errors; unchanged = of those, not rewritten).
const RESULT_COLUMNS: readonly TableColumn[] = [
  { header: "year", identifier: true, optional: true },
  { header: "entries" },
  { header: "recalculated", optional: true },
  { header: "unchanged", optional: true },
  { header: "relinked" },
  { header: "dropped" },
  { header: "errors" },
  { header: "kg before", decimals: 0 },
  { header: "kg after", decimals: 0 },
  { header: "rows ins" },
  { header: "rows upd" },
  { header: "rows del" },
  { header: "scope", optional: true },
];

function resultCells(r: RematchResult): unknown[] {
  return [
    r.year,
    r.entries,
    r.recalculated,
    r.unchanged,
    r.relinked,
    r.dropped,
    r.errors,
    r.kgBefore,
    r.kgAfter,
    r.emissionsInserted,
    r.emissionsUpdated,
    r.emissionsDeleted,
    r.scope,
  ];
}

// Why each slice read what it read; the entries of a targeted rematch are those it read, its kg
// the slice's totals.
function scopeLines(results: readonly RematchResult[]): string[] {
  return results.map((r) =>
    r.scope === "none"
      ? `${r.dataEntryType} ${r.year}: up to date, nothing read (${r.scopeReason})`
      : r.scope === "targeted"
      ? `${r.dataEntryType} ${r.year}: targeted (${r.scopeReason}): read ${
        plural(r.entriesRead, "entry", "entries")
      } (counted under entries); kg are the slice's totals`
      : `${r.dataEntryType} ${r.year}: full (${r.scopeReason})`
  );
}

function errorLines(results: readonly RematchResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    for (const e of r.errorDetails.slice(0, 20)) {
      lines.push(`${r.dataEntryType}: entry ${e.dataEntryId}: ${e.error}`);
    }
    if (r.errors > 20) {
      lines.push(`${r.dataEntryType}: ... ${r.errors - 20} more errors (see --json)`);
    }
  }
  return lines;
}

/** What freezing held back (spec/history.md §4): one line per det with frozen entries. */
function frozenLines(results: readonly RematchResult[]): string[] {
  return results.filter((r) => r.frozen > 0).map((r) => {
    const modules = r.modules.filter((m) => m.frozen).map((m) => m.moduleId);
    const delta = r.frozenKgDelta.toLocaleString("en-US", { maximumFractionDigits: 3 });
    return `${r.dataEntryType} ${r.year}: ${r.frozen} entries of frozen module${
      modules.length === 1 ? "" : "s"
    } ${modules.join(", ")} not written; they would move ${
      r.frozenKgDelta >= 0 ? "+" : ""
    }${delta} kg`;
  });
}

/** The summary table of rematch results, with errors and any diff. */
export function describeRematches(results: readonly RematchResult[]): string {
  const lines = results[0]?.dryRun ? ["dry run: nothing written"] : [];
  lines.push(
    formatTable(
      ["det", ...RESULT_COLUMNS],
      results.map((r) => [r.dataEntryType, ...resultCells(r)]),
      results.length > 1 ? { total: "total" } : {},
    ),
  );
  append(lines, scopeLines(results));
  append(lines, errorLines(results));
  append(lines, frozenLines(results));
  append(lines, diffLines(results));
  return lines.join("\n");
}

// Lines added one by one: a dry run's diff may hold more lines than a call takes arguments.
function append(lines: string[], more: Iterable<string>): void {
  for (const line of more) lines.push(line);
}

/** A dry run's `--diff`: per slice, each entry's kg and factor before → after. */
function diffLines(results: readonly RematchResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    if (r.diff?.length) {
      lines.push("", `${r.dataEntryType} ${r.year} changes:`);
      lines.push(formatTable(
        [
          { header: "entry", identifier: true },
          "kg before",
          "kg after",
          { header: "factor before", identifier: true },
          { header: "factor after", identifier: true },
          "note",
        ],
        r.diff.map((d) => [
          d.dataEntryId,
          d.kgBefore,
          d.kgAfter,
          d.factorIdBefore ?? "-",
          d.factorIdAfter ?? "-",
          d.frozen ? "frozen: not written" : "",
        ]),
        r.diff.length > 1 ? { total: "total" } : {},
      ));
    }
  }
  return lines;
}
