// Every worked vector of spec/modules.md, through the pure compute core (no database).
import assert from "node:assert/strict";
import {
  assertKg,
  compute,
  factor,
  reference,
  specAirports,
  specStations,
  YEAR,
} from "./_compute_fixtures.ts";

const laptop = (ef: number) =>
  factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, {
    active_power_w: 100,
    standby_power_w: 10,
    active_usage_hours_per_week: 40,
    standby_usage_hours_per_week: 128,
    ef_kg_co2eq_per_kwh: ef,
  });

Deno.test("equipment: 40 h × 100 W + 128 h × 10 W at ef 0.1 → 27.456 kg, ef 0.2 → 54.912", () => {
  for (const [ef, kg] of [[0.1, 27.456], [0.2, 54.912]]) {
    const f = laptop(ef);
    const r = compute("it", {
      name: "laptop",
      equipment_class: "Laptop",
      sub_class: "Standard",
      active_usage_hours_per_week: 40,
      standby_usage_hours_per_week: 128,
    }, [f]);
    assert.equal(r.rows.length, 1);
    assertKg(r.rows[0].kgCo2eq, kg);
    assert.equal(r.rows[0].emissionTypeId, 80200);
    assert.equal(r.rows[0].scope, 2);
    assert.equal(r.rows[0].primaryFactorId, f.id);
    assert.equal(r.data.primary_factor_id, f.id);
    assert.deepEqual(r.rows[0].meta.factors_used, [{ id: f.id, values: f.values }]);
  }
});

Deno.test("equipment: hours missing on the entry fall back to the factor's default hours", () => {
  const r = compute("it", { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" }, [
    laptop(0.1),
  ]);
  assertKg(r.rows[0].kgCo2eq, 27.456);
});

Deno.test("purchase common: 100 eur × ef 0.5 → 50; 1000 chf at 1/0.95 EUR → 526.3157894736842", () => {
  const f = factor("services", {
    purchase_institutional_code: "55000000",
    purchase_additional_code: "C",
    currency: "eur",
  }, {
    ef_kg_co2eq_per_currency: 0.5,
  });
  const eur = compute("services", {
    total_spent_amount: 100,
    currency: "eur",
    purchase_institutional_code: "55000000",
  }, [f]);
  assertKg(eur.rows[0].kgCo2eq, 50);
  assert.equal(eur.rows[0].emissionTypeId, 90600);
  const ref = reference({ rates: [[YEAR, "chf", 1 / 0.95]] });
  const chf = compute("services", {
    total_spent_amount: 1000,
    currency: "chf",
    purchase_institutional_code: "55000000",
  }, [
    f,
  ], ref);
  assertKg(chf.rows[0].kgCo2eq, 526.3157894736842);
});

Deno.test("purchase common: the currency defaults to chf and a missing rate is a per-entry error", () => {
  const f = factor("vehicles", {
    purchase_institutional_code: "25101500",
    purchase_additional_code: "VA15",
    currency: "eur",
  }, {
    ef_kg_co2eq_per_currency: 0.5,
  });
  assert.throws(
    () =>
      compute("vehicles", { total_spent_amount: 10, purchase_institutional_code: "25101500" }, [f]),
    /no exchange rate for currency "chf" in 2025/,
  );
});

Deno.test("additional purchases: 100 × 0.8 × 0.3 → 24, ln2 typed purchases__additional__ln2", () => {
  const f = factor("additional_purchases", { name: "ln2" }, { ef_kg_co2eq_per_kg: 0.3 });
  const r = compute("additional_purchases", {
    name: "ln2",
    annual_consumption: 100,
    coef_to_kg: 0.8,
  }, [f]);
  assertKg(r.rows[0].kgCo2eq, 24);
  assert.equal(r.rows[0].emissionTypeId, 90901);
  assert.equal(r.rows[0].scope, 1);
});

Deno.test("external clouds: 200 eur × 0.05 → 10, typed by service type", () => {
  const f = factor(
    "external_clouds",
    { provider: "AWS", service_type: "compute", currency: "eur" },
    {
      ef_kg_co2eq_per_currency: 0.05,
    },
  );
  const r = compute("external_clouds", {
    provider: "AWS",
    service_type: "compute",
    spent_amount: 200,
    currency: "eur",
  }, [f]);
  assertKg(r.rows[0].kgCo2eq, 10);
  assert.equal(r.rows[0].emissionTypeId, 110102);
});

