import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";

const testDb = useTestDatabase();

async function insertFactor(db: Database, year: number | null, value = 1): Promise<number> {
  const [row] = await db.sql<{ id: number }[]>`
    insert into factors (data_entry_type_id, emission_type_id, year, classification, "values")
    values (11, 80200, ${year}, ${
    db.sql.json({ sub_class: "Standard", equipment_class: "Laptop" })
  },
      ${db.sql.json({ ef_kg_co2eq_per_kwh: value })})
    returning id`;
  return row.id;
}

async function insertEntryWithEmission(db: Database, factorId: number): Promise<number> {
  const [unit] = await db.sql`insert into units (code, name) values ('U1', 'Unit 1') returning id`;
  const [report] = await db
    .sql`insert into carbon_reports (unit_id, year) values (${unit.id}, 2025) returning id`;
  const [mod] = await db.sql`
    insert into carbon_report_modules (carbon_report_id, module_type_id) values (${report.id}, 4) returning id`;
  const [entry] = await db.sql<{ id: number }[]>`
    insert into data_entries (carbon_report_module_id, data_entry_type_id, data)
    values (${mod.id}, 11, ${db.sql.json({ name: "laptop" })}) returning id`;
  await db.sql`
    insert into data_entry_emissions (data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, scope)
    values (${entry.id}, 80200, ${factorId}, 27.456, 2)`;
  return entry.id;
}

dbTest(
  testDb,
  "schema: a duplicate factor identity is rejected, with or without a year",
  async (db) => {
    await insertFactor(db, 2025);
    await assert.rejects(() => insertFactor(db, 2025, 2), /factors_identity_year_uidx/);
    await insertFactor(db, null);
    await assert.rejects(() => insertFactor(db, null, 2), /factors_identity_no_year_uidx/);
  },
);

dbTest(testDb, "schema: the same classification is accepted for another year", async (db) => {
  const a = await insertFactor(db, 2025);
  const b = await insertFactor(db, 2024);
  assert.notEqual(a, b);
});

dbTest(testDb, "schema: classification key order does not make a new identity", async (db) => {
  await insertFactor(db, 2025);
  await assert.rejects(() =>
    db.sql`insert into factors (data_entry_type_id, emission_type_id, year, classification, "values")
      values (11, 80200, 2025, ${
      db.sql.json({ equipment_class: "Laptop", sub_class: "Standard" })
    }, '{}')`
  );
});

dbTest(testDb, "schema: deleting a factor sets the emission's factor to NULL", async (db) => {
  const factorId = await insertFactor(db, 2025);
  const entryId = await insertEntryWithEmission(db, factorId);
  await db.sql`delete from factors where id = ${factorId}`;
  const rows = await db.sql`select primary_factor_id, kg_co2eq from data_entry_emissions
    where data_entry_id = ${entryId}`;
  assert.deepEqual(rows.map((r) => ({ ...r })), [{ primary_factor_id: null, kg_co2eq: 27.456 }]);
});

dbTest(testDb, "schema: deleting an entry deletes its emissions", async (db) => {
  const factorId = await insertFactor(db, 2025);
  const entryId = await insertEntryWithEmission(db, factorId);
  await db.sql`delete from data_entries where id = ${entryId}`;
  const [row] = await db.sql`select count(*) as n from data_entry_emissions`;
  assert.equal(row.n, 0);
});

dbTest(testDb, "schema: only one current job per (job type, module, det, year)", async (db) => {
  const insert = () =>
    db.sql`insert into data_ingestion_jobs (job_type, module_type_id, data_entry_type_id, year, is_current)
      values ('emission_recalc', 4, 11, 2025, true)`;
  await insert();
  await assert.rejects(insert, /data_ingestion_jobs_current_uidx/);
});

dbTest(
  testDb,
  "schema: the factor index of emission rows carries their entry (targeted rematches read it alone)",
  async (db) => {
    const [index] = await db.sql<{ def: string }[]>`
      select indexdef as def from pg_indexes where indexname = 'data_entry_emissions_factor_idx'`;
    assert.match(index.def, /\(primary_factor_id\) INCLUDE \(data_entry_id\)$/);
  },
);
