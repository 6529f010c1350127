// zod building blocks for entry schemas: the normalisation of spec/domain.md §5. Each block also
// knows its normal form (a value its schema accepts and gives back unchanged), so that data
// already stored in normal form is checked by a plain predicate instead of a zod parse.
import { parseDecimal } from "../text/decimal.ts";
import { z } from "zod";

/** True when a value is in a field's (or an entry's) normal form. */
export type NormalForm = (value: unknown) => boolean;

const normalForms = new WeakMap<z.ZodType, NormalForm>();

/**
 * Records `schema`'s normal form: `isNormal(v)` must imply that the schema accepts `v` and
 * parses it to a value equal to `v`. Returns the schema.
 */
export function withNormalForm<T extends z.ZodType>(schema: T, isNormal: NormalForm): T {
  normalForms.set(schema, isNormal);
  return schema;
}

/** The normal form recorded for a schema, if any. */
export function normalFormOf(schema: z.ZodType): NormalForm | undefined {
  return normalForms.get(schema);
}

const isTrimmedText = (v: unknown): v is string => typeof v === "string" && v.trim() === v;

const trimmed = (v: unknown) => (typeof v === "string" ? v.trim() : v);
// A numeric field given as text takes decimal text only ("0x10" stays a text, and fails).
const numeric = (v: unknown) => (typeof v === "string" ? parseDecimal(v) ?? v : v);
const blankToUndefined = (v: unknown) => (v === "" || v === null ? undefined : v);

/** A required non-empty string, trimmed. */
export const requiredText = () =>
  withNormalForm(
    z.preprocess(trimmed, z.string({ error: "is required (a text)" }).min(1, "must not be empty")),
    (v) => isTrimmedText(v) && v.length > 0,
  );

/** An optional string, trimmed; null (JSON's blank) counts as absent. */
export const optionalText = () =>
  withNormalForm(
    z.preprocess(
      (v) => (v === null ? undefined : trimmed(v)),
      z.string({ error: "expected a text" }).optional(),
    ),
    (v) => v === undefined || isTrimmedText(v),
  );

/** An enumerated value: trimmed and lower-cased, one of `values`. */
export const lowerEnum = <const T extends readonly [string, ...string[]]>(values: T) =>
  withNormalForm(
    z.preprocess(
      (v) => (typeof v === "string" ? v.trim().toLowerCase() : v),
      z.enum(values, { error: `expected one of ${values.join(", ")}` }),
    ),
    isOneOf(values),
  );

/** An optional enumerated value (blank counts as absent). */
export const optionalLowerEnum = <const T extends readonly [string, ...string[]]>(values: T) => {
  const isValue = isOneOf(values);
  return withNormalForm(
    z.preprocess(
      (v) => blankToUndefined(typeof v === "string" ? v.trim().toLowerCase() : v),
      z.enum(values, { error: `expected one of ${values.join(", ")}` }).optional(),
    ),
    (v) => v === undefined || isValue(v),
  );
};

// Enum values are written trimmed and lower-cased: one of them is its own normal form.
function isOneOf(values: readonly string[]): NormalForm {
  const set = new Set<unknown>(values.filter((v) => v === v.trim().toLowerCase()));
  return (v) => set.has(v);
}

interface NumberRange {
  min?: number;
  max?: number;
  int?: boolean;
}

function numberSchema({ min, max, int }: NumberRange) {
  let schema = z.number({ error: "expected a number" }).refine(
    Number.isFinite,
    "expected a finite number",
  );
  if (int) schema = schema.refine(Number.isInteger, "expected an integer");
  if (min !== undefined) schema = schema.refine((n) => n >= min, `must be ≥ ${min}`);
  if (max !== undefined) schema = schema.refine((n) => n <= max, `must be ≤ ${max}`);
  return schema;
}

function inRange({ min, max, int }: NumberRange): NormalForm {
  return (v) =>
    typeof v === "number" && Number.isFinite(v) && (!int || Number.isInteger(v)) &&
    (min === undefined || v >= min) && (max === undefined || v <= max);
}

/** A required number (numeric strings accepted and stored as numbers). */
export const requiredNumber = (range: NumberRange = {}) =>
  withNormalForm(z.preprocess(numeric, numberSchema(range)), inRange(range));

/** An optional number (blank counts as absent). */
export const optionalNumber = (range: NumberRange = {}) => {
  const isNumber = inRange(range);
  return withNormalForm(
    z.preprocess((v) => blankToUndefined(numeric(v)), numberSchema(range).optional()),
    (v) => v === undefined || isNumber(v),
  );
};

/** A number with a default when absent or blank (stored with the default filled in). */
export const numberWithDefault = (fallback: number, range: NumberRange = {}) =>
  withNormalForm(
    z.preprocess((v) => blankToUndefined(numeric(v)) ?? fallback, numberSchema(range)),
    inRange(range),
  );

/** A lower-cased enumerated value with a default when absent or blank. */
export const lowerEnumWithDefault = <const T extends readonly [string, ...string[]]>(
  values: T,
  fallback: T[number],
) =>
  withNormalForm(
    z.preprocess(
      (v) => blankToUndefined(typeof v === "string" ? v.trim().toLowerCase() : v) ?? fallback,
      z.enum(values, { error: `expected one of ${values.join(", ")}` }),
    ),
    isOneOf(values),
  );

/**
 * Entry data: the listed fields validated, every other key kept as is. Its normal form (when
 * every field has one): a plain object whose listed fields are each in normal form, a field
 * whose normal form admits `undefined` being absent rather than present as undefined.
 */
export const entryObject = <S extends z.ZodRawShape>(shape: S) => {
  const fields: [string, NormalForm][] = [];
  for (const [key, schema] of Object.entries(shape)) {
    const isNormal = normalFormOf(schema as z.ZodType);
    if (!isNormal) return z.looseObject(shape);
    fields.push([key, isNormal]);
  }
  return withNormalForm(z.looseObject(shape), (v) => {
    if (!isPlainRecord(v)) return false;
    for (const [key, isNormal] of fields) {
      const value = v[key];
      if (value === undefined && Object.hasOwn(v, key)) return false;
      if (!isNormal(value)) return false;
    }
    return true;
  });
};

/**
 * `schema.refine(check, params)`, whose normal form is the schema's (when it has one) where
 * `check` holds.
 */
export function refined<T extends z.ZodType>(
  schema: T,
  check: (data: z.output<T>) => boolean,
  params: { message: string; path?: PropertyKey[] },
) {
  const refined = schema.refine(check, params);
  const isNormal = normalFormOf(schema);
  return isNormal
    ? withNormalForm(refined, (v) => isNormal(v) && check(v as z.output<T>))
    : refined;
}

// A JSON object as JSON.parse builds it: Object.prototype, no own `__proto__` key (which a zod
// parse would turn into a prototype).
function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype &&
    !Object.hasOwn(v, "__proto__");
}

/** Lower-cased with spaces turned into `_`: how names become emission-type suffixes. */
export function slug(value: unknown): string {
  return String(value ?? "").trim().toLowerCase().replace(/\s+/g, "_");
}
