// Importing a data entries file (JSON lines, or a one-det CSV) through the bulk write path, in
// one transaction (spec/factors-csv.md §4): the CLI `entries import` and the entries_ingest job
// run this same code.
import { z } from "zod";
import { describeIssues } from "../compute/compute_entry.ts";
import type { Database, Queryable } from "./connection.ts";
import {
  CollectedStats,
  createEntries,
  lockSlices,
  type NewEntry,
  type SliceRef,
  slicesOf,
  writeCollectedStats,
} from "./entries.ts";
import type { LockSliceOptions } from "./locks.ts";
import {
  type CsvTable,
  FileError,
  readCsvFile,
  requireColumns,
  rowProblem,
  utf8Pieces,
} from "../imports/csv.ts";
import { checkImportFile, openImportFile } from "../imports/file.ts";
import { type DataEntryType, findDataEntryType, unknownDataEntryType } from "../reference/enums.ts";
import { MAX_YEAR, MIN_YEAR, yearProblem } from "../reference/years.ts";
import { transaction } from "./transaction.ts";

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
  /** Every line's year must be this one (a line of another year is an error). */
  readonly year?: number;
  /** Entries per createEntries call inside the one transaction. @default 5000 */
  readonly batchSize?: number;
  /** The largest file read, in bytes. @default REMATCH_MAX_FILE_SIZE, else 256 MiB */
  readonly maxFileBytes?: number;
  /** Told when a slice is held by another transaction, before the import waits for it. */
  readonly onLockWait?: LockSliceOptions["onWait"];
  /**
   * Ends the import (a job's abort or its worker's stop): seen while it waits for a slice lock and
   * between batches; it throws the signal's reason, and the caller rolls the transaction back.
   */
  readonly signal?: AbortSignal;
}

/** A problem with one entry of the file, by the file line it starts on. */
export interface EntryLineProblem {
  /** The file line (1-based; for CSV the line the record starts on, header counted). */
  readonly line: number;
  /** True when the line's entry is stored (without emissions when this is an error). */
  readonly stored: boolean;
  /** Starts with `line N:`, then the field and what is wrong. */
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
  /** Entries created (lines without a source key, or whose key is new in its module). */
  readonly created: number;
  /** Entries whose source key named a stored entry that this import changed. */
  readonly updated: number;
  /** Entries whose source key named a stored entry already exactly so: nothing written. */
  readonly unchanged: number;
  readonly companionsCreated: number;
  readonly companionsUpdated: number;
  readonly companionsDeleted: number;
  readonly emissionsInserted: number;
  /** Emission rows of updated entries that were replaced. */
  readonly emissionsDeleted: number;
  /** Lines not stored: malformed, unknown det, rejected by the det's schema, or a clash. */
  readonly rejectedCount: number;
  /** Lines stored without emissions because their compute failed. */
  readonly computeErrorsCount: number;
  /** Lines whose entry is stored without any emission row, whatever the reason. */
  readonly withoutEmissionsCount: number;
  /** The first {@linkcode MAX_LISTED_PROBLEMS} rejections and compute errors, in line order. */
  readonly errors: readonly EntryLineProblem[];
  readonly errorsCount: number;
  /** The first {@linkcode MAX_LISTED_PROBLEMS} warnings (e.g. a room not found). */
  readonly warnings: readonly EntryLineProblem[];
  readonly warningsCount: number;
}

/**
 * True when the import stored no entry and skipped its lines as bad: nothing was written (exit 1,
 * a job ends ERROR), though the import ran through.
 */
export function everyLineBad(result: EntriesImportResult): boolean {
  return result.errorsCount > 0 && result.created + result.updated + result.unchanged === 0;
}

/** At most this many errors and warnings are listed; the counts count them all. */
export const MAX_LISTED_PROBLEMS = 100;

/** A JSON line longer than this (in characters) is refused unread: no entry holds that much. */
export const MAX_LINE_LENGTH = 4 * 1024 * 1024;

// ---- reading lines ----------------------------------------------------------------------------

