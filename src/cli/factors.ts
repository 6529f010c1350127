// `factors import`: a factor CSV into the database (spec/factors-csv.md, spec/interfaces.md §2).
import { z } from "zod";
import { defineCommand, EXIT, flag, userPath } from "./command.ts";
import type { Database, Queryable } from "../db/connection.ts";
import { type LockSliceOptions, SliceBusyError } from "../db/locks.ts";
import {
  type FactorIdentity,
  FactorImportRejected,
  type FactorImportResult,
  type FactorSliceChanges,
  importFactors,
  REPLACE_ONLY,
} from "../db/factors.ts";
import { decodeUtf8, describeRowError, parseCsv } from "../imports/csv.ts";
import { type FactorImportTarget, resolveFactorTarget } from "../imports/factor_csv.ts";
import { DEFAULT_MAX_FILE_BYTES, describeBytes, readImportFile } from "../imports/file.ts";
import { sha256Hex } from "../history/sha256.ts";
import { findDataEntryType, findModuleType, unknownDataEntryType } from "../reference/enums.ts";
import { MAX_YEAR, MIN_YEAR } from "../reference/years.ts";
import { rematchInTransaction } from "../rematch/run.ts";
import { type LeftStale, leftStale } from "../rematch/state.ts";
import type { RematchResult } from "../rematch/types.ts";
import { describeRematches } from "./rematch.ts";
import { describeLeftStale } from "./status.ts";
import { reportLockWait } from "./progress.ts";
import { defineGroup } from "./group.ts";
import { factorsDiffCommand, factorsHistoryCommand } from "./factors_history.ts";
import { factorsExportCommand } from "./factors_export.ts";
import { factorsRollbackCommand } from "./factors_rollback.ts";
import { transaction } from "../db/transaction.ts";
import { plural } from "../text/plural.ts";

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
  /** Do everything, report it, and roll it all back. @default false */
  readonly dryRun?: boolean;
  /** `replace`: accept a file without data rows. @default false */
  readonly allowEmpty?: boolean;
  /** `replace`: accept deleting more than half of a slice's factors. @default false */
  readonly force?: boolean;
  /** Refuse files larger than this. @default the reader's limit (256 MiB) */
  readonly maxFileBytes?: number;
  /** Who imports, recorded on the import. @default currentActor() */
  readonly actor?: string;
  /** The ingestion job, recorded on the import and its factors. */
  readonly jobId?: number;
  /** Told when a slice is held by another transaction, before the import waits for it. */
  readonly onLockWait?: LockSliceOptions["onWait"];
  /** Fail at once (nothing written) when another rematch or import holds a slice. */
  readonly noWait?: boolean;
}

/** Work run in the import's transaction after the factors are written. */
export interface FactorsImportHooks {
  /** Called with the import's transaction and result; its value is reported as `after`. */
  afterImport?: (tx: Queryable, result: FactorImportResult) => Promise<unknown>;
}

/** What {@linkcode runFactorsImport} did (or, dry, would do). */
export interface FactorsImportOutcome {
  readonly result: FactorImportResult;
  /** The afterImport hook's value, when a hook ran. */
  readonly after?: unknown;
  /** True when everything was rolled back (`dryRun`). */
  readonly dryRun: boolean;
}

const USAGE = `Usage: deno task factors import FILE --year Y (--det D | --module M)
         [--mode merge|replace] [--strict] [--rematch] [--dry-run] [--allow-empty] [--force]
         [--max-file-size SIZE] [--json] [--database-url URL]

Imports a factor CSV for one year (${MIN_YEAR}..${MAX_YEAR}), either for one data entry type
(--det, name or id) or for a whole module whose rows name their type in a routing column
(--module equipment: column equipment_category; --module purchase: column purchase_category).
With --det, a row whose routing column names another type is a row error.

  --mode merge     keep the year's factors that are not in the file (default)
  --mode replace   the file is the whole set: delete the year's factors not in it. Refused,
                   with nothing written, when any row has an error, when the file has no data
                   rows (unless --allow-empty) or when it would delete more than half of a
                   type's factors (unless --force)
  --strict         any bad row rejects the import; nothing is written
  --rematch        recompute the emissions of the touched slices in the same transaction
  --dry-run        do all of it (with --rematch too), report it, then roll everything back
  --allow-empty    replace: accept a header-only file (empties the slices)
  --force          replace: accept deleting more than half of a type's factors
  --no-wait        fail at once (exit 1, nothing written) when another rematch or import holds
                   one of the slices, instead of waiting for it
  --max-file-size  refuse larger files (default ${
  describeBytes(DEFAULT_MAX_FILE_BYTES).replace(" ", "")
}, or REMATCH_MAX_FILE_SIZE), e.g. 1GiB

Row errors say the file line (header = line 1). Exit codes: 0 done, 3 done with row errors
(good rows written), 1 failed or refused (nothing written), 2 bad usage.`;

