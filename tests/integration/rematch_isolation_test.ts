// Issue 7 items 1 and 5 against a real database: a change in the shape of an entry's rows is a
// replacement, never an abort of the slice; override entries have their JSON link resolved too.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
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

dbTest(
  testDb,
  "shape change: {food, waste, rollup} → {food, food, rollup} replaces the rows of both entries",
  async (db) => {
    await importFactorText(
      db,
      "member",
      2025,
      `${HEADCOUNT_HEADER}\nfood,vegetarian,,meal,100,1\nwaste,incineration,,kg,50,0.5\n`,
    );
    const ids = await createTestEntries(db, "member", 2025, [
      { name: "A", fte: 1 },
      { name: "B", fte: 0.5 },
    ]);
    const before = await emissionRows(db.sql, ids);
    // food 100 + waste 25 (+ rollup 125) and food 50 + waste 12.5 (+ rollup 62.5)
    assert.deepEqual(before.map((r) => r.emission_type_id), [
      10001,
      20001,
      40000,
      10001,
      20001,
      40000,
    ]);
    // Same number of rows per entry (3), but now two food rows and no waste row; the meal
    // factor's value changes too, so no computed food row equals the stored one.
    await importFactorText(
      db,
      "member",
      2025,
      `${HEADCOUNT_HEADER}\nfood,vegetarian,,meal,100,2\nfood,vegetarian,,kg,2,3\n`,
      "replace",
    );
    const r = await recalculateForDataEntryType(db, { dataEntryType: "member", year: 2025 });
    assert.equal(r.errors, 0, JSON.stringify(r.errorDetails));
    assert.deepEqual([r.entries, r.recalculated, r.unchanged], [2, 2, 0]);
    assert.deepEqual([r.emissionsDeleted, r.emissionsInserted, r.emissionsUpdated], [6, 6, 0]);
    const [meal, kg] = await db.sql<{ id: number; unit: string }[]>`
      select id, classification->>'unit' as unit from factors order by id`;
    assert.deepEqual([meal.unit, kg.unit], ["meal", "kg"]);
    const after = await emissionRows(db.sql, ids);
    // fte × ef × units per fte: 1 × 2 × 100 = 200 and 1 × 3 × 2 = 6; half of that for fte 0.5.
    const expected = [
      [ids[0], 10001, meal.id, 200],
      [ids[0], 10001, kg.id, 6],
      [ids[0], 40000, meal.id, 206],
      [ids[1], 10001, meal.id, 100],
      [ids[1], 10001, kg.id, 3],
      [ids[1], 40000, meal.id, 103],
    ] as const;
    assert.equal(after.length, expected.length);
    after.forEach((row, i) => {
      const [entry, type, factorId, kgCo2eq] = expected[i];
      assert.deepEqual(
        [row.data_entry_id, row.emission_type_id, row.primary_factor_id],
        [entry, type, factorId],
        `row ${i}`,
      );
      assert.ok(near(row.kg_co2eq, kgCo2eq), `row ${i}: ${row.kg_co2eq} ≠ ${kgCo2eq}`);
    });
    const again = await recalculateForDataEntryType(db, {
      dataEntryType: "member",
      year: 2025,
      full: true,
    });
    assert.equal(again.unchanged, 2, "the replaced rows are right: a second run writes nothing");
  },
);

dbTest(
  testDb,
  "override entry: a replace import deleting its linked factor nulls the link; the override row stays",
  async (db) => {
    await importFactorText(
      db,
      "it",
      2025,
      `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\nDesktop,,200,20,40,128,0.1\n`,
    );
    const laptop = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };
    const [id] = await createTestEntries(db, "it", 2025, [
      { ...laptop, __kg_co2eq_override__: 7 },
    ]);
    const [laptopFactor] = await db.sql<{ id: number }[]>`
      select id from factors where classification->>'equipment_class' = 'Laptop'`;
    assert.equal((await entryData(db.sql, id)).primary_factor_id, laptopFactor.id);
    const rowsBefore = await emissionRows(db.sql, [id]);
    assert.deepEqual(
      rowsBefore.map((r) => [r.kg_co2eq, r.primary_factor_id, r.meta]),
      [[7, null, { override: true }]],
    );

    await importFactorText(db, "it", 2025, `${IT_HEADER}\nDesktop,,200,20,40,128,0.1\n`, "replace");
    const r = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    assert.deepEqual([r.recalculated, r.errors, r.unchanged, r.dropped], [1, 0, 0, 0]);
    const data = await entryData(db.sql, id);
    assert.equal(data.primary_factor_id, null, "no dead link to the deleted factor");
    assert.equal(data.__kg_co2eq_override__, 7);
    assert.deepEqual(await emissionRows(db.sql, [id]), rowsBefore, "the override row is untouched");

    // Self-healing applies to overrides as well: the factor comes back, the link follows.
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.3\n`);
    const healed = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    assert.equal(healed.relinked, 1);
    const [back] = await db.sql<{ id: number }[]>`
      select id from factors where classification->>'equipment_class' = 'Laptop'`;
    assert.equal((await entryData(db.sql, id)).primary_factor_id, back.id);
    assert.deepEqual(await emissionRows(db.sql, [id]), rowsBefore);
  },
);
