// Module stats after rematches (spec/rematch.md rule 15): the rematch updates
// carbon_report_modules.stats by the changes of the rows it rewrites, and after any number of
// rematches every module's stats still equal a sum of its rows computed here from scratch:
// scope1/2/3, total and by_emission_type (rollup rows excluded) within a relative 1e-9,
// the emission types present and entry_count exactly.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { getHandler } from "../../src/handlers/mod.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { Random, type SeedDet } from "../../src/seed/generate.ts";
import { seedDatabase } from "../../src/seed/seed.ts";

const testDb = useTestDatabase();
const YEAR = 2025;
const SEED = Number(Deno.env.get("REMATCH_STATS_SEED") ?? 3);
const ROUNDS = Number(Deno.env.get("REMATCH_STATS_ROUNDS") ?? 40);
// Dets with rollup rows (member: headcount, building: rooms), with rows of several scopes
// (building: electric and thermal), FK-link dets with structural values (plane, train) and
// JSON-link ones (it, external_clouds).
const DETS: readonly SeedDet[] = ["member", "it", "plane", "train", "building", "external_clouds"];
// The rollup types of spec/modules.md: their rows are never counted in stats.
const ROLLUPS = new Set([40000, 60100]);

interface Stats {
  scope1: number;
  scope2: number;
  scope3: number;
  total: number;
  by_emission_type: Record<string, number>;
  entry_count: number;
}

/** Every module's stats summed here from its entries and rows (modules with entries only). */
async function recomputedStats(db: Database): Promise<Map<number, Stats>> {
  const stats = new Map<number, Stats>();
  const entries = await db.sql<{ id: number; n: number }[]>`
    select carbon_report_module_id as id, count(*)::int as n from data_entries group by 1`;
  for (const { id, n } of entries) {
    stats.set(id, {
      scope1: 0,
      scope2: 0,
      scope3: 0,
      total: 0,
      by_emission_type: {},
      entry_count: n,
    });
  }
  const rows = await db.sql<{ module: number; type: number; scope: number | null; kg: number }[]>`
    select e.carbon_report_module_id as module, x.emission_type_id as type, x.scope,
      x.kg_co2eq as kg
    from data_entry_emissions x join data_entries e on e.id = x.data_entry_id`;
  for (const row of rows) {
    if (ROLLUPS.has(row.type)) continue;
    const s = stats.get(row.module)!;
    s.total += row.kg;
    if (row.scope === 1) s.scope1 += row.kg;
    if (row.scope === 2) s.scope2 += row.kg;
    if (row.scope === 3) s.scope3 += row.kg;
    s.by_emission_type[row.type] = (s.by_emission_type[row.type] ?? 0) + row.kg;
  }
  return stats;
}

async function storedStats(db: Database): Promise<Map<number, Stats | null>> {
  const rows = await db.sql<{ id: number; stats: Stats | null }[]>`
    select id, stats from carbon_report_modules order by id`;
  return new Map(rows.map((r) => [r.id, r.stats]));
}

/**
 * Asserts that every module with entries has the stats of its rows. Sums that cancel out can
 * only be known to the rounding of their terms: the tolerance is relative to the larger of the
 * value and the module's total (and never below 1e-9 kg).
 */
async function assertStatsMatchRows(db: Database, context: string): Promise<void> {
  const expected = await recomputedStats(db);
  const stored = await storedStats(db);
  for (const [id, want] of expected) {
    const got = stored.get(id);
    assert.ok(got, `${context}: module ${id} has no stats`);
    const where = `${context}: module ${id}`;
    const scale = Math.max(1, Math.abs(want.total));
    const close = (actual: number, wanted: number, what: string) => {
      const tolerance = 1e-9 * Math.max(scale, Math.abs(wanted));
      assert.ok(
        Math.abs(actual - wanted) <= tolerance,
        `${where}: ${what} is ${actual}, its rows sum to ${wanted}`,
      );
    };
    close(got.scope1, want.scope1, "scope1");
    close(got.scope2, want.scope2, "scope2");
    close(got.scope3, want.scope3, "scope3");
    close(got.total, want.total, "total");
    assert.deepEqual(
      Object.keys(got.by_emission_type).sort(),
      Object.keys(want.by_emission_type).sort(),
      `${where}: emission types`,
    );
    for (const [type, kg] of Object.entries(want.by_emission_type)) {
      close(got.by_emission_type[type], kg, `by_emission_type ${type}`);
    }
    assert.equal(got.entry_count, want.entry_count, `${where}: entry_count`);
  }
}

