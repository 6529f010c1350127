// Numbered SQL migrations, applied in order under an advisory lock, then the reference tables
// are brought in line with the code's own tables.
import type postgres from "postgres";
import { EMISSION_TYPE_NODES } from "../reference/emission_type_nodes.ts";
import { listDataEntryTypes, MODULE_TYPES } from "../reference/enums.ts";

/** The migration files, in the order they apply; the number prefix is the schema version. */
export const MIGRATION_FILES: readonly string[] = [
  "0001_schema.sql",
  "0002_jobs.sql",
  "0003_entries.sql",
];

/** The schema version this code expects (the number of the last migration). */
export const SCHEMA_VERSION: number = migrationVersion(MIGRATION_FILES[MIGRATION_FILES.length - 1]);

// Any constant works as long as nothing else in the database uses it.
const MIGRATION_LOCK_KEY = 7_305_310_001;

/** What {@linkcode applyMigrations} did. */
export interface MigrationResult {
  /** Versions applied by this call (empty when the schema was current). */
  applied: number[];
  /** The schema version after the call. */
  version: number;
}

function migrationVersion(file: string): number {
  return Number(file.slice(0, 4));
}

// deno-lint-ignore no-explicit-any
type AnySql = postgres.Sql<any>;

/** Applies pending migrations and syncs `module_types`, `data_entry_types` and `emission_types`. */
export async function applyMigrations(sql: AnySql): Promise<MigrationResult> {
  return await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`
      create table if not exists schema_migrations (
        version integer primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )`;
    const done = new Set(
      (await tx<{ version: number }[]>`select version from schema_migrations`).map((r) =>
        r.version
      ),
    );
    const applied: number[] = [];
    for (const file of MIGRATION_FILES) {
      const version = migrationVersion(file);
      if (done.has(version)) continue;
      const text = await Deno.readTextFile(new URL(`../../migrations/${file}`, import.meta.url));
      await tx.unsafe(text);
      await tx`insert into schema_migrations (version, name) values (${version}, ${file})`;
      applied.push(version);
    }
    await syncReferenceTables(tx);
    return { applied, version: SCHEMA_VERSION };
  });
}

/** The highest applied migration version, or 0 on an empty database. */
export async function schemaVersion(sql: AnySql): Promise<number> {
  const [row] = await sql<{ version: number | null }[]>`
    select max(version) as version from schema_migrations`.catch(() => [{ version: 0 }]);
  return row?.version ?? 0;
}

// Upserts that only write rows whose content differs, so a second run changes nothing.
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
