// `rematch`: recompute the emissions of a (det, year) slice, or of every det with --all.
import { z } from "zod";
import { listHandlers } from "../handlers/mod.ts";
import { findDataEntryType, getDataEntryType } from "../reference/enums.ts";
import { recalculateForDataEntryType } from "../rematch/run.ts";
import type { RematchResult } from "../rematch/types.ts";
import { type CommandOutcome, defineCommand, EXIT, flag } from "./command.ts";
import { formatTable, progressBar } from "./table.ts";

const USAGE = `Usage:
  deno task rematch --det D --year Y [--modules ID,ID] [--dry-run [--diff]] [--no-wait] [--no-stats] [--json]
  deno task rematch --all --year Y [--dry-run] [--no-wait] [--no-stats] [--json]

Recomputes the emissions of every data entry of the (det, year) slice against the current
factors, in one transaction under the slice's lock. Only entries whose rows change are written.

  --det D         data entry type, by name (plane) or id (20)
  --year Y        the report year of the slice
  --all           every data entry type, one transaction each (each commits alone)
  --modules IDS   only these carbon report module ids (comma separated)
  --dry-run       compute and report, write nothing; --diff lists per-entry kg changes
  --no-wait       fail at once if another rematch or factor import holds the slice
  --no-stats      do not recompute carbon_report_modules.stats
  --json          print one JSON document

Each det is its own transaction: with --all, a det that fails (its slice busy with --no-wait, a
database error) is rolled back alone and reported, and the next det runs.

Exit codes: 0 done; 3 done with per-entry errors, or (--all) some dets committed and some failed;
1 nothing committed (with --det: the slice failed, nothing written); 2 bad usage.`;

const schema = z.object({
  det: z.string().refine((d) => findDataEntryType(d) !== undefined, {
    message: "unknown data entry type (give a name such as plane, or an id such as 20)",
  }).optional(),
  year: flag.year(),
  all: z.boolean().optional(),
  modules: z.string().regex(/^\d+(,\d+)*$/, "expected comma-separated module ids, e.g. 12,15")
    .transform((s) => s.split(",").map(Number)).optional(),
  "dry-run": z.boolean().optional(),
  diff: z.boolean().optional(),
  "no-wait": z.boolean().optional(),
  "no-stats": z.boolean().optional(),
  positionals: z.array(z.string()).max(0, "rematch takes flags only"),
}).refine((a) => Boolean(a.det) !== Boolean(a.all), {
  message: "give exactly one of --det D or --all",
  path: ["det"],
})
  .refine((a) => !a.diff || a["dry-run"], { message: "--diff needs --dry-run", path: ["diff"] })
  .refine((a) => !(a.all && a.modules), { message: "--modules needs --det", path: ["modules"] });

/** The `rematch` command. */
export const rematchCommand = defineCommand({
  name: "rematch",
  usage: USAGE,
  options: {
    det: { type: "string" },
    year: { type: "string" },
    all: { type: "boolean" },
    modules: { type: "string" },
    "dry-run": { type: "boolean" },
    diff: { type: "boolean" },
    "no-wait": { type: "boolean" },
    "no-stats": { type: "boolean" },
  },
  schema,
  // A dry run only reads: it never migrates a database.
  access: (args) => args["dry-run"] ? "read" : "write",
  async run(args, context): Promise<CommandOutcome> {
    const db = await context.database();
    const rematch = async (det: string): Promise<RematchResult> => {
      const bar = context.interactive && !context.json
        ? progressBar(`${det} ${args.year}`)
        : undefined;
      try {
        return await recalculateForDataEntryType(db, {
          dataEntryType: det,
          year: args.year,
          carbonReportModuleIds: args.modules,
          dryRun: args["dry-run"],
          diff: args.diff,
          noWait: args["no-wait"],
          noStats: args["no-stats"],
          onProgress: bar ? (done, total) => bar.update(done, total) : undefined,
        });
      } finally {
        bar?.done();
      }
    };
    if (!args.all) {
      // One det, one transaction: a failure throws and nothing was written (exit 1).
      const result = await rematch(findDataEntryType(args.det!)!.name);
      return {
        exitCode: result.errors > 0 ? EXIT.partial : EXIT.ok,
        json: result,
        text: describeRematches([result]),
      };
    }
    const outcomes = await rematchEachDet(
      listHandlers().map((h) => h.det),
      rematch,
      async () => {
        try {
          await db.sql`select 1`;
          return true;
        } catch {
          return false;
        }
      },
    );
    return {
      exitCode: allDetsExitCode(outcomes),
      json: describeAllDetsJson(args.year, Boolean(args["dry-run"]), outcomes),
      text: describeAllDets(outcomes),
    };
  },
});

