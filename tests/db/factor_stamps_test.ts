// Each slice's factors carry a stamp that every write moves (migration 0014), so that a rematch
// compares them with its recorded snapshot only when something wrote them: while the stamp is the
// recorded one the comparison skips them, a moved stamp sends it back to the row-by-row diff, and a
// diff that finds them as recorded records the live stamp. A targeted rematch reads the recorded
// rows of the changed factors only, unless a write lands between its comparison and its loading.
import assert from "node:assert/strict";
import { dbTest, serverBackendExpected, useTestDatabase } from "../_harness.ts";
import type { Database, Queryable } from "../../src/db/connection.ts";
import { createPgSliceStore } from "../../src/rematch/pg_store.ts";
import { recalculateForDataEntryType, rematchInTransaction } from "../../src/rematch/run.ts";
import type { SliceStore } from "../../src/rematch/types.ts";
import {
  createTestEntries,
  emissionRows,
  importFactorText,
  IT_HEADER,
} from "../integration/_slice.ts";

const testDb = useTestDatabase();

const IT = 11;
// Worked vector of spec/modules.md: 40 h × 100 W + 128 h × 10 W over 52 weeks = 274.56 kWh.
const KWH = 274.56;
const near = (a: number, b: number) => Math.abs(a - b) <= Math.abs(b) * 1e-9;
const itFactors = (ef: number) =>
  `${IT_HEADER}\nLaptop,Standard,100,10,40,128,${ef}\nDesktop,,100,10,40,128,${ef * 2}\n`;

/** Every slice's stamp, as `det/year: stamp`. */
async function stamps(sql: Queryable): Promise<Record<string, number>> {
  const rows = await sql<{ det: number; year: number; stamp: string }[]>`
    select data_entry_type_id as det, year, stamp::text as stamp from slice_factor_stamps`;
  return Object.fromEntries(rows.map((r) => [`${r.det}/${r.year}`, Number(r.stamp)]));
}

async function recordedStamp(sql: Queryable, year = 2025): Promise<number | null> {
  const [row] = await sql<{ stamp: string | null }[]>`
    select factor_stamp::text as stamp from slice_states
    where data_entry_type_id = ${IT} and year = ${year}`;
  return row?.stamp === null || row === undefined ? null : Number(row.stamp);
}

dbTest(testDb, "every write to a slice's factors moves its stamp, and only its", async (db) => {
  await importFactorText(db, "it", 2025, itFactors(0.1));
  await importFactorText(db, "it", 2024, itFactors(0.1));
  const start = await stamps(db.sql);
  assert.ok(start["11/2025"] >= 1 && start["11/2024"] >= 1);
  const moved = async (write: () => Promise<unknown>) => {
    const before = await stamps(db.sql);
    await write();
    const after = await stamps(db.sql);
    return Object.keys(after).filter((k) => after[k] !== before[k]).sort();
  };
  assert.deepEqual(
    await moved(() =>
      db.sql`update factors set "values" = "values" || '{"ef_kg_co2eq_per_kwh": 0.3}'
        where data_entry_type_id = ${IT} and year = 2025 and classification->>'equipment_class' = 'Laptop'`
    ),
    ["11/2025"],
  );
  assert.deepEqual(
    await moved(() =>
      db.sql`delete from factors where data_entry_type_id = ${IT} and year = 2024
        and classification->>'equipment_class' = 'Desktop'`
    ),
    ["11/2024"],
  );
  // A factor without a year belongs to no slice.
  assert.deepEqual(
    await moved(() =>
      db.sql`insert into factors (data_entry_type_id, emission_type_id, year, classification, "values")
        values (${IT}, 80200, null, '{"equipment_class": "Tablet"}', '{}')`
    ),
    [],
  );
  assert.deepEqual(await moved(() => db.sql`truncate factors cascade`), ["11/2024", "11/2025"]);
});

dbTest(
  testDb,
  "while the stamp holds the rematch skips the factors; a moved one sends it to the diff",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1));
    await createTestEntries(db, "it", 2025, [
      { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" },
      { name: "desktop", equipment_class: "Desktop" },
    ]);
    const rematch = () => recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    await rematch();
    assert.equal(await recordedStamp(db.sql), (await stamps(db.sql))["11/2025"]);
    assert.equal((await rematch()).scope, "none");

    // The recorded snapshot made wrong behind the rematch's back, the factors untouched: the
    // stamp holds, so the comparison does not look at them.
    await db.sql`update slice_state_factors set "values" = '{"ef_kg_co2eq_per_kwh": 9}'
      where data_entry_type_id = ${IT} and year = 2025`;
    assert.equal((await rematch()).scope, "none");

    // A write that changes nothing moves the stamp: the diff runs and finds the snapshot wrong.
    await db.sql`update factors set "values" = "values" where data_entry_type_id = ${IT}`;
    const diffed = await rematch();
    assert.notEqual(diffed.scope, "none");
    assert.equal(diffed.errors, 0);
    assert.equal((await rematch()).scope, "none");
  },
);

