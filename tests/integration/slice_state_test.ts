// Slices that know they are current (spec/rematch.md rules 16-17): up-to-date and targeted
// rematches, hand edits, failing and pending entries, module-restricted rematches.
import assert from "node:assert/strict";
import { dbTest, runOn, serverBackendExpected, useTestDatabase } from "../_harness.ts";
import { factorsCommand } from "../../src/cli/factors.ts";
import { MIGRATIONS } from "../../src/db/migrate.ts";
import { runScript } from "../db/_connection.ts";
import type { Database } from "../../src/db/connection.ts";
import { deleteEntry, updateEntry } from "../../src/db/entries.ts";
import { upsertLocations } from "../../src/db/reference.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { COMPUTE_REVISION, sliceStatus } from "../../src/rematch/state.ts";
import {
  createTestEntries,
  emissionRows,
  entryData,
  importFactorText,
  insertAirports,
  IT_HEADER,
  PLANE_HEADER,
} from "./_slice.ts";

const testDb = useTestDatabase();
const near = (a: number, b: number) => Math.abs(a - b) <= Math.abs(b) * 1e-9;
const rematch = (db: Database, det: string, extra: Record<string, unknown> = {}) =>
  recalculateForDataEntryType(db, { dataEntryType: det, year: 2025, ...extra });

// Worked vector of spec/modules.md: 40 h × 100 W + 128 h × 10 W over 52 weeks = 274.56 kWh.
const KWH = 274.56;
const laptop = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };
const desktop = { name: "desktop", equipment_class: "Desktop" };
const itFactors = (laptopEf: number, desktopEf: number) =>
  `${IT_HEADER}\nLaptop,Standard,100,10,40,128,${laptopEf}\nDesktop,,100,10,40,128,${desktopEf}\n`;

async function pendingOf(db: Database): Promise<{ id: number; reason: string }[]> {
  const rows = await db.sql<{ id: number; reason: string }[]>`
    select data_entry_id as id, reason from data_entry_pending order by 1`;
  return rows.map((r) => ({ ...r }));
}

async function statusOf(db: Database, det: string) {
  const [status] = (await sliceStatus(db.sql, { year: 2025 }))
    .filter((s) => s.dataEntryType === det);
  return status;
}

dbTest(testDb, "a current slice returns at once: nothing read, nothing written", async (db) => {
  await importFactorText(db, "it", 2025, itFactors(0.1, 0.1));
  const ids = await createTestEntries(db, "it", 2025, [laptop, desktop]);
  assert.equal((await statusOf(db, "it")).state, "never rematched");
  const first = await rematch(db, "it");
  assert.deepEqual([first.scope, first.scopeReason, first.entriesRead], [
    "full",
    "never rematched",
    2,
  ]);
  assert.equal((await statusOf(db, "it")).label, "current");
  const rows = await emissionRows(db.sql, ids);
  const second = await rematch(db, "it");
  assert.deepEqual(
    [second.upToDate, second.scope, second.entries, second.entriesRead, second.recalculated],
    [true, "none", 0, 0, 0],
  );
  assert.deepEqual(await emissionRows(db.sql, ids), rows);
  // --full still reads every entry (and finds them right).
  const forced = await rematch(db, "it", { full: true });
  assert.deepEqual([forced.scope, forced.entriesRead, forced.unchanged], ["full", 2, 2]);
});

