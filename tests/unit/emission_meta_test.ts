// Issue 7 item 8: every emission row's meta records the inputs that fed its formula, so that the
// row can be audited from its meta (and the factor values in `factors_used`) alone. Each test
// pins the exact meta of one det and recomputes the kg from the row without the entry.
import assert from "node:assert/strict";
import type { EmissionRow } from "../../src/compute/emission_row.ts";
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

/** The row's meta besides `factors_used`, which must name exactly the factor with its values. */
function inputsOf(row: EmissionRow, f: Factor): Record<string, unknown> {
  const { factors_used, ...rest } = row.meta;
  assert.deepEqual(factors_used, [{ id: f.id, values: f.values }]);
  return rest;
}

/** Exact keys; numbers to 1e-12 relative, everything else equal. */
function assertInputs(actual: Record<string, unknown>, expected: Record<string, unknown>): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [key, value] of Object.entries(expected)) {
    if (typeof value === "number" && typeof actual[key] === "number") {
      const got = actual[key] as number;
      assert.ok(Math.abs(got - value) <= Math.abs(value) * 1e-12, `${key}: ${got} ≠ ${value}`);
    } else assert.deepEqual(actual[key], value, key);
  }
}

const n = (values: Factor["values"], key: string) => values[key] as number;
const m = (meta: Record<string, unknown>, key: string) => meta[key] as number;

Deno.test("meta, equipment (scientific, it, other): hours used, weeks per year and annual kWh", () => {
  for (const det of ["scientific", "it", "other"]) {
    const f = factor(det, { equipment_class: "Laptop", sub_class: null }, {
      active_power_w: 100,
      standby_power_w: 10,
      active_usage_hours_per_week: 40,
      standby_usage_hours_per_week: 128,
      ef_kg_co2eq_per_kwh: 0.1,
    });
    // Active hours from the entry, standby hours from the factor's default.
    const r = compute(det, {
      name: "x",
      equipment_class: "Laptop",
      active_usage_hours_per_week: 20,
    }, [f]);
    const meta = inputsOf(r.rows[0], f);
    // (20 × 100 + 128 × 10) × 52 / 1000 = 170.56 kWh
    assertInputs(meta, {
      active_usage_hours_per_week: 20,
      standby_usage_hours_per_week: 128,
      weeks_per_year: 52,
      annual_kwh: 170.56,
    });
    const audited = (m(meta, "active_usage_hours_per_week") * n(f.values, "active_power_w") +
      m(meta, "standby_usage_hours_per_week") * n(f.values, "standby_power_w")) *
      m(meta, "weeks_per_year") / 1000 * n(f.values, "ef_kg_co2eq_per_kwh");
    assertKg(r.rows[0].kgCo2eq, audited);
    assertKg(r.rows[0].kgCo2eq, 17.056);
  }
});

Deno.test("meta, purchase common (60–66): amount, currency, amount in EUR and both rates", () => {
  const rates = reference({ rates: [[YEAR, "chf", 1 / 0.95], [YEAR, "usd", 0.9]] });
  for (
    const det of [
      "scientific_equipment",
      "it_equipment",
      "consumable_accessories",
      "biological_chemical_gaseous_product",
      "services",
      "vehicles",
      "other_purchases",
    ]
  ) {
    const f = factor(det, {
      purchase_institutional_code: "55000000",
      purchase_additional_code: null,
      currency: "usd",
    }, { ef_kg_co2eq_per_currency: 0.5 });
    const r = compute(
      det,
      {
        purchase_institutional_code: "55000000",
        total_spent_amount: 1000,
        currency: "CHF",
      },
      [f],
      rates,
    );
    const meta = inputsOf(r.rows[0], f);
    assertInputs(meta, {
      total_spent_amount: 1000,
      currency: "chf",
      eur_per_unit: 1 / 0.95,
      amount_eur: 1000 / 0.95,
      factor_currency: "usd",
      factor_eur_per_unit: 0.9,
    });
    const audited = m(meta, "amount_eur") * n(f.values, "ef_kg_co2eq_per_currency") /
      m(meta, "factor_eur_per_unit");
    assertKg(r.rows[0].kgCo2eq, audited);
    // 1000 CHF = 1052.63… EUR = 1169.59… USD, at 0.5 kg per USD
    assertKg(r.rows[0].kgCo2eq, 1000 / 0.95 / 0.9 * 0.5);
  }
});