Deno.test("external AI: 5_20, fte 1, ef 0.01 → 0.02875; ef 2.0 → 5.75; one row", () => {
  for (const [ef, kg] of [[0.01, 0.02875], [2.0, 5.75]]) {
    const f = factor("external_ai", { provider: "Mistral AI", usage_type: "chat" }, {
      ef_kg_co2eq_per_request: ef,
    });
    const r = compute("external_ai", {
      provider: "Mistral AI",
      usage_type: "chat",
      requests_per_user_per_day: "5_20",
      fte_count: 1,
    }, [f]);
    assert.equal(r.rows.length, 1);
    assertKg(r.rows[0].kgCo2eq, kg);
    assert.equal(r.rows[0].emissionTypeId, 110202);
  }
});

Deno.test("process emissions: 100 × 1.5 → 150", () => {
  const f = factor("process_emissions", { category: "co2", subcategory: null, unit: "kg" }, {
    ef_kg_co2eq_per_unit: 1.5,
  });
  const r = compute("process_emissions", { category: "co2", quantity: 100 }, [f]);
  assertKg(r.rows[0].kgCo2eq, 150);
  assert.equal(r.rows[0].emissionTypeId, 70200);
});

Deno.test("energy combustion: 1000 × 0.2 → 200, typed by fuel", () => {
  const f = factor("energy_combustion", { name: "Natural gas", unit: "kWh" }, {
    ef_kg_co2eq_per_unit: 0.2,
  });
  const r = compute("energy_combustion", { name: "Natural gas", quantity: 1000 }, [f]);
  assertKg(r.rows[0].kgCo2eq, 200);
  assert.equal(r.rows[0].emissionTypeId, 60201);
});

const officeFactor = (ef: number) =>
  factor("building", { building_name: "BC", room_type: "office" }, {
    ef_kg_co2eq_per_kwh: ef,
    lighting_kwh_per_square_meter: 5,
    cooling_kwh_per_square_meter: 20,
    ventilation_kwh_per_square_meter: 10,
    heating_kwh_per_square_meter: 30,
    energy_type: "electric",
    conversion_factor: 1,
  });
const rooms = reference({
  rooms: [{ buildingName: "BC", roomName: "BC 010", roomType: "office", surfaceSquareMeter: 10 }],
});
const officeEntry = {
  building_name: "BC",
  room_name: "BC 010",
  room_type: "office",
  room_allocation_ratio: 1,
};

Deno.test("building rooms: office 10 m² → 5, 20, 10, 30, 0 and rollup 65; doubling ef doubles every row", () => {
  const r = compute("building", officeEntry, [officeFactor(0.1)], rooms);
  assert.deepEqual(r.rows.map((row) => row.emissionTypeId), [
    6010101,
    6010201,
    6010301,
    6010401,
    6010501,
    60100,
  ]);
  [5, 20, 10, 30, 0, 65].forEach((kg, i) => assertKg(r.rows[i].kgCo2eq, kg, `row ${i}`));
  assert.deepEqual(r.rows.map((row) => row.scope), [2, 2, 2, 2, 1, null]);
  assert.equal(r.rows[5].meta.is_rollup, true);
  const doubled = compute("building", officeEntry, [officeFactor(0.2)], rooms);
  [10, 40, 20, 60, 0, 130].forEach((kg, i) => assertKg(doubled.rows[i].kgCo2eq, kg, `row ${i}`));
});

Deno.test("building rooms: a room missing from building_rooms gives no rows and a warning", () => {
  const r = compute(
    "building",
    { ...officeEntry, room_name: "nowhere" },
    [officeFactor(0.1)],
    rooms,
  );
  assert.deepEqual(r.rows, []);
  assert.match(r.warnings[0], /room "nowhere" of building "BC" not found/);
  // A room that is there without a surface says so.
  const bare = compute(
    "building",
    officeEntry,
    [officeFactor(0.1)],
    reference({
      rooms: [{
        buildingName: "BC",
        roomName: "BC 010",
        roomType: "office",
        surfaceSquareMeter: null,
      }],
    }),
  );
  assert.deepEqual(bare.rows, []);
  assert.deepEqual(bare.warnings, [
    'room "BC 010" of building "BC" has no surface (room_surface_square_meter is blank in the rooms data)',
  ]);
});