dbTest(
  testDb,
  "a targeted rematch reads only its slice's candidates, not a marked entry of another year",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.1));
    await importFactorText(db, "it", 2024, itFactors(0.1, 0.1));
    const [laptopId] = await createTestEntries(db, "it", 2025, [laptop, desktop]);
    const [oldLaptopId] = await createTestEntries(db, "it", 2024, [laptop]);
    await rematch(db, "it");
    await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2024 });
    // The 2024 entry is a candidate of every targeted rematch of the det (its mark), and the
    // 2025 slice's cursor leaves it out.
    await db.sql`
      insert into data_entry_pending (data_entry_id, reason) values (${oldLaptopId}, 'failed')`;
    const oldRows = await emissionRows(db.sql, [oldLaptopId]);
    await importFactorText(db, "it", 2025, itFactors(0.2, 0.1));
    const r = await rematch(db, "it");
    assert.deepEqual([r.scope, r.entriesRead, r.emissionsUpdated], ["targeted", 1, 1]);
    assert.ok(near((await emissionRows(db.sql, [laptopId]))[0].kg_co2eq, KWH * 0.2));
    assert.deepEqual(await emissionRows(db.sql, [oldLaptopId]), oldRows);
    assert.deepEqual(await pendingOf(db), [{ id: oldLaptopId, reason: "failed" }]);
  },
);

dbTest(testDb, "a value change reads only the entries using that factor", async (db) => {
  await importFactorText(db, "it", 2025, itFactors(0.1, 0.1));
  const [laptopId, desktopId] = await createTestEntries(db, "it", 2025, [laptop, desktop]);
  await rematch(db, "it");
  const desktopRows = await emissionRows(db.sql, [desktopId]);
  await importFactorText(db, "it", 2025, itFactors(0.2, 0.1));
  const status = await statusOf(db, "it");
  assert.equal(status.label, "stale: targeted (1 factor, about 1 entry)");
  const r = await rematch(db, "it");
  assert.deepEqual([r.scope, r.entriesRead, r.emissionsUpdated], ["targeted", 1, 1]);
  assert.equal(r.scopeReason, "1 factor changed in value");
  // 267.52 kWh × 0.2
  assert.ok(near((await emissionRows(db.sql, [laptopId]))[0].kg_co2eq, KWH * 0.2));
  assert.deepEqual(await emissionRows(db.sql, [desktopId]), desktopRows);
  assert.equal((await statusOf(db, "it")).label, "current");
});

dbTest(
  testDb,
  "most factors changed: the whole slice is passed over, only the targeted entries are read",
  async (db) => {
    const factors = (laptopEf: number, desktopEf: number) =>
      `${itFactors(laptopEf, desktopEf)}Printer,,100,10,40,128,0.1\n`;
    const printer = { name: "printer", equipment_class: "Printer" };
    await importFactorText(db, "it", 2025, factors(0.1, 0.1));
    const [laptopId, desktopId, printerId, failingId] = await createTestEntries(db, "it", 2025, [
      laptop,
      desktop,
      printer,
      { ...printer, active_usage_hours_per_week: 100 }, // + 128 h standby > 168: fails, pending
    ]);
    const first = await rematch(db, "it");
    assert.deepEqual([first.entriesRead, first.errors], [4, 1]);
    // A hand edit of a row whose factor does not change: a targeted rematch never reads it.
    await db.sql`update data_entry_emissions set kg_co2eq = 999 where data_entry_id = ${printerId}`;
    await importFactorText(db, "it", 2025, factors(0.2, 0.3));
    assert.equal((await statusOf(db, "it")).label, "stale: targeted (2 factors, about 3 entries)");
    const progress: [number, number][] = [];
    const r = await rematch(db, "it", {
      onProgress: (done: number, total: number) => progress.push([done, total]),
    });
    // 2 of 3 factors changed: the cursor passes all 4 entries (progress counts them) and the
    // rematch reads the two using those factors and the pending one.
    assert.deepEqual(progress.at(-1), [4, 4]);
    assert.deepEqual(
      [r.scope, r.entriesRead, r.recalculated, r.errors, r.emissionsUpdated],
      ["targeted", 3, 2, 1, 2],
    );
    assert.ok(near((await emissionRows(db.sql, [laptopId]))[0].kg_co2eq, KWH * 0.2));
    assert.ok(near((await emissionRows(db.sql, [desktopId]))[0].kg_co2eq, KWH * 0.3));
    assert.equal((await emissionRows(db.sql, [printerId]))[0].kg_co2eq, 999);
    assert.deepEqual(await pendingOf(db), [{ id: failingId, reason: "failed" }]);
    // --full reads it all and puts the hand edit right.
    const forced = await rematch(db, "it", { full: true });
    assert.deepEqual([forced.entriesRead, forced.emissionsUpdated], [4, 1]);
    assert.ok(near((await emissionRows(db.sql, [printerId]))[0].kg_co2eq, KWH * 0.1));
  },
);

