// Each slice's factors carry a stamp that every write moves (migration 0014), so that a rematch
// compares them with its recorded snapshot only when something wrote them: while the stamp is the
// recorded one the comparison skips them, a moved stamp sends it back to the row-by-row diff, and a
// diff that finds them as recorded records the live stamp.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import type { Queryable } from "../../src/db/connection.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { createTestEntries, importFactorText, IT_HEADER } from "../integration/_slice.ts";

const testDb = useTestDatabase();

const IT = 11;
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