dbTest(
  testDb,
  "a diff that finds the factors as recorded records their live stamp (and a dry run does not)",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1));
    await createTestEntries(db, "it", 2025, [{ name: "desktop", equipment_class: "Desktop" }]);
    const rematch = (dryRun = false) =>
      recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025, dryRun });
    await rematch();
    // As a state recorded before migration 0014 has it.
    await db.sql`update slice_states set factor_stamp = null`;
    assert.equal((await rematch(true)).scope, "none");
    assert.equal(await recordedStamp(db.sql), null);
    assert.equal((await rematch()).scope, "none");
    const live = (await stamps(db.sql))["11/2025"];
    assert.equal(await recordedStamp(db.sql), live);
    // An identical write: found as recorded, the new stamp recorded.
    await db.sql`update factors set "values" = "values" where data_entry_type_id = ${IT}`;
    assert.equal((await rematch()).scope, "none");
    assert.equal(await recordedStamp(db.sql), live + 1);
  },
);

/** A rematch of `it` 2025 in a transaction of its own, through the pg store with `wrap` applied. */
function rematchThrough(db: Database, wrap: (store: SliceStore) => SliceStore) {
  return db.sql.begin((tx) =>
    rematchInTransaction(tx, { dataEntryType: "it", year: 2025 }, wrap(createPgSliceStore(tx)))
  );
}

dbTest(
  testDb,
  "a targeted rematch reads the recorded rows of the changed factors only",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1));
    const [laptopId] = await createTestEntries(db, "it", 2025, [
      { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" },
      { name: "desktop", equipment_class: "Desktop" },
    ]);
    await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    await db.sql`update factors set "values" = "values" || '{"ef_kg_co2eq_per_kwh": 0.5}'
      where data_entry_type_id = ${IT} and classification->>'equipment_class' = 'Laptop'`;
    const [laptopFactor] = await db.sql<{ id: number }[]>`select id from factors
      where data_entry_type_id = ${IT} and classification->>'equipment_class' = 'Laptop'`;
    const asked: (readonly number[] | undefined)[] = [];
    const result = await rematchThrough(db, (store) => ({
      ...store,
      recordedFactors(detId, year, ids) {
        asked.push(ids);
        return store.recordedFactors(detId, year, ids);
      },
    }));
    assert.deepEqual([result.scope, result.entriesRead, result.errors], ["targeted", 1, 0]);
    assert.deepEqual(asked, [[laptopFactor.id]]);
    assert.ok(near((await emissionRows(db.sql, [laptopId]))[0].kg_co2eq, KWH * 0.5));
    // What it recorded is the live set: the next rematch finds nothing to do.
    assert.equal(
      (await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 })).scope,
      "none",
    );
  },
);

dbTest(
  testDb,
  "a hand edit between the comparison and the loading: the whole snapshot is compared",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1));
    const [laptopId, desktopId] = await createTestEntries(db, "it", 2025, [
      { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" },
      { name: "desktop", equipment_class: "Desktop" },
    ]);
    await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    await db.sql`update factors set "values" = "values" || '{"ef_kg_co2eq_per_kwh": 0.5}'
      where data_entry_type_id = ${IT} and classification->>'equipment_class' = 'Laptop'`;
    const asked: (readonly number[] | undefined)[] = [];
    const result = await rematchThrough(db, (store) => ({
      ...store,
      async loadInputs(handler, detId, year) {
        // Committed on another session after the comparison, before the factors are read.
        await db.sql`update factors set "values" = "values" || '{"ef_kg_co2eq_per_kwh": 0.7}'
          where data_entry_type_id = ${IT} and classification->>'equipment_class' = 'Desktop'`;
        return await store.loadInputs(handler, detId, year);
      },
      recordedFactors(detId, year, ids) {
        asked.push(ids);
        return store.recordedFactors(detId, year, ids);
      },
    }));
    assert.deepEqual(asked, [undefined]);
    assert.deepEqual([result.scope, result.entriesRead, result.errors], ["targeted", 2, 0]);
    assert.ok(near((await emissionRows(db.sql, [laptopId]))[0].kg_co2eq, KWH * 0.5));
    assert.ok(near((await emissionRows(db.sql, [desktopId]))[0].kg_co2eq, KWH * 0.7));
    assert.equal(
      (await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 })).scope,
      "none",
    );
  },
  { ignore: !serverBackendExpected() },
);
