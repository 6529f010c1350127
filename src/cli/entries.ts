// `entries import FILE`: data entries from JSON lines or a one-det CSV, written through the bulk
// write path in one transaction (spec/factors-csv.md §4, spec/interfaces.md §2). The import
// itself lives in src/db/entries_import.ts (the entries_ingest job runs it too).
import { z } from "zod";
import { defineCommand, EXIT, flag, userPath } from "./command.ts";
import { reportLockWait } from "./progress.ts";
import { DEFAULT_MAX_FILE_BYTES, describeBytes } from "../imports/file.ts";
import {
  type EntriesFileFormat,
  type EntriesImportArgs,
  type EntriesImportResult,
  type EntryLineProblem,
  everyLineBad,
  importEntriesFile,
} from "../db/entries_import.ts";
import { type DataEntryType, findDataEntryType, unknownDataEntryType } from "../reference/enums.ts";

export {
  type EntriesFileFormat,
  type EntriesImportArgs,
  type EntriesImportResult,
  type EntryLineProblem,
  importEntriesFile,
  MAX_LINE_LENGTH,
  MAX_LISTED_PROBLEMS,
} from "../db/entries_import.ts";
import { plural } from "../text/plural.ts";

const USAGE =
  `Usage: deno task entries import FILE [--det D] [--year Y] [--strict] [--max-file-size SIZE]
         [--json] [--database-url URL]

Imports data entries, computing their emissions, in one transaction. Units, reports and modules
are created on demand.

FILE ending in .jsonl, .ndjson or .json: JSON lines, one entry per line:
  {"unit": "U1", "year": 2025, "data_entry_type": "plane", "source_key": "trip-17",
   "data": {"origin_iata": "GVA", ...}}
  data_entry_type is a name or id; lines without one take --det.
FILE ending in .csv: one data entry type, given by --det; columns unit and year, optionally
  source_key (or id), and one column per data field (blank cells are left out).

source_key (or id) is optional and unique per unit, year and module: a line whose key already
names an entry updates that entry (same id, emissions recomputed) instead of adding one, so a
file with keys can be imported again safely. Lines without a key always create entries.

  --det D            the data entry type (name such as plane, or its id)
  --year Y           every line must be of year Y: a line of another year is a bad line
  --strict           any bad line rejects the import: nothing is written
  --max-file-size S  refuse larger files (default ${
    describeBytes(DEFAULT_MAX_FILE_BYTES).replace(" ", "")
  }, or REMATCH_MAX_FILE_SIZE), e.g. 1GiB

Exit codes: 0 done; 3 done, bad lines skipped or stored without emissions; 1 nothing written;
2 bad usage.`;

const FORMATS: readonly [RegExp, EntriesFileFormat][] = [
  [/\.(jsonl|ndjson|json)$/i, "jsonl"],
  [/\.csv$/i, "csv"],
];

const schema = z.object({
  positionals: z.array(z.string()),
  det: z.string().optional(),
  year: flag.year().optional(),
  strict: z.boolean().default(false),
  "max-file-size": flag.byteSize().optional(),
}).transform((flags, ctx): EntriesImportArgs => {
  const [action, file, ...extra] = flags.positionals;
  const fail = (path: string[], message: string) => {
    ctx.addIssue({ code: "custom", path, message });
    return z.NEVER;
  };
  if (action !== "import" || !file || extra.length) {
    return fail(
      ["positionals"],
      `expected "import FILE" (got ${
        flags.positionals.length ? flags.positionals.map((p) => `"${p}"`).join(" ") : "nothing"
      })`,
    );
  }
  const format = FORMATS.find(([pattern]) => pattern.test(file))?.[1];
  if (!format) {
    return fail(
      ["positionals"],
      `cannot tell the format of ${file}: name it .jsonl, .ndjson or .json (JSON lines) or .csv`,
    );
  }
  let det: DataEntryType | undefined;
  if (flags.det !== undefined) {
    det = findDataEntryType(flags.det);
    if (!det) {
      return fail(
        ["det"],
        unknownDataEntryType(flags.det),
      );
    }
  }
  if (format === "csv" && !det) return fail(["det"], "is required for a CSV file");
  return {
    file: userPath(file),
    format,
    det,
    year: flags.year,
    strict: flags.strict,
    maxFileBytes: flags["max-file-size"],
  };
});

/** `entries import FILE [--det D] [--strict]` */
export const entriesCommand = defineCommand({
  name: "entries",
  summary: "data entries from JSON lines or CSV (entries import FILE)",
  usage: USAGE,
  options: {
    det: { type: "string" },
    year: { type: "string" },
    strict: { type: "boolean" },
    "max-file-size": { type: "string" },
  },
  schema,
  async run(args, context) {
    const result = await importEntriesFile(context.database, {
      ...args,
      onLockWait: reportLockWait("entries import", undefined),
    });
    return {
      exitCode: !result.written || everyLineBad(result)
        ? EXIT.failed
        : result.errorsCount
        ? EXIT.partial
        : EXIT.ok,
      json: result,
      text: describeEntriesImport(result),
    };
  },
});

/** The human summary of an entries import: counts, then the listed errors and warnings. */
export function describeEntriesImport(result: EntriesImportResult): string {
  const kind = result.format === "csv" ? "row" : "line";
  const head = `${result.file}: ${plural(result.linesRead, kind)} read`;
  const companions = [
    [result.companionsCreated, "created"],
    [result.companionsUpdated, "updated"],
    [result.companionsDeleted, "deleted"],
  ] as const;
  const lines = [
    !result.written
      ? `${head}, nothing written (--strict and bad ${kind}s)`
      : everyLineBad(result)
      ? `${head}, nothing written: every ${kind} is bad`
      : `${head}, ${plural(result.created, "entry", "entries")} created, ` +
        `${result.updated} updated, ${result.unchanged} unchanged` +
        (companions.some(([n]) => n)
          ? ` (companions: ${companions.map(([n, what]) => `${n} ${what}`).join(", ")})`
          : "") +
        `, ${plural(result.emissionsInserted, "emission row")} written` +
        (result.withoutEmissionsCount
          ? `; ${result.withoutEmissionsCount} stored without emissions`
          : ""),
  ];
  const section = (count: number, listed: readonly EntryLineProblem[], title: string) => {
    if (!count) return;
    lines.push(`${title}:`, ...listed.map((p) => `  ${p.message}`));
    if (count > listed.length) lines.push(`  ... and ${count - listed.length} more`);
  };
  section(
    result.errorsCount,
    result.errors,
    `${plural(result.errorsCount, "error")} (${plural(result.rejectedCount, kind)} skipped, ` +
      `${result.computeErrorsCount} stored without emissions after a failed compute)`,
  );
  section(result.warningsCount, result.warnings, plural(result.warningsCount, "warning"));
  return lines.join("\n");
}