dbTest(testDb, "a plane max_distance change reads the whole slice", async (db) => {
  await insertAirports(db);
  await importFactorText(
    db,
    "plane",
    2025,
    `${PLANE_HEADER}\nvery_short_haul,economy,0.1,1,0,800\nshort_haul,economy,0.2,1,800,3700\n`,
  );
  // GVA → LHR is 849 km one way: short haul (bands are tried in category-name order) until the
  // bands move their common bound to 850 km.
  const [flight] = await createTestEntries(db, "plane", 2025, [
    { origin_iata: "GVA", destination_iata: "LHR", cabin_class: "economy" },
  ]);
  await rematch(db, "plane");
  assert.ok(near((await emissionRows(db.sql, [flight]))[0].kg_co2eq, 849 * 0.2));
  await importFactorText(
    db,
    "plane",
    2025,
    `${PLANE_HEADER}\nvery_short_haul,economy,0.1,1,0,850\nshort_haul,economy,0.2,1,850,3700\n`,
  );
  assert.match(
    (await statusOf(db, "plane")).label,
    /^stale: full \(factor \d+: max_distance changed \(a structural value\) \(and 1 more\)\)$/,
  );
  const r = await rematch(db, "plane");
  assert.deepEqual([r.scope, r.entriesRead], ["full", 1]);
  assert.match(r.scopeReason, /max_distance changed \(a structural value\)/);
  // The flight now falls in the very short band, whose factor no row named before.
  assert.ok(near((await emissionRows(db.sql, [flight]))[0].kg_co2eq, 849 * 0.1));
});

dbTest(testDb, "a factor edited by hand with SQL makes the slice stale", async (db) => {
  await importFactorText(db, "it", 2025, itFactors(0.1, 0.1));
  const [laptopId] = await createTestEntries(db, "it", 2025, [laptop, desktop]);
  await rematch(db, "it");
  await db.sql`update factors set "values" = jsonb_set("values", '{ef_kg_co2eq_per_kwh}', '0.3')
    where classification->>'equipment_class' = 'Laptop'`;
  assert.equal((await statusOf(db, "it")).state, "stale");
  const valueEdit = await rematch(db, "it");
  assert.deepEqual([valueEdit.scope, valueEdit.entriesRead], ["targeted", 1]);
  assert.ok(near((await emissionRows(db.sql, [laptopId]))[0].kg_co2eq, KWH * 0.3));
  // A classification edited by hand can change which factor an entry links to.
  await db.sql`update factors set classification = jsonb_set(classification, '{sub_class}', '"Pro"')
    where classification->>'equipment_class' = 'Laptop'`;
  assert.match((await statusOf(db, "it")).label, /^stale: full \(factor \d+: classification/);
  const classEdit = await rematch(db, "it");
  assert.equal(classEdit.scope, "full");
  assert.deepEqual(await emissionRows(db.sql, [laptopId]), [], "no factor for Standard laptops");
  // A factor deleted by hand too.
  await db.sql`delete from factors where classification->>'equipment_class' = 'Desktop'`;
  assert.equal((await statusOf(db, "it")).label, "stale: full (1 factor deleted)");
});

dbTest(testDb, "an entry that failed on write is retried by the next rematch", async (db) => {
  // Default hours 40 active + 100 standby: an entry giving 100 active hours exceeds 168.
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,100,0.1\n`);
  const [ok] = await createTestEntries(db, "it", 2025, [laptop]);
  await rematch(db, "it");
  const [failing] = await createTestEntries(db, "it", 2025, [
    { ...laptop, active_usage_hours_per_week: 100 },
  ]);
  assert.deepEqual(await pendingOf(db), [{ id: failing, reason: "failed" }]);
  assert.equal((await entryData(db.sql, failing)).primary_factor_id, undefined);
  const status = await statusOf(db, "it");
  assert.deepEqual([status.state, status.failingEntries], ["stale", 1]);
  assert.equal(status.label, "stale: targeted (0 factors, about 1 entry)");
  // Still failing: read again, still marked, the other entry untouched.
  const again = await rematch(db, "it");
  assert.deepEqual([again.scope, again.entriesRead, again.errors], ["targeted", 1, 1]);
  assert.match(again.errorDetails[0].error, /exceed 168/);
  // The factor's standby default drops to 20: a value change of a factor no row names yet.
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,20,0.1\n`);
  const fixed = await rematch(db, "it");
  assert.deepEqual([fixed.scope, fixed.entriesRead, fixed.errors], ["targeted", 2, 0]);
  assert.deepEqual(await pendingOf(db), []);
  // (100 h × 100 W + 20 h × 10 W) × 52 / 1000 = 530.4 kWh × 0.1
  assert.ok(near((await emissionRows(db.sql, [failing]))[0].kg_co2eq, 53.04));
  // (40 × 100 + 20 × 10) × 52 / 1000 = 218.4 kWh × 0.1
  assert.ok(near((await emissionRows(db.sql, [ok]))[0].kg_co2eq, 21.84));
  assert.equal((await statusOf(db, "it")).label, "current");
});

