// Small helpers for database tests of the rematch: import CSV text, create entries, read rows.
import type { Database, Queryable } from "../../src/db/connection.ts";
import { createEntries } from "../../src/db/entries.ts";
import { importFactors } from "../../src/db/factors.ts";
import { upsertLocations, upsertRates } from "../../src/db/reference.ts";
import { parseCsv } from "../../src/imports/csv.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { locationNaturalKey } from "../../src/reference/natural_key.ts";

/** Imports factor CSV text for one det and year (a replace may delete any share of the slice). */
export function importFactorText(
  db: Database,
  det: string,
  year: number,
  csv: string,
  mode: "merge" | "replace" = "merge",
) {
  return db.sql.begin((tx) =>
    importFactors(tx, {
      file: `${det}.csv`,
      table: parseCsv(`${det}.csv`, csv),
      year,
      target: { dataEntryTypeId: getDataEntryType(det).id },
      mode,
      force: true,
    })
  );
}

/** Creates entries of one det for a unit (default U1) and returns their ids. */
export async function createTestEntries(
  db: Database,
  det: string,
  year: number,
  datas: Record<string, unknown>[],
  unitCode = "U1",
): Promise<number[]> {
  const result = await db.sql.begin((tx) =>
    createEntries(
      tx,
      datas.map((data) => ({ unitCode, year, det: getDataEntryType(det), data })),
    )
  );
  if (result.rejected.length) throw new Error(`rejected: ${JSON.stringify(result.rejected)}`);
  return result.ids.map((id) => id!);
}

/** Airports GVA, CDG and LHR with the spec's coordinates. */
export async function insertAirports(db: Database): Promise<void> {
  const airport = (
    iata: string,
    name: string,
    country: string,
    latitude: number,
    longitude: number,
  ) => ({
    transportMode: "plane" as const,
    name,
    iataCode: iata,
    countryCode: country,
    latitude,
    longitude,
    naturalKey: locationNaturalKey({ transportMode: "plane", name, iataCode: iata }),
  });
  await db.sql.begin((tx) =>
    upsertLocations(tx, [
      airport("GVA", "Geneva", "CH", 46.2381, 6.109),
      airport("CDG", "Paris Charles de Gaulle", "FR", 49.0097, 2.5479),
      airport("LHR", "London Heathrow", "GB", 51.47, -0.4543),
    ])
  );
}

export async function insertRates(
  db: Database,
  rows: { year: number; currency: string; eurPerUnit: number }[],
) {
  await db.sql.begin((tx) => upsertRates(tx, rows));
}

/** Every emission row of the entries, in id order, with the columns a rematch may change. */
export async function emissionRows(sql: Queryable, entryIds: readonly number[]) {
  return (await sql`
    select id, data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, additional_value, scope, meta,
      computed_at
    from data_entry_emissions where data_entry_id = any(${[...entryIds]}::bigint[]) order by id`)
    .map((r) => ({ ...r }));
}

/** The stored data of an entry. */
export async function entryData(sql: Queryable, id: number): Promise<Record<string, unknown>> {
  const [row] = await sql<
    { data: Record<string, unknown> }[]
  >`select data from data_entries where id = ${id}`;
  return row.data;
}

export const PLANE_HEADER =
  "category,cabin_class,ef_kg_co2eq_per_km,rfi_adjustment,min_distance,max_distance";
export const IT_HEADER =
  "equipment_class,sub_class,active_power_w,standby_power_w,active_usage_hours_per_week,standby_usage_hours_per_week,ef_kg_co2eq_per_kwh";
