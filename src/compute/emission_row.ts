// The emission rows the compute produces and the rematch compares and writes.

/** One computed emission row (before it is stored). */
export interface EmissionRow {
  readonly emissionTypeId: number;
  readonly primaryFactorId: number | null;
  readonly kgCo2eq: number;
  readonly additionalValue: number | null;
  readonly scope: number | null;
  readonly meta: Record<string, unknown>;
  /**
   * The meta's jsonb text when the row was read as stored (`meta::text`): compared as is, and
   * parsed into `meta` only when needed.
   */
  readonly metaText?: string;
}

/**
 * True when two rows need no rewrite: same fields and the same meta as JSON (key order aside).
 * Floats compare bit for bit. Meta is compared by its jsonb text first (cheap, and what a stored
 * row read as `meta::text` already is); only texts that differ are compared value by value, so a
 * stored meta written by other means (`1.0` for `1`) still counts as the same.
 */
export function sameRow(a: EmissionRow, b: EmissionRow): boolean {
  return a.emissionTypeId === b.emissionTypeId && a.primaryFactorId === b.primaryFactorId &&
    a.kgCo2eq === b.kgCo2eq && a.additionalValue === b.additionalValue && a.scope === b.scope &&
    (metaText(a) === metaText(b) || sameJson(a.meta, b.meta));
}

/** Equality as JSON would serialise: key order ignored, undefined-valued keys absent. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((value, i) => sameJson(value, b[i]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left).filter((k) => left[k] !== undefined);
  if (keys.length !== Object.keys(right).filter((k) => right[k] !== undefined).length) return false;
  return keys.every((k) => sameJson(left[k], right[k]));
}

// The jsonb text of each computed meta object, made once: it serves the comparison and the write.
const metaTexts = new WeakMap<object, string>();

/**
 * The row's meta as PostgreSQL prints it back from jsonb: the text a stored row read as
 * `meta::text` carries ({@linkcode EmissionRow.metaText}), else that of its meta object (cached).
 */
export function metaText(row: EmissionRow): string {
  if (row.metaText !== undefined) return row.metaText;
  let text = metaTexts.get(row.meta);
  if (text === undefined) {
    text = jsonbText(row.meta);
    metaTexts.set(row.meta, text);
  }
  return text;
}

/**
 * The text PostgreSQL prints for a value stored as jsonb (`value::jsonb::text`), so that a
 * computed value and a stored one can be compared as strings: object keys ordered by UTF-8 length
 * then bytes, `", "` and `": "` between items, numbers without exponent (as `numeric` prints them),
 * strings escaped as `JSON.stringify` does. Undefined members are left out, as `JSON.stringify`
 * does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jsonbText } from "./emission_row.ts";
 * assert.equal(jsonbText({ kwh: 1.5e-7, id: 3, tags: ["a"] }), '{"id": 3, "kwh": 0.00000015, "tags": ["a"]}');
 * ```
 */
export function jsonbText(value: unknown): string {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "number":
      return numberText(value);
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "object":
      break;
    default:
      return "null";
  }
  const toJson = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJson === "function") return jsonbText(toJson.call(value));
  if (Array.isArray(value)) {
    let text = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) text += ", ";
      const item = value[i];
      text += typeof item === "function" || typeof item === "symbol" ? "null" : jsonbText(item);
    }
    return text + "]";
  }
  const record = value as Record<string, unknown>;
  const keys: string[] = [];
  let ascii = true;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    const v = record[key];
    if (v === undefined || typeof v === "function" || typeof v === "symbol") continue;
    keys.push(key);
    if (ascii) ascii = isAscii(key);
  }
  keys.sort(ascii ? compareAsciiKeys : compareUtf8Keys);
  let text = "{";
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) text += ", ";
    text += JSON.stringify(keys[i]) + ": " + jsonbText(record[keys[i]]);
  }
  return text + "}";
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

// jsonb orders keys by byte length, then bytewise. For ASCII keys that is length, then code units.
function compareAsciiKeys(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

const utf8 = new TextEncoder();

// UTF-8 byte order is code point order, which UTF-16 code unit order gets wrong above U+FFFF.
function compareUtf8Keys(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

// numeric prints the digits it was given without an exponent; JSON's shortest form is the
// digits, so only an exponent needs writing out.
function numberText(n: number): string {
  if (!Number.isFinite(n)) return "null";
  const text = String(n);
  const e = text.indexOf("e");
  if (e < 0) return text;
  const negative = text[0] === "-";
  const mantissa = text.slice(negative ? 1 : 0, e);
  const exponent = Number(text.slice(e + 1));
  const point = mantissa.indexOf(".");
  const digits = point < 0 ? mantissa : mantissa.slice(0, point) + mantissa.slice(point + 1);
  // Position of the decimal point counted from the start of `digits`.
  const at = (point < 0 ? mantissa.length : point) + exponent;
  let plain: string;
  if (at <= 0) plain = "0." + "0".repeat(-at) + digits;
  else if (at >= digits.length) plain = digits + "0".repeat(at - digits.length);
  else plain = digits.slice(0, at) + "." + digits.slice(at);
  return negative ? "-" + plain : plain;
}

/** A stored row that can be rewritten in place. */
export interface IdentifiedRow extends EmissionRow {
  readonly id: number;
}

/**
 * How to bring stored rows to the computed ones: `null` when the shapes differ (the entry's rows
 * are replaced), else the in-place updates (empty when the rows, compared as multisets, are
 * already right). The shape is the number of rows of each emission type: rows are paired within
 * a type, identical rows first, so a change of shape with the same total (e.g. {food, waste}
 * becoming {food, food}) is a replacement too.
 */
export function planRowUpdates(
  stored: readonly IdentifiedRow[],
  computed: readonly EmissionRow[],
): { id: number; row: EmissionRow }[] | null {
  if (stored.length !== computed.length) return null;
  if (stored.length === 1) {
    // Most entries have one row: no grouping needed.
    const [old] = stored;
    const [row] = computed;
    if (old.emissionTypeId !== row.emissionTypeId) return null;
    return sameRow(old, row) ? [] : [{ id: old.id, row }];
  }
  const storedByType = groupByType(stored);
  const computedByType = groupByType(computed);
  if (storedByType.size !== computedByType.size) return null;
  for (const [type, rows] of computedByType) {
    if (storedByType.get(type)?.length !== rows.length) return null;
  }
  const updates: { id: number; row: EmissionRow }[] = [];
  for (const [type, rows] of computedByType) {
    const unpaired = [...storedByType.get(type)!];
    const changed = rows.filter((row) => {
      const same = unpaired.findIndex((old) => sameRow(old, row));
      if (same < 0) return true;
      unpaired.splice(same, 1);
      return false;
    });
    // Equal counts per type: exactly one stored row is left for each changed row.
    changed.forEach((row, i) => updates.push({ id: unpaired[i].id, row }));
  }
  return updates;
}

function groupByType<T extends EmissionRow>(rows: readonly T[]): Map<number, T[]> {
  const byType = new Map<number, T[]>();
  for (const row of rows) {
    const list = byType.get(row.emissionTypeId);
    if (list) list.push(row);
    else byType.set(row.emissionTypeId, [row]);
  }
  return byType;
}
