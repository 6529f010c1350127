// `entries import FILE`: data entries from JSON lines or a one-det CSV, written through the bulk
// write path in one transaction (spec/factors-csv.md §4, spec/interfaces.md §2).
import { z } from "zod";
import { defineCommand, EXIT } from "./command.ts";
import { describeIssues } from "../compute/compute_entry.ts";
import type { Database, Queryable } from "../db/connection.ts";
import { createEntries, type NewEntry } from "../db/entries.ts";
import { type CsvTable, FileError, readCsvFile, requireColumns } from "../imports/csv.ts";
import { checkImportFile, openImportFile } from "../imports/file.ts";
import { type DataEntryType, findDataEntryType } from "../reference/enums.ts";

/** How an entries file is read. */
export type EntriesFileFormat = "jsonl" | "csv";

/** The validated arguments of `entries import`. */
export interface EntriesImportArgs {
  readonly file: string;
  readonly format: EntriesFileFormat;
  /** JSON lines: the det of lines that name none; CSV: the det of every row (required). */
  readonly det?: DataEntryType;
  /** Any bad line rolls the whole import back. */
  readonly strict: boolean;
  /** Entries per createEntries call inside the one transaction. @default 5000 */
  readonly batchSize?: number;
}

/** A problem with one line (JSON lines) or data row (CSV, header not counted). */
export interface EntryLineProblem {
  readonly line?: number;
  readonly row?: number;
  /** True for an entry stored without emissions (its compute failed). */
  readonly stored: boolean;
  /** Starts with `line N:` or `row N:`, then the field and what is wrong. */
  readonly message: string;
}

/** What {@linkcode importEntriesFile} did. */
export interface EntriesImportResult {
  readonly file: string;
  readonly format: EntriesFileFormat;
  /** False when `strict` met a bad line: the transaction was rolled back. */
  readonly written: boolean;
  /** Non-blank JSON lines, or CSV data rows. */
  readonly linesRead: number;
  readonly created: number;
  readonly companionsCreated: number;
  readonly emissionsInserted: number;
  /** Lines not stored: malformed, unknown det, or rejected by the det's schema. */
  readonly rejectedCount: number;
  /** Lines stored without emissions: their compute failed. */
  readonly computeErrorsCount: number;
  /** The first {@linkcode MAX_LISTED_PROBLEMS} rejections and compute errors, in line order. */
  readonly errors: readonly EntryLineProblem[];
  readonly errorsCount: number;
  /** The first {@linkcode MAX_LISTED_PROBLEMS} warnings (e.g. a room not found). */
  readonly warnings: readonly EntryLineProblem[];
  readonly warningsCount: number;
}

/** At most this many errors and warnings are listed; the counts count them all. */
export const MAX_LISTED_PROBLEMS = 100;

const USAGE =
  `Usage: deno task entries import FILE [--det D] [--strict] [--json] [--database-url URL]

Imports data entries, computing their emissions, in one transaction. Units, reports and modules
are created on demand.

FILE ending in .jsonl, .ndjson or .json: JSON lines, one entry per line:
  {"unit": "U1", "year": 2025, "data_entry_type": "plane", "data": {"origin_iata": "GVA", ...}}
  data_entry_type is a name or id; lines without one take --det.
FILE ending in .csv: one data entry type, given by --det; columns unit and year, and one column
  per data field (blank cells are left out).

  --det D    the data entry type (name such as plane, or its id)
  --strict   any bad line rejects the import: nothing is written

Exit codes: 0 done; 3 done, bad lines skipped or stored without emissions; 1 nothing written;
2 bad usage.`;

const FORMATS: readonly [RegExp, EntriesFileFormat][] = [
  [/\.(jsonl|ndjson|json)$/i, "jsonl"],
  [/\.csv$/i, "csv"],
];

const schema = z.object({
  positionals: z.array(z.string()),
  det: z.string().optional(),
  strict: z.boolean().default(false),
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
        `unknown data entry type "${flags.det}" (expected a name such as it or plane, or its id)`,
      );
    }
  }
  if (format === "csv" && !det) return fail(["det"], "is required for a CSV file");
  return { file, format, det, strict: flags.strict };
});

// ---- reading lines ----------------------------------------------------------------------------

/** One input line: where it is, and its entry or what is wrong with it. */
interface SourceLine {
  readonly number: number;
  readonly entry?: NewEntry;
  readonly error?: string;
}

const trimmed = (v: unknown) => (typeof v === "string" ? v.trim() : v);
const numericText = (v: unknown) => typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : v;

const YEAR_EXPECTED = "expected a year such as 2025 (1900..2200)";

const envelopeSchema = z.object({
  unit: z.preprocess(
    trimmed,
    z.string({ error: "is required (the unit code)" }).min(1, "must not be empty"),
  ),
  year: z.preprocess(
    numericText,
    z.number({ error: YEAR_EXPECTED }).int(YEAR_EXPECTED).min(1900, YEAR_EXPECTED).max(
      2200,
      YEAR_EXPECTED,
    ),
  ),
  data_entry_type: z.union([z.string(), z.number()], {
    error: "expected a data entry type name or id",
  }).optional(),
  data: z.record(z.string(), z.unknown(), { error: "is required (an object of data fields)" }),
});

