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
   * Set when the row cannot be imported as it stands (more or fewer cells than the header, a
   * cell the database cannot store): report it as a row error and skip the row.
   */
  readonly problem?: CellProblem;
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
    const records: string[][] = parse(text, {
      relax_column_count: true,
      skip_empty_lines: true,
      bom: true,
      record_delimiter: ["\r\n", "\n", "\r"],
    });
    return { records, lines: recordStartLines(text) };
  } catch (error) {
    throw new FileError(file, `is not valid CSV: ${(error as Error).message}`);
  }
}

/**
 * The records of a text without a quote character whose lines all end alike (`\n`, or `\r\n`),
 * as csv-parse reads them: split at line ends and commas, empty lines skipped. Undefined for any
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
    if (line === "") continue;
    records.push(line.split(","));
    lines.push(i + 1);
  }
  return { records, lines };
}

function tableOf(file: string, { records, lines }: Records): CsvTable {
  if (records.length === 0) throw new FileError(file, "is empty (expected a header row)");
  const header = records[0].map((h) => h.trim());
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const name of header) {
    if (name && seen.has(name)) repeated.add(name);
    seen.add(name);
  }
  const rows: CsvRow[] = [];
  for (let index = 1; index < records.length; index++) {
    const record = records[index];
    if (record.every((cell) => cell.trim() === "")) continue;
    const cells: Record<string, string> = {};
    let problem: CellProblem | undefined;
    for (let i = 0; i < header.length; i++) {
      const name = header[i];
      if (!name) continue;
      const cell = (record[i] ?? "").trim();
      cells[name] = cell;
      if (!problem) {
        const wrong = cellProblem(cell);
        if (wrong) problem = { column: name, message: wrong };
      }
    }
    problem = countProblem(record.length, header.length) ?? problem;
    rows.push({
      row: rows.length + 1,
      line: lines[index] ?? index + 1,
      cells,
      ...(problem ? { problem } : {}),
    });
  }
  return { header, rows, ...(repeated.size ? { repeated: [...repeated] } : {}) };
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

// The file line each non-empty record starts on. csv-parse's own line counter drifts after
// quoted newlines in CRLF files, so the lines are counted here: a record ends at a line end
// outside quotes, and empty lines (skipped by the parser) hold no record.
function recordStartLines(text: string): number[] {
  const starts: number[] = [];
  let line = 1;
  let quoted = false;
  let atRecordStart = true;
  // A leading BOM is no content: csv-parse drops it, and a line holding only it is empty.
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const c = text[i];
    if (atRecordStart && c !== "\n" && c !== "\r") {
      starts.push(line);
      atRecordStart = false;
    }
    if (c === '"') quoted = !quoted;
    else if (c === "\n" || (c === "\r" && text[i + 1] !== "\n")) {
      // A line ends at \n, \r\n or a lone \r (as editors count lines).
      line++;
      if (!quoted) atRecordStart = true;
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
