// The one CSV reader: strict UTF-8, optional BOM dropped, one header row, cells trimmed; a row
// the database could not store, or whose cells do not line up with the header, is a row problem.
import { parse } from "csv-parse/sync";
import { FileError, type ImportFileOptions, readImportFile } from "./file.ts";

export { FileError } from "./file.ts";

/** The largest cell an import accepts, in UTF-8 bytes: factor and reference cells are short. */
export const MAX_CELL_BYTES = 64 * 1024;

/**
 * The largest identity (factor classification, location natural key, building and room name) an
 * import accepts, in UTF-8 bytes: PostgreSQL cannot index a key above about 2.7 kB.
 */
export const MAX_KEY_BYTES = 2000;

/** What is wrong with a row as a whole, or with one of its cells. */
export interface CellProblem {
  readonly column?: string;
  readonly message: string;
}

/**
 * One data row: its 1-based number (header not counted), the file line it starts on (1-based,
 * header and blank lines counted: what an editor shows) and its cells by header name.
 */
export interface CsvRow {
  readonly row: number;
  readonly line: number;
  readonly cells: Readonly<Record<string, string>>;
  /**
   * Set when the row cannot be imported as it stands (more or fewer cells than the header):
   * report it as a row error and skip the row.
   */
  readonly problem?: CellProblem;
  /**
   * The cells the database could not store ({@linkcode cellProblem}), in header order: a row
   * error when the importer reads the column ({@linkcode rowProblem}), nothing when it ignores it.
   */
  readonly cellProblems?: readonly CellProblem[];
}

/**
 * Why a row cannot be imported as it stands, or undefined: its cell count, else its first cell
 * the database could not store among the columns the importer reads (every column when `read`
 * is not given).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCsv, rowProblem } from "./csv.ts";
 * const [row] = parseCsv("x.csv", "name,note\nLaptop,a\u0000b\n").rows;
 * assert.equal(rowProblem(row, ["name"]), undefined);
 * assert.equal(rowProblem(row)?.column, "note");
 * ```
 */
export function rowProblem(row: CsvRow, read?: readonly string[]): CellProblem | undefined {
  return row.problem ??
    row.cellProblems?.find((p) => !read || (p.column !== undefined && read.includes(p.column)));
}

/** A parsed CSV file. */
export interface CsvTable {
  /** Header names, trimmed, in file order. */
  readonly header: readonly string[];
  readonly rows: readonly CsvRow[];
  /**
   * Names the header gives more than once (a row's cell is the last one's). An importer refuses
   * the file when it reads such a column ({@linkcode requireColumns}), and ignores it otherwise.
   */
  readonly repeated?: readonly string[];
}

/**
 * Decodes bytes as UTF-8, dropping a leading BOM; invalid UTF-8 is a FileError naming the line and
 * the byte where it starts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeUtf8 } from "./csv.ts";
 * const latin1 = new Uint8Array([0x61, 0x0a, 0x5a, 0xfc, 0x72, 0x0a]); // "a\nZ\xfcr\n"
 * assert.throws(() => decodeUtf8("x.csv", latin1), /line 2, byte 4 \(0xfc\)/);
 * ```
 */
export function decodeUtf8(file: string, bytes: Uint8Array): string {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
    return text;
  } catch {
    throw new FileError(file, `is not valid UTF-8 text${invalidUtf8At(bytes)}`);
  }
}

/**
 * The FileError for a file found not to be UTF-8 while it was read in pieces: read whole again to
 * say where (the error path only).
 */
export async function notUtf8(file: string, path: string): Promise<FileError> {
  let where = "";
  try {
    where = invalidUtf8At(await Deno.readFile(path));
  } catch {
    // The file is gone or unreadable now: the error says no more than that it is not UTF-8.
  }
  return new FileError(file, `is not valid UTF-8 text${where}`);
}

/**
 * Where the first byte that is not UTF-8 lies, as `: line N, byte B (0xXX) ...` (B counted from 1
 * in the file), or "" when the bytes are valid.
 */