interface FactorRow {
  id: number;
  classification: Record<string, string | null>;
  values: Record<string, unknown>;
}

async function factorsOf(db: Database, det: string): Promise<FactorRow[]> {
  return [
    ...(await db.sql<FactorRow[]>`
      select id, classification, "values" from factors
      where data_entry_type_id = ${getDataEntryType(det).id} and year = ${YEAR} order by id`),
  ];
}

/** One random factor change: a value, a plane band, a new or deleted factor, a value put back. */
async function changeFactors(db: Database, random: Random, log: string[]): Promise<void> {
  const det = random.pick(DETS);
  const handler = getHandler(det);
  const factors = await factorsOf(db, det);
  if (factors.length === 0) return;
  const factor = random.pick(factors);
  const kind = random.pick(["value", "value", "value", "value", "band", "insert", "delete"]);
  const setValues = async (id: number, values: Record<string, unknown>) => {
    await db.sql`update factors set "values" = ${db.sql.json(values as never)} where id = ${id}`;
  };
  switch (kind) {
    case "value": {
      const keys = Object.keys(factor.values).filter((k) =>
        typeof factor.values[k] === "number" && !handler.structuralValues.includes(k)
      );
      if (keys.length === 0) return;
      const key = random.pick(keys);
      const old = factor.values[key] as number;
      const now = random.pick([old * 1.37, old / 3, old + 0.1, 0, old * 1e4]);
      await setValues(factor.id, { ...factor.values, [key]: now });
      log.push(`${det} factor ${factor.id} ${key} ${old} → ${now}`);
      return;
    }
    case "band": {
      const band = random.pick(await factorsOf(db, "plane"));
      const key = random.pick(["min_distance", "max_distance"]);
      const now = Math.max(0, (band.values[key] as number) + random.pick([-800, -200, 200, 800]));
      await setValues(band.id, { ...band.values, [key]: now });
      log.push(`plane factor ${band.id} ${key} → ${now}`);
      return;
    }
    case "insert": {
      // A copy under another classification value: links and matches move to it or away.
      const column = random.pick(handler.factorColumns.classification);
      const value = random.pick(factors.map((f) => f.classification[column] ?? null));
      const rows = await db.sql`
        insert into factors (data_entry_type_id, emission_type_id, year, classification, "values")
        select data_entry_type_id, emission_type_id, year,
          ${db.sql.json({ ...factor.classification, [column]: value })}, "values"
        from factors where id = ${factor.id}
        on conflict do nothing returning id`;
      log.push(`${det} factor ${factor.id} copied with ${column} = ${value} (${rows.length})`);
      return;
    }
    case "delete": {
      await db.sql`delete from factors where id = ${factor.id}`;
      log.push(`${det} factor ${factor.id} deleted`);
      return;
    }
  }
}

dbTest(testDb, "after many rematches every module's stats equal its rows' sums", async (db) => {
  await seedDatabase(db, { units: 4, entriesPerDet: 8, dets: DETS, year: YEAR, randomSeed: 11 });
  const random = new Random(SEED);
  const log: string[] = [];
  await assertStatsMatchRows(db, "seeded");
  let rematches = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    for (let n = random.int(1, 3); n > 0; n--) await changeFactors(db, random, log);
    for (const det of DETS) {
      if (random.chance(0.3)) continue;
      const modules = random.chance(0.2)
        ? (await db.sql<{ id: number }[]>`
            select distinct carbon_report_module_id as id from data_entries
            where data_entry_type_id = ${getDataEntryType(det).id} order by 1 limit 1`)
          .map((m) => m.id)
        : undefined;
      const result = await recalculateForDataEntryType(db, {
        dataEntryType: det,
        year: YEAR,
        carbonReportModuleIds: modules,
      });
      if (result.affectedModuleIds.length) rematches++;
      await assertStatsMatchRows(db, `seed ${SEED}, round ${round}, ${det} (${log.join("; ")})`);
    }
  }
  // Enough rematches wrote something for the deltas to have been exercised.
  assert.ok(rematches >= ROUNDS, `${rematches} rematches wrote rows`);
});

