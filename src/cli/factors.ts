// `factors import`: a factor CSV into the database (spec/factors-csv.md, spec/interfaces.md §2).
import { z } from "zod";
import { defineCommand, EXIT, flag } from "./command.ts";
import type { Database, Queryable } from "../db/connection.ts";
import { FactorImportRejected, type FactorImportResult, importFactors } from "../db/factors.ts";
import { readCsvFile } from "../imports/csv.ts";
import { type FactorImportTarget, resolveFactorTarget } from "../imports/factor_csv.ts";
import { findDataEntryType, findModuleType } from "../reference/enums.ts";
import { rematchInTransaction } from "../rematch/run.ts";
import type { RematchResult } from "../rematch/types.ts";
import { describeRematches } from "./rematch.ts";

/** The validated arguments of `factors import`. */
export interface FactorsImportArgs {
  readonly file: string;
  readonly year: number;
  readonly target: FactorImportTarget;
  /** Human name of the target, for messages (`det it`, `module equipment`). */
  readonly targetLabel: string;
  readonly mode: "merge" | "replace";
  readonly strict: boolean;
  /** Run the rematch of the touched slices in the import's transaction. */
  readonly rematch: boolean;
}

/** Work run in the import's transaction after the factors are written. */
export interface FactorsImportHooks {
  /** Called with the import's transaction and result; its value is reported as `after`. */
  afterImport?: (tx: Queryable, result: FactorImportResult) => Promise<unknown>;
}

/** What {@linkcode runFactorsImport} did. */
export interface FactorsImportOutcome {
  readonly result: FactorImportResult;
  /** The afterImport hook's value, when a hook ran. */
  readonly after?: unknown;
}

const USAGE = `Usage: deno task factors import FILE --year Y (--det D | --module M)
         [--mode merge|replace] [--strict] [--rematch] [--json] [--database-url URL]

Imports a factor CSV for one year, either for one data entry type (--det, name or id) or for a
whole module whose rows name their type in a routing column (--module equipment: column
equipment_category; --module purchase: column purchase_category).

  --mode merge     keep the year's factors that are not in the file (default)
  --mode replace   the file is the whole set: delete the year's factors not in it
  --strict         any bad row rejects the import; nothing is written
  --rematch        recompute the emissions of the touched slices in the same transaction

Exit codes: 0 done, 3 done with row errors (good rows written), 1 failed (nothing written),
2 bad usage.`;

const schema = z.object({
  positionals: z.array(z.string()),
  year: flag.year(),
  det: z.string().optional(),
  module: z.string().optional(),
  mode: z.enum(["merge", "replace"], { error: 'expected "merge" or "replace"' }).default("merge"),
  strict: z.boolean().default(false),
  rematch: z.boolean().default(false),
}).transform((flags, ctx): FactorsImportArgs => {
  const [command, file, ...extra] = flags.positionals;
  if (command !== "import" || !file || extra.length) {
    ctx.addIssue({
      code: "custom",
      path: ["positionals"],
      message: `expected "import FILE" (got ${
        flags.positionals.length ? flags.positionals.map((p) => `"${p}"`).join(" ") : "nothing"
      })`,
    });
    return z.NEVER;
  }
  if ((flags.det === undefined) === (flags.module === undefined)) {
    ctx.addIssue({ code: "custom", path: [], message: "give exactly one of --det or --module" });
    return z.NEVER;
  }
  const common = { file, year: flags.year, mode: flags.mode, strict: flags.strict };
  if (flags.det !== undefined) {
    const det = findDataEntryType(flags.det);
    if (!det) {
      ctx.addIssue({
        code: "custom",
        path: ["det"],
        message:
          `unknown data entry type "${flags.det}" (expected a name such as it or plane, or its id)`,
      });
      return z.NEVER;
    }
    return {
      ...common,
      rematch: flags.rematch,
      target: { dataEntryTypeId: det.id },
      targetLabel: `det ${det.name}`,
    };
  }
  const module = findModuleType(flags.module!);
  if (!module) {
    ctx.addIssue({
      code: "custom",
      path: ["module"],
      message:
        `unknown module "${flags.module}" (expected a name such as equipment or purchase, or its id)`,
    });
    return z.NEVER;
  }
  const target = { moduleTypeId: module.id };
  try {
    resolveFactorTarget(target);
  } catch (error) {
    ctx.addIssue({ code: "custom", path: ["module"], message: (error as Error).message });
    return z.NEVER;
  }
  return { ...common, rematch: flags.rematch, target, targetLabel: `module ${module.name}` };
});