function invalidUtf8At(bytes: Uint8Array): string {
  const at = firstInvalidUtf8(bytes);
  if (at === undefined) return "";
  const line = lineAtByte(bytes, at);
  const hex = bytes[at].toString(16).padStart(2, "0");
  return `: line ${line}, byte ${at + 1} (0x${hex}) does not start a UTF-8 character ` +
    `(save the file as UTF-8)`;
}

// The 1-based line the byte at `offset` is on: \n, \r\n and a lone \r each end a line.
function lineAtByte(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < Math.min(offset, bytes.length); i++) {
    if (bytes[i] === 0x0a || (bytes[i] === 0x0d && bytes[i + 1] !== 0x0a)) line++;
  }
  return line;
}

/**
 * Decodes a file read in pieces as UTF-8 (a leading BOM dropped); a piece that is not UTF-8
 * rejects with {@linkcode notUtf8}'s error, which reads `path` again to say where. `decode()`
 * without a piece ends the file.
 */
export function utf8Pieces(file: string, path: string): (piece?: Uint8Array) => Promise<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  return async (piece) => {
    try {
      return piece ? decoder.decode(piece, { stream: true }) : decoder.decode();
    } catch {
      throw await notUtf8(file, path);
    }
  };
}

// The offset of the first byte of the first sequence that is not well-formed UTF-8 (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF), or undefined.
function firstInvalidUtf8(bytes: Uint8Array): number | undefined {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    const [length, low, high] = b >= 0xc2 && b <= 0xdf
      ? [2, 0x80, 0xbf]
      : b === 0xe0
      ? [3, 0xa0, 0xbf]
      : b === 0xed
      ? [3, 0x80, 0x9f]
      : b >= 0xe1 && b <= 0xef
      ? [3, 0x80, 0xbf]
      : b === 0xf0
      ? [4, 0x90, 0xbf]
      : b === 0xf4
      ? [4, 0x80, 0x8f]
      : b >= 0xf1 && b <= 0xf3
      ? [4, 0x80, 0xbf]
      : [0, 0, 0];
    if (length === 0 || i + length > bytes.length) return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (let k = 2; k < length; k++) {
      if (bytes[i + k] < 0x80 || bytes[i + k] > 0xbf) return i;
    }
    i += length;
  }
  return undefined;
}

/**
 * Parses CSV text: comma separated, `"` quoting with doubled quotes, quoted cells may hold commas
 * and newlines; the header row names the columns; cells and names are trimmed. Lines that are
 * empty or hold only blank cells are skipped. A row with more or fewer cells than the header,
 * or with a cell the database cannot store ({@linkcode cellProblem}), carries a `problem`.
 *
 * @example
 * ```ts
 * import { parseCsv } from "./csv.ts";
 * import assert from "node:assert/strict";
 * const table = parseCsv("x.csv", "a, b\n 1 ,2\n\n\"x\ny\",3\n4,0,5\n");
 * assert.equal(table.rows[0].cells.a, "1");
 * assert.deepEqual(table.rows.map((r) => [r.row, r.line]), [[1, 2], [2, 4], [3, 6]]);
 * assert.match(table.rows[2].problem?.message ?? "", /has 3 cells but the header has 2 columns/);
 * ```
 */
export function parseCsv(file: string, text: string): CsvTable {
  return tableOf(file, plainRecords(text) ?? fullRecords(file, text));
}

/**
 * {@linkcode parseCsv} through csv-parse whatever the text holds: the reference that the
 * quote-free fast path is tested against.
 */
export function parseCsvFully(file: string, text: string): CsvTable {
  return tableOf(file, fullRecords(file, text));
}

/** A file's records (header first) and the file line each starts on. */
interface Records {
  readonly records: readonly (readonly string[])[];
  readonly lines: readonly number[];
}

