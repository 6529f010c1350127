// Numbered SQL migrations, applied in order under an advisory lock, then the reference tables
// are brought in line with the code's own tables. A database that is already current is only
// read: startup takes no lock, so it never waits behind writers of other slices.
import type postgres from "postgres";
import { EMISSION_TYPE_NODES } from "../reference/emission_type_nodes.ts";
import { listDataEntryTypes, MODULE_TYPES } from "../reference/enums.ts";
// The SQL files stay the source of truth; importing them as text puts them in the code, so a
// bundle or a binary migrates without a migrations folder beside it.
import m0001 from "../../migrations/0001_schema.sql" with { type: "text" };
import m0002 from "../../migrations/0002_jobs.sql" with { type: "text" };
import m0003 from "../../migrations/0003_entries.sql" with { type: "text" };
import m0004 from "../../migrations/0004_history.sql" with { type: "text" };
import m0005 from "../../migrations/0005_slice_state.sql" with { type: "text" };
import m0006 from "../../migrations/0006_jobs.sql" with { type: "text" };
import m0007 from "../../migrations/0007_perf.sql" with { type: "text" };
import m0008 from "../../migrations/0008_entry_writes.sql" with { type: "text" };
import m0009 from "../../migrations/0009_target_index.sql" with { type: "text" };
import m0010 from "../../migrations/0010_json_link_column.sql" with { type: "text" };
import m0011 from "../../migrations/0011_frozen_index.sql" with { type: "text" };
import m0012 from "../../migrations/0012_factor_writes.sql" with { type: "text" };
import m0013 from "../../migrations/0013_reference_digests.sql" with { type: "text" };
import m0014 from "../../migrations/0014_factor_stamps.sql" with { type: "text" };
import m0015 from "../../migrations/0015_module_stats_room.sql" with { type: "text" };
import m0016 from "../../migrations/0016_slice_kg_total.sql" with { type: "text" };
import m0017 from "../../migrations/0017_end_empty_pipelines.sql" with { type: "text" };
import m0018 from "../../migrations/0018_version_last_seen_job.sql" with { type: "text" };
import m0019 from "../../migrations/0019_slice_state_factor_import.sql" with { type: "text" };
import m0020 from "../../migrations/0020_worker_stale_timeout.sql" with { type: "text" };

/** One migration: its file in `migrations/` and its SQL. */
export interface Migration {
  /** The file name; its number prefix is the schema version it brings. */
  readonly file: string;
  /** The file's text. */
  readonly sql: string;
}

/** The migrations, in the order they apply. */
export const MIGRATIONS: readonly Migration[] = [
  { file: "0001_schema.sql", sql: m0001 },
  { file: "0002_jobs.sql", sql: m0002 },
  { file: "0003_entries.sql", sql: m0003 },
  { file: "0004_history.sql", sql: m0004 },
  { file: "0005_slice_state.sql", sql: m0005 },
  { file: "0006_jobs.sql", sql: m0006 },
  { file: "0007_perf.sql", sql: m0007 },
  { file: "0008_entry_writes.sql", sql: m0008 },
  { file: "0009_target_index.sql", sql: m0009 },
  { file: "0010_json_link_column.sql", sql: m0010 },
  { file: "0011_frozen_index.sql", sql: m0011 },
  { file: "0012_factor_writes.sql", sql: m0012 },
  { file: "0013_reference_digests.sql", sql: m0013 },
  { file: "0014_factor_stamps.sql", sql: m0014 },
  { file: "0015_module_stats_room.sql", sql: m0015 },
  { file: "0016_slice_kg_total.sql", sql: m0016 },
  { file: "0017_end_empty_pipelines.sql", sql: m0017 },
  { file: "0018_version_last_seen_job.sql", sql: m0018 },
  { file: "0019_slice_state_factor_import.sql", sql: m0019 },
  { file: "0020_worker_stale_timeout.sql", sql: m0020 },
];

/** The migration files, in the order they apply; the number prefix is the schema version. */
export const MIGRATION_FILES: readonly string[] = MIGRATIONS.map((m) => m.file);

/** The schema version this code expects (the number of the last migration). */
export const SCHEMA_VERSION: number = migrationVersion(MIGRATION_FILES[MIGRATION_FILES.length - 1]);

/**
 * The advisory lock key migrations run under (any constant nothing else in the database uses).
 * Only taken when something is to be written.
 */
export const MIGRATION_LOCK_KEY = 7_305_310_001;

/** What {@linkcode applyMigrations} did. */
export interface MigrationResult {
  /** Versions applied by this call (empty when the schema was current). */
  applied: number[];
  /** The schema version after the call. */
  version: number;
  /** True when this call rewrote reference rows (module, data entry or emission types). */
  referenceUpdated: boolean;
}