/** Validates one line's envelope and resolves its det; returns the entry or a message. */
function toEntry(value: unknown, defaultDet: DataEntryType | undefined): NewEntry | string {
  const parsed = envelopeSchema.safeParse(value);
  if (!parsed.success) return describeIssues(parsed.error);
  const { unit, year, data, data_entry_type: named } = parsed.data;
  let det = defaultDet;
  if (named !== undefined) {
    det = findDataEntryType(named);
    if (!det) {
      return `data_entry_type: unknown data entry type "${named}" (expected a name such as plane, or its id)`;
    }
    if (defaultDet && det.id !== defaultDet.id) {
      return `data_entry_type: ${det.name} does not match --det ${defaultDet.name}`;
    }
  }
  if (!det) return "data_entry_type: is required (a name such as plane, or its id; or give --det)";
  return { unitCode: unit, year, det, data };
}

/** Splits a file into numbered lines as it is read: the file is never held whole. */
async function* readLines(path: string): AsyncGenerator<{ number: number; text: string }> {
  const file = await openImportFile(path);
  // A leading BOM is dropped by the decoder; invalid UTF-8 throws.
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const decode = (chunk?: Uint8Array) => {
    try {
      return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode();
    } catch {
      throw new FileError(path, "is not valid UTF-8 text");
    }
  };
  let pending = "";
  let number = 0;
  for await (const chunk of file) {
    const parts = (pending + decode(chunk)).split("\n");
    pending = parts.pop()!;
    for (const text of parts) yield { number: ++number, text };
  }
  pending += decode();
  if (pending !== "") yield { number: ++number, text: pending };
}

async function* jsonLines(
  path: string,
  defaultDet: DataEntryType | undefined,
): AsyncGenerator<SourceLine> {
  for await (const { number, text } of readLines(path)) {
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      yield { number, error: `invalid JSON: ${(error as Error).message}` };
      continue;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      yield { number, error: "expected a JSON object" };
      continue;
    }
    const entry = toEntry(value, defaultDet);
    yield typeof entry === "string" ? { number, error: entry } : { number, entry };
  }
}

async function* csvRows(table: CsvTable, det: DataEntryType): AsyncGenerator<SourceLine> {
  for (const { row, cells, problem } of table.rows) {
    if (problem) {
      yield {
        number: row,
        error: `${problem.column ? `${problem.column}: ` : ""}${problem.message}`,
      };
      continue;
    }
    const { unit, year, ...fields } = cells;
    const data = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== ""));
    const entry = toEntry({ unit, year, data }, det);
    yield typeof entry === "string" ? { number: row, error: entry } : { number: row, entry };
  }
}

/**
 * Opens the file's lines. A CSV file is read and checked whole here; a JSON-lines file is only
 * checked to exist and is then read as it is imported. Either way an unreadable file fails
 * before the database is opened.
 */
async function openSource(args: EntriesImportArgs): Promise<AsyncIterable<SourceLine>> {
  if (args.format === "csv") {
    const table = await readCsvFile(args.file);
    requireColumns(args.file, table, ["unit", "year"]);
    return csvRows(table, args.det!);
  }
  await checkImportFile(args.file);
  return jsonLines(args.file, args.det);
}

// ---- importing --------------------------------------------------------------------------------

/** Thrown inside the transaction to roll a strict import with bad lines back. */
class StrictRejection extends Error {
  constructor(readonly result: EntriesImportResult) {
    super("strict import with bad lines");
  }
}

class ProblemList {
  readonly listed: EntryLineProblem[] = [];
  count = 0;
  constructor(private readonly unit: "line" | "row") {}
  add(number: number, message: string, stored: boolean): void {
    this.count++;
    if (this.listed.length >= MAX_LISTED_PROBLEMS) return;
    this.listed.push({
      [this.unit]: number,
      stored,
      message: `${this.unit} ${number}: ${message}`,
    });
  }
}

