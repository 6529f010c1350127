// The normal-form fast path of entry validation never accepts what the zod schema rejects, and
// what it accepts is exactly what the zod parse gives back: random entries of every det, built
// from the schema's fields, most near the normal form and many just off it.
import assert from "node:assert/strict";
import type { z } from "zod";
import { validateEntryData } from "../compute/compute_entry.ts";
import { normalFormOf } from "./_fields.ts";
import { getHandler, listHandlers } from "./mod.ts";
import { EntryComputeError, type Handler } from "./types.ts";

/** A small deterministic generator (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ABSENT = Symbol("absent");

interface SchemaNode {
  readonly _zod: { readonly def: Record<string, unknown> };
}

// The enum values anywhere inside a field's schema (the pool needs them to hit valid data).
function enumValues(node: unknown, seen = new Set<unknown>()): string[] {
  if (typeof node !== "object" || node === null || seen.has(node)) return [];
  seen.add(node);
  const def = (node as Partial<SchemaNode>)._zod?.def;
  if (!def) return [];
  const own = def.type === "enum" && typeof def.entries === "object" && def.entries !== null
    ? Object.values(def.entries).filter((v): v is string => typeof v === "string")
    : [];
  return [...own, ...Object.values(def).flatMap((child) => enumValues(child, seen))];
}

function shapeOf(handler: Handler): Record<string, z.ZodType> {
  const def = (handler.entrySchema as unknown as SchemaNode)._zod.def;
  return def.shape as Record<string, z.ZodType>;
}

const BASE_POOL: readonly unknown[] = [
  "a",
  "Abc",
  "GVA",
  "gva",
  " GVA",
  "abc ",
  "",
  " ",
  "\t",
  "ß",
  "co2",
  "CH4",
  "12",
  " 12 ",
  "1e3",
  "-1",
  0,
  1,
  2,
  -1,
  -0,
  0.05,
  0.5,
  1.5,
  40,
  100,
  168,
  169,
  1e9,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  null,
  true,
  false,
  {},
  [],
  [1],
  ABSENT,
  undefined,
];

/** The pool for one field: the base values plus its enum values, as they are and a little off. */
function poolFor(schema: z.ZodType): unknown[] {
  const values = enumValues(schema);
  return [
    ...BASE_POOL,
    ...values,
    ...values.map((v) => v.toUpperCase()),
    ...values.map((v) => ` ${v}`),
  ];
}

/** Values the field's zod schema alone accepts and gives back unchanged (the oracle's view). */
function keptByZod(schema: z.ZodType, pool: readonly unknown[]): unknown[] {
  return pool.filter((value) => {
    if (value === ABSENT || value === undefined) return schema.safeParse(undefined).success;
    const parsed = schema.safeParse(value);
    return parsed.success && Object.is(parsed.data, value);
  });
}

const EXTRA_KEYS: readonly [string, unknown][] = [
  ["primary_factor_id", 7],
  ["primary_factor_id", null],
  ["__kg_co2eq_override__", 12.5],
  ["unknown_field", " kept as is "],
  ["nested", { a: [1, " b "] }],
];

function sample(
  next: () => number,
  fields: readonly { key: string; pool: unknown[]; kept: unknown[] }[],
): unknown {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)];
  const data: Record<string, unknown> = {};
  for (const { key, pool, kept } of fields) {
    const value = kept.length && next() < 0.85 ? pick(kept) : pick(pool);
    if (value !== ABSENT) data[key] = value;
  }
  if (next() < 0.3) {
    const [key, value] = pick(EXTRA_KEYS);
    data[key] = value;
  }
  const roll = next();
  // A key named __proto__ as JSON.parse makes it (an own property), and data that is no object.
  if (roll < 0.03) return JSON.parse(`{"__proto__": {"x": 1}, ${JSON.stringify(data).slice(1)}`);
  if (roll < 0.05) return pick([null, "text", 3, [data]]);
  return data;
}

