// Reference data files (spec/factors-csv.md §4): locations, building rooms and exchange rates, as
// header CSV or JSON lines, validated row by row into typed rows. Parsing is pure (text in, rows
// and row errors out); readReferenceFile is the one thin reading edge; writing lives in
// src/db/reference.ts.
import { parseDecimal } from "../text/decimal.ts";
import { z } from "zod";
import {
  cellProblem,
  type CsvRow,
  decodeUtf8,
  FileError,
  keyProblem,
  parseCsv,
  requireColumns,
  type RowError,
  RowErrorList,
  rowProblem,
} from "./csv.ts";
import { type ImportFileOptions, readImportFile } from "./file.ts";
import type { BuildingRoom, Location, ReferenceKind } from "../handlers/types.ts";
import { locationNaturalKey, rateKey, roomKey } from "../reference/natural_key.ts";
import { ROOM_TYPES } from "../reference/enums.ts";
import { MAX_YEAR, MIN_YEAR, yearProblem } from "../reference/years.ts";

/** A location as imported: everything but the database id, natural key derived. */
export type LocationRow = Omit<Location, "id">;

/** A building room as imported. */
export type RoomRow = BuildingRoom;

/** One exchange rate: the EUR value of one unit of `currency` in `year`. */
export interface RateRow {
  readonly year: number;
  /** ISO 4217 code, lower case. */
  readonly currency: string;
  readonly eurPerUnit: number;
}

/** The typed row of each reference kind. */
export interface ReferenceRows {
  locations: LocationRow;
  rooms: RoomRow;
  rates: RateRow;
}

/** The columns of each kind's file; a CSV header must name them all (cells may be blank). */
export const REFERENCE_COLUMNS: { readonly [K in ReferenceKind]: readonly string[] } = {
  locations: ["transport_mode", "name", "iata_code", "country_code", "latitude", "longitude"],
  rooms: ["building_name", "room_name", "room_type", "room_surface_square_meter"],
  rates: ["year", "currency", "eur_per_unit"],
};

/** A parsed reference file: its good rows and its row errors. */
export interface ReferenceFile<K extends ReferenceKind> {
  readonly kind: K;
  /** Valid rows, in file order, keys unique (a repeated key keeps its first row). */
  readonly rows: readonly ReferenceRows[K][];
  /** Data rows in the file (CSV rows or non-blank JSON lines). */
  readonly rowsRead: number;
  /** The first {@linkcode MAX_LISTED_ROW_ERRORS} problems, in row order. */
  readonly rowErrors: readonly RowError[];
  /** Every problem found; a row with two bad cells counts twice. */
  readonly rowErrorsCount: number;
}

/**
 * True when `file` is read as JSON lines (name ends in `.jsonl` or `.ndjson`), else CSV.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isJsonLinesFile } from "./reference_csv.ts";
 * assert.equal(isJsonLinesFile("rates.NDJSON"), true);
 * assert.equal(isJsonLinesFile("rates.csv"), false);
 * ```
 */
export function isJsonLinesFile(file: string): boolean {
  return /\.(jsonl|ndjson)$/i.test(file);
}

/**
 * Parses and validates a reference file's text. CSV: one header row naming every column of
 * {@linkcode REFERENCE_COLUMNS} (order free, unknown columns ignored), rows numbered from 1.
 * JSON lines: one object per line with the same field names (absent or null = blank, numbers
 * allowed), rows numbered by line. Bad rows become row errors; a file-level problem (not CSV,
 * missing columns, empty) throws {@linkcode FileError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReferenceText } from "./reference_csv.ts";
 * const parsed = parseReferenceText(
 *   "rates",
 *   "rates.csv",
 *   "year,currency,eur_per_unit\n2025,CHF,1.05\n2025,usd,0\n",
 * );
 * assert.deepEqual(parsed.rows, [{ year: 2025, currency: "chf", eurPerUnit: 1.05 }]);
 * assert.deepEqual(parsed.rowErrors, [{
 *   row: 2,
 *   line: 3,
 *   column: "eur_per_unit",
 *   message: 'expected a finite number > 0 (EUR per unit), got "0"',
 * }]);
 * ```
 */