/** A factor of `det` with rows of non-zero kg, the first module they are in, its emission factor. */
async function factorUsedIn(
  db: Database,
  det: string,
): Promise<{ factor: FactorRow; module: number; key: string }> {
  const used = await db.sql<{ factor: number; module: number }[]>`
    select x.primary_factor_id as factor, min(e.carbon_report_module_id) as module
    from data_entry_emissions x join data_entries e on e.id = x.data_entry_id
    where e.data_entry_type_id = ${getDataEntryType(det).id} and x.primary_factor_id is not null
      and x.kg_co2eq <> 0
    group by 1 order by 1`;
  for (const { factor: id, module } of used) {
    const [factor] = await db.sql<FactorRow[]>`
      select id, classification, "values" from factors where id = ${id}`;
    // An emission factor: what every row of the factor is proportional to.
    const key = Object.keys(factor.values).find((k) =>
      k.startsWith("ef_") && typeof factor.values[k] === "number" && factor.values[k] !== 0
    );
    if (key) return { factor, module, key };
  }
  throw new Error(`no factor of ${det} to change`);
}

async function scaleFactor(db: Database, factor: FactorRow, key: string, by: number) {
  const values = { ...factor.values, [key]: (factor.values[key] as number) * by };
  await db.sql`update factors set "values" = ${
    db.sql.json(values as never)
  } where id = ${factor.id}`;
  factor.values = values;
}

// member and building have rollup rows (headcount, rooms): stats that counted them would not be
// a base the rematch could add to.
for (const det of ["it", "member", "building"] as const) {
  dbTest(testDb, `${det}: a rematch adds its changes to the stored stats`, async (db) => {
    await seedDatabase(db, { units: 2, entriesPerDet: 6, dets: [det], year: YEAR, randomSeed: 4 });
    const { factor, module, key } = await factorUsedIn(db, det);
    // An offset no row explains: a rematch that sums the module again loses it, one that adds
    // its changes keeps it.
    await db.sql`update carbon_report_modules
      set stats = jsonb_set(stats, '{total}', to_jsonb((stats ->> 'total')::float8 + 1000))
      where id = ${module}`;
    const before = (await storedStats(db)).get(module)!;
    const rowsBefore = (await recomputedStats(db)).get(module)!;
    await scaleFactor(db, factor, key, 2);
    const result = await recalculateForDataEntryType(db, { dataEntryType: det, year: YEAR });
    assert.ok(result.affectedModuleIds.includes(module));
    const after = (await storedStats(db)).get(module)!;
    const rowsAfter = (await recomputedStats(db)).get(module)!;
    const moved = rowsAfter.total - rowsBefore.total;
    assert.ok(Math.abs(moved) > 1, "the change moved the module's kg");
    assert.ok(Math.abs(after.total - (before.total + moved)) <= 1e-9 * Math.abs(after.total));
    const tolerance = 1e-9 * Math.max(1, Math.abs(rowsAfter.total));
    for (const scope of ["scope1", "scope2", "scope3"] as const) {
      assert.ok(Math.abs(after[scope] - rowsAfter[scope]) <= tolerance, scope);
    }
    for (const [type, kg] of Object.entries(rowsAfter.by_emission_type)) {
      assert.ok(Math.abs(after.by_emission_type[type] - kg) <= tolerance, type);
    }
  });
}

