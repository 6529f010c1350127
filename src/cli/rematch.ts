// `rematch`: recompute the emissions of a (det, year) slice, or of every det with --all.
import { z } from "zod";
import { listHandlers } from "../handlers/mod.ts";
import { findDataEntryType } from "../reference/enums.ts";
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
  --all           every data entry type, one transaction each
  --modules IDS   only these carbon report module ids (comma separated)
  --dry-run       compute and report, write nothing; --diff lists per-entry kg changes
  --no-wait       fail at once if another rematch or factor import holds the slice
  --no-stats      do not recompute carbon_report_modules.stats
  --json          print one JSON document

Exit codes: 0 done, 3 done with per-entry errors, 1 failed (nothing written), 2 bad usage.`;

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
  async run(args, context): Promise<CommandOutcome> {
    const db = await context.database();
    const dets = args.all ? listHandlers().map((h) => h.det) : [findDataEntryType(args.det!)!.name];
    const results: RematchResult[] = [];
    for (const det of dets) {
      const bar = context.interactive && !context.json
        ? progressBar(`${det} ${args.year}`)
        : undefined;
      try {
        results.push(
          await recalculateForDataEntryType(db, {
            dataEntryType: det,
            year: args.year,
            carbonReportModuleIds: args.modules,
            dryRun: args["dry-run"],
            diff: args.diff,
            noWait: args["no-wait"],
            noStats: args["no-stats"],
            onProgress: bar ? (done, total) => bar.update(done, total) : undefined,
          }),
        );
      } finally {
        bar?.done();
      }
    }
    const hasErrors = results.some((r) => r.errors > 0);
    return {
      exitCode: hasErrors ? EXIT.partial : EXIT.ok,
      json: args.all ? { year: args.year, results } : results[0],
      text: describeRematches(results),
    };
  },
});

/** The summary table of rematch results, with errors and any diff. */
export function describeRematches(results: readonly RematchResult[]): string {
  const lines = results[0]?.dryRun ? ["dry run: nothing written"] : [];
  lines.push(
    formatTable(
      [
        "det",
        "year",
        "entries",
        "recalculated",
        "unchanged",
        "relinked",
        "dropped",
        "errors",
        "kg before",
        "kg after",
      ],
      results.map((r) => [
        r.dataEntryType,
        r.year,
        r.entries,
        r.recalculated,
        r.unchanged,
        r.relinked,
        r.dropped,
        r.errors,
        r.kgBefore,
        r.kgAfter,
      ]),
    ),
  );
  for (const r of results) {
    for (const e of r.errorDetails.slice(0, 20)) {
      lines.push(`${r.dataEntryType}: entry ${e.dataEntryId}: ${e.error}`);
    }
    if (r.errors > 20) {
      lines.push(`${r.dataEntryType}: ... ${r.errors - 20} more errors (see --json)`);
    }
    if (r.diff?.length) {
      lines.push("", `${r.dataEntryType} ${r.year} changes:`);
      lines.push(formatTable(
        ["entry", "kg before", "kg after", "factor before", "factor after"],
        r.diff.map((
          d,
        ) => [
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
