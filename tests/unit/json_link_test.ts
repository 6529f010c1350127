// Rule L of spec/modules.md: the plain rule, the override-key-first rule and normalisation.
import assert from "node:assert/strict";
import { createFactorLookup } from "../../src/compute/factor_set.ts";
import { resolveJsonLink } from "../../src/compute/json_link.ts";
import { getHandler } from "../../src/handlers/mod.ts";
import type { Factor } from "../../src/handlers/types.ts";
import {
  airport,
  assertKg,
  compute,
  factor,
  reference,
  station,
  YEAR,
} from "./_compute_fixtures.ts";

const row = (det: string, code: string, extra: string | null, ef: number) =>
  factor(det, {
    purchase_institutional_code: code,
    purchase_additional_code: extra,
    currency: "eur",
  }, {
    ef_kg_co2eq_per_currency: ef,
  });

// The purchase example of spec/factors-csv.md §3, per det.
const chemicals = [
  row("biological_chemical_gaseous_product", "12000000", "N", 0.5),
  row("biological_chemical_gaseous_product", "51000000", "LA0", 0.5),
  row("biological_chemical_gaseous_product", "51100000", "LA05", 0.41),
  row("biological_chemical_gaseous_product", "51100000", null, 0.455),
  row("biological_chemical_gaseous_product", "A", null, 0.9),
];
const services = [
  row("services", "47100000", "JA13", 0.34),
  row("services", "55000000", "C", 0.5),
  row("services", "91111500", "AA66", 0.21),
];

function link(det: string, factors: Factor[], code: string, extra?: string) {
  const data: Record<string, unknown> = {
    purchase_institutional_code: code,
    total_spent_amount: 1,
    currency: "eur",
  };
  if (extra !== undefined) data.purchase_additional_code = extra;
  const resolved = resolveJsonLink(getHandler(det), data, createFactorLookup(YEAR, factors));
  return factors.find((f) => f.id === resolved.factorId)?.values.ef_kg_co2eq_per_currency ?? null;
}

const CHEM = "biological_chemical_gaseous_product";

Deno.test("override rule 1: code 51100000 + LA05 → ef 0.41", () => {
  assert.equal(link(CHEM, chemicals, "51100000", "LA05"), 0.41);
});
Deno.test("override rule 2: 51100000 without code → the average row 0.455", () => {
  assert.equal(link(CHEM, chemicals, "51100000"), 0.455);
});
Deno.test("override rule 3: 91111500 → its single row 0.21, even though that row carries a code", () => {
  assert.equal(link("services", services, "91111500"), 0.21);
});
Deno.test("override rule 4: 51100000 + an unknown code → the average row 0.455", () => {
  assert.equal(link(CHEM, chemicals, "51100000", "ZZ99"), 0.455);
});
Deno.test("override rule 5: an unknown institutional code → no factor", () => {
  assert.equal(link(CHEM, chemicals, "99999999"), null);
});
Deno.test("override rule 6: an empty institutional code → no factor, even with a known code", () => {
  assert.equal(link(CHEM, chemicals, "", "LA05"), null);
});
Deno.test("override rule 7: a code carried by exactly one row wins whatever its kind", () => {
  assert.equal(link(CHEM, chemicals, "12000000", "LA05"), 0.41);
});
Deno.test("override rule 8: a code on several rows → the one of the entry's kind", () => {
  const factors = [...chemicals, row(CHEM, "12000000", "LA05", 0.7)];
  assert.equal(link(CHEM, factors, "12000000", "LA05"), 0.7);
});
Deno.test("override rule 9: a code on several rows, none of the entry's kind → Ambiguous factor data", () => {
  const factors = [...chemicals, row(CHEM, "12000000", "LA05", 0.7)];
  assert.throws(() => link(CHEM, factors, "77777777", "LA05"), /Ambiguous factor data/);
});
Deno.test("override rule 10: several rows of the kind and no average row → Ambiguous factor data", () => {
  const factors = [row(CHEM, "51100000", "LA05", 0.41), row(CHEM, "51100000", "LA06", 0.42)];
  assert.throws(() => link(CHEM, factors, "51100000"), /Ambiguous factor data: 2 factors match/);
});
Deno.test("override rule 11: several rows of the kind and two average rows → Ambiguous factor data", () => {
  const factors = [...chemicals, row(CHEM, "51100000", "", 0.46)];
  assert.throws(() => link(CHEM, factors, "51100000"), /Ambiguous factor data/);
});

