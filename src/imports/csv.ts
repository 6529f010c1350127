// The one CSV reader: strict UTF-8, optional BOM dropped, one header row, cells trimmed.
import { parse } from "csv-parse/sync";

/** A file-level problem: nothing of the file may be written. */
export class FileError extends Error {
  override name = "FileError";
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
  }
}

/**
 * One data row: its 1-based number (header not counted), the file line it starts on (1-based,
 * header and blank lines counted: what an editor shows) and its cells by header name.
 */
export interface CsvRow {
  readonly row: number;
  readonly line: number;
  readonly cells: Readonly<Record<string, string>>;
}

/** A parsed CSV file. */
export interface CsvTable {
  /** Header names, trimmed, in file order. */
  readonly header: readonly string[];
  readonly rows: readonly CsvRow[];
}

/** Decodes bytes as UTF-8, dropping a leading BOM; invalid UTF-8 is a FileError. */
export function decodeUtf8(file: string, bytes: Uint8Array): string {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
    return text;
  } catch {
    throw new FileError(file, "is not valid UTF-8 text");
  }
}

/**
 * Parses CSV text: comma separated, `"` quoting with doubled quotes, quoted cells may hold commas
 * and newlines; the header row names the columns; cells and names are trimmed.
 *
 * @example
 * ```ts
 * import { parseCsv } from "./csv.ts";
 * import assert from "node:assert/strict";
 * const table = parseCsv("x.csv", "a, b\n 1 ,2\n\n\"x\ny\",3\n");
 * assert.equal(table.rows[0].cells.a, "1");
 * assert.deepEqual(table.rows.map((r) => [r.row, r.line]), [[1, 2], [2, 4]]);
 * ```
 */
export function parseCsv(file: string, text: string): CsvTable {
  let records: string[][];
  try {
    records = parse(text, { relax_column_count: true, skip_empty_lines: true, bom: true });
  } catch (error) {
    throw new FileError(file, `is not valid CSV: ${(error as Error).message}`);
  }
  if (records.length === 0) throw new FileError(file, "is empty (expected a header row)");
  const header = records[0].map((h) => h.trim());
  const seen = new Set<string>();
  for (const name of header) {
    if (name && seen.has(name)) throw new FileError(file, `header names column "${name}" twice`);
    seen.add(name);
  }
  const lines = recordStartLines(text);
  const rows = records.slice(1).map((record, index) => {
    const cells: Record<string, string> = {};
    header.forEach((name, i) => {
      if (name) cells[name] = (record[i] ?? "").trim();
    });
    return { row: index + 1, line: lines[index + 1] ?? index + 2, cells };
  });
  return { header, rows };
}

// The file line each non-empty record starts on. csv-parse's own line counter drifts after
// quoted newlines in CRLF files, so the lines are counted here: a record ends at a newline
// outside quotes, and empty lines (skipped by the parser) hold no record.
function recordStartLines(text: string): number[] {
  const starts: number[] = [];
  let line = 1;
  let quoted = false;
  let atRecordStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (atRecordStart && c !== "\n" && !(c === "\r" && text[i + 1] === "\n")) {
      starts.push(line);
      atRecordStart = false;
    }
    if (c === '"') quoted = !quoted;
    else if (c === "\n") {
      line++;
      if (!quoted) atRecordStart = true;
    }
  }
  return starts;
}

/** Reads a CSV file from disk (bytes → strict UTF-8 → table). */
export async function readCsvFile(path: string): Promise<CsvTable> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new FileError(path, `cannot be read: ${(error as Error).message}`);
  }
  return parseCsv(path, decodeUtf8(path, bytes));
}

/** Throws a FileError naming every required column missing from the header. */
export function requireColumns(file: string, table: CsvTable, required: readonly string[]): void {
  const missing = required.filter((c) => !table.header.includes(c));
  if (missing.length) {
    throw new FileError(
      file,
      `missing required column${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`,
    );
  }
}

/** A bad row: its 1-based number (header not counted), the column at fault when there is one, and
 * what is wrong. */
export interface RowError {
  readonly row: number;
  readonly column?: string;
  readonly message: string;
}

/** At most this many row errors are listed; the counts count them all. */
export const MAX_LISTED_ROW_ERRORS = 100;

/** Collects row errors: all counted, the first {@linkcode MAX_LISTED_ROW_ERRORS} kept. */
export class RowErrorList {
  readonly listed: RowError[] = [];
  count = 0;
  add(error: RowError): void {
    this.count++;
    if (this.listed.length < MAX_LISTED_ROW_ERRORS) this.listed.push(error);
  }
}
