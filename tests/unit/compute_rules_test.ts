// Lookup and ordering rules of spec/modules.md that the worked vectors alone do not pin: plane
// haul bands, headcount row order, the train country and station rules, the 168-hour check and
// the purchase currency conversion. Expected numbers are worked out by hand in the comments.
import assert from "node:assert/strict";
import { trainCountry } from "../../src/handlers/travel.ts";
import {
  airport,
  assertKg,
  compute,
  factor,
  reference,
  specAirports,
  specStations,
  station,
  YEAR,
} from "./_compute_fixtures.ts";

const airports = reference({
  locations: [airport("GVA", 46.2381, 6.109), airport("CDG", 49.0097, 2.5479, "FR")],
});
// GVA → CDG: one trip 503 km (spec vector).
const toParis = { origin_iata: "GVA", destination_iata: "CDG", cabin_class: "economy" };
const planeFactor = (
  id: number,
  category: string,
  cabin: string,
  min: number,
  max: number,
  ef = 0.1,
) =>
  factor("plane", { category, cabin_class: cabin }, {
    ef_kg_co2eq_per_km: ef,
    rfi_adjustment: 1,
    min_distance: min,
    max_distance: max,
  }, id);

Deno.test("plane: the lowest-id factor of a category sets its haul band", () => {
  // Same category, two cabins with different bounds: only the lower id's [0, 800) counts.
  const set = [
    planeFactor(101, "very_short_haul", "economy", 0, 800),
    planeFactor(102, "very_short_haul", "business", 1000, 2000),
  ];
  const r = compute("plane", toParis, set, airports);
  assert.equal(r.rows[0].meta.haul_category, "very_short_haul");
  assertKg(r.rows[0].kgCo2eq, 50.3);
  // Ids swapped: the band is [1000, 2000), which 503 km misses, so there is no row at all.
  const swapped = [
    planeFactor(101, "very_short_haul", "business", 1000, 2000),
    planeFactor(102, "very_short_haul", "economy", 0, 800),
  ];
  const none = compute("plane", toParis, swapped, airports);
  assert.deepEqual(none.rows, []);
  assert.match(none.warnings[0], /no haul band of the year's plane factors covers 503 km/);
  // A year without plane factors at all says so.
  const nothing = compute("plane", toParis, [], airports);
  assert.deepEqual(nothing.rows, []);
  assert.match(nothing.warnings[0], /^no plane factors for \d{4} \(a year's factors are not taken/);
});

Deno.test("plane: overlapping bands are tried in category-name order, not id order", () => {
  // Both bands hold 503 km; "a_regional" sorts first although its id is higher.
  const set = [
    planeFactor(201, "short_haul", "economy", 0, 1500, 0.1),
    planeFactor(202, "a_regional", "economy", 0, 800, 0.3),
  ];
  const r = compute("plane", toParis, set, airports);
  assert.equal(r.rows[0].meta.haul_category, "a_regional");
  assert.equal(r.rows[0].primaryFactorId, 202);
  assertKg(r.rows[0].kgCo2eq, 503 * 0.3);
  // Renamed so that the other one sorts first: now it wins.
  const renamed = [
    planeFactor(201, "a_short_haul", "economy", 0, 1500, 0.1),
    planeFactor(202, "b_regional", "economy", 0, 800, 0.3),
  ];
  assert.equal(compute("plane", toParis, renamed, airports).rows[0].primaryFactorId, 201);
});

Deno.test("plane: every flight of a slice gets its own route, whatever routes came before", () => {
  // One set of locations, as a rematch reads it once for the whole slice; the distances are the
  // spec's vectors (GVA → CDG 503 km, GVA → LHR 849 km, GVA → JFK 6296 km) and the great circle
  // is the same both ways. ef 1 per km: the kg is the distance.
  const world = specAirports();
  const set = [planeFactor(301, "any_haul", "economy", 0, 20000, 1)];
  const flight = (origin_iata: string, destination_iata: string) =>
    compute("plane", { origin_iata, destination_iata, cabin_class: "economy" }, set, world);
  for (let round = 0; round < 2; round++) {
    for (
      const [from, to, km] of [
        ["GVA", "CDG", 503],
        ["GVA", "LHR", 849],
        ["GVA", "JFK", 6296],
        ["CDG", "GVA", 503],
        ["LHR", "GVA", 849],
      ] as const
    ) {
      const r = flight(from, to);
      assert.equal(r.rows[0].meta.distance_one_trip_km, km, `${from} → ${to}`);
      assertKg(r.rows[0].kgCo2eq, km);
    }
    for (const [from, to, missing] of [["GVA", "XXX", "XXX"], ["YYY", "CDG", "YYY"]] as const) {
      const r = flight(from, to);
      assert.deepEqual(r.rows, []);
      assert.match(r.warnings[0], new RegExp(`^airport ${missing} not found in locations$`));
    }
  }
});

Deno.test("headcount: rows come in emission-type then id order within food, waste, commuting", () => {
  const hc = (id: number, category: string, kind: string, unit: string, ef: number) =>
    factor(
      "member",
      {
        headcount_category: category,
        headcount_class: kind,
        headcount_subclass: null,
        unit,
      },
      { ef_kg_co2eq_per_unit: ef, number_of_unit_per_fte: 1 },
      id,
    );
  // Given in scrambled order; ids and types deliberately disagree.
  const factors = [
    hc(304, "waste", "incineration", "kg", 5),
    hc(303, "food", "vegetarian", "kg", 3),
    hc(300, "commuting", "car", "km", 9),
    hc(301, "food", "non_vegetarian", "meal", 1),
    hc(302, "food", "vegetarian", "meal", 2),
  ];
  const r = compute("member", { fte: 1 }, factors);
  assert.deepEqual(
    r.rows.map((row) => [row.emissionTypeId, row.primaryFactorId]),
    [
      [10001, 302], // food__vegetarian, lower id first
      [10001, 303],
      [10002, 301], // food__non_vegetarian
      [20001, 304], // waste__incineration
      [30005, 300], // commuting__car, although it has the lowest id
      [40000, 300], // rollup: the smallest factor id among the leaves
    ],
  );
  assertKg(r.rows[5].kgCo2eq, 2 + 3 + 1 + 5 + 9);
});

const stations = reference({
  locations: [
    station("Lausanne", "CH", 46.5167, 6.6322),
    station("Paris", "FR", 48.8443, 2.3744),
    station("Berlin", "DE", 52.5251, 13.3694),
    station("Basel", "CH", 47.5476, 7.5897),
    station("Basel", "DE", 47.5672, 7.6075),
  ],
});
const countryFactors = ["CH", "FR", "DE", "RoW"].map((c, i) =>
  factor("train", { country_code: c }, { ef_kg_co2eq_per_km: 0.01 * (i + 1) }, 400 + i)
);
const ride = (from: string, to: string, extra: Record<string, unknown> = {}) => ({
  origin_name: from,
  destination_name: to,
  cabin_class: "second",
  ...extra,
});

Deno.test("train: the country rule prefers the destination's country, then the origin's", () => {
  assert.equal(trainCountry("FR", "DE"), "DE");
  assert.equal(trainCountry("DE", "CH"), "DE");
  assert.equal(trainCountry("CH", "FR"), "FR");
  assert.equal(trainCountry("CH", "CH"), "CH");
  assert.equal(trainCountry("CH", null), "RoW");
  assert.equal(trainCountry(null, null), "RoW");
  const factorOf = (from: string, to: string) =>
    compute("train", ride(from, to), countryFactors, stations).rows[0].primaryFactorId;
  assert.equal(factorOf("Paris", "Berlin"), 402, "FR → DE uses the DE factor");
  assert.equal(factorOf("Berlin", "Paris"), 401, "DE → FR uses the FR factor");
  assert.equal(factorOf("Paris", "Lausanne"), 401, "FR → CH uses the origin's FR factor");
});

Deno.test("train: a station without a country code is found by name across all countries", () => {
  // "Lausanne" and "Paris" exist once each; the name is matched case- and space-insensitively.
  const r = compute("train", ride(" lausanne ", "PARIS"), countryFactors, stations);
  assert.equal(r.rows.length, 1);
  assert.equal(r.rows[0].meta.country_code, "FR");
  // Lausanne → Paris one trip: 492 km (spec vector 984 km for two trips), FR ef 0.02.
  assert.equal(r.rows[0].meta.distance_km, 492);
  assertKg(r.rows[0].kgCo2eq, 492 * 0.02);
});

Deno.test("train: a station name matching several countries is a per-entry error naming the matches", () => {
  assert.throws(
    () => compute("train", ride("Basel", "Lausanne"), countryFactors, stations),
    (error: Error) => {
      assert.equal(error.name, "EntryComputeError");
      assert.equal(
        error.message,
        'origin_name: station "Basel" is ambiguous, 2 stations match: train:ch:basel, ' +
          "train:de:basel; give origin_country_code or origin_natural_key",
      );
      return true;
    },
  );
  assert.throws(
    () => compute("train", ride("Lausanne", "basel"), countryFactors, stations),
    /destination_name: station "basel" is ambiguous/,
  );
  // The country code or the natural key settles it.
  const withCountry = compute(
    "train",
    ride("Basel", "Lausanne", { origin_country_code: "de" }),
    countryFactors,
    stations,
  );
  assert.equal(withCountry.rows.length, 1);
  const withKey = compute(
    "train",
    ride("Basel", "Lausanne", { origin_natural_key: "train:ch:basel" }),
    countryFactors,
    stations,
  );
  assert.equal(withKey.rows[0].meta.country_code, "CH");
  // A natural key is compared as stored keys are: country and name in any case and spacing.
  const typed = compute(
    "train",
    ride("Basel", "Lausanne", { origin_natural_key: "train:DE: Basel " }),
    countryFactors,
    stations,
  );
  assert.equal(typed.rows[0].meta.country_code, "DE");
  // An airport's key names no station: an error naming the field.
  assert.throws(
    () =>
      compute(
        "train",
        ride("Lausanne", "Basel", { destination_natural_key: "plane:GVA" }),
        countryFactors,
        stations,
      ),
    /^EntryComputeError: destination_natural_key: "plane:GVA" is not a train station's key/,
  );
});

Deno.test("train: every journey of a slice finds its own stations, whatever journeys came before", () => {
  // One set of locations, as a rematch reads it once for the whole slice. Distances from the
  // spec's vectors: Geneva → Lausanne 61 km, Lausanne → Zürich 209 km, Lausanne → Paris 492 km a
  // trip (984 km for two); the great circle is the same both ways. ef 1 per km everywhere.
  const swiss = specStations(
    station("Basel", "CH", 47.5476, 7.5897),
    station("Basel", "DE", 47.5672, 7.6075),
  );
  const perKm = ["CH", "DE", "RoW"].map((c, i) =>
    factor("train", { country_code: c }, { ef_kg_co2eq_per_km: 1 }, 500 + i)
  );
  const journey = (from: string, to: string, extra: Record<string, unknown> = {}) =>
    compute("train", ride(from, to, extra), perKm, swiss);
  for (let round = 0; round < 2; round++) {
    for (
      const [from, to, km] of [
        ["Geneva", "Lausanne", 61],
        [" lausanne ", "Geneva", 61],
        ["Lausanne", "Zürich", 209],
        ["Lausanne", "Paris", 492],
        ["Paris", "LAUSANNE", 492],
      ] as const
    ) {
      const r = journey(from, to);
      assert.equal(r.rows[0].meta.distance_one_trip_km, km, `${from} → ${to}`);
      assertKg(r.rows[0].kgCo2eq, km);
    }
    // The same name in two countries: the country code picks the station, the name alone fails.
    const fromBasel = (country: string) =>
      journey("Basel", "Zürich", { origin_country_code: country }).rows[0].meta.country_code;
    assert.equal(fromBasel("DE"), "DE");
    assert.equal(fromBasel("CH"), "CH");
    assert.throws(() => journey("Basel", "Zürich"), /origin_name: station "Basel" is ambiguous/);
    assert.throws(() => journey("Zürich", "Basel"), /destination_name: station "Basel"/);
    const nowhere = journey("Lausanne", "Nowhere");
    assert.deepEqual(nowhere.rows, []);
    assert.equal(nowhere.warnings[0], "station Nowhere not found in locations");
  }
});

Deno.test("equipment: hours over 168 with the factor's default hours fail at compute time", () => {
  const f = factor("it", { equipment_class: "Laptop", sub_class: null }, {
    active_power_w: 100,
    standby_power_w: 10,
    active_usage_hours_per_week: 40,
    standby_usage_hours_per_week: 128,
    ef_kg_co2eq_per_kwh: 0.1,
  });
  // 100 h on the entry (valid alone) + the factor's 128 standby hours = 228 h.
  assert.throws(
    () =>
      compute("it", { name: "x", equipment_class: "Laptop", active_usage_hours_per_week: 100 }, [
        f,
      ]),
    (error: Error) =>
      error.name === "EntryComputeError" &&
      /active \+ standby hours per week \(228\) exceed 168/.test(error.message),
  );
  // Exactly 168 is allowed: 40 + 128.
  assertKg(compute("it", { name: "x", equipment_class: "Laptop" }, [f]).rows[0].kgCo2eq, 27.456);
});

Deno.test("purchase: the kg divides by the EUR rate of the factor's currency", () => {
  const usdFactor = factor("services", {
    purchase_institutional_code: "55000000",
    purchase_additional_code: null,
    currency: "usd",
  }, { ef_kg_co2eq_per_currency: 0.5 });
  const rates = reference({ rates: [[YEAR, "usd", 0.8]] });
  // 100 EUR is 125 USD; at 0.5 kg per USD that is 62.5 kg (not 50).
  const r = compute(
    "services",
    {
      purchase_institutional_code: "55000000",
      total_spent_amount: 100,
      currency: "eur",
    },
    [usdFactor],
    rates,
  );
  assertKg(r.rows[0].kgCo2eq, 62.5);
  // 80 USD spent against a USD factor: 40 kg whatever the rate.
  const same = compute(
    "services",
    {
      purchase_institutional_code: "55000000",
      total_spent_amount: 80,
      currency: "usd",
    },
    [usdFactor],
    rates,
  );
  assertKg(same.rows[0].kgCo2eq, 40);
  // The factor's currency needs its rate too: none for the year is a per-entry error.
  assert.throws(
    () =>
      compute("services", {
        purchase_institutional_code: "55000000",
        total_spent_amount: 100,
        currency: "eur",
      }, [usdFactor]),
    /no exchange rate for currency "usd" in 2025/,
  );
});