Deno.test("meta, additional purchases (67): annual consumption and coefficient to kg", () => {
  const f = factor("additional_purchases", { name: "Paper" }, { ef_kg_co2eq_per_kg: 0.3 });
  const r = compute("additional_purchases", {
    name: "Paper",
    unit: "ream",
    annual_consumption: 100,
    coef_to_kg: 2.5,
  }, [f]);
  const meta = inputsOf(r.rows[0], f);
  assertInputs(meta, { annual_consumption: 100, coef_to_kg: 2.5 });
  assertKg(
    r.rows[0].kgCo2eq,
    m(meta, "annual_consumption") * m(meta, "coef_to_kg") * n(f.values, "ef_kg_co2eq_per_kg"),
  );
  assertKg(r.rows[0].kgCo2eq, 75);
});

Deno.test("meta, external clouds (40): spent amount, currency, amount in EUR and both rates", () => {
  const f = factor(
    "external_clouds",
    { provider: "AWS", service_type: "storage", currency: "eur" },
    {
      ef_kg_co2eq_per_currency: 0.05,
    },
  );
  const r = compute(
    "external_clouds",
    {
      provider: "AWS",
      service_type: "storage",
      spent_amount: 200,
      currency: "usd",
    },
    [f],
    reference({ rates: [[YEAR, "usd", 0.9]] }),
  );
  const meta = inputsOf(r.rows[0], f);
  assertInputs(meta, {
    spent_amount: 200,
    currency: "usd",
    eur_per_unit: 0.9,
    amount_eur: 180,
    factor_currency: "eur",
    factor_eur_per_unit: 1,
  });
  assertKg(r.rows[0].kgCo2eq, 9);
});

Deno.test("meta, external AI (41): fte count, request band, requests per day and per year", () => {
  const f = factor("external_ai", { provider: "OpenAI", usage_type: "chat" }, {
    ef_kg_co2eq_per_request: 0.01,
  });
  const r = compute("external_ai", {
    provider: "OpenAI",
    usage_type: "chat",
    requests_per_user_per_day: "5_20",
    fte_count: 2,
  }, [f]);
  const meta = inputsOf(r.rows[0], f);
  // 12.5 requests a day × 5 days × 46 weeks × 2 FTE
  assertInputs(meta, {
    fte_count: 2,
    requests_per_user_per_day: "5_20",
    requests_per_day: 12.5,
    requests_per_year: 5750,
  });
  assertKg(r.rows[0].kgCo2eq, m(meta, "requests_per_year") * 0.01 / 1000);
  assertKg(r.rows[0].kgCo2eq, 0.0575);
});

Deno.test("meta, process emissions (50) and energy combustion (31): the quantity", () => {
  const process = factor("process_emissions", { category: "ch4", subcategory: null, unit: "kg" }, {
    ef_kg_co2eq_per_unit: 28,
  });
  const p = compute("process_emissions", { category: "ch4", quantity: 3 }, [process]);
  assertInputs(inputsOf(p.rows[0], process), { quantity: 3 });
  assertKg(p.rows[0].kgCo2eq, 84);
  const fuel = factor("energy_combustion", { name: "Heating oil", unit: "l" }, {
    ef_kg_co2eq_per_unit: 2.6,
  });
  const c = compute("energy_combustion", { name: "Heating oil", quantity: 500 }, [fuel]);
  assertInputs(inputsOf(c.rows[0], fuel), { quantity: 500 });
  assertKg(c.rows[0].kgCo2eq, 1300);
});

Deno.test("meta, building rooms (30): surface, allocation ratio and the leaf's conversion", () => {
  const f = factor("building", { building_name: "BC", room_type: "office" }, {
    ef_kg_co2eq_per_kwh: 0.1,
    lighting_kwh_per_square_meter: 5,
    cooling_kwh_per_square_meter: 20,
    ventilation_kwh_per_square_meter: 10,
    heating_kwh_per_square_meter: 30,
    energy_type: "thermal",
    conversion_factor: 2,
  });
  const r = compute(
    "building",
    {
      building_name: "BC",
      room_name: "BC 010",
      room_type: "office",
      room_allocation_ratio: 0.5,
    },
    [f],
    reference({
      rooms: [{
        buildingName: "BC",
        roomName: "BC 010",
        roomType: "office",
        surfaceSquareMeter: 10,
      }],
    }),
  );
  // lighting, cooling, ventilation, heating_elec (thermal building: 0), heating_thermal (× 2)
  const conversions = [1, 1, 1, 0, 2];
  const kwhKeys = ["lighting", "cooling", "ventilation", "heating", "heating"];
  conversions.forEach((conversion, i) => {
    const meta = inputsOf(r.rows[i], f);
    assertInputs(meta, { room_surface_square_meter: 10, room_allocation_ratio: 0.5, conversion });
    const kwhPerM2 = n(f.values, `${kwhKeys[i]}_kwh_per_square_meter`);
    assertKg(
      r.rows[i].kgCo2eq,
      m(meta, "room_surface_square_meter") * kwhPerM2 * m(meta, "room_allocation_ratio") * 0.1 *
        m(meta, "conversion"),
      `leaf ${i}`,
    );
  });
  assert.deepEqual(r.rows[5].meta, { is_rollup: true });
  assertKg(r.rows[5].kgCo2eq, 2.5 + 10 + 5 + 0 + 30);
});