dbTest(
  testDb,
  "an entry written while the slice is stale is read again even when the factors change back",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.1));
    await createTestEntries(db, "it", 2025, [desktop]);
    await rematch(db, "it");
    await importFactorText(db, "it", 2025, itFactors(0.2, 0.1));
    // Computed on write with ef 0.2, while the slice state records 0.1 ...
    const [written] = await createTestEntries(db, "it", 2025, [laptop]);
    assert.ok(near((await emissionRows(db.sql, [written]))[0].kg_co2eq, KWH * 0.2));
    assert.deepEqual(await pendingOf(db), [{ id: written, reason: "written" }]);
    // ... then the factor goes back to what the state records, by a third import: the entry is
    // stale, and so is the factor (its rows will name the third import; it has no other user).
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.1));
    assert.equal((await statusOf(db, "it")).label, "stale: targeted (1 factor, about 1 entry)");
    const r = await rematch(db, "it");
    assert.deepEqual([r.scope, r.entriesRead, r.emissionsUpdated], ["targeted", 1, 1]);
    assert.ok(near((await emissionRows(db.sql, [written]))[0].kg_co2eq, KWH * 0.1));
    assert.deepEqual(await pendingOf(db), []);
    // Written while current: vouched for at once.
    await createTestEntries(db, "it", 2025, [laptop]);
    assert.deepEqual(await pendingOf(db), []);
    assert.equal((await statusOf(db, "it")).label, "current");
  },
);