dbTest(testDb, "stats that cannot be a base are recomputed in full by the rematch", async (db) => {
  await seedDatabase(db, {
    units: 6,
    entriesPerDet: 8,
    dets: ["it", "member"],
    year: YEAR,
    randomSeed: 8,
  });
  const { factor, module, key } = await factorUsedIn(db, "it");
  const [other] = await db.sql<{ id: number }[]>`
    select distinct e.carbon_report_module_id as id from data_entries e
    join data_entry_emissions x on x.data_entry_id = e.id
    where x.primary_factor_id = ${factor.id} and e.carbon_report_module_id <> ${module}
    order by 1 limit 1`;
  assert.ok(other, "the factor is used in two modules");
  const [third] = await db.sql<{ id: number }[]>`
    select distinct e.carbon_report_module_id as id from data_entries e
    join data_entry_emissions x on x.data_entry_id = e.id
    where x.primary_factor_id = ${factor.id} and e.carbon_report_module_id > ${other.id}
    order by 1 limit 1`;
  assert.ok(third, "the factor is used in three modules");
  // Never computed; computed without the by-type key; without the type the change is about.
  await db.sql`update carbon_report_modules set stats = null, stats_computed_at = null
    where id = ${module}`;
  await db.sql`update carbon_report_modules set stats = stats - 'by_emission_type'
    where id = ${other.id}`;
  await db.sql`update carbon_report_modules
    set stats = stats #- array['by_emission_type', '80200'] where id = ${third.id}`;
  await scaleFactor(db, factor, key, 3);
  await recalculateForDataEntryType(db, { dataEntryType: "it", year: YEAR });
  await assertStatsMatchRows(db, "after NULL and incomplete stats");

  // A rematch told to skip the stats leaves them stale: the next rematch must not add to them.
  await scaleFactor(db, factor, key, 0.5);
  const skipped = await recalculateForDataEntryType(db, {
    dataEntryType: "it",
    year: YEAR,
    noStats: true,
  });
  assert.ok(skipped.affectedModuleIds.includes(module));
  await scaleFactor(db, factor, key, 5);
  await recalculateForDataEntryType(db, { dataEntryType: "it", year: YEAR });
  await assertStatsMatchRows(db, "after a rematch without stats");

  // A dry run writes no stats.
  const stored = await storedStats(db);
  await scaleFactor(db, factor, key, 2);
  await recalculateForDataEntryType(db, { dataEntryType: "it", year: YEAR, dryRun: true });
  assert.deepEqual(await storedStats(db), stored);

  // Every factor gone: every entry's rows are dropped, and the type leaves the stats.
  await db.sql`delete from factors where data_entry_type_id = ${getDataEntryType("it").id}`;
  const dropped = await recalculateForDataEntryType(db, { dataEntryType: "it", year: YEAR });
  assert.ok(dropped.dropped > 0);
  await assertStatsMatchRows(db, "after every row of a type was dropped");
});

dbTest(
  testDb,
  "rematch --full repairs the stats of rows and entries written by hand",
  async (db) => {
    await seedDatabase(db, {
      units: 3,
      entriesPerDet: 6,
      dets: ["it", "plane"],
      year: YEAR,
      randomSeed: 5,
    });
    await recalculateForDataEntryType(db, { dataEntryType: "plane", year: YEAR });
    await assertStatsMatchRows(db, "seeded");
    // Around the project: a row's kg changed, and entries copied without rows or stats.
    await db.sql`update data_entry_emissions set kg_co2eq = kg_co2eq + 1000
    where id = (select min(x.id) from data_entry_emissions x
      join data_entries e on e.id = x.data_entry_id where e.data_entry_type_id = 20)`;
    await db.sql`insert into data_entries (carbon_report_module_id, data_entry_type_id, data)
    select carbon_report_module_id, data_entry_type_id, data from data_entries
    where data_entry_type_id = 20 order by id limit 5`;
    const repaired = await recalculateForDataEntryType(db, {
      dataEntryType: "plane",
      year: YEAR,
      full: true,
    });
    assert.equal(repaired.emissionsInserted, 5);
    assert.equal(repaired.emissionsUpdated, 1);
    await assertStatsMatchRows(db, "after rematch --full");
  },
);
