// The slice is read through one cursor and fetched in chunks of rows: an entry's rows must never be
// split between two chunks, whatever the chunk size, and a write runs while the next chunk is
// computed. Member entries have four rows each (food, waste, commuting and their rollup).
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import { createPgSliceStore } from "../../src/rematch/pg_store.ts";
import { rematchSlice } from "../../src/rematch/recalculate.ts";
import type { RematchResult } from "../../src/rematch/types.ts";
import { createTestEntries, emissionRows, importFactorText } from "./_slice.ts";

const testDb = useTestDatabase();
const HEADCOUNT_HEADER =
  "headcount_category,headcount_class,headcount_subclass,unit,number_of_unit_per_fte,ef_kg_co2eq_per_unit";
const factors = (foodEf: number) =>
  `${HEADCOUNT_HEADER}\nfood,vegetarian,,meal,100,${foodEf}\nwaste,incineration,,kg,50,0.5\n` +
  "commuting,public_transport,,km,200,0.2\n";

class Rollback extends Error {}

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
      let result: RematchResult | undefined;
      let after: Awaited<ReturnType<typeof emissionRows>> = [];
      await assert.rejects(() =>
        db.sql.begin(async (tx) => {
          result = await rematchSlice(createPgSliceStore(tx), {
            dataEntryType: "member",
            year: 2025,
            chunkSize,
            onProgress: (done) => progress.push(done),
          });
          after = await emissionRows(tx, ids);
          throw new Rollback();
        }), Rollback);
      const r = result!;
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
