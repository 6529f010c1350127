import assert from "node:assert/strict";
import { dbTest, runCli, runOn, truncateData, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { seedCommand } from "../../src/cli/seed.ts";
import { parseCsv } from "../../src/imports/csv.ts";
import {
  catalogFromTables,
  generateEntries,
  type GenerateOptions,
  SEED_DETS,
  type SeedCatalog,
} from "../../src/seed/generate.ts";
import { seedDatabase, SeedError, seedYears } from "../../src/seed/seed.ts";
import { listDataEntryTypes } from "../../src/reference/enums.ts";

const testDb = useTestDatabase();

const SMALL = { units: 2, entriesPerDet: 3, year: 2025, randomSeed: 1 };

async function fixtureCatalog(year: number): Promise<SeedCatalog> {
  const read = async (path: string) =>
    parseCsv(path, await Deno.readTextFile(new URL(`../../fixtures/${path}`, import.meta.url)));
  const factors: Record<string, ReturnType<typeof parseCsv>> = {};
  for await (
    const file of Deno.readDir(new URL(`../../fixtures/factors/${year}/`, import.meta.url))
  ) {
    factors[file.name.replace(/\.csv$/, "")] = await read(`factors/${year}/${file.name}`);
  }
  return catalogFromTables(year, {
    locations: await read("reference/locations.csv"),
    rooms: await read("reference/rooms.csv"),
    rates: await read("reference/rates.csv"),
    factors,
  });
}

Deno.test("generator: same options give the same entries; more entries extend fewer", async () => {
  const catalog = await fixtureCatalog(2025);
  const dets = ["plane", "it", "building", "it_equipment", "external_ai"] as const;
  const options: GenerateOptions = { units: 2, entriesPerDet: 4, year: 2025, seed: 7, dets };
  const first = [...generateEntries(catalog, options)];
  assert.equal(first.length, 2 * 4 * dets.length);
  assert.deepEqual([...generateEntries(catalog, options)], first);
  const other = [...generateEntries(catalog, { ...options, seed: 8 })];
  assert.notDeepEqual(other.map((e) => e.data), first.map((e) => e.data));
  // Each (unit, det) draws its own stream: the first 4 of 6 entries are the 4 of a smaller run.
  const bigger = [...generateEntries(catalog, { ...options, entriesPerDet: 6 })];
  const key = (e: { unitCode: string; det: { id: number } }) => `${e.unitCode}:${e.det.id}`;
  for (const k of new Set(first.map(key))) {
    assert.deepEqual(
      bigger.filter((e) => key(e) === k).slice(0, 4).map((e) => e.data),
      first.filter((e) => key(e) === k).map((e) => e.data),
    );
  }
});

Deno.test("generator: values come from the fixtures; a det without values fails up front", async () => {
  const catalog = await fixtureCatalog(2025);
  const entries = [
    ...generateEntries(catalog, { units: 1, entriesPerDet: 40, year: 2025, seed: 3 }),
  ];
  const airports = new Set(catalog.airports.map((a) => a.iataCode));
  for (const e of entries.filter((e) => e.det.name === "plane")) {
    assert.ok(
      airports.has(String(e.data.origin_iata)) && airports.has(String(e.data.destination_iata)),
    );
    assert.notEqual(e.data.origin_iata, e.data.destination_iata);
  }
  const itCodes = new Set(catalog.purchases.it_equipment!.map((p) => p.code));
  for (const e of entries.filter((e) => e.det.name === "it_equipment")) {
    assert.ok(itCodes.has(String(e.data.purchase_institutional_code)));
  }
  for (const e of entries.filter((e) => e.det.name === "scientific")) {
    const hours = Number(e.data.active_usage_hours_per_week ?? 0) +
      Number(e.data.standby_usage_hours_per_week ?? 0);
    assert.ok(hours <= 168);
  }
  assert.ok(
    entries.some((e) => e.det.name === "building" && "room_surface_square_meter" in e.data),
  );
  assert.ok(
    entries.some((e) => e.det.name === "building" && !("room_surface_square_meter" in e.data)),
  );
  assert.throws(
    () =>
      generateEntries({ ...catalog, fuels: [] }, {
        units: 1,
        entriesPerDet: 1,
        year: 2025,
        seed: 1,
      }),
    /cannot generate energy_combustion entries: no usable values in energy_combustion\.csv/,
  );
});

async function planeRows(db: Database) {
  return await db.sql<
    {
      kg: number;
      additional: number;
      meta: { distance_km: number; distance_one_trip_km: number; rfi_adjustment: number };
      data: {
        origin_iata: string;
        destination_iata: string;
        number_of_trips: number;
        cabin_class: string;
      };
      factor: {
        ef_kg_co2eq_per_km: number;
        rfi_adjustment: number;
        min_distance: number;
        max_distance: number;
      };
      cabin: string;
      o_lat: number;
      o_lon: number;
      d_lat: number;
      d_lon: number;
    }[]
  >`
    select x.kg_co2eq as kg, x.additional_value as additional, x.meta, e.data, f."values" as factor,
      f.classification->>'cabin_class' as cabin,
      o.latitude as o_lat, o.longitude as o_lon, d.latitude as d_lat, d.longitude as d_lon
    from data_entry_emissions x
      join data_entries e on e.id = x.data_entry_id
      join factors f on f.id = x.primary_factor_id
      join locations o on o.iata_code = e.data->>'origin_iata'
      join locations d on d.iata_code = e.data->>'destination_iata'
    where e.data_entry_type_id = 20
    order by x.id`;
}

/** Great-circle km on the mean Earth radius: the test's own, independent of src/compute/geo.ts. */
function greatCircleKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const a = Math.sin((lat2 - lat1) * rad / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin((lon2 - lon1) * rad / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.sqrt(a));
}

function assertClose(actual: number, expected: number, message?: string) {
  assert.ok(
    Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    `${message ?? ""}: ${actual} != ${expected}`,
  );
}

dbTest(testDb, "seed: every det gets entries and emission rows", async (db) => {
  const progress: number[] = [];
  const summary = await seedDatabase(db, {
    ...SMALL,
    batchSize: 50,
    onProgress: (p) => progress.push(p.written),
  });
  const total = SMALL.units * SMALL.entriesPerDet * SEED_DETS.length;
  assert.equal(summary.entriesGenerated, total);
  assert.equal(progress.at(-1), total);
  assert.ok(progress.length > 1, "several batches");
  assert.deepEqual(
    summary.dets.map((d) => d.dataEntryType),
    listDataEntryTypes().map((d) => d.name),
    "every det, embodied energy through the building companions",
  );
  for (const det of summary.dets) {
    const expected = det.dataEntryType === "building_embodied_energy"
      ? summary.companionsCreated
      : SMALL.units * SMALL.entriesPerDet;
    assert.equal(det.entries, expected, det.dataEntryType);
    assert.ok(det.emissionRows > 0, `${det.dataEntryType} has emission rows`);
    assert.ok(det.kgCo2eq > 0, `${det.dataEntryType} has kg`);
    // Reported as every kg total is: no residue of float additions past 12 significant digits.
    assert.equal(det.kgCo2eq, Number(det.kgCo2eq.toPrecision(12)), det.dataEntryType);
    assert.deepEqual([det.rejected, det.computeErrors], [0, 0], det.dataEntryType);
  }
  assert.ok(summary.companionsCreated > 0);
  assert.equal(summary.factorFiles.length, 13);

  // Every det has rows in the database itself, not only in the summary.
  const perDet = await db.sql<{ det: number; n: number }[]>`
    select e.data_entry_type_id as det, count(*)::int as n
    from data_entry_emissions x join data_entries e on e.id = x.data_entry_id
    group by 1 order by 1`;
  assert.deepEqual(perDet.map((r) => r.det), listDataEntryTypes().map((d) => d.id));
  const [{ units }] = await db.sql<{ units: string[] }[]>`
    select array_agg(code order by code) as units from units`;
  assert.deepEqual(units, ["U0001", "U0002"]);
  // No foreign key checks these since migrations 0008 (entries, emission rows) and 0012
  // (factors): the code must write only known types.
  const [strays] = await db.sql<
    { dets: number; types: number; factorDets: number; factorTypes: number; factors: number }[]
  >`
    select
      (select count(*)::int from data_entries e
        where not exists (select 1 from data_entry_types t where t.id = e.data_entry_type_id))
        as dets,
      (select count(*)::int from data_entry_emissions x
        where not exists (select 1 from emission_types t where t.id = x.emission_type_id))
        as types,
      (select count(*)::int from factors f
        where not exists (select 1 from data_entry_types t where t.id = f.data_entry_type_id))
        as "factorDets",
      (select count(*)::int from factors f
        where not exists (select 1 from emission_types t where t.id = f.emission_type_id))
        as "factorTypes",
      (select count(*)::int from factors) as factors`;
  assert.ok(strays.factors > 0, "the seed imported factors");
  assert.deepEqual({ ...strays, factors: 0 }, {
    dets: 0,
    types: 0,
    factorDets: 0,
    factorTypes: 0,
    factors: 0,
  });
});

dbTest(testDb, "seed: plane kg = distance × ef × rfi, checked from the stored rows", async (db) => {
  await seedDatabase(db, SMALL);
  const rows = await planeRows(db);
  assert.equal(rows.length, SMALL.units * SMALL.entriesPerDet);
  for (const row of rows) {
    const oneTrip = Math.round(
      Math.round(greatCircleKm(row.o_lat, row.o_lon, row.d_lat, row.d_lon)) + 95,
    );
    assert.equal(row.meta.distance_one_trip_km, oneTrip);
    assert.equal(row.meta.distance_km, oneTrip * row.data.number_of_trips);
    assert.ok(oneTrip >= row.factor.min_distance && oneTrip < row.factor.max_distance);
    assert.equal(row.cabin, row.data.cabin_class);
    assertClose(
      row.kg,
      row.meta.distance_km * row.factor.ef_kg_co2eq_per_km * row.factor.rfi_adjustment,
      `${row.data.origin_iata}→${row.data.destination_iata}`,
    );
    assert.equal(row.additional, row.meta.distance_km);
  }
});

async function snapshot(db: Database) {
  const entries = await db.sql`
    select e.id, u.code, r.year, e.data_entry_type_id, e.data
    from data_entries e join carbon_report_modules m on m.id = e.carbon_report_module_id
      join carbon_reports r on r.id = m.carbon_report_id join units u on u.id = r.unit_id
    order by e.id`;
  const emissions = await db.sql`
    select data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, additional_value, scope,
      meta
    from data_entry_emissions order by id`;
  return { entries: entries.map((r) => ({ ...r })), emissions: emissions.map((r) => ({ ...r })) };
}

dbTest(
  testDb,
  "seed: the same options seed the same data; the seed is refused twice",
  async (db) => {
    const first = await seedDatabase(db, SMALL);
    const before = await snapshot(db);
    await assert.rejects(
      seedDatabase(db, SMALL),
      (error: unknown) =>
        error instanceof SeedError &&
        /U0001\.\.U0002 already have \d+ entries for 2025/.test(error.message),
    );
    await truncateData(db);
    const second = await seedDatabase(db, SMALL);
    assert.deepEqual(await snapshot(db), before);
    assert.deepEqual(second, first);

    await truncateData(db);
    await seedDatabase(db, { ...SMALL, randomSeed: 2 });
    assert.notDeepEqual((await snapshot(db)).entries, before.entries);
  },
);

dbTest(testDb, "seed: a year without factor fixtures names the years there are", async (db) => {
  assert.deepEqual(seedYears(), [2024, 2025]);
  await assert.rejects(
    seedDatabase(db, { ...SMALL, year: 2031 }),
    (error: unknown) =>
      error instanceof SeedError &&
      error.message === "no factor fixtures for year 2031: available years are 2024, 2025",
  );
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from factors`;
  assert.equal(n, 0);
  const summary = await seedDatabase(db, { ...SMALL, year: 2024, entriesPerDet: 1 });
  assert.ok(summary.dets.every((d) => d.emissionRows > 0));
});

dbTest(testDb, "seed CLI: table per det, JSON, and usage errors", async (db) => {
  const human = await runOn(seedCommand, db, ["--units", "1", "--entries", "1"]);
  assert.equal(human.exitCode, 0);
  assert.match(human.text, /^seeded .+: year 2025, 1 units × 1 entries per det, random seed 1/);
  assert.match(human.text, /det\s+entries\s+emission rows\s+kg CO2-eq/);
  assert.match(human.text, /plane \(20\)\s+1\s+1\s+[\d,.]+/);
  assert.match(human.text, /total\s+2\d\s+/);

  const argv = ["--units", "1", "--entries", "1", "--year", "2024", "--random-seed", "5"];
  const json = await runOn(seedCommand, db, argv, true);
  assert.equal(json.exitCode, 0);
  const summary = json.json as {
    year: number;
    randomSeed: number;
    dets: unknown[];
    database: string;
  };
  assert.deepEqual([summary.year, summary.randomSeed, summary.dets.length], [2024, 5, 21]);
  assert.equal(summary.database, db.description);

  await assert.rejects(
    runOn(seedCommand, db, ["--units", "1", "--entries", "1"]),
    /already have \d+ entries for 2025 \(a seed stopped part-way keeps the batches it committed\): seed an empty database \(the embedded one: another REMATCH_DATA_DIR/,
  );

  const noYear = await runCli(seedCommand, ["--year", "1999"]);
  assert.equal(noYear.code, 2);
  assert.match(
    noYear.err,
    /--year: no factor fixtures for year 1999: available years are 2024, 2025/,
  );
  for (
    const [argv, message] of [
      [["--units", "0"], /--units: must be an integer ≥ 1/],
      [["--entries", "x"], /--entries: expected an integer/],
      [["--units", "4294967296"], /--units: at most 100000/],
      [["--entries", "10000001"], /--entries: at most 10000000/],
      [["--year", "25"], /--year: expected a 4-digit year/],
      [["extra"], /seed takes no arguments/],
    ] as const
  ) {
    const usage = await runCli(seedCommand, [...argv]);
    assert.equal(usage.code, 2, argv.join(" "));
    assert.match(usage.err, message);
  }
});
