// Compute rules through the database and the rematch: module stats leave rollup rows out, a
// station without a country code is found by name (several matches: a per-entry error), and
// equipment hours over 168 fail at compute time while the entry keeps its rows.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { upsertLocations, upsertRooms } from "../../src/db/reference.ts";
import { locationNaturalKey } from "../../src/reference/natural_key.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import {
  createTestEntries,
  emissionRows,
  entryData,
  importFactorText,
  IT_HEADER,
} from "./_slice.ts";

const testDb = useTestDatabase();
const near = (a: number, b: number) => Math.abs(a - b) <= Math.abs(b) * 1e-9;
const HEADCOUNT_HEADER =
  "headcount_category,headcount_class,headcount_subclass,unit,number_of_unit_per_fte,ef_kg_co2eq_per_unit";
const ROOM_HEADER =
  "building_name,room_type,ef_kg_co2eq_per_kwh,lighting_kwh_per_square_meter,cooling_kwh_per_square_meter,ventilation_kwh_per_square_meter,heating_kwh_per_square_meter,energy_type,conversion_factor";

async function moduleStats(db: Database, det: number) {
  const rows = await db.sql<{ stats: Record<string, unknown> }[]>`
    select m.stats from carbon_report_modules m
    where exists (select 1 from data_entries e
      where e.carbon_report_module_id = m.id and e.data_entry_type_id = ${det})`;
  assert.equal(rows.length, 1);
  return rows[0].stats as {
    total: number;
    scope1: number;
    scope2: number;
    scope3: number;
    by_emission_type: Record<string, number>;
    entry_count: number;
  };
}

dbTest(testDb, "module stats leave out the headcount rollup: total 265, not 530", async (db) => {
  const factors = (foodEf: number) =>
    `${HEADCOUNT_HEADER}\nfood,vegetarian,,meal,100,${foodEf}\nwaste,incineration,,kg,50,0.5\n` +
    "commuting,public_transport,,km,200,0.2\n";
  await importFactorText(db, "member", 2025, factors(1));
  const [id] = await createTestEntries(db, "member", 2025, [{ name: "A", fte: 1 }]);
  // The spec vector: 100 + 25 + 40 and a rollup row of 165.
  assert.deepEqual(
    (await emissionRows(db.sql, [id])).map((r) => [r.emission_type_id, r.kg_co2eq]),
    [[10001, 100], [20001, 25], [30004, 40], [40000, 165]],
  );
  await importFactorText(db, "member", 2025, factors(2));
  const r = await recalculateForDataEntryType(db, { dataEntryType: "member", year: 2025 });
  assert.equal(r.affectedModuleIds.length, 1);
  assert.ok(near(r.kgAfter, 265));
  const stats = await moduleStats(db, 1);
  assert.ok(near(stats.total, 265), `total ${stats.total}`);
  assert.ok(near(stats.scope3, 265), `scope3 ${stats.scope3}`);
  assert.deepEqual(stats.by_emission_type, { "10001": 200, "20001": 25, "30004": 40 });
  assert.equal(stats.entry_count, 1);
});

dbTest(testDb, "module stats leave out the building rollup: total 130, not 260", async (db) => {
  await db.sql.begin((tx) =>
    upsertRooms(tx, [{
      buildingName: "BC",
      roomName: "BC 010",
      roomType: "office",
      surfaceSquareMeter: 10,
    }])
  );
  const factors = (ef: number) => `${ROOM_HEADER}\nBC,office,${ef},5,20,10,30,electric,1\n`;
  await importFactorText(db, "building", 2025, factors(0.1));
  const [id] = await createTestEntries(db, "building", 2025, [
    { building_name: "BC", room_name: "BC 010", room_type: "office" },
  ]);
  // The spec vector: 5, 20, 10, 30, 0 and a rollup row of 65.
  assert.deepEqual(
    (await emissionRows(db.sql, [id])).map((r) => r.kg_co2eq),
    [5, 20, 10, 30, 0, 65],
  );
  await importFactorText(db, "building", 2025, factors(0.2));
  await recalculateForDataEntryType(db, { dataEntryType: "building", year: 2025 });
  const stats = await moduleStats(db, 30);
  // Doubling ef: 10 + 40 + 20 + 60 (scope 2) + 0 (heating_thermal, scope 1).
  assert.ok(near(stats.total, 130), `total ${stats.total}`);
  assert.ok(near(stats.scope2, 130), `scope2 ${stats.scope2}`);
  assert.equal(stats.scope1, 0);
  assert.equal(stats.by_emission_type["60100"], undefined);
  assert.deepEqual(
    Object.keys(stats.by_emission_type).sort(),
    ["6010101", "6010201", "6010301", "6010401", "6010501"],
  );
});

async function insertStations(
  db: Database,
  stations: [name: string, country: string, lat: number, lon: number][],
) {
  await db.sql.begin((tx) =>
    upsertLocations(
      tx,
      stations.map(([name, countryCode, latitude, longitude]) => ({
        transportMode: "train" as const,
        name,
        iataCode: null,
        countryCode,
        latitude,
        longitude,
        naturalKey: locationNaturalKey({ transportMode: "train", name, countryCode }),
      })),
    )
  );
}