Deno.test("one set answers every entry by its own kind and code, and an ambiguity every time", () => {
  // The rematch resolves a whole slice against one set: what it found for earlier entries must
  // never answer for an entry whose kind or code differs, nor hide an ambiguity.
  const factors = [...chemicals, row(CHEM, "12000000", "LA05", 0.7)];
  const set = createFactorLookup(YEAR, factors);
  const ef = (code: string, extra?: string) => {
    const data: Record<string, unknown> = { purchase_institutional_code: code };
    if (extra !== undefined) data.purchase_additional_code = extra;
    const { factorId } = resolveJsonLink(getHandler(CHEM), data, set);
    return factors.find((f) => f.id === factorId)?.values.ef_kg_co2eq_per_currency ?? null;
  };
  for (let round = 0; round < 2; round++) {
    assert.equal(ef("51100000", "LA05"), 0.41);
    assert.equal(ef("51100000"), 0.455);
    assert.equal(ef("51100000", ""), 0.455);
    assert.equal(ef("51100000", "ZZ99"), 0.455);
    assert.equal(ef("12000000", "LA05"), 0.7);
    assert.equal(ef("12000000", "N"), 0.5);
    assert.throws(() => ef("12000000"), /Ambiguous factor data/);
    assert.equal(ef("99999999"), null);
    assert.throws(() => ef("77777777", "LA05"), /Ambiguous factor data/);
  }
});

Deno.test("purchase: the override handler resolves by code, falls back to the average row, strict-drops on a miss", () => {
  const byCode = compute(CHEM, {
    purchase_institutional_code: "51100000",
    purchase_additional_code: "LA05",
    total_spent_amount: 100,
    currency: "eur",
  }, chemicals);
  assertKg(byCode.rows[0].kgCo2eq, 41);
  const average = compute(CHEM, {
    purchase_institutional_code: "51100000",
    total_spent_amount: 100,
    currency: "eur",
  }, chemicals);
  assertKg(average.rows[0].kgCo2eq, 45.5);
  const miss = compute(CHEM, {
    purchase_institutional_code: "00000000",
    total_spent_amount: 100,
    currency: "eur",
    primary_factor_id: chemicals[0].id,
  }, chemicals);
  assert.deepEqual(miss.rows, []);
  assert.equal(miss.data.primary_factor_id, null);
});

const laptopValues = {
  active_power_w: 1,
  standby_power_w: 1,
  active_usage_hours_per_week: 1,
  standby_usage_hours_per_week: 1,
  ef_kg_co2eq_per_kwh: 1,
};

Deno.test("plain rule: exact kind + subkind, then kind-only fallback, else none", () => {
  const exact = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues);
  const kindOnly = factor("it", { equipment_class: "Laptop", sub_class: null }, laptopValues);
  const set = createFactorLookup(YEAR, [exact, kindOnly]);
  const resolve = (data: Record<string, unknown>) =>
    resolveJsonLink(getHandler("it"), data, set).factorId;
  assert.equal(resolve({ equipment_class: "Laptop", sub_class: "Standard" }), exact.id);
  assert.equal(resolve({ equipment_class: "Laptop", sub_class: "Gaming" }), kindOnly.id);
  assert.equal(resolve({ equipment_class: "Laptop", sub_class: "" }), kindOnly.id);
  assert.equal(resolve({ equipment_class: "Laptop" }), kindOnly.id);
  assert.equal(resolve({ equipment_class: "Tablet", sub_class: "Standard" }), null);
  assert.equal(resolve({ equipment_class: "" }), null);
});

Deno.test("plain rule: several equal matches → the lowest id, counted as ambiguous", () => {
  const high = factor("process_emissions", { category: "co2", subcategory: null, unit: "t" }, {
    ef_kg_co2eq_per_unit: 1000,
  }, 9001);
  const low = factor("process_emissions", { category: "co2", subcategory: null, unit: "kg" }, {
    ef_kg_co2eq_per_unit: 1,
  }, 9000);
  const resolved = resolveJsonLink(
    getHandler("process_emissions"),
    { category: "co2" },
    createFactorLookup(YEAR, [high, low]),
  );
  assert.deepEqual(resolved, { factorId: 9000, ambiguous: true });
  const single = resolveJsonLink(
    getHandler("process_emissions"),
    { category: "co2" },
    createFactorLookup(YEAR, [low]),
  );
  assert.equal(single.ambiguous, false);
});

Deno.test("year-strict: a factor of another year is never used", () => {
  const other = {
    ...factor("it", { equipment_class: "Laptop", sub_class: null }, laptopValues),
    year: YEAR - 1,
  };
  const r = compute("it", { name: "x", equipment_class: "Laptop", primary_factor_id: other.id }, [
    other,
  ]);
  assert.deepEqual(r.rows, []);
  assert.equal(r.data.primary_factor_id, null);
});

