// The write path: create, update and delete compute emissions in the same transaction and keep
// the embodied-energy companion of a building entry in step.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import { deleteEntry, updateEntry } from "../../src/db/entries.ts";
import { upsertRooms } from "../../src/db/reference.ts";
import { EntryComputeError } from "../../src/handlers/types.ts";
import {
  createTestEntries,
  emissionRows,
  entryData,
  importFactorText,
  IT_HEADER,
} from "../integration/_slice.ts";
import type { Database } from "../../src/db/connection.ts";

const testDb = useTestDatabase();
const near = (a: number, b: number) => Math.abs(a - b) <= Math.abs(b) * 1e-9;

async function companions(db: Database) {
  return (await db.sql<{ id: number; data: Record<string, unknown> }[]>`
    select id, data from data_entries where data_entry_type_id = 32 order by id`).map((r) => ({
    ...r,
  }));
}

async function buildingSetup(db: Database) {
  await db.sql.begin((tx) =>
    upsertRooms(tx, [{
      buildingName: "BC",
      roomName: "BC 010",
      roomType: "office",
      surfaceSquareMeter: 10,
    }])
  );
  await importFactorText(
    db,
    "building_embodied_energy",
    2025,
    "building_name,category,ef_kgco2eq_per_m2\nBC,new-tech,100\n",
  );
}

const room = { building_name: "BC", room_name: "BC 010", room_type: "office" };

dbTest(
  testDb,
  "companion: a building entry with a surface creates its embodied-energy entry",
  async (db) => {
    await buildingSetup(db);
    const [id] = await createTestEntries(db, "building", 2025, [{
      ...room,
      room_surface_square_meter: 50,
    }]);
    const [companion] = await companions(db);
    assert.deepEqual(companion.data, {
      building_name: "BC",
      room_surface_square_meter: 50,
      data_entry_id: id,
    });
    const rows = await emissionRows(db.sql, [companion.id]);
    assert.equal(rows.length, 1);
    assert.ok(near(rows[0].kg_co2eq, 5000));
    assert.equal(rows[0].emission_type_id, 60300);
  },
);

dbTest(
  testDb,
  "companion: updating the surface updates it, removing it deletes it, adding recreates",
  async (db) => {
    await buildingSetup(db);
    const [id] = await createTestEntries(db, "building", 2025, [{
      ...room,
      room_surface_square_meter: 50,
    }]);
    await db.sql.begin((tx) => updateEntry(tx, id, { ...room, room_surface_square_meter: 20 }));
    const [updated] = await companions(db);
    assert.equal(updated.data.room_surface_square_meter, 20);
    assert.ok(near((await emissionRows(db.sql, [updated.id]))[0].kg_co2eq, 2000));
    await db.sql.begin((tx) => updateEntry(tx, id, room));
    assert.deepEqual(await companions(db), []);
    await db.sql.begin((tx) => updateEntry(tx, id, { ...room, room_surface_square_meter: 30 }));
    const [again] = await companions(db);
    assert.equal(again.data.data_entry_id, id);
    assert.ok(near((await emissionRows(db.sql, [again.id]))[0].kg_co2eq, 3000));
  },
);

dbTest(testDb, "companion: deleting the building entry deletes its companion", async (db) => {
  await buildingSetup(db);
  const [id, other] = await createTestEntries(db, "building", 2025, [
    { ...room, room_surface_square_meter: 50 },
    { ...room, room_surface_square_meter: 5 },
  ]);
  await db.sql.begin((tx) => deleteEntry(tx, id));
  const left = await companions(db);
  assert.deepEqual(left.map((c) => c.data.data_entry_id), [other]);
  const [n] = await db.sql`select count(*) as n from data_entries where id = ${id}`;
  assert.equal(n.n, 0);
});

dbTest(
  testDb,
  "update: a new value recomputes; an invalid update throws and changes nothing",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const base = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };
    const [id] = await createTestEntries(db, "it", 2025, [base]);
    await db.sql.begin((tx) => updateEntry(tx, id, { ...base, active_usage_hours_per_week: 20 }));
    // 20 h × 100 W + 128 h × 10 W = 3280 Wh/week × 52 / 1000 × 0.1
    assert.ok(near((await emissionRows(db.sql, [id]))[0].kg_co2eq, 3280 * 52 / 1000 * 0.1));
    const data = await entryData(db.sql, id);
    const rows = await emissionRows(db.sql, [id]);
    await assert.rejects(
      () =>
        db.sql.begin((tx) =>
          updateEntry(tx, id, {
            ...base,
            active_usage_hours_per_week: 100,
            standby_usage_hours_per_week: 100,
          })
        ),
      (e) => e instanceof EntryComputeError && /standby_usage_hours_per_week/.test(e.message),
    );
    assert.deepEqual(await entryData(db.sql, id), data);
    assert.deepEqual(await emissionRows(db.sql, [id]), rows);
  },
);
