// The slice is read through one cursor and fetched in chunks of rows: an entry's rows must never be
// split between two chunks, whatever the chunk size, and a write runs while the next chunk is
// computed. Member entries have four rows each (food, waste, commuting and their rollup).
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import { createPgSliceStore } from "../../src/rematch/pg_store.ts";
import { rematchSlice } from "../../src/rematch/recalculate.ts";
import type { Database } from "../../src/db/connection.ts";
import type { RematchOptions, RematchResult } from "../../src/rematch/types.ts";
import { createTestEntries, emissionRows, importFactorText, IT_HEADER } from "./_slice.ts";

const testDb = useTestDatabase();
const HEADCOUNT_HEADER =
  "headcount_category,headcount_class,headcount_subclass,unit,number_of_unit_per_fte,ef_kg_co2eq_per_unit";
const factors = (foodEf: number) =>
  `${HEADCOUNT_HEADER}\nfood,vegetarian,,meal,100,${foodEf}\nwaste,incineration,,kg,50,0.5\n` +
  "commuting,public_transport,,km,200,0.2\n";

class Rollback extends Error {}

/** The rematch of (det, 2025) in a transaction rolled back after reading the entries' rows. */
async function rematchRolledBack(
  db: Database,
  det: string,
  ids: readonly number[],
  options: Omit<RematchOptions, "dataEntryType" | "year">,
) {
  let result: RematchResult | undefined;
  let after: Awaited<ReturnType<typeof emissionRows>> = [];
  await assert.rejects(() =>
    db.sql.begin(async (tx) => {
      result = await rematchSlice(createPgSliceStore(tx), {
        dataEntryType: det,
        year: 2025,
        ...options,
      });
      after = await emissionRows(tx, ids);
      throw new Rollback();
    }), Rollback);
  return { result: result!, after };
}

dbTest(
  testDb,
  "whatever the chunk size, every entry is read whole and rewritten in place",
  async (db) => {
    await importFactorText(db, "member", 2025, factors(1));
    const ids = [
      ...await createTestEntries(
        db,
        "member",
        2025,
        [1, 2, 3].map((i) => ({ name: `A${i}`, fte: 1 })),
      ),
      ...await createTestEntries(
        db,
        "member",
        2025,
        [4, 5].map((i) => ({ name: `B${i}`, fte: 1 })),
        "U2",
      ),
    ];
    const before = await emissionRows(db.sql, ids);
    // The spec vector per entry: food 100, waste 25, commuting 40, rollup 165.
    assert.equal(before.length, 4 * ids.length);
    await importFactorText(db, "member", 2025, factors(2));

    for (const chunkSize of [1, 2, 3, 4, 5, 7, 1000]) {
      const progress: number[] = [];
      const { result: r, after } = await rematchRolledBack(db, "member", ids, {
        chunkSize,
        onProgress: (done) => progress.push(done),
      });
      assert.deepEqual(
        [r.entries, r.recalculated, r.unchanged, r.errors, r.emissionsUpdated, r.emissionsInserted],
        [5, 5, 0, 0, 10, 0],
        `chunk ${chunkSize}`,
      );
      assert.equal(progress.at(-1), 5, `chunk ${chunkSize}: progress ends at the slice`);
      assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
      // Food doubled and its rollup with it (200 + 25 + 40); the same rows, by id.
      assert.deepEqual(after.map((x) => x.id), before.map((x) => x.id), `chunk ${chunkSize}`);
      for (const id of ids) {
        assert.deepEqual(
          after.filter((x) => x.data_entry_id === id).map((x) => [x.emission_type_id, x.kg_co2eq]),
          [[10001, 200], [20001, 25], [30004, 40], [40000, 265]],
          `chunk ${chunkSize}, entry ${id}`,
        );
      }
    }
    // Rolled back every time: the stored rows are as before.
    assert.deepEqual(await emissionRows(db.sql, ids), before);
  },
);

