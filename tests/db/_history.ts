// Shared data of the history tests: three versions of an `it` factor file, entries that use
// them, the kg the spec's equipment formula gives, and ways to read what the tests compare.
import { join } from "node:path";
import type { Database, Queryable } from "../../src/db/connection.ts";
import { createEntries } from "../../src/db/entries.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import type { CommandSpec } from "../../src/cli/command.ts";
import { runOn } from "../_harness.ts";

export const IT_FILE_HEADER = "equipment_category,equipment_class,sub_class,active_power_w," +
  "standby_power_w,active_usage_hours_per_week,standby_usage_hours_per_week,ef_kg_co2eq_per_kwh";

/** Version 1 (merge into an empty slice): four factors. */
export const V1 = `${IT_FILE_HEADER}
it,Laptop,Standard,100,10,40,128,0.1
it,Laptop,,60,2,40,128,0.1
it,Desktop,,120,5,40,128,0.1
it,Monitor,,25,1,40,128,0.1
`;

/**
 * Version 2 (merge): Laptop/Standard updated, Desktop unchanged, Tablet inserted; Laptop (no
 * sub-class) and Monitor are not in the file and stay as v1 left them.
 */
export const V2 = `${IT_FILE_HEADER}
it,Laptop,Standard,100,10,40,128,0.2
it,Desktop,,120,5,40,128,0.1
it,Tablet,,10,1,20,148,0.1
`;

/** Version 3 (replace): four updated, Desktop unchanged, Phone inserted, Monitor deleted. */
export const V3 = `${IT_FILE_HEADER}
it,Laptop,Standard,100,10,40,128,0.3
it,Laptop,,60,2,40,128,0.3
it,Desktop,,120,5,40,128,0.1
it,Tablet,,12,1,20,148,0.3
it,Phone,,5,1,40,128,0.3
`;

/** The rows of v1 that a merge of v2 keeps as they were. */
export const V1_KEPT_BY_V2 = ["it,Laptop,,60,2,40,128,0.1", "it,Monitor,,25,1,40,128,0.1"];

/** One entry per kind, some only matched by later versions. */
export const IT_ENTRIES: readonly Record<string, unknown>[] = [
  { name: "laptop a", equipment_class: "Laptop", sub_class: "Standard" },
  { name: "laptop b", equipment_class: "Laptop" },
  { name: "desktop", equipment_class: "Desktop" },
  { name: "monitor", equipment_class: "Monitor" },
  { name: "tablet", equipment_class: "Tablet" },
  { name: "phone", equipment_class: "Phone" },
];

/** Creates the entries for a unit of 2025 and returns their ids. */
export async function createItEntries(
  db: Database,
  unitCode: string,
  entries: readonly Record<string, unknown>[] = IT_ENTRIES,
): Promise<number[]> {
  const result = await db.sql.begin((tx) =>
    createEntries(
      tx,
      entries.map((data) => ({ unitCode, year: 2025, det: getDataEntryType("it"), data })),
    )
  );
  if (result.rejected.length) throw new Error(`rejected: ${JSON.stringify(result.rejected)}`);
  return result.ids.map((id) => id!);
}

/**
 * kg of an equipment entry with the factor's default hours (spec/modules.md, equipment):
 * (active h × active W + standby h × standby W) × 52 weeks / 1000 × ef.
 */
export function equipmentKg(row: string): number {
  const [, , , activeW, standbyW, activeH, standbyH, ef] = row.split(",").map(Number);
  return (activeH * activeW + standbyH * standbyW) * 52 / 1000 * ef;
}

/** The factor row of a file for a class (and sub-class, blank when absent). */
export function rowOf(file: string, equipmentClass: string, subClass = ""): string | undefined {
  return file.trim().split("\n").slice(1).find((line) => {
    const cells = line.split(",");
    return cells[1] === equipmentClass && cells[2] === subClass;
  });
}

/** Writes files into a temporary directory for the body, then removes it. */
export async function withFiles(
  files: Record<string, string>,
  body: (path: (name: string) => string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rematch-history-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    await body((name) => join(dir, name));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs a command on the test database with `--json` and returns its exit code and document. */
export async function runJson<T>(
  spec: CommandSpec<T>,
  db: Database,
  argv: string[],
  // deno-lint-ignore no-explicit-any
): Promise<{ exitCode: number; json: any; text: string }> {
  const outcome = await runOn(spec, db, argv, true);
  return { exitCode: outcome.exitCode, json: outcome.json, text: outcome.text };
}

/** The factor rows of a slice as the round trip compares them (ids, classification, values). */
export async function factorRows(sql: Queryable, det = 11, year = 2025) {
  return (await sql`
    select id, data_entry_type_id, emission_type_id, year, classification, "values", import_id
    from factors where data_entry_type_id = ${det} and year = ${year} order by id`)
    .map((r) => ({ ...r }));
}

/**
 * Every emission row as PostgreSQL prints it, without what a rewrite legitimately renews (the
 * row id and computed_at), in a stable order.
 */
export async function emissionContent(sql: Queryable): Promise<string[]> {
  return (await sql<{ row: string }[]>`
    select (to_jsonb(x) - 'id' - 'computed_at')::text as row from data_entry_emissions x
    order by data_entry_id, emission_type_id, primary_factor_id, kg_co2eq`).map((r) => r.row);
}

/** Every emission row of these entries exactly as stored (ids and times included). */
export async function storedEmissions(sql: Queryable, entryIds: readonly number[]) {
  return (await sql<{ row: string }[]>`
    select row_to_json(x)::text as row from data_entry_emissions x
    where data_entry_id = any(${[...entryIds]}::bigint[]) order by id`).map((r) => r.row);
}