/** One input line: where it is, and its entry or what is wrong with it. */
export interface EntrySourceLine {
  readonly number: number;
  readonly entry?: NewEntry;
  readonly error?: string;
}

/** An entries file's lines, readable more than once (a first pass finds the slices to lock). */
export type EntriesSource = () => AsyncIterable<EntrySourceLine>;

const trimmed = (v: unknown) => (typeof v === "string" ? v.trim() : v);

const YEAR_RANGE = `a year between ${MIN_YEAR} and ${MAX_YEAR}`;

const yearSchema = z.unknown().transform((value, ctx): number => {
  const year = typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
  const problem = year === undefined || year === null || year === ""
    ? `is required (${YEAR_RANGE})`
    : typeof year === "number"
    ? yearProblem(year)
    : `expected ${YEAR_RANGE}, got ${JSON.stringify(value)}`;
  if (problem) {
    ctx.addIssue({ code: "custom", message: problem });
    return z.NEVER;
  }
  return year as number;
});

// A key is a text or an integer (a numeric `id` column of another system); blank means none.
const keySchema = z.union([z.string(), z.number().int()], {
  error: "expected a text or an integer",
}).optional();

const envelopeSchema = z.object({
  unit: z.preprocess(
    trimmed,
    z.string({ error: "is required (the unit code)" }).min(1, "must not be empty"),
  ),
  year: yearSchema,
  data_entry_type: z.union([z.string(), z.number()], {
    error: "expected a data entry type name or id",
  }).optional(),
  source_key: keySchema,
  id: keySchema,
  data: z.record(z.string(), z.unknown(), { error: "is required (an object of data fields)" }),
});

/** Validates one line's envelope and resolves its det; returns the entry or a message. */
function toEntry(
  value: unknown,
  defaultDet: DataEntryType | undefined,
  onlyYear: number | undefined,
): NewEntry | string {
  const parsed = envelopeSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) return describeIssues(parsed.error);
  const { unit, year, data_entry_type: named } = parsed.data;
  // The line's own object: the record's parse drops a key named __proto__, which the det's
  // schema refuses instead.
  const data = (value as { data: Record<string, unknown> }).data;
  if (onlyYear !== undefined && year !== onlyYear) {
    return `year: expected ${onlyYear} (the import's year), got ${year}`;
  }
  let det = defaultDet;
  if (named !== undefined) {
    det = findDataEntryType(named);
    if (!det) {
      return `data_entry_type: ${unknownDataEntryType(named)}`;
    }
    if (defaultDet && det.id !== defaultDet.id) {
      return `data_entry_type: ${det.name} does not match --det ${defaultDet.name}`;
    }
  }
  if (!det) return "data_entry_type: is required (a name such as plane, or its id; or give --det)";
  const [sourceKey, id] = [parsed.data.source_key, parsed.data.id].map((k) =>
    k === undefined ? undefined : String(k).trim() || undefined
  );
  if (sourceKey !== undefined && id !== undefined) {
    return "source_key: give the key as source_key or as id, not both";
  }
  return { unitCode: unit, year, det, data, sourceKey: sourceKey ?? id };
}

/**
 * Splits a file into numbered lines as it is read: the file is never held whole, and a line
 * longer than {@linkcode MAX_LINE_LENGTH} is dropped as it grows (`tooLong`).
 */
async function* readLines(
  path: string,
  maxBytes?: number,
): AsyncGenerator<{ number: number; text: string; tooLong?: boolean }> {
  const file = await openImportFile(path, { maxBytes });
  // A leading BOM is dropped by the decoder; invalid UTF-8 throws, naming where.
  const decode = utf8Pieces(path, path);
  let pending = "";
  let tooLong = false;
  let number = 0;
  const line = (text: string) => {
    const result = tooLong || text.length > MAX_LINE_LENGTH
      ? { number: ++number, text: "", tooLong: true }
      : { number: ++number, text };
    tooLong = false;
    return result;
  };
  for await (const chunk of file) {
    const decoded = await decode(chunk);
    // Any line end ends a line (\r\n, \n or a lone \r, as the CSV reader takes them); a \r
    // that ends the piece may be the first half of a \r\n, so it waits for the next piece.
    let text = pending + decoded;
    const held = text.endsWith("\r") ? "\r" : "";
    if (held) text = text.slice(0, -1);
    const parts = text.split(/\r\n|\n|\r/);
    pending = parts.pop()! + held;
    for (const text of parts) yield line(text);
    if (pending.length > MAX_LINE_LENGTH) {
      tooLong = true;
      pending = "";
    }
  }
  pending = (pending + await decode()).replace(/\r$/, "");
  if (pending !== "" || tooLong) yield line(pending);
}