function fullRecords(file: string, text: string): Records {
  try {
    // Cell counts are checked row by row below: a short or long row is a row error, not a
    // file error, and never silently padded or cut.
    // Any line end ends a record, whatever the first line ended with: a file edited on two
    // systems may mix them (csv-parse would otherwise take the first one's for the whole file).
    // Blanks around a quoted value are left out as around any other (cells are trimmed).
    const records: string[][] = parse(text, CSV_OPTIONS);
    return { records, lines: recordStartLines(text) };
  } catch (error) {
    throw syntaxError(file, text, error);
  }
}

const CSV_OPTIONS = {
  relax_column_count: true,
  // Every line is a record (an empty one is [""]), so that records and their lines stay in step;
  // blank records are skipped when the table is built.
  skip_empty_lines: false,
  bom: true,
  trim: true,
  record_delimiter: ["\r\n", "\n", "\r"],
};

/**
 * A file error for text csv-parse refused, naming the line (counted here: csv-parse's own count
 * drifts after quoted newlines in CRLF files) and the column by its header name.
 */
/** A text that is not CSV (a stray quote, a quoted value never closed), naming where. */
export class CsvSyntaxError extends FileError {
  override name = "CsvSyntaxError";
}

function syntaxError(file: string, text: string, error: unknown): FileError {
  const { code, message, bytes, column, records } = error as {
    code?: string;
    message?: string;
    bytes?: number;
    column?: number | string;
    records?: number;
  };
  if (typeof bytes !== "number") return new CsvSyntaxError(file, `is not valid CSV: ${message}`);
  // `bytes` is where the field at fault starts (its delimiter), in UTF-8 bytes of the text.
  const line = lineAtByte(new TextEncoder().encode(text), bytes);
  let name: string | undefined;
  if (typeof column === "number" && (records ?? 0) > 0) {
    try {
      // The records before the one at fault read well; the header is the first holding something.
      const before = parse(text, { ...CSV_OPTIONS, to: records }) as string[][];
      const header = before.find((record) => !isBlank(record));
      name = header?.[column]?.trim() || undefined;
    } catch {
      // The header is readable whenever a later record is at fault; if not, no name.
    }
  }
  const what = code === "INVALID_OPENING_QUOTE"
    ? "a quote inside a value that does not start with one (quote the whole value and double " +
      'each quote inside it: "a ""b"" c")'
    : code === "CSV_INVALID_CLOSING_QUOTE"
    ? "text after the closing quote of a quoted value (a quote inside a quoted value is doubled)"
    : code === "CSV_QUOTE_NOT_CLOSED"
    ? "a quoted value that is never closed (its closing quote is missing)"
    : (message ?? "unreadable").replace(/ at line \d+/, "");
  return new CsvSyntaxError(
    file,
    `is not valid CSV: line ${line}${name ? `, column ${name}` : ""}: ${what}`,
  );
}

/**
 * The records of a text without a quote character whose lines all end alike (`\n`, or `\r\n`),
 * as csv-parse reads them: split at line ends and commas, an empty line an empty record. Undefined for any
 * other text, which goes to csv-parse. Most factor and entry files are such texts, and csv-parse
 * converts every cell through a buffer: for 50,000 factor rows this split takes about 30 ms where
 * csv-parse took 100 to 150 ms.
 */
function plainRecords(text: string): Records | undefined {
  if (text.includes('"')) return undefined;
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const crlf = body.includes("\r");
  const lineTexts = body.split(crlf ? "\r\n" : "\n");
  const records: string[][] = [];
  const lines: number[] = [];
  for (let i = 0; i < lineTexts.length; i++) {
    const line = lineTexts[i];
    if (crlf && (line.includes("\r") || line.includes("\n"))) return undefined;
    // The text after the last line end is no line (csv-parse reads no record there).
    if (line === "" && i === lineTexts.length - 1) continue;
    records.push(line.split(","));
    lines.push(i + 1);
  }
  return { records, lines };
}

