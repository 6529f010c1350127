// Module stats are rewritten on their own pages (migration 0015): a rematch or an entry write that
// moves the stats of many modules leaves each row on the page it was on, so that the UPDATE is HOT
// (no new index entry) rather than a new row version elsewhere with an entry in every index.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import { updateModuleStats } from "../../src/rematch/pg_store.ts";
import { equipmentModules } from "./_connection.ts";
import type { ModuleStatsChange } from "../../src/rematch/module_stats.ts";

const testDb = useTestDatabase();

/** Stats of a module as a full sum writes them, with a few emission types. */
const STATS = {
  scope1: 0,
  scope2: 1234.5678901234,
  scope3: 9876.54321,
  total: 11111.1111001234,
  by_emission_type: { "80200": 1234.5678901234, "80300": 9876.54321, "80400": 0 },
  entry_count: 50,
};

dbTest(
  testDb,
  "module stats: a stats update of many modules leaves every row on its page",
  async (db) => {
    // More modules than a full page holds (about 35 rows of this size).
    const count = 80;
    const ids = await equipmentModules(
      db,
      Array.from({ length: count }, (_, i) => `U${i}`),
      STATS,
    );
    const pages = async () =>
      new Map(
        (await db.sql<{ id: number; page: string }[]>`
          select id, (ctid::text::point)[0]::text as page from carbon_report_modules
          where id = any(${ids}::bigint[])`).map((r) => [r.id, r.page]),
      );
    const before = await pages();
    assert.ok(new Set(before.values()).size > 1, "the modules span several pages");

    const change = (moduleId: number): ModuleStatsChange => ({
      moduleId,
      scope1: 0,
      scope2: 10.25,
      scope3: -3.5,
      total: 6.75,
      entries: 0,
      byEmissionType: new Map([[80200, { kg: 10.25, rows: 0 }], [80300, { kg: -3.5, rows: 0 }]]),
      recompute: false,
    });
    // Once: the room the page was left with holds the new versions. (A second update finds room
    // only where the first one's old versions were pruned, which waits for every older snapshot
    // in the database, an autovacuum's ANALYZE included: not something a test can hold still.)
    await db.sql.begin((tx) => updateModuleStats(tx, ids.map(change)));
    const after = await pages();
    for (const id of ids) assert.equal(after.get(id), before.get(id), `module ${id} left its page`);
    const [row] = await db.sql<{ total: number; scope3: number }[]>`
      select (stats->>'total')::float8 as total, (stats->>'scope3')::float8 as scope3
      from carbon_report_modules where id = ${ids[0]}`;
    assert.equal(row.total, STATS.total + 6.75);
    assert.equal(row.scope3, STATS.scope3 - 3.5);
  },
);
