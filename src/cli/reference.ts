// `locations import FILE`, `rooms import FILE`, `rates import FILE`: one command shape for the
// three reference kinds (spec/factors-csv.md §4, spec/interfaces.md §2).
import { z } from "zod";
import { type CommandSpec, defineCommand, EXIT, flag, userPath } from "./command.ts";
import type { ReferenceKind } from "../handlers/types.ts";
import { readReferenceFile, REFERENCE_COLUMNS } from "../imports/reference_csv.ts";
import { importReferenceRows, type ReferenceImportResult } from "../db/reference.ts";
import { describeRowError } from "../imports/csv.ts";
import { DEFAULT_MAX_FILE_BYTES, describeBytes } from "../imports/file.ts";
import { MAX_YEAR, MIN_YEAR } from "../reference/years.ts";
import { leftStale } from "../rematch/state.ts";
import { describeLeftStale } from "./status.ts";
import { plural } from "../text/plural.ts";

/** The arguments of a reference import command. */
export interface ReferenceImportArgs {
  /** The file to import. */
  file: string;
  /** Any row error aborts the import and nothing is written. */
  strict: boolean;
  /** Refuse files larger than this. @default the reader's limit */
  maxFileBytes?: number;
}

const SUMMARIES: { readonly [K in ReferenceKind]: string } = {
  locations: "upsert airports and stations",
  rooms: "upsert building rooms",
  rates: "upsert exchange rates",
};

const DESCRIPTIONS: { readonly [K in ReferenceKind]: string } = {
  locations:
    "Upserts airports and railway stations by natural key (plane:IATA, train:country:name).",
  rooms: "Upserts building rooms by (building_name, room_name).",
  rates:
    `Upserts exchange rates (EUR per unit of a currency) by (year, currency); years from ${MIN_YEAR} to ${MAX_YEAR}.`,
};

const positionals = z.array(z.string()).superRefine((args, ctx) => {
  const problem = args.length === 0
    ? "expected import FILE"
    : args[0] !== "import"
    ? `unknown action ${JSON.stringify(args[0])}: expected import`
    : args.length === 1
    ? "expected FILE after import"
    : args.length > 2
    ? `unexpected argument ${JSON.stringify(args[2])} after FILE`
    : undefined;
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const argsSchema = z.object({
  strict: z.boolean().default(false),
  "max-file-size": flag.byteSize().optional(),
  positionals,
}).transform((flags): ReferenceImportArgs => ({
  file: userPath(flags.positionals[1]),
  strict: flags.strict,
  maxFileBytes: flags["max-file-size"],
}));

/**
 * The import command of one reference kind: `deno task <kind> import FILE [--strict] [--json]`.
 * Exit 0 done, 3 done with row errors (good rows written), 1 nothing written (file error, or a
 * row error with `--strict`), 2 bad usage.
 *
 * @example
 * ```ts ignore
 * import { referenceImportCommand } from "./reference.ts";
 * import { runCommand } from "./command.ts";
 * const code = await runCommand(referenceImportCommand("rates"), ["import", "rates.csv"]);
 * ```
 */
export function referenceImportCommand(kind: ReferenceKind): CommandSpec<ReferenceImportArgs> {
  return defineCommand({
    name: kind,
    summary: `${SUMMARIES[kind]} (${kind} import FILE)`,
    usage: `Usage: deno task ${kind} import FILE [--strict] [--max-file-size SIZE] [--json]
         [--database-url URL]

${DESCRIPTIONS[kind]}
FILE is a CSV file with the header ${REFERENCE_COLUMNS[kind].join(",")}
(any column order, unknown columns ignored), or JSON lines (one object per line with the same
field names) when its name ends in .jsonl or .ndjson.

Options:
  --strict         any bad row aborts the import: nothing is written
  --max-file-size  refuse larger files (default ${
      describeBytes(DEFAULT_MAX_FILE_BYTES).replace(" ", "")
    }, or REMATCH_MAX_FILE_SIZE), e.g. 1GiB
  --json           print one JSON document

Row errors say the file line (a CSV header is line 1). Exit codes: 0 done; 3 done, bad rows skipped; 1 nothing written; 2 bad usage.`,
    options: { strict: { type: "boolean" }, "max-file-size": { type: "string" } },
    schema: argsSchema,
    async run(args, context) {
      // The file is read first: a file error or a strict failure never opens the database.
      const parsed = await readReferenceFile(kind, args.file, { maxBytes: args.maxFileBytes });
      const result = await importReferenceRows(context.database, args.file, parsed, {
        strict: args.strict,
      });
      // The slices whose handler reads this kind and that are not current now: none when the
      // import changed nothing; of the file's years only for rates (a slice reads its year's).
      const years = kind === "rates"
        ? [...new Set(parsed.rows.map((r) => (r as { year: number }).year))]
        : undefined;
      const stale = result.written && result.inserted + result.updated > 0
        ? await leftStale((await context.database()).sql, { referenceKind: kind, years })
        : undefined;
      return {
        exitCode: !result.written ? EXIT.failed : result.rowErrorsCount ? EXIT.partial : EXIT.ok,
        json: stale ? { ...result, leftStale: stale } : result,
        text: [describeImport(result), ...(stale ? describeLeftStale(stale) : [])].join("\n"),
      };
    },
  });
}

/** `deno task locations import FILE`. */
export const locationsCommand = referenceImportCommand("locations");
/** `deno task rooms import FILE`. */
export const roomsCommand = referenceImportCommand("rooms");
/** `deno task rates import FILE`. */
export const ratesCommand = referenceImportCommand("rates");

/** The human summary of an import: counts, then the listed row errors. */
export function describeImport(result: ReferenceImportResult): string {
  const read = `${result.kind}: ${result.file}: ${plural(result.rowsRead, "row")} read`;
  const lines = [
    result.written
      ? `${read}, ${result.inserted} inserted, ${result.updated} updated, ${result.unchanged} unchanged`
      : `${read}, nothing written (--strict and bad rows)`,
  ];
  if (result.rowErrorsCount) {
    lines.push(`${plural(result.rowErrorsCount, "row error")}:`);
    for (const error of result.rowErrors) {
      lines.push(`  ${describeRowError(error)}`);
    }
    const unlisted = result.rowErrorsCount - result.rowErrors.length;
    if (unlisted > 0) lines.push(`  ... and ${unlisted} more`);
  }
  return lines.join("\n");
}