async function* jsonLines(
  path: string,
  defaultDet: DataEntryType | undefined,
  onlyYear: number | undefined,
  maxBytes?: number,
): AsyncGenerator<EntrySourceLine> {
  let empty = true;
  for await (const { number, text, tooLong } of readLines(path, maxBytes)) {
    if (tooLong || text.trim() !== "") empty = false;
    if (tooLong) {
      yield {
        number,
        error: `longer than ${MAX_LINE_LENGTH} characters: an entry holds far less (not read)`,
      };
      continue;
    }
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
    const entry = toEntry(value, defaultDet, onlyYear);
    yield typeof entry === "string" ? { number, error: entry } : { number, entry };
  }
  // As an empty CSV file, and the reference imports' JSON lines: nothing to import is a mistake.
  if (empty) throw new FileError(path, "is empty (expected one JSON object per line)");
}

// Columns that describe the entry rather than hold one of its data fields.
const CSV_ENVELOPE = ["unit", "year", "source_key", "id"] as const;

// Every cell is text: numeric fields become numbers in the det's schema (and the override in the
// write path), so a text field such as user_institutional_id "042" stays text.
async function* csvRows(
  table: CsvTable,
  det: DataEntryType,
  onlyYear: number | undefined,
): AsyncGenerator<EntrySourceLine> {
  for (const row of table.rows) {
    const { line, cells } = row;
    // Every cell of an entry row is read (an unknown column is a data field the schema judges).
    const problem = rowProblem(row);
    if (problem) {
      yield {
        number: line,
        error: `${problem.column ? `${problem.column}: ` : ""}${problem.message}`,
      };
      continue;
    }
    const envelope: Record<string, unknown> = {};
    const data: Record<string, string> = {};
    for (const [name, value] of Object.entries(cells)) {
      if ((CSV_ENVELOPE as readonly string[]).includes(name)) {
        if (value !== "" || name === "unit" || name === "year") envelope[name] = value;
      } else if (value !== "") data[name] = value;
    }
    const entry = toEntry({ ...envelope, data }, det, onlyYear);
    yield typeof entry === "string" ? { number: line, error: entry } : { number: line, entry };
  }
}

/**
 * Opens the file's lines. A CSV file is read and checked whole here; a JSON-lines file is only
 * checked to exist and is then read as it is imported. Either way an unreadable file fails
 * before the database is opened.
 */
async function openSource(args: EntriesImportArgs): Promise<EntriesSource> {
  if (args.format === "csv") {
    const table = await readCsvFile(args.file, { maxBytes: args.maxFileBytes });
    requireColumns(args.file, table, ["unit", "year"]);
    return () => csvRows(table, args.det!, args.year);
  }
  await checkImportFile(args.file, { maxBytes: args.maxFileBytes });
  return () => jsonLines(args.file, args.det, args.year, args.maxFileBytes);
}

/**
 * The slices the file's entries touch, read in a first pass: the import locks them all, in det
 * id order, before writing anything, so two imports of mixed files cannot deadlock.
 */
async function slicesOfSource(source: EntriesSource): Promise<SliceRef[]> {
  const slices = new Map<string, SliceRef>();
  for await (const line of source()) {
    if (!line.entry) continue;
    for (const slice of slicesOf(line.entry.det, line.entry.year)) {
      slices.set(`${slice.dataEntryTypeId}:${slice.year}`, slice);
    }
  }
  return [...slices.values()];
}

// ---- importing --------------------------------------------------------------------------------