Deno.test('normalisation: plane cabin_class "Economy" and iata " gva " still get their emission', () => {
  const airports = reference({
    locations: [airport("GVA", 46.2381, 6.109), airport("CDG", 49.0097, 2.5479, "FR")],
  });
  const f = factor("plane", { category: "very_short_haul", cabin_class: "economy" }, {
    ef_kg_co2eq_per_km: 0.1,
    rfi_adjustment: 1,
    min_distance: 0,
    max_distance: 800,
  });
  const r = compute(
    "plane",
    { origin_iata: " gva ", destination_iata: "CDG", cabin_class: "Economy" },
    [f],
    airports,
  );
  assert.equal(r.data.cabin_class, "economy");
  assert.equal(r.data.origin_iata, "GVA");
  assertKg(r.rows[0].kgCo2eq, 50.3);
});

Deno.test('normalisation: train cabin_class " Second " and a numeric string of trips get their emission', () => {
  const stations = reference({
    locations: [
      station("Geneva", "CH", 46.2104, 6.1428),
      station("Lausanne", "CH", 46.5167, 6.6322),
    ],
  });
  const f = factor("train", { country_code: "CH" }, { ef_kg_co2eq_per_km: 0.05 });
  const r = compute(
    "train",
    {
      origin_name: "geneva",
      origin_country_code: "ch",
      destination_name: " Lausanne ",
      destination_country_code: "CH",
      cabin_class: " Second ",
      number_of_trips: "2",
    },
    [f],
    stations,
  );
  assert.equal(r.data.cabin_class, "second");
  assert.equal(r.data.number_of_trips, 2);
  assertKg(r.rows[0].kgCo2eq, 6.1);
  assert.equal(r.rows[0].emissionTypeId, 50102);
});

Deno.test("validation: equipment hours 100 + 100 name the field; unknown enum values list the choices", () => {
  assert.throws(
    () =>
      compute("it", {
        name: "x",
        equipment_class: "Laptop",
        active_usage_hours_per_week: 100,
        standby_usage_hours_per_week: 100,
      }, []),
    /standby_usage_hours_per_week: active \+ standby hours per week must be ≤ 168/,
  );
  assert.throws(
    () => compute("train", { origin_name: "a", destination_name: "b", cabin_class: "third" }, []),
    /cabin_class: expected one of first, second/,
  );
  assert.throws(() => compute("it", { equipment_class: "Laptop" }, []), /name: is required/);
});

Deno.test("override: exactly one row typed by the first emission type, no rollup, for a 1:N det", () => {
  const r = compute("member", { fte: 1, __kg_co2eq_override__: 42 }, []);
  assert.equal(r.rows.length, 1);
  assert.deepEqual(
    {
      type: r.rows[0].emissionTypeId,
      kg: r.rows[0].kgCo2eq,
      factor: r.rows[0].primaryFactorId,
      meta: r.rows[0].meta,
    },
    { type: 10000, kg: 42, factor: null, meta: { override: true } },
  );
});

Deno.test("override: the JSON link is resolved too (a deleted factor's id becomes null), the row stays the override", () => {
  const standard = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues);
  const data = {
    name: "x",
    equipment_class: "Laptop",
    sub_class: "Standard",
    __kg_co2eq_override__: 5,
  };
  const linked = compute("it", data, [standard]);
  assert.equal(linked.data.primary_factor_id, standard.id);
  // The entry still names `standard`, which is no longer in the set (a replace import deleted it).
  const dead = compute("it", { ...data, primary_factor_id: standard.id }, []);
  assert.equal(dead.data.primary_factor_id, null);
  for (const r of [linked, dead]) {
    assert.deepEqual(
      r.rows.map((row) => [row.emissionTypeId, row.kgCo2eq, row.primaryFactorId, row.meta]),
      [[80200, 5, null, { override: true }]],
    );
  }
});

Deno.test("override: an ambiguous link leaves the link empty with a warning; the override row is kept", () => {
  const factors = [row(CHEM, "51100000", "LA05", 0.41), row(CHEM, "51100000", "LA06", 0.42)];
  const data = {
    purchase_institutional_code: "51100000",
    total_spent_amount: 100,
    currency: "eur",
    primary_factor_id: factors[0].id,
  };
  assert.throws(() => compute(CHEM, data, factors), /Ambiguous factor data/);
  const r = compute(CHEM, { ...data, __kg_co2eq_override__: 9 }, factors);
  assert.equal(r.data.primary_factor_id, null);
  assert.match(r.warnings[0], /override kept, factor link left empty: Ambiguous factor data/);
  assert.deepEqual(r.rows.map((row) => [row.kgCo2eq, row.meta]), [[9, { override: true }]]);
});