function tableOf(file: string, { records, lines }: Records): CsvTable {
  // The header is the first line holding something: a line of blanks and commas before it is
  // skipped, as it would be after it.
  const start = records.findIndex((record) => !isBlank(record));
  if (start < 0) throw new FileError(file, "is empty (expected a header row)");
  const header = records[start].map((h) => h.trim());
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const name of header) {
    if (name && seen.has(name)) repeated.add(name);
    seen.add(name);
  }
  const rows: CsvRow[] = [];
  for (let index = start + 1; index < records.length; index++) {
    const record = records[index];
    if (isBlank(record)) continue;
    const cells: Record<string, string> = {};
    let cellProblems: CellProblem[] | undefined;
    for (let i = 0; i < header.length; i++) {
      const name = header[i];
      if (!name) continue;
      const cell = (record[i] ?? "").trim();
      // Deno has no `__proto__` accessor: a column of that name is a property like any other.
      cells[name] = cell;
      const wrong = cellProblem(cell);
      if (wrong) (cellProblems ??= []).push({ column: name, message: wrong });
    }
    const problem = countProblem(record.length, header.length);
    rows.push({
      row: rows.length + 1,
      line: lines[index] ?? index + 1,
      cells,
      ...(problem ? { problem } : {}),
      ...(cellProblems ? { cellProblems } : {}),
    });
  }
  return { header, rows, ...(repeated.size ? { repeated: [...repeated] } : {}) };
}

function isBlank(record: readonly string[]): boolean {
  return record.every((cell) => cell.trim() === "");
}

function countProblem(cells: number, columns: number): CellProblem | undefined {
  if (cells === columns) return undefined;
  const counts = `has ${cells} cell${cells === 1 ? "" : "s"} but the header has ${columns} column${
    columns === 1 ? "" : "s"
  }`;
  return {
    message: cells > columns
      ? `${counts}: a value holding a comma must be quoted, and numbers take a decimal point ` +
        `(0.2, not 0,2)`
      : `${counts}: a cell is missing (a blank cell still needs its comma)`,
  };
}

/**
 * The UTF-8 length of a string in bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { utf8Length } from "./csv.ts";
 * assert.equal(utf8Length("Zürich"), 7);
 * ```
 */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code < 0xdc00) {
      bytes += 4; // a surrogate pair: one 4-byte character
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Why the database could not store a cell, or undefined when it can: PostgreSQL text and JSON
 * cannot hold a NUL character, and a cell above {@linkcode MAX_CELL_BYTES} is refused here
 * rather than by a raw server error after the fact.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellProblem } from "./csv.ts";
 * assert.equal(cellProblem("Laptop"), undefined);
 * assert.match(cellProblem("a\u0000b") ?? "", /NUL character/);
 * assert.match(cellProblem("x".repeat(70_000)) ?? "", /70000 bytes/);
 * ```
 */
export function cellProblem(cell: string): string | undefined {
  if (cell.includes("\u0000")) {
    return "contains a NUL character (\\0), which the database cannot store";
  }
  // Each UTF-16 unit is at most 3 UTF-8 bytes: only long cells need counting.
  if (cell.length * 3 > MAX_CELL_BYTES) {
    const bytes = utf8Length(cell);
    if (bytes > MAX_CELL_BYTES) {
      return `is ${bytes} bytes long, above the limit of ${MAX_CELL_BYTES} bytes for a cell`;
    }
  }
  return undefined;
}

/**
 * Why an identity is too long for the database's unique index, or undefined when it fits
 * ({@linkcode MAX_KEY_BYTES}). `what` names the identity in the message.
 */
export function keyProblem(what: string, key: string): string | undefined {
  const bytes = utf8Length(key);
  return bytes > MAX_KEY_BYTES
    ? `${what} is ${bytes} bytes long, above the limit of ${MAX_KEY_BYTES} bytes for an ` +
      `identity (the database indexes it)`
    : undefined;
}

// The file line each record starts on (every line outside quotes starts one, an empty line too).
// csv-parse's own line counter drifts after quoted newlines in CRLF files, so the lines are counted
// here: a record ends at a line end outside quotes.
function recordStartLines(text: string): number[] {
  const starts: number[] = [];
  // A leading BOM is no content: csv-parse drops it.
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  if (i >= text.length) return starts;
  starts.push(1);
  let line = 1;
  let quoted = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === "\n" || (c === "\r" && text[i + 1] !== "\n")) {
      // A line ends at \n, \r\n or a lone \r (as editors count lines); the text after the last
      // line end starts no record.
      line++;
      if (!quoted && i + 1 < text.length) starts.push(line);
    }
  }
  return starts;
}

/**
 * Reads a CSV file from disk (regular file within the size limit → strict UTF-8 → table).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readCsvFile } from "./csv.ts";
 * const path = await Deno.makeTempFile({ suffix: ".csv" });
 * await Deno.writeTextFile(path, "year,currency\n2025,chf\n");
 * const table = await readCsvFile(path);
 * assert.deepEqual(table.rows[0].cells, { year: "2025", currency: "chf" });
 * await Deno.remove(path);
 * ```
 */