export function parseReferenceText<K extends ReferenceKind>(
  kind: K,
  file: string,
  text: string,
): ReferenceFile<K> {
  const spec: KindSpec<ReferenceRows[K]> = KINDS[kind];
  const columns = REFERENCE_COLUMNS[kind];
  const errors = new RowErrorList();
  const { records, rowsRead } = isJsonLinesFile(file)
    ? readJsonLines(file, text, columns)
    : readCsv(file, text, columns);
  const rows: ReferenceRows[K][] = [];
  const firstOfKey = new Map<string, { row: number; line: number }>();
  for (const record of records) {
    const at = { row: record.row, line: record.line };
    const problem = rowProblem(record, columns);
    if (problem) {
      errors.add({ ...at, ...problem });
      continue;
    }
    const checked = spec.schema.safeParse(record.cells);
    if (!checked.success) {
      for (const issue of checked.error.issues) {
        const [column] = issue.path;
        errors.add({
          ...at,
          ...(typeof column === "string" ? { column } : {}),
          message: issue.message,
        });
      }
      continue;
    }
    const key = spec.key(checked.data);
    const tooLong = keyProblem(spec.keyName, key);
    if (tooLong) {
      errors.add({ ...at, column: spec.keyColumn, message: tooLong });
      continue;
    }
    const first = firstOfKey.get(key);
    if (first !== undefined) {
      errors.add({
        ...at,
        message: `repeats ${
          spec.describeKey(checked.data)
        } of row ${first.row} (line ${first.line}; row ${first.row} is kept)`,
      });
      continue;
    }
    firstOfKey.set(key, at);
    rows.push(checked.data);
  }
  return {
    kind,
    rows,
    rowsRead,
    rowErrors: errors.listed,
    rowErrorsCount: errors.count,
  };
}

/**
 * Reads a reference file from disk (a regular file within the size limit → strict UTF-8 →
 * {@linkcode parseReferenceText}); an unreadable, special or too large file is a
 * {@linkcode FileError}. The only I/O of this module.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readReferenceFile } from "./reference_csv.ts";
 * const path = await Deno.makeTempFile({ suffix: ".csv" });
 * await Deno.writeTextFile(path, "year,currency,eur_per_unit\n2025,eur,1\n");
 * const parsed = await readReferenceFile("rates", path);
 * assert.deepEqual(parsed.rows, [{ year: 2025, currency: "eur", eurPerUnit: 1 }]);
 * await Deno.remove(path);
 * ```
 */
export async function readReferenceFile<K extends ReferenceKind>(
  kind: K,
  path: string,
  options: ImportFileOptions = {},
): Promise<ReferenceFile<K>> {
  const bytes = await readImportFile(path, options);
  return parseReferenceText(kind, path, decodeUtf8(path, bytes));
}

// ---- validation of one row -------------------------------------------------------------------

interface KindSpec<R> {
  /** Validates a row's cells (all columns present, blank = ""). */
  readonly schema: z.ZodType<R>;
  /** The row's identity within its table. */
  readonly key: (row: R) => string;
  /** The identity as a person reads it, for duplicate errors. */
  readonly describeKey: (row: R) => string;
  /** The key as named when it is too long to index, and the column then blamed. */
  readonly keyName: string;
  readonly keyColumn: string;
}