/** What a database holds, read without writing or locking anything. */
export interface SchemaState {
  /** The highest applied migration version; 0 when the database has no rematch schema. */
  version: number;
  /** Versions of {@linkcode MIGRATION_FILES} not applied yet, ascending. */
  pending: number[];
  /** True when every reference row of the code is stored with the code's values. */
  referenceCurrent: boolean;
}

/** Options of {@linkcode applyMigrations}. */
export interface ApplyMigrationsOptions {
  /**
   * Told, before anything is written, what is about to change (e.g. "applying migrations
   * 1..2"). Never called when the database is current.
   */
  onWrite?: (message: string) => void;
}

/**
 * Thrown when the database's schema does not fit this code: none, behind (for readers, which
 * never migrate) or ahead of it (for everyone).
 */
export class SchemaVersionError extends Error {
  override name = "SchemaVersionError";
}

function migrationVersion(file: string): number {
  return Number(file.slice(0, 4));
}

/** Any postgres.js client or transaction the schema functions read through. */
// deno-lint-ignore no-explicit-any
export type SchemaSql = postgres.Sql<any> | postgres.TransactionSql<any>;
/** A postgres.js client (a pool): migrations take its lock and run their own transactions. */
// deno-lint-ignore no-explicit-any
export type SchemaClient = postgres.Sql<any>;
// deno-lint-ignore no-explicit-any
type Transaction = postgres.TransactionSql<any>;

/** "migration 3" or "migrations 1..3" (versions are consecutive). */
export function describeVersions(versions: readonly number[]): string {
  return versions.length === 1
    ? `migration ${versions[0]}`
    : `migrations ${versions[0]}..${versions[versions.length - 1]}`;
}

/**
 * Reads the schema version and whether the reference tables hold the code's rows, with plain
 * reads only (no row lock, no advisory lock).
 */
export async function inspectSchema(sql: SchemaSql): Promise<SchemaState> {
  const version = await schemaVersion(sql);
  const applied = version === 0 ? new Set<number>() : new Set(
    (await sql<{ version: number }[]>`select version from schema_migrations`).map((r) => r.version),
  );
  const pending = MIGRATION_FILES.map(migrationVersion).filter((v) => !applied.has(v));
  const referenceCurrent = pending.length === 0 && await referenceTablesCurrent(sql);
  return { version, pending, referenceCurrent };
}

/**
 * Applies pending migrations and syncs `module_types`, `data_entry_types` and `emission_types`.
 * When both are current it only reads; otherwise it works under a transaction-scoped advisory
 * lock, so concurrent starters apply each migration once. A database whose schema is newer than
 * this code is refused with a {@linkcode SchemaVersionError}.
 */
export async function applyMigrations(
  sql: SchemaClient,
  options: ApplyMigrationsOptions = {},
): Promise<MigrationResult> {
  const state = await inspectSchema(sql);
  refuseNewerSchema(state.version);
  if (state.pending.length === 0 && state.referenceCurrent) {
    return { applied: [], version: state.version, referenceUpdated: false };
  }
  return await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    return await applyLocked(tx, options);
  }) as MigrationResult;
}

/**
 * The migrations and the reference tables' sync, in a transaction that holds the migration lock
 * (exported for the test of starters that race).
 */
export async function applyLocked(
  tx: Transaction,
  options: ApplyMigrationsOptions = {},
): Promise<MigrationResult> {
  // Another process may have migrated while this one waited for the lock: look again.
  const locked = await inspectSchema(tx);
  refuseNewerSchema(locked.version);
  if (locked.pending.length) options.onWrite?.(`applying ${describeVersions(locked.pending)}`);
  else if (!locked.referenceCurrent) options.onWrite?.("updating the reference tables");
  await tx`
    create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`;
  for (const { file, sql: text } of MIGRATIONS) {
    const version = migrationVersion(file);
    if (!locked.pending.includes(version)) continue;
    await tx.unsafe(text);
    await tx`insert into schema_migrations (version, name) values (${version}, ${file})`;
  }
  const referenceUpdated = !(locked.pending.length === 0 && locked.referenceCurrent);
  if (referenceUpdated) await syncReferenceTables(tx);
  return { applied: locked.pending, version: SCHEMA_VERSION, referenceUpdated };
}

/**
 * Refuses a database this code must not touch: without the schema, behind it (readers never
 * migrate) or ahead of it. The messages say what to run.
 */