/** What became of one det in `rematch --all`. */
export type DetOutcome =
  /** Its transaction committed (or, dry, ran to the end and rolled back). */
  | { readonly dataEntryType: string; readonly status: "done"; readonly result: RematchResult }
  /** Its transaction failed and rolled back: nothing of this det was written. */
  | { readonly dataEntryType: string; readonly status: "failed"; readonly error: string }
  /** Not run: the database was gone after an earlier det failed. */
  | { readonly dataEntryType: string; readonly status: "skipped"; readonly error: string };

/**
 * Runs the rematch of each det in turn, each in its own transaction. A det that fails is
 * reported and the next one runs; when the database no longer answers after a failure, the
 * remaining dets are reported as not run.
 */
export async function rematchEachDet(
  dets: readonly string[],
  rematch: (det: string) => Promise<RematchResult>,
  databaseAnswers: () => Promise<boolean>,
): Promise<DetOutcome[]> {
  const outcomes: DetOutcome[] = [];
  let gone: string | undefined;
  for (const det of dets) {
    if (gone) {
      outcomes.push({ dataEntryType: det, status: "skipped", error: gone });
      continue;
    }
    try {
      outcomes.push({ dataEntryType: det, status: "done", result: await rematch(det) });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      outcomes.push({ dataEntryType: det, status: "failed", error: message });
      if (!(await databaseAnswers())) {
        gone = `not run: the database stopped answering after ${det} failed`;
      }
    }
  }
  return outcomes;
}

/**
 * The exit code of `rematch --all`: 0 when every det committed cleanly, 3 when some committed
 * and some failed (or had per-entry errors), 1 only when none committed.
 */
export function allDetsExitCode(outcomes: readonly DetOutcome[]): number {
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
  year: number,
  dryRun: boolean,
  outcomes: readonly DetOutcome[],
) {
  const results = outcomes.map((o) =>
    o.status === "done" ? { status: o.result.dryRun ? "dry-run" : "committed", ...o.result } : {
      status: o.status,
      dataEntryType: o.dataEntryType,
      dataEntryTypeId: getDataEntryType(o.dataEntryType).id,
      year,
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

/** The human report of `rematch --all`: a status column, then why each failed det failed. */
export function describeAllDets(outcomes: readonly DetOutcome[]): string {
  const done = outcomes.flatMap((o) => (o.status === "done" ? [o.result] : []));
  const dryRun = done[0]?.dryRun ?? false;
  const lines = dryRun ? ["dry run: nothing written"] : [];
  const dash = "-";
  lines.push(formatTable(
    ["det", "status", ...RESULT_COLUMNS],
    outcomes.map((o) =>
      o.status === "done"
        ? [o.dataEntryType, dryRun ? "dry run" : "committed", ...resultCells(o.result)]
        : [
          o.dataEntryType,
          o.status === "failed" ? "FAILED" : "not run",
          ...RESULT_COLUMNS.map(() => dash),
        ]
    ),
  ));
  for (const o of outcomes) {
    if (o.status === "failed") {
      lines.push(`${o.dataEntryType}: failed, nothing of it written: ${o.error}`);
    }
  }
  const skipped = outcomes.filter((o) => o.status === "skipped");
  if (skipped.length) lines.push(skipped[0].error);
  lines.push(...errorLines(done));
  const failed = outcomes.filter((o) => o.status === "failed").length;
  const verb = dryRun ? "computed" : "committed";
  lines.push(
    `${done.length} ${verb}, ${failed} failed, ${skipped.length} not run (one transaction per det)`,
  );
  return lines.join("\n");
}

const RESULT_COLUMNS = [
  "year",
  "entries",
  "recalculated",
  "unchanged",
  "relinked",
  "dropped",
  "errors",
  "kg before",
  "kg after",
] as const;

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
  ];
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

/** The summary table of rematch results, with errors and any diff. */
export function describeRematches(results: readonly RematchResult[]): string {
  const lines = results[0]?.dryRun ? ["dry run: nothing written"] : [];
  lines.push(
    formatTable(
      ["det", ...RESULT_COLUMNS],
      results.map((r) => [r.dataEntryType, ...resultCells(r)]),
    ),
  );
  lines.push(...errorLines(results));
  for (const r of results) {
    if (r.diff?.length) {
      lines.push("", `${r.dataEntryType} ${r.year} changes:`);
      lines.push(formatTable(
        ["entry", "kg before", "kg after", "factor before", "factor after"],
        r.diff.map((d) => [
          d.dataEntryId,
          d.kgBefore,
          d.kgAfter,
          d.factorIdBefore ?? "-",
          d.factorIdAfter ?? "-",
        ]),
      ));
    }
  }
  return lines.join("\n");
}
