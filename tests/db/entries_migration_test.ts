// Migration 0003 on a database that already holds entries: member ids that clash stop it with a
// list to act on, and nothing of it is applied until they are fixed.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { applyMigrations } from "../../src/db/migrate.ts";

const testDb = useTestDatabase();

/** Takes this file's database back to before migration 0003. */
async function before0003(db: Database): Promise<void> {
  await db.sql.unsafe(`
    drop index data_entries_member_user_institutional_id_key;
    drop index data_entries_module_source_key_key;
    alter table data_entries drop column source_key;
    delete from schema_migrations where version = 3;`);
}

async function hasSourceKey(db: Database): Promise<boolean> {
  const rows = await db.sql`select 1 from information_schema.columns
    where table_name = 'data_entries' and column_name = 'source_key'`;
  return rows.length === 1;
}

async function insertMembers(db: Database, unit: string, ids: (string | null)[]) {
  const [{ id: unitId }] = await db.sql`insert into units (code, name) values (${unit}, ${unit})
    returning id`;
  const [{ id: reportId }] = await db.sql`insert into carbon_reports (unit_id, year)
    values (${unitId}, 2025) returning id`;
  const [{ id: moduleId }] = await db.sql`insert into carbon_report_modules
    (carbon_report_id, module_type_id) values (${reportId}, 1) returning id`;
  const rows = await db.sql<{ id: number }[]>`
    insert into data_entries (carbon_report_module_id, data_entry_type_id, data)
    select ${moduleId}, 1, case when u is null then '{"fte": 1}'::jsonb
      else jsonb_build_object('user_institutional_id', u, 'fte', 1) end
    from unnest(${ids}::text[]) with ordinality as t(u, n) order by n
    returning id`;
  return { moduleId: moduleId as number, ids: rows.map((r) => r.id) };
}

dbTest(
  testDb,
  "migration 0003: duplicate member ids stop it with their list; fixed, it applies",
  async (db) => {
    await before0003(db);
    const u1 = await insertMembers(db, "U1", ["42", "42", "7", null, null, "", ""]);
    const u2 = await insertMembers(db, "U2", ["42", "x", "x", "x"]);

    await assert.rejects(applyMigrations(db.sql), (error: Error) => {
      assert.equal(
        error.message,
        "migration 0003 stopped: 2 member user_institutional_id value(s) are used more than once " +
          "in one module; they must be unique per module (spec/modules.md):\n" +
          `  module ${u1.moduleId} (unit U1, year 2025): user_institutional_id "42" in entries ` +
          `${u1.ids[0]}, ${u1.ids[1]}\n` +
          `  module ${u2.moduleId} (unit U2, year 2025): user_institutional_id "x" in entries ` +
          `${u2.ids[1]}, ${u2.ids[2]}, ${u2.ids[3]}\n` +
          "Keep one member entry per id (delete the others or give them their own id), then run " +
          "migrate again. Nothing was changed.",
      );
      return true;
    });
    assert.equal(await hasSourceKey(db), false, "nothing of the migration is applied");
    const versions = await db.sql`select version from schema_migrations where version = 3`;
    assert.equal(versions.length, 0);

    await db.sql`delete from data_entries where id = any(${[u1.ids[1], u2.ids[2]]}::bigint[])`;
    await db.sql`update data_entries set data = data - 'user_institutional_id'
      where id = ${u2.ids[3]}`;
    const result = await applyMigrations(db.sql);
    assert.deepEqual(result.applied, [3]);
    assert.equal(await hasSourceKey(db), true);
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from data_entries`;
    assert.equal(n, 9, "the entries themselves are left alone");
  },
);