dbTest(
  testDb,
  "train: stations without a country code are found by name; once the name is ambiguous, the entry fails alone",
  async (db) => {
    await insertStations(db, [
      ["Lausanne", "CH", 46.5167, 6.6322],
      ["Paris", "FR", 48.8443, 2.3744],
      ["Basel", "CH", 47.5476, 7.5897],
    ]);
    await importFactorText(
      db,
      "train",
      2025,
      "country_code,ef_kg_co2eq_per_km\nCH,0.007\nFR,0.02\nRoW,0.03\n",
    );
    const [toParis, fromBasel] = await createTestEntries(db, "train", 2025, [
      { origin_name: "lausanne", destination_name: "Paris", cabin_class: "second" },
      { origin_name: "Basel", destination_name: "Lausanne", cabin_class: "second" },
    ]);
    // Lausanne → Paris: 492 km one trip, destination FR → 492 × 0.02.
    const [paris] = await emissionRows(db.sql, [toParis]);
    assert.equal(paris.additional_value, 492);
    assert.ok(near(paris.kg_co2eq, 9.84));
    assert.equal(paris.meta.country_code, "FR");
    const baselRows = await emissionRows(db.sql, [fromBasel]);
    assert.equal(baselRows.length, 1);
    assert.equal(baselRows[0].meta.country_code, "CH");
    const baselData = await entryData(db.sql, fromBasel);

    // A second "Basel" (in Germany) makes the name ambiguous for the entry without a country.
    await insertStations(db, [["Basel", "DE", 47.5672, 7.6075]]);
    await importFactorText(
      db,
      "train",
      2025,
      "country_code,ef_kg_co2eq_per_km\nCH,0.007\nFR,0.04\nRoW,0.03\n",
    );
    const r = await recalculateForDataEntryType(db, { dataEntryType: "train", year: 2025 });
    assert.deepEqual([r.entries, r.recalculated, r.errors], [2, 1, 1]);
    assert.deepEqual(r.errorDetails, [{
      dataEntryId: fromBasel,
      error: 'origin_name: station "Basel" is ambiguous, 2 stations match: train:ch:basel, ' +
        "train:de:basel; give origin_country_code or origin_natural_key",
    }]);
    assert.deepEqual(await emissionRows(db.sql, [fromBasel]), baselRows);
    assert.deepEqual(await entryData(db.sql, fromBasel), baselData);
    assert.ok(near((await emissionRows(db.sql, [toParis]))[0].kg_co2eq, 492 * 0.04));
  },
);

dbTest(
  testDb,
  "equipment: hours over 168 at compute time are a per-entry error; the entry keeps its rows",
  async (db) => {
    // Factor default hours 40 active + 60 standby.
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,,100,10,40,60,0.1\n`);
    const laptop = { name: "laptop", equipment_class: "Laptop" };
    const [usesDefault, edited, plain] = await createTestEntries(db, "it", 2025, [
      { ...laptop, active_usage_hours_per_week: 100 },
      { ...laptop, active_usage_hours_per_week: 40, standby_usage_hours_per_week: 60 },
      laptop,
    ]);
    // 100 h × 100 W + 60 h (default) × 10 W = 10.6 kWh a week, × 52 × 0.1 → 55.12 kg
    const defaultRows = await emissionRows(db.sql, [usesDefault]);
    assert.ok(near(defaultRows[0].kg_co2eq, 55.12));
    // Stored hours edited by hand in SQL to 100 + 100 h.
    await db.sql`update data_entries
      set data = data || '{"active_usage_hours_per_week": 100, "standby_usage_hours_per_week": 100}'
      where id = ${edited}`;
    const editedRows = await emissionRows(db.sql, [edited]);
    // The factor's default standby hours become 128: 100 + 128 = 228 h for the first entry.
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,,100,10,40,128,0.1\n`);
    const r = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    assert.deepEqual([r.entries, r.recalculated, r.errors], [3, 1, 2]);
    const errors = new Map(r.errorDetails.map((e) => [e.dataEntryId, e.error]));
    assert.match(errors.get(usesDefault)!, /active \+ standby hours per week \(228\) exceed 168/);
    assert.match(
      errors.get(edited)!,
      /standby_usage_hours_per_week: active \+ standby hours per week must be ≤ 168/,
    );
    assert.deepEqual(await emissionRows(db.sql, [usesDefault]), defaultRows);
    assert.deepEqual(await emissionRows(db.sql, [edited]), editedRows);
    // The entry without hours of its own: 40 × 100 + 128 × 10 → the spec's 27.456 kg.
    assert.ok(near((await emissionRows(db.sql, [plain]))[0].kg_co2eq, 27.456));
  },
);

dbTest(
  testDb,
  "year-strict: a factor without a year never stands in for a year's factor (spec/domain.md §4)",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    // The same factor without a year (as a hand edit might leave one), ef 9.
    await db.sql`
      insert into factors (data_entry_type_id, emission_type_id, year, classification, "values")
      select data_entry_type_id, emission_type_id, null, classification,
        jsonb_set("values", '{ef_kg_co2eq_per_kwh}', '9')
      from factors where data_entry_type_id = 11 and year = 2025`;
    const laptop = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };
    const [in2025] = await createTestEntries(db, "it", 2025, [laptop]);
    const [in2026] = await createTestEntries(db, "it", 2026, [laptop]);
    for (const year of [2025, 2026]) {
      await recalculateForDataEntryType(db, { dataEntryType: "it", year, full: true });
    }
    const rows = await emissionRows(db.sql, [in2025, in2026]);
    // 2025: its own factor (274.56 kWh × 0.1); 2026 has none, and gets no row.
    assert.deepEqual(rows.map((r) => r.data_entry_id), [in2025]);
    assert.ok(near(rows[0].kg_co2eq, 27.456), String(rows[0].kg_co2eq));
  },
);