Deno.test("meta, embodied energy (32): surface and the factor's category", () => {
  const f = factor("building_embodied_energy", { building_name: "BC", category: "new-tech" }, {
    ef_kgco2eq_per_m2: 100,
  });
  const r = compute("building_embodied_energy", {
    building_name: "BC",
    room_surface_square_meter: 50,
  }, [f]);
  assertInputs(inputsOf(r.rows[0], f), { room_surface_square_meter: 50, category: "new-tech" });
  assertKg(r.rows[0].kgCo2eq, 5000);
});

Deno.test("meta, plane (20): distances, haul band and RFI", () => {
  const f = factor("plane", { category: "very_short_haul", cabin_class: "business" }, {
    ef_kg_co2eq_per_km: 0.1,
    rfi_adjustment: 2,
    min_distance: 0,
    max_distance: 800,
  });
  const r = compute(
    "plane",
    {
      origin_iata: "GVA",
      destination_iata: "CDG",
      cabin_class: "business",
      number_of_trips: 2,
    },
    [f],
    reference({
      locations: [airport("GVA", 46.2381, 6.109), airport("CDG", 49.0097, 2.5479, "FR")],
    }),
  );
  const meta = inputsOf(r.rows[0], f);
  assertInputs(meta, {
    distance_km: 1006,
    distance_one_trip_km: 503,
    haul_category: "very_short_haul",
    rfi_adjustment: 2,
  });
  assertKg(r.rows[0].kgCo2eq, m(meta, "distance_km") * 0.1 * m(meta, "rfi_adjustment"));
  assertKg(r.rows[0].kgCo2eq, 201.2);
});

Deno.test("meta, train (21): distances, the route's country and the factor's (RoW standing in)", () => {
  const f = factor("train", { country_code: "RoW" }, { ef_kg_co2eq_per_km: 0.03 });
  const r = compute(
    "train",
    {
      origin_name: "Lausanne",
      origin_country_code: "CH",
      destination_name: "Paris",
      destination_country_code: "FR",
      cabin_class: "first",
      number_of_trips: 2,
    },
    [f],
    reference({
      locations: [
        station("Lausanne", "CH", 46.5167, 6.6322),
        station("Paris", "FR", 48.8443, 2.3744),
      ],
    }),
  );
  const meta = inputsOf(r.rows[0], f);
  assertInputs(meta, {
    distance_km: 984,
    distance_one_trip_km: 492,
    country_code: "FR",
    factor_country_code: "RoW",
  });
  assertKg(r.rows[0].kgCo2eq, m(meta, "distance_km") * 0.03);
});

Deno.test("meta, headcount (member 1, student 2): the fte on every leaf", () => {
  for (const det of ["member", "student"]) {
    const f = factor(det, {
      headcount_category: "food",
      headcount_class: "vegetarian",
      headcount_subclass: null,
      unit: "meal",
    }, { ef_kg_co2eq_per_unit: 1.5, number_of_unit_per_fte: 200 });
    const r = compute(det, { fte: 0.5 }, [f]);
    const meta = inputsOf(r.rows[0], f);
    assertInputs(meta, { fte: 0.5 });
    assertKg(r.rows[0].kgCo2eq, m(meta, "fte") * 1.5 * 200);
  }
});

Deno.test("meta: factors_used names the import that set the factor's values when the set carries it", () => {
  const values = {
    active_power_w: 100,
    standby_power_w: 10,
    active_usage_hours_per_week: 40,
    standby_usage_hours_per_week: 128,
    ef_kg_co2eq_per_kwh: 0.1,
  };
  const entry = { name: "x", equipment_class: "Laptop" };
  const base = factor("it", { equipment_class: "Laptop", sub_class: null }, values);
  for (const importId of [7, null]) {
    const r = compute("it", entry, [{ ...base, importId }]);
    assert.deepEqual(r.rows[0].meta.factors_used, [
      { id: base.id, import_id: importId, values },
    ]);
  }
  // A factor that never came from the database (no importId at all) is named as before.
  assert.deepEqual(compute("it", entry, [base]).rows[0].meta.factors_used, [
    { id: base.id, values },
  ]);
});