Deno.test("embodied energy: 50 m² × 100 → 5000; unknown building uses `default`: 200 and 60", () => {
  const own = factor("building_embodied_energy", { building_name: "BC", category: "new-tech" }, {
    ef_kgco2eq_per_m2: 100,
  });
  const d1 = factor(
    "building_embodied_energy",
    { building_name: "default", category: "new-tech" },
    { ef_kgco2eq_per_m2: 10 },
  );
  const d2 = factor("building_embodied_energy", { building_name: "default", category: "new-env" }, {
    ef_kgco2eq_per_m2: 3,
  });
  const r = compute("building_embodied_energy", {
    building_name: "BC",
    room_surface_square_meter: 50,
  }, [own, d1, d2]);
  assert.equal(r.rows.length, 1);
  assertKg(r.rows[0].kgCo2eq, 5000);
  assert.equal(r.rows[0].emissionTypeId, 60300);
  const fallback = compute("building_embodied_energy", {
    building_name: "XYZ",
    room_surface_square_meter: 20,
  }, [own, d1, d2]);
  assert.deepEqual(fallback.rows.map((row) => row.primaryFactorId), [d1.id, d2.id]);
  assertKg(fallback.rows[0].kgCo2eq, 200);
  assertKg(fallback.rows[1].kgCo2eq, 60);
});

const airports = specAirports();
const planeFactors = (ef: number) => [
  factor("plane", { category: "very_short_haul", cabin_class: "economy" }, {
    ef_kg_co2eq_per_km: ef,
    rfi_adjustment: 1,
    min_distance: 0,
    max_distance: 800,
  }),
  factor("plane", { category: "short_haul", cabin_class: "economy" }, {
    ef_kg_co2eq_per_km: 0.1,
    rfi_adjustment: 2,
    min_distance: 800,
    max_distance: 1500,
  }),
  factor("plane", { category: "long_haul", cabin_class: "economy" }, {
    ef_kg_co2eq_per_km: 0.1,
    rfi_adjustment: 1,
    min_distance: 4000,
    max_distance: 20000,
  }),
];
const flight = (destination: string, trips = 1) => ({
  origin_iata: "GVA",
  destination_iata: destination,
  cabin_class: "economy",
  number_of_trips: trips,
});

Deno.test("plane: GVA → CDG is 503 km; very short haul economy ef 0.1 → 50.3 kg, ef 0.2 → 100.6", () => {
  for (const [ef, kg] of [[0.1, 50.3], [0.2, 100.6]]) {
    const r = compute("plane", flight("CDG"), planeFactors(ef), airports);
    assert.equal(r.rows.length, 1);
    assert.equal(r.rows[0].meta.distance_one_trip_km, 503);
    assert.equal(r.rows[0].meta.haul_category, "very_short_haul");
    assertKg(r.rows[0].kgCo2eq, kg);
    assert.equal(r.rows[0].emissionTypeId, 50203);
  }
});

Deno.test("plane: GVA → LHR is 849 km; 2 trips, ef 0.1, rfi 2 → 339.6 kg, additional_value 1698", () => {
  const r = compute("plane", flight("LHR", 2), planeFactors(0.1), airports);
  assert.equal(r.rows[0].meta.distance_one_trip_km, 849);
  assert.equal(r.rows[0].meta.haul_category, "short_haul");
  assertKg(r.rows[0].kgCo2eq, 339.6);
  assert.equal(r.rows[0].additionalValue, 1698);
  assert.equal(r.rows[0].meta.rfi_adjustment, 2);
});

Deno.test("plane: GVA → JFK is 6296 km", () => {
  const r = compute("plane", flight("JFK"), planeFactors(0.1), airports);
  assert.equal(r.rows[0].meta.distance_one_trip_km, 6296);
  assert.equal(r.rows[0].meta.haul_category, "long_haul");
});

Deno.test("plane: an unknown airport or a distance outside every band gives no rows", () => {
  assert.deepEqual(compute("plane", flight("XXX"), planeFactors(0.1), airports).rows, []);
  const onlyShort = planeFactors(0.1).slice(0, 2);
  const r = compute("plane", flight("JFK"), onlyShort, airports);
  assert.deepEqual(r.rows, []);
  assert.match(r.warnings[0], /no haul band/);
});

const stations = specStations();
const trip = (from: string, fromCc: string, to: string, toCc: string, trips = 1) => ({
  origin_name: from,
  origin_country_code: fromCc,
  destination_name: to,
  destination_country_code: toCc,
  cabin_class: "second",
  number_of_trips: trips,
});
const trainFactor = (country: string, ef: number) =>
  factor("train", { country_code: country }, { ef_kg_co2eq_per_km: ef });