/**
 * Thrown inside the transaction to roll a strict import with bad lines back; `result` says what
 * was wrong (`written: false`).
 */
export class EntriesImportRejected extends Error {
  override name = "EntriesImportRejected";
  constructor(readonly result: EntriesImportResult) {
    super(
      `${result.file}: rejected, nothing written: ${result.errorsCount} bad line${
        result.errorsCount === 1 ? "" : "s"
      } with --strict${result.errors[0] ? `; first: ${result.errors[0].message}` : ""}`,
    );
  }
}

class ProblemList {
  readonly listed: EntryLineProblem[] = [];
  count = 0;
  add(line: number, message: string, stored: boolean): void {
    this.count++;
    if (this.listed.length >= MAX_LISTED_PROBLEMS) return;
    this.listed.push({ line, stored, message: `line ${line}: ${message}` });
  }
}

type Counts = Pick<
  EntriesImportResult,
  | "created"
  | "updated"
  | "unchanged"
  | "companionsCreated"
  | "companionsUpdated"
  | "companionsDeleted"
  | "emissionsInserted"
  | "emissionsDeleted"
>;

async function importLines(
  tx: Queryable,
  args: EntriesImportArgs,
  source: EntriesSource,
  slices: readonly SliceRef[],
): Promise<EntriesImportResult> {
  await lockSlices(tx, slices, args.onLockWait, args.signal);
  // The modules' stats are written once, at the end, in one ordered pass (see collectStats).
  const stats = new CollectedStats();
  const errors = new ProblemList();
  const warnings = new ProblemList();
  const counts: { -readonly [K in keyof Counts]: number } = {
    created: 0,
    updated: 0,
    unchanged: 0,
    companionsCreated: 0,
    companionsUpdated: 0,
    companionsDeleted: 0,
    emissionsInserted: 0,
    emissionsDeleted: 0,
  };
  let linesRead = 0;
  let rejectedCount = 0;
  let computeErrorsCount = 0;
  let withoutEmissionsCount = 0;
  // The file line of every entry this import wrote, so that a clash can name it.
  const lineOfEntry = new Map<number, number>();
  // The first line of each source key per module: a second line with the same key is an error.
  const keyLines = new Map<string, number>();

  // Problems are reported per batch in line order: the batch's own parse errors interleaved
  // with what createEntries found.
  const flush = async (batch: EntrySourceLine[]) => {
    const valid = batch.flatMap((line, at) => (line.entry ? [{ at, entry: line.entry }] : []));
    const rejected = new Map<number, string>();
    const failed = new Map<number, string>();
    const noted = new Map<number, string[]>();
    const bare = new Set<number>();
    if (valid.length) {
      const result = await createEntries(tx, valid.map((v) => v.entry), { collectStats: stats });
      for (const key of Object.keys(counts) as (keyof Counts)[]) counts[key] += result[key];
      result.ids.forEach((id, i) => {
        if (id !== undefined) lineOfEntry.set(id, batch[valid[i].at].number);
      });
      for (const p of result.rejected) {
        const line = p.conflictingEntryId === undefined
          ? undefined
          : lineOfEntry.get(p.conflictingEntryId);
        const message = line === undefined
          ? p.message
          : p.message.replace(`entry ${p.conflictingEntryId}`, `$& (line ${line})`);
        rejected.set(valid[p.index].at, message);
      }
      for (const p of result.computeErrors) failed.set(valid[p.index].at, p.message);
      for (const p of result.warnings) {
        const at = valid[p.index].at;
        noted.set(at, [...(noted.get(at) ?? []), p.message]);
      }
      for (const index of result.withoutEmissions) bare.add(valid[index].at);
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
      const notes = noted.get(at) ?? [];
      for (const message of notes) warnings.add(line.number, message, true);
      if (bare.has(at)) {
        withoutEmissionsCount++;
        if (computeError === undefined && notes.length === 0) {
          const { det, year } = line.entry!;
          warnings.add(
            line.number,
            `stored without emissions: no ${det.name} factor of ${year} gives it an emission row`,
            true,
          );
        }
      }
    });
  };

  // A key repeated within the file is refused on its later lines (the first line keeps it).
  const withKeyCheck = (line: EntrySourceLine): EntrySourceLine => {
    const entry = line.entry;
    if (!entry?.sourceKey) return line;
    const key = [entry.unitCode, entry.year, entry.det.moduleTypeId, entry.sourceKey].join("\0");
    const first = keyLines.get(key);
    if (first === undefined) {
      keyLines.set(key, line.number);
      return line;
    }
    return {
      number: line.number,
      error: `source_key: ${
        JSON.stringify(entry.sourceKey)
      } is already the key of line ${first} (one entry per key in a unit, year and module)`,
    };
  };

  const batchSize = args.batchSize ?? 5000;
  let batch: EntrySourceLine[] = [];
  for await (const line of source()) {
    linesRead++;
    batch.push(withKeyCheck(line));
    if (batch.length >= batchSize) {
      args.signal?.throwIfAborted();
      await flush(batch);
      batch = [];
    }
  }
  args.signal?.throwIfAborted();
  if (batch.length) await flush(batch);
  await writeCollectedStats(tx, stats);

  const result: EntriesImportResult = {
    file: args.file,
    format: args.format,
    written: true,
    linesRead,
    ...counts,
    rejectedCount,
    computeErrorsCount,
    withoutEmissionsCount,
    errors: errors.listed,
    errorsCount: errors.count,
    warnings: warnings.listed,
    warningsCount: warnings.count,
  };
  if (args.strict && errors.count > 0) {
    throw new EntriesImportRejected({
      ...result,
      written: false,
      ...Object.fromEntries(Object.keys(counts).map((k) => [k, 0])) as Counts,
      withoutEmissionsCount: 0,
    });
  }
  return result;
}