for (const handler of listHandlers()) {
  Deno.test(`${handler.det}: the normal form accepts only what zod gives back unchanged`, () => {
    const isNormal = normalFormOf(handler.entrySchema);
    assert(isNormal, `${handler.det} has no normal form`);
    const fields = Object.entries(shapeOf(handler)).map(([key, schema]) => {
      const pool = poolFor(schema);
      return { key, pool, kept: keptByZod(schema, pool) };
    });
    const next = random(handler.det.length * 7919 + 17);
    let accepted = 0;
    let rejectedByZod = 0;
    for (let i = 0; i < 3000; i++) {
      const data = sample(next, fields);
      const parsed = handler.entrySchema.safeParse(data);
      if (!parsed.success) rejectedByZod++;
      if (isNormal(data)) {
        accepted++;
        assert(parsed.success, `accepted what zod rejects: ${JSON.stringify(data)}`);
        assert.deepStrictEqual(parsed.data, data, `parsed differently: ${JSON.stringify(data)}`);
      }
      // The validation the compute runs gives zod's value or zod's error, whichever path it took,
      // but refuses a key named __proto__, which zod's parse drops.
      const proto = typeof data === "object" && data !== null && Object.hasOwn(data, "__proto__");
      let validated: unknown;
      try {
        validated = validateEntryData(handler, data);
      } catch (error) {
        assert(error instanceof EntryComputeError);
        if (proto) assert.match(error.message, /^__proto__: not a name a field can have/);
        else assert(!parsed.success, `refused what zod accepts: ${JSON.stringify(data)}`);
        continue;
      }
      assert(!proto, `validated a key named __proto__: ${JSON.stringify(data)}`);
      assert(parsed.success, `validated what zod rejects: ${JSON.stringify(data)}`);
      assert.deepStrictEqual(validated, parsed.data);
    }
    // Not vacuous: both sides of the predicate were exercised.
    assert(accepted > 100, `${handler.det}: only ${accepted} samples in normal form`);
    assert(rejectedByZod > 100, `${handler.det}: only ${rejectedByZod} samples rejected by zod`);
  });
}

Deno.test("data as the product stores it takes the fast path; data off the normal form does not", () => {
  const it = normalFormOf(getHandler("it").entrySchema)!;
  const stored = { name: "Laptop", equipment_class: "laptop", primary_factor_id: 3 };
  assert(it(stored));
  assert(it({ ...stored, active_usage_hours_per_week: 100, standby_usage_hours_per_week: 68 }));
  // Over 168 hours in all: the refinement, not only the fields.
  assert(!it({ ...stored, active_usage_hours_per_week: 100, standby_usage_hours_per_week: 69 }));
  assert(!it({ ...stored, name: " Laptop" }));
  assert(!it({ ...stored, active_usage_hours_per_week: "12" }));
  assert(!it({ ...stored, note: null }));
  assert(!it({ ...stored, note: undefined }));
  const plane = normalFormOf(getHandler("plane").entrySchema)!;
  const flight = {
    origin_iata: "GVA",
    destination_iata: "JFK",
    cabin_class: "economy",
    number_of_trips: 2,
  };
  assert(plane(flight));
  assert(!plane({ ...flight, origin_iata: "gva" }));
  assert(!plane({ ...flight, cabin_class: "Economy" }));
  // The default trip count is written when the entry is stored: without it, zod fills it in.
  const { number_of_trips: _n, ...withoutTrips } = flight;
  assert(!plane(withoutTrips));
});

Deno.test("numeric fields given as text take decimal text only, as the factor CSV does", () => {
  const process = getHandler("process_emissions");
  const valid = (quantity: unknown) =>
    validateEntryData(process, { category: "co2", quantity }).quantity;
  assert.equal(valid(" 12.5 "), 12.5);
  assert.equal(valid("1e3"), 1000);
  for (const text of ["0x10", "0b11", "0o7", "Infinity", "1e999", "12,5"]) {
    assert.throws(() => valid(text), /quantity: expected a number/, text);
  }
});

Deno.test("an optional text given as null is absent, as a blank cell is", () => {
  const data = validateEntryData(getHandler("it"), {
    name: "Laptop",
    equipment_class: "Laptop",
    sub_class: null,
    note: null,
  });
  // As stored (JSON): no sub_class, no note, as when they are left out.
  assert.deepEqual(JSON.parse(JSON.stringify(data)), { name: "Laptop", equipment_class: "Laptop" });
  // A value of another kind is still refused, naming the field.
  assert.throws(
    () =>
      validateEntryData(getHandler("it"), { name: "Laptop", equipment_class: "Laptop", note: 3 }),
    /note: expected a text/,
  );
});