Deno.test("train: Geneva → Lausanne is 61 km; CH ef 0.05 → 3.05, ef 0.10 → 6.1", () => {
  for (const [ef, kg] of [[0.05, 3.05], [0.1, 6.1]]) {
    const r = compute(
      "train",
      trip("Geneva", "CH", "Lausanne", "CH"),
      [trainFactor("CH", ef)],
      stations,
    );
    assert.equal(r.rows[0].meta.distance_one_trip_km, 61);
    assertKg(r.rows[0].kgCo2eq, kg);
    assert.equal(r.rows[0].emissionTypeId, 50102);
    assert.equal(r.rows[0].additionalValue, 61);
  }
});

Deno.test("train: Lausanne → Zürich is 209 km × 0.007 → 1.463", () => {
  const r = compute(
    "train",
    trip("Lausanne", "CH", "Zürich", "CH"),
    [trainFactor("CH", 0.007)],
    stations,
  );
  assertKg(r.rows[0].kgCo2eq, 1.463);
});

Deno.test("train: Lausanne → Paris, 2 trips: 984 km, FR without factor → RoW 0.03 → 29.52", () => {
  const factors = [trainFactor("CH", 0.007), trainFactor("RoW", 0.03)];
  const r = compute("train", trip("Lausanne", "CH", "Paris", "FR", 2), factors, stations);
  assert.equal(r.rows[0].meta.distance_km, 984);
  assertKg(r.rows[0].kgCo2eq, 29.52);
  assert.equal(r.rows[0].primaryFactorId, factors[1].id);
});

Deno.test("train: number_of_trips need not be whole (≥ 1); a flight's must be an integer", () => {
  const r = compute(
    "train",
    trip("Geneva", "CH", "Lausanne", "CH", 1.5),
    [trainFactor("CH", 0.05)],
    stations,
  );
  // 61 km × 1.5 = 91.5 km; × 0.05 = 4.575 kg.
  assert.equal(r.rows[0].meta.distance_km, 91.5);
  assert.equal(r.rows[0].additionalValue, 91.5);
  assertKg(r.rows[0].kgCo2eq, 4.575);
  for (const trips of [0.5, 0]) {
    assert.throws(
      () => compute("train", trip("Geneva", "CH", "Lausanne", "CH", trips), [], stations),
      /number_of_trips/,
    );
  }
  assert.throws(
    () => compute("plane", flight("CDG", 1.5), planeFactors(0.1), airports),
    /number_of_trips: expected an integer/,
  );
});

const headcountFactors = (foodEf: number) => [
  factor("member", {
    headcount_category: "food",
    headcount_class: "vegetarian",
    headcount_subclass: null,
    unit: "meal",
  }, {
    ef_kg_co2eq_per_unit: foodEf,
    number_of_unit_per_fte: 100,
  }),
  factor("member", {
    headcount_category: "waste",
    headcount_class: "incineration",
    headcount_subclass: null,
    unit: "kg",
  }, {
    ef_kg_co2eq_per_unit: 0.5,
    number_of_unit_per_fte: 50,
  }),
  factor("member", {
    headcount_category: "commuting",
    headcount_class: "public_transport",
    headcount_subclass: null,
    unit: "km",
  }, { ef_kg_co2eq_per_unit: 0.2, number_of_unit_per_fte: 200 }),
];

Deno.test("headcount: fte 1 → food 100, waste 25, commuting 40, rollup 165; food ef 2 → 200 and 265", () => {
  for (const det of ["member", "student"]) {
    const r = compute(det, { name: "A", fte: 1 }, headcountFactors(1));
    assert.deepEqual(r.rows.map((row) => row.emissionTypeId), [10001, 20001, 30004, 40000]);
    [100, 25, 40, 165].forEach((kg, i) => assertKg(r.rows[i].kgCo2eq, kg, `row ${i}`));
    assert.deepEqual(r.rows.map((row) => row.additionalValue), [100, 50, 200, null]);
    const doubled = compute(det, { name: "A", fte: 1 }, headcountFactors(2));
    [200, 25, 40, 265].forEach((kg, i) => assertKg(doubled.rows[i].kgCo2eq, kg, `row ${i}`));
  }
});