export async function requireCurrentSchema(sql: SchemaSql): Promise<void> {
  const version = await schemaVersion(sql);
  refuseNewerSchema(version);
  if (version === 0) {
    throw new SchemaVersionError(
      "the database has no rematch schema: run `deno task migrate` first (this command only reads)",
    );
  }
  if (version < SCHEMA_VERSION) {
    throw new SchemaVersionError(
      `the database schema is at version ${version}, this program needs ${SCHEMA_VERSION}: ` +
        "run `deno task migrate` first (this command only reads)",
    );
  }
}

function refuseNewerSchema(version: number): void {
  if (version > SCHEMA_VERSION) {
    throw new SchemaVersionError(
      `the database schema is at version ${version}, newer than this program's ${SCHEMA_VERSION}: ` +
        "use the rematch version that migrated it",
    );
  }
}

/** The highest applied migration version, or 0 on a database without the rematch schema. */
export async function schemaVersion(sql: SchemaSql): Promise<number> {
  const [table] = await sql<{ exists: boolean }[]>`
    select to_regclass('schema_migrations') is not null as exists`;
  if (!table.exists) return 0;
  const [max] = await sql<{ version: number | null }[]>`
    select max(version) as version from schema_migrations`;
  return max.version ?? 0;
}

// The code's reference rows that are missing or differ, counted with reads only.
async function referenceTablesCurrent(sql: SchemaSql): Promise<boolean> {
  const modules = Object.entries(MODULE_TYPES);
  const dets = listDataEntryTypes();
  const nodes = EMISSION_TYPE_NODES;
  const [row] = await sql<{ stale: number }[]>`
    select
      (select count(*) from unnest(${modules.map(([, id]) => id)}::int[],
          ${modules.map(([n]) => n)}::text[]) as c(id, name)
        left join module_types t on t.id = c.id
        where t.id is null or t.name is distinct from c.name)
      + (select count(*) from unnest(${dets.map((d) => d.id)}::int[],
          ${dets.map((d) => d.name)}::text[], ${dets.map((d) => d.moduleTypeId)}::int[])
          as c(id, name, module_type_id)
        left join data_entry_types t on t.id = c.id
        where t.id is null or (t.name, t.module_type_id) is distinct from (c.name, c.module_type_id))
      + (select count(*) from unnest(${nodes.map((n) => n.id)}::int[],
          ${nodes.map((n) => n.name)}::text[], ${nodes.map((n) => n.parentId)}::int[],
          ${nodes.map((n) => n.scope)}::smallint[], ${nodes.map((n) => n.category)}::text[])
          as c(id, name, parent_id, scope, category)
        left join emission_types t on t.id = c.id
        where t.id is null or (t.name, t.parent_id, t.scope, t.category)
          is distinct from (c.name, c.parent_id, c.scope, c.category))
      as stale`;
  return Number(row.stale) === 0;
}

// Upserts that only write rows whose content differs, so a second run changes nothing. They lock
// the rows they meet, which is why they only run when the read-only check found a difference.
// deno-lint-ignore no-explicit-any
async function syncReferenceTables(tx: postgres.TransactionSql<any>): Promise<void> {
  const modules = Object.entries(MODULE_TYPES);
  await tx`
    insert into module_types (id, name)
    select * from unnest(${modules.map(([, id]) => id)}::int[], ${modules.map(([n]) => n)}::text[])
    on conflict (id) do update set name = excluded.name
    where module_types.name is distinct from excluded.name`;
  const dets = listDataEntryTypes();
  await tx`
    insert into data_entry_types (id, name, module_type_id)
    select * from unnest(${dets.map((d) => d.id)}::int[], ${dets.map((d) => d.name)}::text[],
      ${dets.map((d) => d.moduleTypeId)}::int[])
    on conflict (id) do update set name = excluded.name, module_type_id = excluded.module_type_id
    where (data_entry_types.name, data_entry_types.module_type_id)
      is distinct from (excluded.name, excluded.module_type_id)`;
  const nodes = EMISSION_TYPE_NODES;
  await tx`
    insert into emission_types (id, name, parent_id, scope, category)
    select * from unnest(${nodes.map((n) => n.id)}::int[], ${nodes.map((n) => n.name)}::text[],
      ${nodes.map((n) => n.parentId)}::int[], ${nodes.map((n) => n.scope)}::smallint[],
      ${nodes.map((n) => n.category)}::text[])
    on conflict (id) do update set name = excluded.name, parent_id = excluded.parent_id,
      scope = excluded.scope, category = excluded.category
    where (emission_types.name, emission_types.parent_id, emission_types.scope,
      emission_types.category) is distinct from
      (excluded.name, excluded.parent_id, excluded.scope, excluded.category)`;
}