const schema = z.object({
  positionals: z.array(z.string()),
  year: flag.year(),
  det: z.string().optional(),
  module: z.string().optional(),
  mode: z.enum(["merge", "replace"], { error: 'expected "merge" or "replace"' }).default("merge"),
  strict: z.boolean().default(false),
  rematch: z.boolean().default(false),
  "dry-run": z.boolean().default(false),
  "allow-empty": z.boolean().default(false),
  force: z.boolean().default(false),
  "no-wait": z.boolean().default(false),
  "max-file-size": flag.byteSize().optional(),
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
  for (const flag of ["allow-empty", "force"] as const) {
    if (flags[flag] && flags.mode !== "replace") {
      ctx.addIssue({ code: "custom", path: [flag], message: REPLACE_ONLY });
      return z.NEVER;
    }
  }
  const common = {
    file: userPath(file),
    year: flags.year,
    mode: flags.mode,
    strict: flags.strict,
    rematch: flags.rematch,
    dryRun: flags["dry-run"],
    allowEmpty: flags["allow-empty"],
    force: flags.force,
    noWait: flags["no-wait"],
    maxFileBytes: flags["max-file-size"],
  };
  if (flags.det !== undefined) {
    const det = findDataEntryType(flags.det);
    if (!det) {
      ctx.addIssue({
        code: "custom",
        path: ["det"],
        message: unknownDataEntryType(flags.det),
      });
      return z.NEVER;
    }
    return { ...common, target: { dataEntryTypeId: det.id }, targetLabel: `det ${det.name}` };
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
  return { ...common, target, targetLabel: `module ${module.name}` };
});

/** Thrown to roll a dry run back once everything is computed. */
class DryRunRollback extends Error {
  constructor(readonly outcome: FactorsImportOutcome) {
    super("dry run");
  }
}

/**
 * Reads the file, then opens the database (`database` may be a function that opens it) and
 * imports the file in one transaction, then runs the afterImport hook in the same
 * transaction; with `dryRun` the transaction is rolled back after both, so the outcome is what
 * a real run would have done. FileError, RangeError (year) and FactorImportRejected propagate
 * with nothing written.
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
  database: Pick<Database, "sql"> | (() => Promise<Pick<Database, "sql">>),
  args: FactorsImportArgs,
  hooks: FactorsImportHooks = {},
): Promise<FactorsImportOutcome> {
  // The file is read first: a file error never opens the database.
  const bytes = await readImportFile(args.file, { maxBytes: args.maxFileBytes });
  const table = parseCsv(args.file, decodeUtf8(args.file, bytes));
  const fileSha256 = await sha256Hex(bytes);
  const db = typeof database === "function" ? await database() : database;
  const dryRun = args.dryRun ?? false;
  try {
    return await transaction(db.sql, async (tx) => {
      const result = await importFactors(tx, {
        file: args.file,
        table,
        year: args.year,
        target: args.target,
        mode: args.mode,
        strict: args.strict,
        allowEmpty: args.allowEmpty,
        force: args.force,
        actor: args.actor,
        jobId: args.jobId,
        fileSha256,
        onLockWait: args.onLockWait,
        noWait: args.noWait,
      });
      const outcome: FactorsImportOutcome = hooks.afterImport
        ? { result, after: await hooks.afterImport(tx, result), dryRun }
        : { result, dryRun };
      if (dryRun) throw new DryRunRollback(outcome);
      return outcome;
    }) as FactorsImportOutcome;
  } catch (error) {
    if (error instanceof DryRunRollback) return error.outcome;
    throw error;
  }
}

/** `factors import FILE --year Y (--det D | --module M) ...` */
export const factorsCommand = defineCommand({
  name: "factors import",
  summary: "import a factor CSV for one year (merge or replace)",
  usage: USAGE,
  options: {
    year: { type: "string" },
    det: { type: "string" },
    module: { type: "string" },
    mode: { type: "string" },
    strict: { type: "boolean" },
    rematch: { type: "boolean" },
    "dry-run": { type: "boolean" },
    "allow-empty": { type: "boolean" },
    force: { type: "boolean" },
    "no-wait": { type: "boolean" },
    "max-file-size": { type: "string" },
  },
  schema,
  // A dry run writes only inside a transaction it rolls back: it never migrates a database.
  access: (args) => args.dryRun ? "read" : "write",
  async run(args, context) {
    // --rematch: the touched slices are recomputed in the import's own transaction, so the new
    // factors and the emissions computed from them commit together. Without it, the import ends
    // by saying which slices it left stale (seen from inside its transaction: dry runs too).
    const hooks: FactorsImportHooks = {
      afterImport: args.rematch ? rematchSlices : staleAfterImport,
    };
    const heading = `${args.file} (year ${args.year}, ${args.targetLabel}, ${args.mode})`;
    try {
      const { result, after, dryRun } = await runFactorsImport(
        context.database,
        { ...args, onLockWait: reportLockWait("factors import", undefined) },
        hooks,
      );
      // A dry run's rematch ran for real inside the rolled-back transaction: say it was dry.
      const rematches = args.rematch
        ? (after as RematchResult[]).map((r) => dryRun ? { ...r, dryRun: true } : r)
        : [];
      const stale = args.rematch ? undefined : after as LeftStale;
      const rematchErrors = rematches.some((r) => r.errors > 0);
      return {
        exitCode: result.rowErrorsCount || rematchErrors ? EXIT.partial : EXIT.ok,
        json: {
          file: args.file,
          year: args.year,
          mode: args.mode,
          dryRun,
          ...result,
          // A dry run's import was recorded, then rolled back: it has no id.
          importId: dryRun ? null : result.importId,
          rematch: args.rematch ? rematches : undefined,
          leftStale: stale,
        },
        text: [
          ...(dryRun ? ["dry run: nothing written; a real import would do this:"] : []),
          describeImport(heading, result, dryRun),
          ...(args.rematch ? ["", describeRematches(rematches)] : describeLeftStale(stale!)),
        ].join("\n"),
      };
    } catch (error) {
      if (error instanceof SliceBusyError) {
        return {
          exitCode: EXIT.failed,
          json: {
            error: { code: error.name, message: error.message },
            file: args.file,
            year: args.year,
            mode: args.mode,
            dryRun: args.dryRun ?? false,
          },
          text: `${heading}: ${error.message}; nothing written (without --no-wait it waits)`,
        };
      }
      if (!(error instanceof FactorImportRejected)) throw error;
      return {
        exitCode: EXIT.failed,
        json: {
          error: { code: error.name, reason: error.reason, message: error.message },
          file: args.file,
          year: args.year,
          mode: args.mode,
          dryRun: args.dryRun ?? false,
          ...error.result,
        },
        text: [
          `${heading}: ${error.message.slice(args.file.length + 2)}`,
          ...describeRowErrors(error.result, "the import was rejected"),
        ].join("\n"),
      };
    }
  },
});

async function rematchSlices(tx: Queryable, result: FactorImportResult): Promise<RematchResult[]> {
  const results: RematchResult[] = [];
  for (const slice of result.slices) {
    results.push(
      await rematchInTransaction(tx, {
        dataEntryType: slice.dataEntryTypeId,
        year: slice.year,
        run: { trigger: "import", importId: result.importId },
      }),
    );
  }
  return results;
}

function staleAfterImport(tx: Queryable, result: FactorImportResult): Promise<LeftStale> {
  return leftStale(tx, {
    year: result.slices[0]?.year,
    dataEntryTypeIds: result.slices.map((s) => s.dataEntryTypeId),
  });
}

function describeImport(heading: string, result: FactorImportResult, dryRun: boolean): string {
  const slices = result.slices.map((s) => `${s.dataEntryType} ${s.year}`).join(", ") || "none";
  return [
    `${heading}: ${plural(result.rowsRead, "row")} read, ${result.inserted} inserted, ` +
    `${result.updated} updated, ${result.unchanged} unchanged, ${result.deleted} deleted, ` +
    `${result.keptStale} kept stale`,
    ...(dryRun || result.importId === undefined ? [] : [`recorded as import ${result.importId}`]),
    `slices: ${slices}`,
    ...(dryRun || result.changes.length > 1 ? result.changes.map(describeSlice) : []),
    ...(dryRun ? result.changes.flatMap(listIdentities) : []),
    ...describeRowErrors(result, "rows skipped"),
  ].join("\n");
}

function describeSlice(c: FactorSliceChanges): string {
  return `  ${c.dataEntryType} ${c.year}: ${c.before} factors before; ${c.inserted} inserted, ` +
    `${c.updated} updated, ${c.unchanged} unchanged, ${c.deleted} deleted, ` +
    `${c.keptStale} kept stale`;
}

/** Identities listed in the text of a dry run (the JSON lists up to 100 of each). */
const LISTED_IN_TEXT = 20;

function listIdentities(c: FactorSliceChanges): string[] {
  const lines: string[] = [];
  for (const kind of ["inserted", "updated", "deleted", "keptStale", "unchanged"] as const) {
    const count = c[kind];
    if (!count) continue;
    const label = kind === "keptStale" ? "kept stale" : kind;
    lines.push(`${c.dataEntryType} ${c.year} ${label}:`);
    for (const identity of c.listed[kind].slice(0, LISTED_IN_TEXT)) {
      lines.push(`  ${describeIdentity(identity)}`);
    }
    if (count > LISTED_IN_TEXT) lines.push(`  ... and ${count - LISTED_IN_TEXT} more (see --json)`);
  }
  return lines;
}

function describeIdentity(identity: FactorIdentity): string {
  const where = [
    identity.line === undefined ? "" : `line ${identity.line}`,
    identity.id === undefined ? "" : `factor ${identity.id}`,
  ].filter(Boolean).join(", ");
  const classification = Object.entries(identity.classification)
    .map(([column, value]) => `${column}=${value === null ? "(blank)" : JSON.stringify(value)}`)
    .join(", ");
  return `${where}: emission type ${identity.emissionTypeId}, ${classification}`;
}

function describeRowErrors(result: FactorImportResult, consequence: string): string[] {
  if (!result.rowErrorsCount) return [];
  const unlisted = result.rowErrorsCount - result.rowErrors.length;
  return [
    `${result.rowErrorsCount} row error${result.rowErrorsCount === 1 ? "" : "s"} (${consequence}):`,
    ...result.rowErrors.map((e) => `  ${describeRowError(e)}`),
    ...(unlisted ? [`  ... and ${unlisted} more`] : []),
  ];
}

/** `factors import|history|diff|export|rollback ...` */
export const factorsGroup = defineGroup({
  name: "factors",
  usage: `Usage: deno task factors <subcommand> [flags]

  import FILE --year Y (--det D | --module M)   import a factor CSV (merge or replace)
  history [--det D] [--year Y]                 the imports, newest first, and the rematches after
  diff --import N                              what import N changed, old → new
  export --det D --year Y [--as-of N|TIME]     the factor set now or as it was, as a factor CSV
  rollback --import N [--rematch] [--dry-run]  put back what import N changed

deno task factors <subcommand> --help shows its flags.`,
  subcommands: {
    import: factorsCommand,
    history: factorsHistoryCommand,
    diff: factorsDiffCommand,
    export: factorsExportCommand,
    rollback: factorsRollbackCommand,
  },
});