/**
 * Imports an entries file in one transaction, `batchSize` entries per bulk write; the database
 * (or a function opening it) is reached only once the file is known readable. The slices of every
 * entry are locked first (as a rematch locks them). Bad lines are reported (`line N: field:
 * problem`, N the file line) and skipped; with `strict` any bad line or compute error rolls
 * everything back (`written: false`). A line whose source key names a stored entry of its module
 * updates it. A file-level problem (unreadable, not UTF-8, CSV without `unit` or `year`) throws a
 * FileError with nothing written.
 *
 * @example
 * ```ts ignore
 * import { importEntriesFile } from "./entries_import.ts";
 * const result = await importEntriesFile(db, {
 *   file: "entries.jsonl", format: "jsonl", strict: false,
 * });
 * console.log(result.created, result.updated, result.unchanged, result.errors);
 * ```
 */
export async function importEntriesFile(
  database: Pick<Database, "sql"> | (() => Promise<Pick<Database, "sql">>),
  args: EntriesImportArgs,
): Promise<EntriesImportResult> {
  const prepared = await prepareEntriesImport(args);
  const db = typeof database === "function" ? await database() : database;
  try {
    return await transaction(db.sql, (tx) => importPreparedEntries(tx, prepared));
  } catch (error) {
    if (error instanceof EntriesImportRejected) return error.result;
    throw error;
  }
}

/** An entries file checked readable, with the slices its entries touch. */
export interface PreparedEntriesImport {
  readonly args: EntriesImportArgs;
  readonly slices: readonly SliceRef[];
  readonly source: EntriesSource;
}

/**
 * The part of {@linkcode importEntriesFile} before the database: opens the file (a FileError
 * when it cannot be read) and finds the slices of its entries.
 */
export async function prepareEntriesImport(
  args: EntriesImportArgs,
): Promise<PreparedEntriesImport> {
  const source = await openSource(args);
  return { args, source, slices: await slicesOfSource(source) };
}

/**
 * The import inside a transaction the caller holds and commits: locks the slices, writes the
 * entries and their emissions. With `strict` and a bad line it throws
 * {@linkcode EntriesImportRejected}: the caller must roll back.
 */
export function importPreparedEntries(
  tx: Queryable,
  prepared: PreparedEntriesImport,
): Promise<EntriesImportResult> {
  return importLines(tx, prepared.args, prepared.source, prepared.slices);
}
