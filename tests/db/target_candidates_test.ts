// The entries a targeted rematch reads (spec/rematch.md rule 17) as the database lists them: by
// an emission row or a JSON link naming a changed factor, plus the pending ones of the det.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { applyMigrations } from "../../src/db/migrate.ts";
import { targetCandidates } from "../../src/rematch/state.ts";

const testDb = useTestDatabase();

const IT = 11;
const OTHER = 12;

async function moduleId(db: Database): Promise<number> {
  const [unit] = await db.sql`insert into units (code, name) values ('U1', 'Unit 1') returning id`;
  const [report] = await db
    .sql`insert into carbon_reports (unit_id, year) values (${unit.id}, 2025) returning id`;
  const [mod] = await db.sql<{ id: number }[]>`
    insert into carbon_report_modules (carbon_report_id, module_type_id)
    values (${report.id}, 4) returning id`;
  return mod.id;
}

async function factor(db: Database, n: number): Promise<number> {
  const [row] = await db.sql<{ id: number }[]>`
    insert into factors (data_entry_type_id, emission_type_id, year, classification, "values")
    values (${IT}, 80200, 2025, ${db.sql.json({ equipment_class: `Class ${n}` })},
      ${db.sql.json({ ef_kg_co2eq_per_kwh: n })})
    returning id`;
  return row.id;
}

async function entry(
  db: Database,
  module: number,
  det: number,
  data: Record<string, unknown>,
  rowFactor?: number,
): Promise<number> {
  const [row] = await db.sql<{ id: number }[]>`
    insert into data_entries (carbon_report_module_id, data_entry_type_id, data)
    values (${module}, ${det}, ${db.sql.json(data as never)}) returning id`;
  if (rowFactor !== undefined) {
    await db.sql`
      insert into data_entry_emissions (data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, scope)
      values (${row.id}, 80200, ${rowFactor}, 1.5, 2)`;
  }
  return row.id;
}

dbTest(
  testDb,
  "target candidates: a JSON link or a row naming a changed factor, or a mark; no other det",
  async (db) => {
    const mod = await moduleId(db);
    const changed = await factor(db, 1);
    const kept = await factor(db, 2);
    const linkedOnly = await entry(db, mod, IT, { primary_factor_id: changed });
    const rowOnly = await entry(db, mod, IT, { primary_factor_id: kept }, changed);
    const both = await entry(db, mod, IT, { primary_factor_id: changed }, changed);
    await entry(db, mod, IT, { primary_factor_id: kept }, kept);
    await entry(db, mod, IT, { primary_factor_id: String(changed) });
    // Not an integer: written all the same (the stored link column must not fail the insert),
    // and it names no factor.
    await entry(db, mod, IT, { primary_factor_id: changed + 0.5 });
    await entry(db, mod, IT, { name: "no link" });
    await entry(db, mod, OTHER, { primary_factor_id: changed });
    const pending = await entry(db, mod, IT, { primary_factor_id: null });
    await db
      .sql`insert into data_entry_pending (data_entry_id, reason) values (${pending}, 'written')`;

    assert.deepEqual(
      await targetCandidates(db.sql, IT, [changed]),
      [linkedOnly, rowOnly, both, pending],
    );
    assert.deepEqual(await targetCandidates(db.sql, IT, [9_999_999]), [pending]);

    // A link edited in place moves with the data.
    await db
      .sql`update data_entries set data = jsonb_set(data, '{primary_factor_id}', ${kept}::text::jsonb)
      where id = ${linkedOnly}`;
    assert.deepEqual(await targetCandidates(db.sql, IT, [changed]), [rowOnly, both, pending]);
  },
);

dbTest(
  testDb,
  "target candidates: the JSON-link entries are listed from the index alone (no heap read per entry)",
  async (db) => {
    // The shape of targetCandidates' JSON-link arm. With sequential and bitmap scans off, the
    // planner takes the index; it reads it alone only when the index covers the query.
    const plan = await db.sql.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      await tx`set local enable_bitmapscan = off`;
      return await tx<{ "QUERY PLAN": string }[]>`
        explain select l.id from data_entries l
        where l.data_entry_type_id = ${IT} and l.json_link_factor_id is not null
          and l.json_link_factor_id = any(${[1, 2]}::bigint[]::numeric[])`;
    });
    const text = plan.map((r) => r["QUERY PLAN"]).join("\n");
    assert.match(text, /Index Only Scan using data_entries_json_link_idx/, text);
  },
);

dbTest(
  testDb,
  "migration 0010 on a database with entries: each stored link column is its data's numeric link",
  async (db) => {
    // Back to before 0010: its column and index gone, the expression index of 0005 back.
    await db.sql.unsafe(`
      drop index data_entries_json_link_idx;
      alter table data_entries drop column json_link_factor_id;
      create index data_entries_json_link_idx
        on data_entries (data_entry_type_id, (data -> 'primary_factor_id'))
        where jsonb_typeof(data -> 'primary_factor_id') = 'number';
      delete from schema_migrations where version = 10;`);
    const mod = await moduleId(db);
    const changed = await factor(db, 1);
    const links: [string, unknown, string | null][] = [
      ["integer", changed, String(changed)],
      ["text", String(changed), null],
      ["fraction", 2.5, "2.5"],
      ["beyond bigint", 1e20, "100000000000000000000"],
      ["null", null, null],
    ];
    const ids: number[] = [];
    for (const [, link] of links) ids.push(await entry(db, mod, IT, { primary_factor_id: link }));
    const missing = await entry(db, mod, IT, { name: "no link" });

    await applyMigrations(db.sql);
    const rows = await db.sql<{ id: number; link: string | null }[]>`
      select id, json_link_factor_id::text as link from data_entries order by id`;
    assert.deepEqual([...rows], [
      ...links.map(([, , stored], i) => ({ id: ids[i], link: stored })),
      { id: missing, link: null },
    ]);
    assert.deepEqual(await targetCandidates(db.sql, IT, [changed]), [ids[0]]);
  },
);
