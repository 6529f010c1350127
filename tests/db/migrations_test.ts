import assert from "node:assert/strict";
import postgres from "postgres";
import { dbTest, serverBackendExpected, useTestDatabase } from "../_harness.ts";
import {
  applyLocked,
  applyMigrations,
  MIGRATION_FILES,
  MIGRATION_LOCK_KEY,
  MIGRATIONS,
  SCHEMA_VERSION,
  schemaVersion,
} from "../../src/db/migrate.ts";
import { EMISSION_TYPE_NODES } from "../../src/reference/emission_type_nodes.ts";
import type { Database } from "../../src/db/connection.ts";

const testDb = useTestDatabase();

// A fingerprint of everything migrations own: catalog objects and reference rows.
async function schemaFingerprint(db: Database): Promise<string> {
  const [row] = await db.sql<{ f: string }[]>`
    select md5(string_agg(x, '|' order by x)) as f from (
      select 'c:' || table_name || '.' || column_name || ':' || data_type as x
        from information_schema.columns where table_schema = current_schema()
      union all select 'i:' || indexname || ':' || indexdef from pg_indexes
        where schemaname = current_schema()
      union all select 'm:' || version || ':' || name || ':' || applied_at from schema_migrations
      union all select 'e:' || xmin::text || ':' || id from emission_types
      union all select 'd:' || xmin::text || ':' || id from data_entry_types
      union all select 't:' || xmin::text || ':' || id from module_types
    ) s`;
  return row.f;
}

dbTest(testDb, "migrations: a fresh database is at the code's schema version", async (db) => {
  assert.equal(await schemaVersion(db.sql), SCHEMA_VERSION);
  const rows = await db.sql<
    { version: number }[]
  >`select version from schema_migrations order by 1`;
  assert.deepEqual(rows.map((r) => r.version), MIGRATION_FILES.map((f) => Number(f.slice(0, 4))));
});

dbTest(testDb, "migrations: applying again changes nothing", async (db) => {
  const before = await schemaFingerprint(db);
  const result = await applyMigrations(db.sql);
  assert.deepEqual(result.applied, []);
  assert.equal(await schemaFingerprint(db), before);
});

dbTest(testDb, "migrations: reference tables hold the code's tables", async (db) => {
  const [et] = await db.sql<{ n: number }[]>`select count(*) as n from emission_types`;
  assert.equal(et.n, EMISSION_TYPE_NODES.length);
  const [plane] = await db.sql`
    select d.name, m.name as module from data_entry_types d join module_types m on m.id = d.module_type_id
    where d.id = 20`;
  assert.deepEqual({ ...plane }, { name: "plane", module: "professional_travel" });
  const [rooms] = await db.sql`select name, parent_id from emission_types where id = 6010101`;
  assert.deepEqual({ ...rooms }, { name: "buildings__rooms__lighting__office", parent_id: 60101 });
});

dbTest(
  testDb,
  "migrations: a starter that waited for the lock while another migrated finds the work done",
  async (db) => {
    const { url } = testDb.current;
    const name = `${new URL(url!).pathname.slice(1)}_race`;
    await db.sql.unsafe(`create database ${name}`);
    const raceUrl = new URL(url!);
    raceUrl.pathname = `/${name}`;
    const first = postgres(raceUrl.toString(), { max: 1, onnotice: () => {} });
    const second = postgres(raceUrl.toString(), { max: 1, onnotice: () => {} });
    try {
      const locked = Promise.withResolvers<void>();
      const go = Promise.withResolvers<void>();
      const migrating = first.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
        locked.resolve();
        await go.promise;
        return await applyLocked(tx);
      });
      await locked.promise;
      // The second looks (no schema yet), then waits for the lock while the first migrates.
      const racing = applyMigrations(second);
      for (let i = 0; i < 500; i++) {
        const [{ waiting }] = await db.sql<{ waiting: number }[]>`
          select count(*)::int as waiting from pg_stat_activity
          where datname = ${name} and wait_event_type = 'Lock'`;
        if (waiting > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      go.resolve();
      assert.equal((await migrating).applied.length, MIGRATION_FILES.length);
      const raced = await racing;
      assert.deepEqual([raced.applied, raced.version], [[], SCHEMA_VERSION]);
    } finally {
      await first.end();
      await second.end();
      await db.sql.unsafe(`drop database if exists ${name}`);
    }
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "migration 0017 ends the pipelines left RUNNING without a job, and only those",
  async (db) => {
    const empty = crypto.randomUUID();
    const withJob = crypto.randomUUID();
    await db.sql`insert into pipelines (id, kind, status) values
      (${empty}, 'recalculation', 'RUNNING'), (${withJob}, 'recalculation', 'RUNNING')`;
    await db.sql`insert into data_ingestion_jobs (pipeline_id, job_type, module_type_id, year)
      values (${withJob}, 'emission_recalc', 2, 2025)`;
    const migration = MIGRATIONS.find((m) => m.file === "0017_end_empty_pipelines.sql")!;
    await db.sql.unsafe(migration.sql);
    const rows = await db.sql<{ id: string; status: string; meta: Record<string, unknown> }[]>`
      select id, status, meta from pipelines where id in (${empty}, ${withJob})`;
    const status = new Map(rows.map((r) => [r.id, r]));
    assert.equal(status.get(empty)!.status, "FAILED");
    assert.match(String(status.get(empty)!.meta.ended), /no job/);
    assert.equal(status.get(withJob)!.status, "RUNNING");
  },
);
