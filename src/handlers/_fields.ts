// zod building blocks for entry schemas: the normalisation of spec/domain.md §5.
import { z } from "zod";

const trimmed = (v: unknown) => (typeof v === "string" ? v.trim() : v);
const numeric = (v: unknown) => {
  if (typeof v !== "string") return v;
  const text = v.trim();
  return text !== "" && Number.isFinite(Number(text)) ? Number(text) : v;
};
const blankToUndefined = (v: unknown) => (v === "" || v === null ? undefined : v);

/** A required non-empty string, trimmed. */
export const requiredText = () =>
  z.preprocess(trimmed, z.string({ error: "is required (a text)" }).min(1, "must not be empty"));

/** An optional string, trimmed. */
export const optionalText = () =>
  z.preprocess(trimmed, z.string({ error: "expected a text" }).optional());

/** An enumerated value: trimmed and lower-cased, one of `values`. */
export const lowerEnum = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.preprocess(
    (v) => (typeof v === "string" ? v.trim().toLowerCase() : v),
    z.enum(values, { error: `expected one of ${values.join(", ")}` }),
  );

/** An optional enumerated value (blank counts as absent). */
export const optionalLowerEnum = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.preprocess(
    (v) => blankToUndefined(typeof v === "string" ? v.trim().toLowerCase() : v),
    z.enum(values, { error: `expected one of ${values.join(", ")}` }).optional(),
  );

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

/** A required number (numeric strings accepted and stored as numbers). */
export const requiredNumber = (range: NumberRange = {}) =>
  z.preprocess(numeric, numberSchema(range));

/** An optional number (blank counts as absent). */
export const optionalNumber = (range: NumberRange = {}) =>
  z.preprocess((v) => blankToUndefined(numeric(v)), numberSchema(range).optional());

/** A number with a default when absent or blank. */
export const numberWithDefault = (fallback: number, range: NumberRange = {}) =>
  z.preprocess((v) => blankToUndefined(numeric(v)) ?? fallback, numberSchema(range));

/** A lower-cased enumerated value with a default when absent or blank. */
export const lowerEnumWithDefault = <const T extends readonly [string, ...string[]]>(
  values: T,
  fallback: T[number],
) =>
  z.preprocess(
    (v) => blankToUndefined(typeof v === "string" ? v.trim().toLowerCase() : v) ?? fallback,
    z.enum(values, { error: `expected one of ${values.join(", ")}` }),
  );

/** Entry data: the listed fields validated, every other key kept as is. */
export const entryObject = <S extends z.ZodRawShape>(shape: S) => z.looseObject(shape);

/** Lower-cased with spaces turned into `_`: how names become emission-type suffixes. */
export function slug(value: unknown): string {
  return String(value ?? "").trim().toLowerCase().replace(/\s+/g, "_");
}
