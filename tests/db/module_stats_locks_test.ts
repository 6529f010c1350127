// Module stats writers lock their modules' rows in id order, all of them before writing any: two
// rematches of dets of one module type, or a rematch and an entry write, touch the same modules
// and must never wait for each other in a circle. Needs two sessions: a server.
import assert from "node:assert/strict";
import {
  dbTest,
  holdInTransaction,
  serverBackendExpected,
  untilSomeoneWaitsForALock,
  useTestDatabase,
} from "../_harness.ts";
import { equipmentModules } from "./_connection.ts";
import type { Database } from "../../src/db/connection.ts";
import { updateModuleStats } from "../../src/rematch/pg_store.ts";
import type { ModuleStatsChange } from "../../src/rematch/module_stats.ts";
import { importEntriesFile } from "../../src/db/entries_import.ts";
import { createTestEntries, importFactorText, IT_HEADER } from "../integration/_slice.ts";
import { join } from "node:path";

const testDb = useTestDatabase();

const STATS = { scope1: 0, scope2: 0, scope3: 10, total: 10, by_emission_type: {}, entry_count: 1 };

async function twoModules(db: Database): Promise<[number, number]> {
  const [x, y] = await equipmentModules(db, ["U1", "U2"], STATS);
  return [x, y];
}

const change = (moduleId: number): ModuleStatsChange => ({
  moduleId,
  scope1: 0,
  scope2: 0,
  scope3: 1,
  total: 1,
  entries: 0,
  byEmissionType: new Map(),
  recompute: false,
});

dbTest(
  testDb,
  "module stats: a writer summing one module again and moving another never deadlocks with one moving both",
  async (db) => {
    const [x, y] = await twoModules(db);
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    let go!: () => void;
    const going = new Promise<void>((resolve) => (go = resolve));
    // B has locked module x (as its ordered pass does first) and goes on to y after A started.
    const b = db.sql.begin(async (tx) => {
      await tx`select id from carbon_report_modules where id = ${x} for no key update`;
      held();
      await going;
      await updateModuleStats(tx, [change(x), change(y)]);
    });
    await holding;
    // A moves y by a change and sums x again: were y locked before x, A would hold y waiting for
    // x, and B hold x waiting for y.
    const a = db.sql.begin((tx) => updateModuleStats(tx, [change(y)], [x]));
    // A is waiting for x before B goes on.
    await untilSomeoneWaitsForALock(db);
    go();
    await Promise.all([a, b]);
    const [row] = await db.sql<{ total: number }[]>`
      select (stats->>'total')::float8 as total from carbon_report_modules where id = ${y}`;
    assert.equal(row.total, 12, "both moved y by 1");
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "module stats: moving a module's stats does not wait for entries being inserted into it",
  async (db) => {
    const [x] = await twoModules(db);
    // An entry write of another det, not committed yet: its foreign key holds a key-share lock on
    // the module's row.
    const writer = await holdInTransaction(
      db,
      (tx) =>
        tx`insert into data_entries (carbon_report_module_id, data_entry_type_id, data)
        values (${x}, 12, '{}')`.execute(),
    );
    try {
      await db.sql.begin(async (tx) => {
        await tx`set local lock_timeout = '2s'`;
        await updateModuleStats(tx, [change(x)]);
      });
    } finally {
      await writer.release();
    }
    const [row] = await db.sql<{ total: number }[]>`
      select (stats->>'total')::float8 as total from carbon_report_modules where id = ${x}`;
    assert.equal(row.total, 11);
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "module stats: an entries import in batches writes its stats once, never deadlocking a rematch",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const laptop = { name: "pc", equipment_class: "Laptop", sub_class: "Standard" };
    // U1's and U2's equipment modules exist (m1 < m2).
    await createTestEntries(db, "it", 2025, [laptop], "U1");
    await createTestEntries(db, "it", 2025, [laptop], "U2");
    const [m1, m2] = (await db.sql<{ id: number }[]>`
      select id from carbon_report_modules where module_type_id = 4 order by id`).map((r) => r.id);
    const dir = await Deno.makeTempDir({ prefix: "rematch-stats-locks-" });
    const file = join(dir, "it.jsonl");
    // Two batches of one entry: U2's module first, then U1's.
    await Deno.writeTextFile(
      file,
      ["U2", "U1"].map((unit) =>
        JSON.stringify({ unit, year: 2025, data_entry_type: "it", data: laptop })
      ).join("\n") + "\n",
    );
    let lockBoth!: () => void;
    const bothWanted = new Promise<void>((resolve) => (lockBoth = resolve));
    let holding!: () => void;
    const holds = new Promise<void>((resolve) => (holding = resolve));
    // Another writer of these stats (a rematch of a sibling det) has m1 and goes on to m2.
    const other = db.sql.begin(async (tx) => {
      await tx`set local lock_timeout = '5s'`;
      await tx`select id from carbon_report_modules where id = ${m1} for no key update`;
      holding();
      await bothWanted;
      await tx`select id from carbon_report_modules where id = ${m2} for no key update`;
    });
    await holds;
    try {
      const importing = importEntriesFile(db, {
        file,
        format: "jsonl",
        strict: false,
        batchSize: 1,
      });
      importing.catch(() => {}); // Awaited below, after the other writer.
      // The import gets as far as it can: it waits for m1.
      await untilSomeoneWaitsForALock(db);
      lockBoth();
      await other;
      const result = await importing;
      assert.equal(result.created, 2);
    } finally {
      lockBoth();
      await other.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
    // The stats count every entry: one before and one imported in each module.
    const counts = await db.sql<{ n: number }[]>`
      select (stats->>'entry_count')::int as n from carbon_report_modules
      where module_type_id = 4 order by id`;
    assert.deepEqual(counts.map((c) => c.n), [2, 2]);
  },
  { ignore: !serverBackendExpected() },
);