/** A cell that parses to T, or undefined when the text is not a valid T. */
function cell<T>(expected: string, parse: (value: string) => T | undefined) {
  return z.string().transform((value, ctx): T => {
    if (value === "") {
      ctx.addIssue({ code: "custom", message: `is required: expected ${expected}` });
      return z.NEVER;
    }
    const parsed = parse(value);
    if (parsed === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `expected ${expected}, got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    return parsed;
  });
}

/** Like {@linkcode cell}, but a blank cell is null. */
function optionalCell<T>(expected: string, parse: (value: string) => T | undefined) {
  return z.string().transform((value, ctx): T | null => {
    if (value === "") return null;
    const parsed = parse(value);
    if (parsed === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `expected ${expected} or a blank cell, got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    return parsed;
  });
}

function number(min: number, max: number, { exclusiveMin = false } = {}) {
  return (value: string): number | undefined => {
    const n = parseDecimal(value);
    if (n === undefined || n > max || n < min || (exclusiveMin && n === min)) return undefined;
    return n === 0 ? 0 : n; // no -0
  };
}

function letters(length: number, letterCase: "upper" | "lower") {
  const pattern = new RegExp(`^[A-Za-z]{${length}}$`);
  return (value: string): string | undefined => {
    if (!pattern.test(value)) return undefined;
    return letterCase === "upper" ? value.toUpperCase() : value.toLowerCase();
  };
}

function oneOf<const T extends string>(values: readonly T[]) {
  return (value: string): T | undefined => values.find((v) => v === value.toLowerCase());
}

const text = (value: string): string => value;

const locationSchema = z.object({
  transport_mode: cell("plane or train", oneOf(["plane", "train"])),
  name: cell("the airport's or station's name", text),
  iata_code: optionalCell("a 3-letter IATA code", letters(3, "upper")),
  country_code: optionalCell("a 2-letter ISO 3166-1 country code", letters(2, "upper")),
  latitude: cell("a latitude in degrees from -90 to 90", number(-90, 90)),
  longitude: cell("a longitude in degrees from -180 to 180", number(-180, 180)),
}).transform((r): LocationRow => {
  const identity = {
    transportMode: r.transport_mode,
    name: r.name,
    iataCode: r.iata_code,
    countryCode: r.country_code,
  };
  return {
    ...identity,
    latitude: r.latitude,
    longitude: r.longitude,
    naturalKey: locationNaturalKey(identity),
  };
});

const roomSchema = z.object({
  building_name: cell("the building's name", text),
  room_name: cell("the room's name", text),
  room_type: optionalCell(`one of ${ROOM_TYPES.join(", ")}`, oneOf(ROOM_TYPES)),
  room_surface_square_meter: optionalCell("a surface in m² ≥ 0", number(0, Infinity)),
}).transform((r): RoomRow => ({
  buildingName: r.building_name,
  roomName: r.room_name,
  roomType: r.room_type,
  surfaceSquareMeter: r.room_surface_square_meter,
}));

const rateSchema = z.object({
  year: cell(
    `a year from ${MIN_YEAR} to ${MAX_YEAR}`,
    (value) => /^\d{4}$/.test(value) && !yearProblem(Number(value)) ? Number(value) : undefined,
  ),
  currency: cell("a 3-letter ISO 4217 currency code", letters(3, "lower")),
  eur_per_unit: cell(
    "a finite number > 0 (EUR per unit)",
    number(0, Infinity, { exclusiveMin: true }),
  ),
}).refine((r) => r.currency !== "eur" || r.eur_per_unit === 1, {
  // EUR is the unit every rate is in: the formulas take 1 for it and never read its row, so any
  // other value would be stored and ignored.
  path: ["eur_per_unit"],
  message: "the rate of eur is 1 by definition (EUR is the unit of every rate)",
}).transform((r): RateRow => ({ year: r.year, currency: r.currency, eurPerUnit: r.eur_per_unit }));

const KINDS: { readonly [K in ReferenceKind]: KindSpec<ReferenceRows[K]> } = {
  locations: {
    schema: locationSchema,
    key: (row) => row.naturalKey,
    describeKey: (row) => `natural key ${JSON.stringify(row.naturalKey)}`,
    keyName: "the natural key",
    keyColumn: "name",
  },
  rooms: {
    schema: roomSchema,
    key: (row) => roomKey(row.buildingName, row.roomName),
    describeKey: (row) =>
      `room ${JSON.stringify(row.roomName)} of building ${JSON.stringify(row.buildingName)}`,
    keyName: "building_name and room_name together",
    keyColumn: "room_name",
  },
  rates: {
    schema: rateSchema,
    key: (row) => rateKey(row.year, row.currency),
    describeKey: (row) => `the ${row.year} rate of ${row.currency}`,
    keyName: "the key",
    keyColumn: "currency",
  },
};

// ---- reading records ----------------------------------------------------------------------

/** Records to validate, and how many data rows the file holds (some may already be errors). */
interface Records {
  readonly records: readonly CsvRow[];
  readonly rowsRead: number;
}

function readCsv(file: string, text: string, columns: readonly string[]): Records {
  const table = parseCsv(file, text);
  requireColumns(file, table, columns, columns);
  return { records: table.rows, rowsRead: table.rows.length };
}

/** One record per non-blank line, cells as the CSV reader gives them (trimmed text, "" = blank). */
function readJsonLines(file: string, text: string, columns: readonly string[]): Records {
  const records: CsvRow[] = [];
  text.replace(/^\uFEFF/, "").split(/\r\n|\n|\r/).forEach((line, index) => {
    if (line.trim() !== "") records.push(jsonLineCells(index + 1, line, columns));
  });
  if (records.length === 0) {
    throw new FileError(file, "is empty (expected one JSON object per line)");
  }
  return { records, rowsRead: records.length };
}

/** A JSON line as a CSV row (its row and line are the file line), its `problem` set when bad. */
function jsonLineCells(row: number, line: string, columns: readonly string[]): CsvRow {
  const at = { row, line: row };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return {
      ...at,
      cells: {},
      problem: { message: `is not valid JSON: ${(error as Error).message}` },
    };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      ...at,
      cells: {},
      problem: { message: `expected a JSON object with fields ${columns.join(", ")}` },
    };
  }
  const object = value as Record<string, unknown>;
  const cells: Record<string, string> = {};
  let problem: { column: string; message: string } | undefined;
  for (const column of columns) {
    const field = object[column];
    if (field === undefined || field === null) cells[column] = "";
    else if (typeof field === "string") cells[column] = field.trim();
    else if (typeof field === "number") cells[column] = String(field);
    else {
      problem ??= {
        column,
        message: `expected a string or a number, got ${JSON.stringify(field)}`,
      };
      continue;
    }
    const wrong = cellProblem(cells[column]);
    if (wrong) problem ??= { column, message: wrong };
  }
  return { ...at, cells, ...(problem ? { problem } : {}) };
}