/**
 * Reads the file and imports it in one transaction, then runs the afterImport hook in the same
 * transaction. FileError and FactorImportRejected propagate with nothing written.
 *
 * @example
 * ```ts ignore
 * import { runFactorsImport } from "./factors.ts";
 * const { result } = await runFactorsImport(db, {
 *   file: "fixtures/factors/2025/train.csv", year: 2025, target: { dataEntryTypeId: 21 },
 *   targetLabel: "det train", mode: "merge", strict: false, rematch: false,
 * });
 * ```
 */
export async function runFactorsImport(
  db: Database,
  args: FactorsImportArgs,
  hooks: FactorsImportHooks = {},
): Promise<FactorsImportOutcome> {
  const table = await readCsvFile(args.file);
  return await db.sql.begin(async (tx) => {
    const result = await importFactors(tx, {
      file: args.file,
      table,
      year: args.year,
      target: args.target,
      mode: args.mode,
      strict: args.strict,
    });
    if (!hooks.afterImport) return { result };
    return { result, after: await hooks.afterImport(tx, result) };
  }) as FactorsImportOutcome;
}

/** `factors import FILE --year Y (--det D | --module M) ...` */
export const factorsCommand = defineCommand({
  name: "factors",
  usage: USAGE,
  options: {
    year: { type: "string" },
    det: { type: "string" },
    module: { type: "string" },
    mode: { type: "string" },
    strict: { type: "boolean" },
    rematch: { type: "boolean" },
  },
  schema,
  async run(args, context) {
    // --rematch: the touched slices are recomputed in the import's own transaction, so the new
    // factors and the emissions computed from them commit together.
    const hooks: FactorsImportHooks = args.rematch ? { afterImport: rematchSlices } : {};
    const db = await context.database();
    const heading = `${args.file} (year ${args.year}, ${args.targetLabel}, ${args.mode})`;
    try {
      const { result, after } = await runFactorsImport(db, args, hooks);
      const rematches = (after ?? []) as RematchResult[];
      const rematchErrors = rematches.some((r) => r.errors > 0);
      return {
        exitCode: result.rowErrorsCount || rematchErrors ? EXIT.partial : EXIT.ok,
        json: { file: args.file, year: args.year, mode: args.mode, ...result, rematch: after },
        text: [
          describeImport(heading, result),
          ...(after ? ["", describeRematches(rematches)] : []),
        ].join("\n"),
      };
    } catch (error) {
      if (!(error instanceof FactorImportRejected)) throw error;
      return {
        exitCode: EXIT.failed,
        json: {
          error: { code: error.name, message: error.message },
          file: args.file,
          year: args.year,
          mode: args.mode,
          ...error.result,
        },
        text: [
          `${heading}: rejected (--strict): nothing written`,
          ...describeRowErrors(error.result, "rejected the import"),
        ].join("\n"),
      };
    }
  },
});

async function rematchSlices(tx: Queryable, result: FactorImportResult): Promise<RematchResult[]> {
  const results: RematchResult[] = [];
  for (const slice of result.slices) {
    results.push(
      await rematchInTransaction(tx, { dataEntryType: slice.dataEntryTypeId, year: slice.year }),
    );
  }
  return results;
}

function describeImport(heading: string, result: FactorImportResult): string {
  const slices = result.slices.map((s) => `${s.dataEntryType} ${s.year}`).join(", ") || "none";
  return [
    `${heading}: ${result.rowsRead} rows read, ${result.inserted} inserted, ` +
    `${result.updated} updated, ${result.unchanged} unchanged, ${result.deleted} deleted, ` +
    `${result.keptStale} kept stale`,
    `slices: ${slices}`,
    ...describeRowErrors(result, "rows skipped"),
  ].join("\n");
}

function describeRowErrors(result: FactorImportResult, consequence: string): string[] {
  if (!result.rowErrorsCount) return [];
  const unlisted = result.rowErrorsCount - result.rowErrors.length;
  return [
    `${result.rowErrorsCount} row error${result.rowErrorsCount === 1 ? "" : "s"} (${consequence}):`,
    ...result.rowErrors.map((e) =>
      `  row ${e.row}${e.column ? `, column ${e.column}` : ""}: ${e.message}`
    ),
    ...(unlisted ? [`  ... and ${unlisted} more`] : []),
  ];
}