const IT_FACTORS = (laptopEf: number) =>
  `${IT_HEADER}\nLaptop,Standard,100,10,40,128,${laptopEf}\nDesktop,Standard,200,20,40,128,0.1\n`;

dbTest(
  testDb,
  "meta is read where the comparison needs it, as runs of unchanged and changed entries alternate",
  async (db) => {
    await importFactorText(db, "it", 2025, IT_FACTORS(0.1));
    const item = (equipment_class: string) => ({
      name: "pc",
      equipment_class,
      sub_class: "Standard",
    });
    // Runs of entries: unchanged desktops (the meta decides), changed laptops (the kg does).
    const classes = [
      ...Array(5).fill("Desktop"),
      ...Array(6).fill("Laptop"),
      ...Array(5).fill("Desktop"),
      ...Array(3).fill("Laptop"),
    ];
    const ids = await createTestEntries(db, "it", 2025, classes.map(item));
    const before = await emissionRows(db.sql, ids);
    await importFactorText(db, "it", 2025, IT_FACTORS(0.2));
    const laptops = new Set(ids.filter((_, i) => classes[i] === "Laptop"));

    for (const chunkSize of [1, 2, 3, 100]) {
      const { result: r, after } = await rematchRolledBack(db, "it", ids, {
        chunkSize,
        full: true,
      });
      assert.deepEqual(
        [r.entries, r.unchanged, r.errors, r.emissionsUpdated],
        [19, 10, 0, 9],
        `chunk ${chunkSize}`,
      );
      for (const [i, row] of after.entries()) {
        const old = before[i];
        assert.equal(row.id, old.id);
        if (laptops.has(row.data_entry_id)) {
          // 100 W × 40 h + 10 W × 128 h, × 52 / 1000, ef 0.2.
          assert.ok(Math.abs(row.kg_co2eq - 5280 * 52 / 1000 * 0.2) < 1e-9, `chunk ${chunkSize}`);
        } else {assert.deepEqual(
            row,
            old,
            `chunk ${chunkSize}: desktop ${row.data_entry_id} untouched`,
          );}
      }
    }
  },
);

dbTest(
  testDb,
  "an entry whose rows change type is replaced, also in a chunk read without meta",
  async (db) => {
    await importFactorText(db, "member", 2025, factors(1));
    // Three entries whose every row changes, then one (fte 0) whose food row changes only in its
    // meta: after the first chunks the cursor reads without meta, and the waste row's new type
    // (incineration 20001 → composting 20002) makes every entry a replacement.
    const ftes = [1, 1, 1, 0];
    const ids = await createTestEntries(
      db,
      "member",
      2025,
      ftes.map((fte, i) => ({ name: `M${i}`, fte })),
    );
    await importFactorText(
      db,
      "member",
      2025,
      `${HEADCOUNT_HEADER}\nfood,vegetarian,,meal,100,2\nwaste,composting,,kg,50,0.5\n` +
        "commuting,public_transport,,km,200,0.2\n",
      "replace",
    );
    for (const chunkSize of [4, 8, 1000]) {
      const { result: r, after } = await rematchRolledBack(db, "member", ids, { chunkSize });
      assert.deepEqual(r.errorDetails, [], `chunk ${chunkSize}`);
      assert.deepEqual([r.entries, r.recalculated, r.errors], [4, 4, 0], `chunk ${chunkSize}`);
      ids.forEach((id, i) => {
        // fte 1: food 1 × 100 × 2, waste 1 × 50 × 0.5, commuting 1 × 200 × 0.2, rollup 265.
        const kg = ftes[i] ? [200, 25, 40, 265] : [0, 0, 0, 0];
        assert.deepEqual(
          after.filter((x) => x.data_entry_id === id).map((x) => [x.emission_type_id, x.kg_co2eq]),
          [[10001, kg[0]], [20002, kg[1]], [30004, kg[2]], [40000, kg[3]]],
          `chunk ${chunkSize}, entry ${id}`,
        );
      });
    }
  },
);