async function importLines(
  tx: Queryable,
  args: EntriesImportArgs,
  lines: AsyncIterable<SourceLine>,
): Promise<EntriesImportResult> {
  const unit = args.format === "csv" ? "row" : "line";
  const errors = new ProblemList(unit);
  const warnings = new ProblemList(unit);
  let linesRead = 0;
  let created = 0;
  let companionsCreated = 0;
  let emissionsInserted = 0;
  let rejectedCount = 0;
  let computeErrorsCount = 0;

  // Problems are reported per batch in line order: the batch's own parse errors interleaved
  // with what createEntries found.
  const flush = async (batch: SourceLine[]) => {
    const valid = batch.flatMap((line, at) => (line.entry ? [{ at, entry: line.entry }] : []));
    const rejected = new Map<number, string>();
    const failed = new Map<number, string>();
    const noted = new Map<number, string[]>();
    if (valid.length) {
      const result = await createEntries(tx, valid.map((v) => v.entry));
      created += result.created;
      companionsCreated += result.companionsCreated;
      emissionsInserted += result.emissionsInserted;
      for (const p of result.rejected) rejected.set(valid[p.index].at, p.message);
      for (const p of result.computeErrors) failed.set(valid[p.index].at, p.message);
      for (const p of result.warnings) {
        const at = valid[p.index].at;
        noted.set(at, [...(noted.get(at) ?? []), p.message]);
      }
    }
    batch.forEach((line, at) => {
      const error = line.error ?? rejected.get(at);
      if (error !== undefined) {
        rejectedCount++;
        errors.add(line.number, error, false);
      }
      const computeError = failed.get(at);
      if (computeError !== undefined) {
        computeErrorsCount++;
        errors.add(line.number, `stored without emissions: ${computeError}`, true);
      }
      for (const message of noted.get(at) ?? []) warnings.add(line.number, message, true);
    });
  };

  const batchSize = args.batchSize ?? 5000;
  let batch: SourceLine[] = [];
  for await (const line of lines) {
    linesRead++;
    batch.push(line);
    if (batch.length >= batchSize) {
      await flush(batch);
      batch = [];
    }
  }
  if (batch.length) await flush(batch);

  const result: EntriesImportResult = {
    file: args.file,
    format: args.format,
    written: true,
    linesRead,
    created,
    companionsCreated,
    emissionsInserted,
    rejectedCount,
    computeErrorsCount,
    errors: errors.listed,
    errorsCount: errors.count,
    warnings: warnings.listed,
    warningsCount: warnings.count,
  };
  if (args.strict && errors.count > 0) {
    throw new StrictRejection({
      ...result,
      written: false,
      created: 0,
      companionsCreated: 0,
      emissionsInserted: 0,
    });
  }
  return result;
}

/**
 * Imports an entries file in one transaction, `batchSize` entries per bulk write; the database
 * (or a function opening it) is reached only once the file is known readable. Bad lines are
 * reported (`line N: field: problem`) and skipped; with `strict` any bad line or compute error
 * rolls everything back (`written: false`). A file-level problem (unreadable, not UTF-8, CSV
 * without `unit` or `year`) throws a FileError with nothing written.
 *
 * @example
 * ```ts ignore
 * import { importEntriesFile } from "./entries.ts";
 * const result = await importEntriesFile(db, {
 *   file: "entries.jsonl", format: "jsonl", strict: false,
 * });
 * console.log(result.created, result.errors);
 * ```
 */
export async function importEntriesFile(
  database: Pick<Database, "sql"> | (() => Promise<Pick<Database, "sql">>),
  args: EntriesImportArgs,
): Promise<EntriesImportResult> {
  const lines = await openSource(args);
  const db = typeof database === "function" ? await database() : database;
  try {
    return await db.sql.begin((tx) => importLines(tx, args, lines)) as EntriesImportResult;
  } catch (error) {
    if (error instanceof StrictRejection) return error.result;
    throw error;
  }
}

/** `entries import FILE [--det D] [--strict]` */
export const entriesCommand = defineCommand({
  name: "entries",
  usage: USAGE,
  options: { det: { type: "string" }, strict: { type: "boolean" } },
  schema,
  async run(args, context) {
    const result = await importEntriesFile(context.database, args);
    return {
      exitCode: !result.written ? EXIT.failed : result.errorsCount ? EXIT.partial : EXIT.ok,
      json: result,
      text: describeEntriesImport(result),
    };
  },
});

/** The human summary of an entries import: counts, then the listed errors and warnings. */
export function describeEntriesImport(result: EntriesImportResult): string {
  const kind = result.format === "csv" ? "row" : "line";
  const head = `${result.file}: ${plural(result.linesRead, kind)} read`;
  const lines = [
    result.written
      ? `${head}, ${plural(result.created, "entry", "entries")} created` +
        (result.companionsCreated ? ` (+${result.companionsCreated} companions)` : "") +
        `, ${plural(result.emissionsInserted, "emission row")}`
      : `${head}, nothing written (--strict and bad ${kind}s)`,
  ];
  const section = (count: number, listed: readonly EntryLineProblem[], title: string) => {
    if (!count) return;
    lines.push(`${title}:`, ...listed.map((p) => `  ${p.message}`));
    if (count > listed.length) lines.push(`  ... and ${count - listed.length} more`);
  };
  section(
    result.errorsCount,
    result.errors,
    `${plural(result.errorsCount, "error")} (${result.rejectedCount} ${kind}s skipped, ` +
      `${result.computeErrorsCount} stored without emissions)`,
  );
  section(result.warningsCount, result.warnings, plural(result.warningsCount, "warning"));
  return lines.join("\n");
}

function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}