export async function readCsvFile(
  path: string,
  options: ImportFileOptions = {},
): Promise<CsvTable> {
  return parseCsv(path, decodeUtf8(path, await readImportFile(path, options)));
}

/**
 * Throws a FileError naming every required column missing from the header (a header of one
 * column holding `;` or a tab is said to look semicolon- or tab-separated), or a column the
 * importer reads that the header names twice: any column, or only those of `read` when the
 * importer ignores the others.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCsv, requireColumns } from "./csv.ts";
 * const table = parseCsv("x.csv", "name;ef\nLaptop;0,2\n");
 * assert.throws(() => requireColumns("x.csv", table, ["name", "ef"]), /looks semicolon-separated/);
 * const noted = parseCsv("y.csv", "name,ef,note,note\nLaptop,0.2,a,b\n");
 * requireColumns("y.csv", noted, ["name", "ef"], ["name", "ef"]); // an unread column twice
 * assert.throws(() => requireColumns("y.csv", noted, ["name"]), /names column "note" twice/);
 * ```
 */
export function requireColumns(
  file: string,
  table: CsvTable,
  required: readonly string[],
  read?: readonly string[],
): void {
  const twice = table.repeated?.find((name) => !read || read.includes(name));
  if (twice !== undefined) {
    throw new FileError(
      file,
      `header names column "${twice}" twice (expected each column once: which cell is meant?)`,
    );
  }
  const missing = required.filter((c) => !table.header.includes(c));
  if (missing.length) {
    const [only] = table.header;
    const separator = table.header.length !== 1
      ? undefined
      : only.includes(";")
      ? "semicolon"
      : only.includes("\t")
      ? "tab"
      : undefined;
    throw new FileError(
      file,
      `missing required column${missing.length > 1 ? "s" : ""} ${missing.join(", ")}${
        separator
          ? ` (the header is one column ${
            JSON.stringify(only.length > 80 ? `${only.slice(0, 80)}...` : only)
          }: the file looks ${separator}-separated; save it with commas between columns)`
          : ""
      }`,
    );
  }
}

/**
 * A bad row: its 1-based data-row number (header not counted), the file line it starts on, the
 * column at fault when there is one, and what is wrong.
 */
export interface RowError {
  readonly row: number;
  readonly line: number;
  readonly column?: string;
  readonly message: string;
}

/**
 * A row error as a person reads it: `line N[, column C]: message`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeRowError } from "./csv.ts";
 * assert.equal(
 *   describeRowError({ row: 1, line: 2, column: "ef", message: "is blank" }),
 *   "line 2, column ef: is blank",
 * );
 * ```
 */
export function describeRowError(error: RowError): string {
  return `line ${error.line}${error.column ? `, column ${error.column}` : ""}: ${error.message}`;
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
