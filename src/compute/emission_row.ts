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
   * The meta as text, when the row was read as stored: compared without being parsed, and
   * parsed into `meta` only when needed.
   */
  readonly metaText?: string;
}

/**
 * True when two rows need no rewrite: same fields and the same meta as JSON (key order aside).
 * Floats compare bit for bit. A row read as stored carries its meta as text (`metaText`): it is
 * compared with the other row's meta without being parsed into objects.
 */
export function sameRow(a: EmissionRow, b: EmissionRow): boolean {
  return sameButMeta(a, b) && sameMeta(a, b);
}

function sameButMeta(a: EmissionRow, b: EmissionRow): boolean {
  return a.emissionTypeId === b.emissionTypeId && a.primaryFactorId === b.primaryFactorId &&
    a.kgCo2eq === b.kgCo2eq && a.additionalValue === b.additionalValue && a.scope === b.scope;
}

function sameMeta(a: EmissionRow, b: EmissionRow): boolean {
  if (a.metaText !== undefined && b.metaText !== undefined) {
    return a.metaText === b.metaText || sameJson(a.meta, b.meta);
  }
  if (a.metaText !== undefined) return sameJsonText(b.meta, a.metaText);
  if (b.metaText !== undefined) return sameJsonText(a.meta, b.metaText);
  return sameJson(a.meta, b.meta);
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

/**
 * `sameJson(value, JSON.parse(text))`, without building the parsed value: the text is walked
 * against the value and the walk stops at the first difference. This is how a computed meta is
 * compared with the stored one read as text, for every entry of a slice, at little cost.
 * Malformed text is never the same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sameJsonText } from "./emission_row.ts";
 * assert.ok(sameJsonText({ kwh: 0.5, ids: [1, 2] }, '{"ids": [1, 2], "kwh": 0.50}'));
 * assert.ok(!sameJsonText({ kwh: 0.5 }, '{"kwh": 0.5, "extra": null}'));
 * ```
 */
export function sameJsonText(value: unknown, text: string): boolean {
  // Most metas are flat, and a stored one is usually printed exactly as the value would be: one
  // comparison of two texts then settles it. Any other text is walked against the value.
  if (flatJsonbText(value) === text) return true;
  const end = matchValue(value, text, skipSpace(text, 0));
  return end >= 0 && skipSpace(text, end) === text.length;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function skipSpace(text: string, at: number): number {
  let i = at;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

const sharedTexts = new WeakMap<object, string>();

/**
 * Marks a frozen JSON value that many rows share (a factor's `factors_used`): its text, as
 * PostgreSQL prints it back from jsonb, is built once, and {@linkcode sameJsonText} compares it
 * as one piece of text when the stored text holds it as printed. Returns the value.
 */
export function sharedJson<T extends object>(value: T): T {
  if (!sharedTexts.has(value)) sharedTexts.set(value, jsonbText(value));
  return value;
}

/** The text of a value shared with {@linkcode sharedJson}, or undefined. */
export function sharedJsonText(value: unknown): string | undefined {
  return typeof value === "object" && value !== null ? sharedTexts.get(value) : undefined;
}

/**
 * A value as PostgreSQL prints it from jsonb: keys by UTF-8 length then bytes, `, ` and `: `
 * between items, strings as `JSON.stringify` writes them (both escape the same characters of
 * well-formed text). Numbers too, which jsonb may print otherwise (`1e-7` as `0.0000001`): such
 * a text only fails to match as one piece. Text and null values print exactly, which is what a
 * factor's classification holds: its text is the factors' identity in their unique index.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jsonbText } from "./emission_row.ts";
 * assert.equal(
 *   jsonbText({ equipment_class: "Laptop", sub_class: null }),
 *   '{"sub_class": null, "equipment_class": "Laptop"}',
 * );
 * ```
 */
export function jsonbText(value: unknown): string {
  // A number JSON cannot hold gets a text no jsonb prints (it never matches).
  if (typeof value === "number" && !Number.isFinite(value)) return "\u0000";
  if (typeof value !== "object" || value === null) return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(jsonbText).join(", ")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort(jsonbKeyOrder);
  return `{${keys.map((k) => `${JSON.stringify(k)}: ${jsonbText(record[k])}`).join(", ")}}`;
}

/**
 * What {@linkcode jsonbText} gives for an object whose values are numbers, strings, booleans,
 * nulls or shared values ({@linkcode sharedJson}), undefined for any other value. Its keys are
 * sorted once for objects that come with the same keys as the one before (those the same code
 * builds). A stored text equal to it is the object's JSON, so equality proves sameness;
 * inequality proves nothing (jsonb may print a number otherwise). {@linkcode sameJsonText} tries
 * it first: for a flat meta printed back as stored, one comparison of two strings costs about a
 * quarter of the walk.
 */
export function flatJsonbText(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  const shape = shapeOf(record);
  if (shape === undefined) return undefined;
  let text = "{";
  let first = true;
  for (let i = 0; i < shape.keys.length; i++) {
    const printed = printedFlat(record[shape.keys[i]]);
    if (printed === null) continue;
    if (printed === undefined) return undefined;
    text += (first ? shape.firstKeys[i] : shape.nextKeys[i]) + printed;
    first = false;
  }
  return text + "}";
}

// A value of a flat object as jsonb prints it; null for an absent (undefined) one, undefined
// for one that is neither a finite number, a string, a boolean, null nor a shared value.
function printedFlat(item: unknown): string | null | undefined {
  switch (typeof item) {
    case "undefined":
      return null;
    case "number":
      return Number.isFinite(item) ? String(item) : undefined;
    case "string":
      return JSON.stringify(item);
    case "boolean":
      return item ? "true" : "false";
    default:
      return item === null ? "null" : sharedJsonText(item);
  }
}

/** An object's keys in jsonb order, each printed as it opens an item (first, or after one). */
interface Shape {
  readonly own: readonly string[];
  readonly keys: readonly string[];
  readonly firstKeys: readonly string[];
  readonly nextKeys: readonly string[];
}

// The shape of the last object seen: objects built by the same code come with the same keys in
// the same order, sorted and printed once.
let lastShape: Shape | undefined;

function shapeOf(record: Record<string, unknown>): Shape | undefined {
  const own = Object.keys(record);
  const last = lastShape;
  if (last && last.own.length === own.length) {
    let same = true;
    for (let i = 0; i < own.length && same; i++) same = own[i] === last.own[i];
    if (same) return last;
  }
  if (own.length > 64) return undefined;
  const keys = [...own].sort(jsonbKeyOrder);
  const printed = keys.map((k) => `${JSON.stringify(k)}: `);
  lastShape = { own, keys, firstKeys: printed, nextKeys: printed.map((k) => `, ${k}`) };
  return lastShape;
}

const utf8 = new TextEncoder();

function jsonbKeyOrder(a: string, b: string): number {
  // ASCII keys (every key the project writes) compare as their code units, without encoding.
  if (isAscii(a) && isAscii(b)) {
    if (a.length !== b.length) return a.length - b.length;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

// Where the JSON value at `at` ends when it equals `value`, else -1.
function matchValue(value: unknown, text: string, at: number): number {
  const shared = sharedJsonText(value);
  if (shared !== undefined && text.startsWith(shared, at)) return at + shared.length;
  switch (text.charCodeAt(at)) {
    case 0x7b: // {
      return typeof value === "object" && value !== null && !Array.isArray(value)
        ? matchObject(value as Record<string, unknown>, text, at)
        : -1;
    case 0x5b: // [
      return Array.isArray(value) ? matchArray(value, text, at) : -1;
    case QUOTE: {
      if (typeof value !== "string") return -1;
      const end = stringEnd(text, at);
      return end >= 0 && readString(text, at, end) === value ? end : -1;
    }
    case 0x74: // t
      return value === true && text.startsWith("true", at) ? at + 4 : -1;
    case 0x66: // f
      return value === false && text.startsWith("false", at) ? at + 5 : -1;
    case 0x6e: // n
      return value === null && text.startsWith("null", at) ? at + 4 : -1;
    default: {
      if (typeof value !== "number") return -1;
      let end = at;
      while (end < text.length && isNumberChar(text.charCodeAt(end))) end++;
      if (end === at) return -1;
      // A small integer's text is cached by the engine: compared in place, nothing parsed.
      if ((value | 0) === value && !Object.is(value, -0)) {
        const printed = String(value);
        if (printed.length === end - at && text.startsWith(printed, at)) return end;
      }
      return Number(text.slice(at, end)) === value ? end : -1;
    }
  }
}

function isNumberChar(c: number): boolean {
  // 0-9 . - + e E
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x2b || c === 0x65 ||
    c === 0x45;
}

function matchArray(value: readonly unknown[], text: string, at: number): number {
  let i = skipSpace(text, at + 1);
  if (text.charCodeAt(i) === 0x5d) return value.length === 0 ? i + 1 : -1;
  for (let n = 0;; n++) {
    if (n >= value.length) return -1;
    i = matchValue(value[n], text, i);
    if (i < 0) return -1;
    i = skipSpace(text, i);
    const c = text.charCodeAt(i);
    if (c === 0x5d) return n + 1 === value.length ? i + 1 : -1; // ]
    if (c !== 0x2c) return -1; // ,
    i = skipSpace(text, i + 1);
  }
}

function matchObject(value: Record<string, unknown>, text: string, at: number): number {
  let i = skipSpace(text, at + 1);
  let matched = 0;
  if (text.charCodeAt(i) !== 0x7d) {
    while (true) {
      if (text.charCodeAt(i) !== QUOTE) return -1;
      const keyEnd = stringEnd(text, i);
      if (keyEnd < 0) return -1;
      const key = keyOf(value, text, i, keyEnd);
      if (key === undefined || !Object.hasOwn(value, key) || value[key] === undefined) return -1;
      i = skipSpace(text, keyEnd);
      if (text.charCodeAt(i) !== 0x3a) return -1; // :
      i = matchValue(value[key], text, skipSpace(text, i + 1));
      if (i < 0) return -1;
      matched++;
      i = skipSpace(text, i);
      const c = text.charCodeAt(i);
      if (c === 0x7d) break; // }
      if (c !== 0x2c) return -1; // ,
      i = skipSpace(text, i + 1);
    }
  }
  // Every key of the text was found in the value; the value must have no other (defined) key.
  let defined = 0;
  for (const key in value) if (Object.hasOwn(value, key) && value[key] !== undefined) defined++;
  return defined === matched ? i + 1 : -1;
}

// The key token [at, end) of an object's text: the value's own key that it spells as is (found
// without slicing the text), else the token decoded.
function keyOf(
  value: Record<string, unknown>,
  text: string,
  at: number,
  end: number,
): string | undefined {
  const length = end - at - 2;
  for (const key in value) {
    // A key with a backslash is spelled otherwise in JSON text.
    if (key.length === length && text.startsWith(key, at + 1) && !key.includes("\\")) return key;
  }
  return readString(text, at, end);
}

// Where the string token starting at the quote `at` ends (past its closing quote), or -1.
function stringEnd(text: string, at: number): number {
  for (let i = at + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) return i + 1;
  }
  return -1;
}

// The string token [at, end): sliced when it has no escape, else decoded.
function readString(text: string, at: number, end: number): string | undefined {
  const body = text.slice(at + 1, end - 1);
  if (!body.includes("\\")) return body;
  try {
    return JSON.parse(text.slice(at, end)) as string;
  } catch {
    return undefined;
  }
}

/** A stored row rewritten in place: it keeps its id (and its emission type). */
export interface RowUpdate {
  readonly id: number;
  readonly row: EmissionRow;
  /** Factor, additional value and scope are as stored: only kg and meta need writing. */
  readonly kgAndMetaOnly?: boolean;
}

function rowUpdate(old: EmissionRow & { readonly id: number }, row: EmissionRow): RowUpdate {
  const kgAndMetaOnly = old.primaryFactorId === row.primaryFactorId &&
    old.additionalValue === row.additionalValue && old.scope === row.scope;
  return { id: old.id, row, kgAndMetaOnly };
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
): RowUpdate[] | null {
  if (stored.length !== computed.length) return null;
  if (stored.length === 1) {
    // Most entries have one row: no grouping needed.
    const [old] = stored;
    const [row] = computed;
    if (old.emissionTypeId !== row.emissionTypeId) return null;
    return sameRow(old, row) ? [] : [rowUpdate(old, row)];
  }
  // Rows stored as computed come back in the order they were computed. The rows that are the
  // computed row at their place pair up as they are: taking identical pairs out leaves as many
  // identical rows to pair among the rest (identity is an equivalence), so only the rest is
  // grouped, and an entry whose rows are all as computed groups nothing.
  let kept = 0;
  while (kept < stored.length && sameRow(stored[kept], computed[kept])) kept++;
  if (kept === stored.length) return [];
  const storedByType = groupByType(kept ? stored.slice(kept) : stored);
  const computedByType = groupByType(kept ? computed.slice(kept) : computed);
  if (storedByType.size !== computedByType.size) return null;
  for (const [type, rows] of computedByType) {
    if (storedByType.get(type)?.length !== rows.length) return null;
  }
  const updates: RowUpdate[] = [];
  for (const [type, rows] of computedByType) {
    const unpaired = [...storedByType.get(type)!];
    const changed = rows.filter((row) => {
      const same = unpaired.findIndex((old) => sameRow(old, row));
      if (same < 0) return true;
      unpaired.splice(same, 1);
      return false;
    });
    // Equal counts per type: exactly one stored row is left for each changed row.
    changed.forEach((row, i) => updates.push(rowUpdate(unpaired[i], row)));
  }
  return updates;
}

/**
 * The stored rows whose meta {@linkcode planRowUpdates} may compare: those some computed row of
 * the same type matches in every other field (when the shapes agree), and, whatever the shapes,
 * the leading rows that match the computed row at their place in every other field (compared
 * before the shapes are). The meta of the others is never looked at, so it need not be read.
 */
export function rowsDecidedByMeta<T extends EmissionRow>(
  stored: readonly T[],
  computed: readonly EmissionRow[],
): T[] {
  if (stored.length !== computed.length || stored.length === 0) return [];
  if (stored.length === 1) return sameButMeta(stored[0], computed[0]) ? [stored[0]] : [];
  const storedByType = groupByType(stored);
  const computedByType = groupByType(computed);
  let sameShape = storedByType.size === computedByType.size;
  for (const [type, rows] of computedByType) {
    if (storedByType.get(type)?.length !== rows.length) sameShape = false;
  }
  if (sameShape) {
    return stored.filter((old) =>
      computedByType.get(old.emissionTypeId)!.some((row) => sameButMeta(old, row))
    );
  }
  let leading = 0;
  while (leading < stored.length && sameButMeta(stored[leading], computed[leading])) leading++;
  return stored.slice(0, leading);
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