dbTest(testDb, "fixing a failing entry through updateEntry clears its mark", async (db) => {
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,100,0.1\n`);
  await rematch(db, "it");
  const [failing] = await createTestEntries(db, "it", 2025, [
    { ...laptop, active_usage_hours_per_week: 100 },
  ]);
  assert.equal((await pendingOf(db)).length, 1);
  await db.sql.begin((tx) =>
    updateEntry(tx, failing, { ...laptop, active_usage_hours_per_week: 60 })
  );
  assert.deepEqual(await pendingOf(db), []);
  assert.equal((await statusOf(db, "it")).label, "current");
});

dbTest(testDb, "reference data the handler reads: a change reads the whole slice", async (db) => {
  await insertAirports(db);
  await importFactorText(db, "plane", 2025, `${PLANE_HEADER}\nshort_haul,economy,0.1,1,0,3700\n`);
  await importFactorText(db, "it", 2025, itFactors(0.1, 0.1));
  await createTestEntries(db, "plane", 2025, [
    { origin_iata: "GVA", destination_iata: "CDG", cabin_class: "economy" },
  ]);
  await createTestEntries(db, "it", 2025, [laptop]);
  await rematch(db, "plane");
  await rematch(db, "it");
  await db.sql.begin((tx) =>
    upsertLocations(tx, [{
      transportMode: "plane",
      name: "Geneva",
      iataCode: "GVA",
      countryCode: "CH",
      latitude: 46.3,
      longitude: 6.109,
      naturalKey: "plane:GVA",
    }])
  );
  assert.equal((await statusOf(db, "plane")).label, "stale: full (locations changed)");
  assert.equal((await statusOf(db, "it")).label, "current", "it reads no locations");
  assert.equal((await rematch(db, "plane")).scope, "full");
  assert.equal((await rematch(db, "plane")).scope, "none");
});

dbTest(testDb, "a dry run records nothing", async (db) => {
  await importFactorText(db, "it", 2025, itFactors(0.1, 0.1));
  await createTestEntries(db, "it", 2025, [laptop]);
  const dry = await rematch(db, "it", { dryRun: true });
  assert.deepEqual([dry.scope, dry.dryRun], ["full", true]);
  assert.equal((await statusOf(db, "it")).state, "never rematched");
});

dbTest(
  testDb,
  "a module-restricted rematch records no state and marks what it rewrote",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.1));
    const [inU1] = await createTestEntries(db, "it", 2025, [laptop], "U1");
    const [inU2] = await createTestEntries(db, "it", 2025, [laptop], "U2");
    await rematch(db, "it");
    await importFactorText(db, "it", 2025, itFactors(0.2, 0.1));
    const [module1] = await db.sql<{ id: number }[]>`
      select carbon_report_module_id as id from data_entries where id = ${inU1}`;
    const progress: [number, number][] = [];
    const one = await rematch(db, "it", {
      carbonReportModuleIds: [module1.id],
      onProgress: (done: number, total: number) => progress.push([done, total]),
    });
    assert.deepEqual([one.scope, one.entriesRead, one.emissionsUpdated], ["targeted", 1, 1]);
    // Its candidates included U2's entry, outside the module: the progress still ends complete.
    assert.deepEqual(progress.at(-1), [1, 1]);
    assert.deepEqual(await pendingOf(db), [{ id: inU1, reason: "rematched" }]);
    // The state still records ef 0.1: the rest of the slice is stale, and so is U1's entry
    // for the state (were the factor to change back, it must be read again).
    const status = await statusOf(db, "it");
    assert.equal(status.label, "stale: targeted (1 factor, about 2 entries)");
    const rest = await rematch(db, "it");
    assert.deepEqual([rest.scope, rest.entriesRead, rest.emissionsUpdated], ["targeted", 2, 1]);
    assert.ok(near((await emissionRows(db.sql, [inU2]))[0].kg_co2eq, KWH * 0.2));
    assert.deepEqual(await pendingOf(db), []);
    // A restricted rematch of a current slice is up to date too.
    assert.equal((await rematch(db, "it", { carbonReportModuleIds: [module1.id] })).scope, "none");
  },
);

dbTest(
  testDb,
  "kgBefore and kgAfter are slice totals, for up-to-date and targeted rematches too",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.2));
    const [, , desktopId] = await createTestEntries(db, "it", 2025, [laptop, laptop, desktop]);
    const kg = (r: { kgBefore: number; kgAfter: number }) => [r.kgBefore, r.kgAfter];
    const assertKg = (actual: number[], expected: number[], what: string) =>
      assert.ok(actual.every((a, i) => near(a, expected[i])), `${what}: ${actual} ≠ ${expected}`);
    const recordedTotal = async () =>
      (await db.sql<{ kg: number | null }[]>`
        select kg_total as kg from slice_states where data_entry_type_id = 11 and year = 2025`)[0]
        .kg;
    // Laptops 274.56 kWh × 0.1 = 27.456 kg each, the desktop × 0.2 = 54.912: 109.824 in all.
    const first = await rematch(db, "it");
    assertKg(kg(first), [109.824, 109.824], "first rematch");
    assert.ok(near((await recordedTotal())!, 109.824));
    const current = await rematch(db, "it");
    assert.equal(current.upToDate, true);
    assertKg(kg(current), [109.824, 109.824], "current slice");
    // The laptop factor doubles: the two laptops are read, the total is the slice's.
    await importFactorText(db, "it", 2025, itFactors(0.2, 0.2));
    const targeted = await rematch(db, "it");
    assert.equal(targeted.scope, "targeted");
    assert.equal(targeted.entriesRead, 2);
    assertKg(kg(targeted), [109.824, 164.736], "targeted rematch");
    const [run] = await db.sql<{ kg_before: number; kg_after: number }[]>`
      select kg_before, kg_after from rematch_runs order by id desc limit 1`;
    assertKg([run.kg_before, run.kg_after], [109.824, 164.736], "its run record");
    // A deleted entry takes its rows' kg off the recorded total (54.912 for the desktop).
    await db.sql.begin((tx) => deleteEntry(tx, desktopId));
    assert.ok(near((await recordedTotal())!, 109.824), String(await recordedTotal()));
    const afterDelete = await rematch(db, "it");
    assert.equal(afterDelete.upToDate, true);
    assertKg(kg(afterDelete), [109.824, 109.824], "after the desktop's deletion");
    // A total that is not recorded (a state from before migration 0016) is summed from the rows,
    // and recorded for the next rematch.
    await db.sql`update slice_states set kg_total = null`;
    assertKg(kg(await rematch(db, "it")), [109.824, 109.824], "summed");
    assert.ok(near((await recordedTotal())!, 109.824), "the sum is recorded for the next rematch");
    // Restricted to a module, the totals are that module's.
    const [module] = await db.sql<{ id: number }[]>`
      select carbon_report_module_id as id from data_entries where data_entry_type_id = 11 limit 1`;
    const restricted = await rematch(db, "it", { carbonReportModuleIds: [module.id] });
    assertKg(kg(restricted), [109.824, 109.824], "restricted to the entries' one module");
  },
);

dbTest(
  testDb,
  "REMATCH_WEEKS_PER_YEAR feeds the equipment formulas and is recorded: a change makes the slice stale",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.2));
    const [id] = await createTestEntries(db, "it", 2025, [laptop]);
    assert.equal((await rematch(db, "it")).scope, "full");
    const kgOf = async () => (await emissionRows(db.sql, [id]))[0].kg_co2eq;
    // 40 h × 100 W + 128 h × 10 W = 5,280 Wh a week; × 52 weeks, ef 0.1: 27.456 kg.
    assert.ok(near(await kgOf(), KWH * 0.1));
    // A process set to 50 weeks sees the slice stale, and rewrites it: 5.28 kWh × 50 × 0.1.
    const env = { DATABASE_URL: testDb.current.url!, REMATCH_WEEKS_PER_YEAR: "50" };
    const run = await runScript("rematch", ["--det", "it", "--year", "2025", "--json"], env);
    assert.equal(run.code, 0, run.err);
    const fifty = JSON.parse(run.out);
    assert.deepEqual([fifty.scope, fifty.scopeReason], ["full", "weeks per year changed"]);
    assert.ok(near(await kgOf(), 26.4), String(await kgOf()));
    const [meta] = await db.sql<{ weeks: number }[]>`
      select (meta->>'weeks_per_year')::float8 as weeks from data_entry_emissions
      where data_entry_id = ${id}`;
    assert.equal(meta.weeks, 50);
    // This process (52 weeks, the default) sees it stale in turn, and puts it back.
    const status = await statusOf(db, "it");
    assert.equal(status.state, "stale");
    assert.equal(status.reason, "weeks per year changed");
    assert.equal((await rematch(db, "it")).scopeReason, "weeks per year changed");
    assert.ok(near(await kgOf(), KWH * 0.1));
    assert.equal((await rematch(db, "it")).upToDate, true);
    // A value that is not a number of weeks is refused, naming the variable; nothing is written.
    const bad = await runScript("rematch", ["--det", "it", "--year", "2025", "--full"], {
      ...env,
      REMATCH_WEEKS_PER_YEAR: "fifty",
    });
    assert.equal(bad.code, 1);
    assert.match(bad.err, /REMATCH_WEEKS_PER_YEAR: expected a number of weeks/);
    assert.ok(near(await kgOf(), KWH * 0.1));
    // Only the slices whose formulas read it are stopped by it.
    const other = await runScript("rematch", ["--det", "train", "--year", "2025"], {
      ...env,
      REMATCH_WEEKS_PER_YEAR: "fifty",
    });
    assert.equal(other.code, 0, other.err);
    // status and rematch --stale too: the it slice is stale for it, the plane slice goes on.
    await insertAirports(db);
    await importFactorText(db, "plane", 2025, `${PLANE_HEADER}\nshort_haul,economy,0.1,1,0,3700\n`);
    await createTestEntries(db, "plane", 2025, [
      { origin_iata: "GVA", destination_iata: "CDG", cabin_class: "economy" },
    ]);
    const unreadable = { ...env, REMATCH_WEEKS_PER_YEAR: "fifty" };
    const listed = await runScript("status", ["--year", "2025", "--json"], unreadable);
    assert.equal(listed.code, 0, listed.err);
    const slices = (JSON.parse(listed.out).slices as { dataEntryType: string; reason: string }[])
      .map((s) => [s.dataEntryType, s.reason]);
    assert.deepEqual(slices, [
      [
        "it",
        'REMATCH_WEEKS_PER_YEAR: expected a number of weeks above 0 and at most 53, got "fifty"',
      ],
      ["plane", "never rematched"],
    ]);
    const stale = await runScript("rematch", ["--stale", "--year", "2025", "--json"], unreadable);
    // Done in part (exit 3): the it slice failed, naming the variable; the plane slice committed.
    assert.equal(stale.code, 3, stale.err);
    const outcomes = JSON.parse(stale.out).results as { dataEntryType: string; status: string }[];
    assert.deepEqual(outcomes.map((o) => [o.dataEntryType, o.status]), [
      ["it", "failed"],
      ["plane", "committed"],
    ]);
    assert.equal((await statusOf(db, "plane")).label, "current");
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "a state recorded by another compute revision is not trusted: the slice reads in full",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.2));
    await createTestEntries(db, "it", 2025, [laptop]);
    await rematch(db, "it");
    assert.equal((await rematch(db, "it")).upToDate, true);
    await db.sql`update slice_states set compute_revision = ${COMPUTE_REVISION - 1}`;
    const reason = `recorded by compute revision ${
      COMPUTE_REVISION - 1
    } (this code is ${COMPUTE_REVISION})`;
    assert.equal((await statusOf(db, "it")).reason, reason);
    const again = await rematch(db, "it");
    assert.deepEqual([again.scope, again.scopeReason], ["full", reason]);
    assert.equal((await rematch(db, "it")).upToDate, true);
  },
);

dbTest(
  testDb,
  "the recorded kg total, moved write after write, keeps no residue of float additions",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.2));
    const ids = await createTestEntries(
      db,
      "it",
      2025,
      [0.1, 0.2, 0.3].map((kg) => ({ ...laptop, __kg_co2eq_override__: kg })),
    );
    await rematch(db, "it");
    const totals: number[] = [];
    for (const id of [ids[0], ids[2], ids[1]]) {
      await db.sql.begin((tx) => deleteEntry(tx, id));
      const result = await rematch(db, "it");
      assert.equal(result.upToDate, true);
      totals.push(result.kgAfter);
    }
    // 0.6 - 0.1 - 0.3 - 0.2 in floats leaves 0.20000000000000012, then 1.1e-16.
    assert.deepEqual(totals, [0.5, 0.2, 0]);
  },
);

dbTest(
  testDb,
  "an import that puts back the values the slice recorded still leaves it stale: its rows name the import",
  async (db) => {
    const imported = async (ef: number) => {
      await importFactorText(db, "it", 2025, itFactors(ef, 0.1));
      const [{ id }] = await db.sql<
        { id: number }[]
      >`select max(id)::int as id from factor_imports`;
      return id;
    };
    const first = await imported(0.1);
    const [entry] = await createTestEntries(db, "it", 2025, [laptop]);
    await rematch(db, "it");
    const rowImport = async () =>
      (await db.sql<{ imp: number }[]>`
        select (meta->'factors_used'->0->>'import_id')::int as imp from data_entry_emissions
        where data_entry_id = ${entry}`)[0].imp;
    assert.equal(await rowImport(), first);
    await imported(0.2);
    const third = await imported(0.1);
    // The values are those recorded; the laptop's factor now names the third import.
    const status = await statusOf(db, "it");
    assert.deepEqual([status.state, status.scope, status.reason], [
      "stale",
      "targeted",
      "1 factor set again by another import",
    ]);
    const again = await rematch(db, "it");
    assert.deepEqual([again.scope, again.entriesRead, again.emissionsUpdated], ["targeted", 1, 1]);
    assert.equal(await rowImport(), third);
    // What a full rematch would write now is what is stored.
    const full = await rematch(db, "it", { full: true, dryRun: true });
    assert.deepEqual([full.emissionsUpdated, full.unchanged], [0, 1]);
    assert.equal((await rematch(db, "it")).upToDate, true);
  },
);

dbTest(
  testDb,
  "migration 0019 gives a state recorded before it the imports its factors had then",
  async (db) => {
    const migration = MIGRATIONS.find((m) => m.file === "0019_slice_state_factor_import.sql")!;
    // What a database holds before 0019: its states without imports, then the migration.
    const upgrade = async () => {
      await db.sql`alter table slice_state_factors drop column import_id`;
      await db.sql.unsafe(migration.sql);
    };
    const lastImport = async () =>
      (await db.sql<{ id: number }[]>`select max(id)::int as id from factor_imports`)[0].id;

    // An import rematched in its own transaction (--rematch): the state it recorded holds.
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.1));
    await createTestEntries(db, "it", 2025, [laptop]);
    const file = await Deno.makeTempFile({ suffix: ".csv" });
    try {
      await Deno.writeTextFile(file, itFactors(0.3, 0.1));
      await runOn(factorsCommand, db, [
        ...["import", file, "--det", "it", "--year", "2025", "--rematch"],
      ]);
    } finally {
      await Deno.remove(file);
    }
    await upgrade();
    assert.equal((await statusOf(db, "it")).label, "current");

    // Values put back by a later import, the slice found current before the upgrade (which then
    // recorded the live stamp): its rows still name the import before.
    const named = await lastImport();
    await importFactorText(db, "it", 2025, itFactors(0.2, 0.1));
    await importFactorText(db, "it", 2025, itFactors(0.3, 0.1));
    const putBack = await lastImport();
    await db.sql`update slice_states set factor_stamp = (
      select stamp from slice_factor_stamps where data_entry_type_id = 11 and year = 2025)`;
    await upgrade();
    const status = await statusOf(db, "it");
    assert.deepEqual([status.state, status.reason], [
      "stale",
      "1 factor set again by another import",
    ]);
    const rows = async () =>
      (await db.sql<{ imp: number }[]>`
        select (meta->'factors_used'->0->>'import_id')::int as imp from data_entry_emissions`)
        .map((r) => r.imp);
    assert.deepEqual(await rows(), [named]);
    await rematch(db, "it");
    assert.deepEqual(await rows(), [putBack]);
    assert.equal((await statusOf(db, "it")).label, "current");
  },
);
