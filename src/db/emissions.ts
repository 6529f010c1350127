// Set-based writes of emission rows: a handful of statements whatever the number of entries.
import type { EmissionRow } from "../compute/emission_row.ts";
import type { Queryable } from "./connection.ts";

/** An emission row with the entry it belongs to. */
export interface EntryEmissionRow {
  readonly dataEntryId: number;
  readonly row: EmissionRow;
}

/** A stored emission row as the rematch compares it. */
export interface StoredEmissionRow extends EmissionRow {
  readonly id: number;
  readonly dataEntryId: number;
}

/** Deletes every emission row of these entries; returns how many went. */
export async function deleteEmissionsOf(
  tx: Queryable,
  entryIds: readonly number[],
): Promise<number> {
  if (entryIds.length === 0) return 0;
  const result = await tx`delete from data_entry_emissions where data_entry_id = any(${[
    ...entryIds,
  ]}::bigint[])`;
  return result.count;
}

/** Inserts rows with one multi-row INSERT ... SELECT FROM unnest (works on PGlite too). */
export async function insertEmissions(
  tx: Queryable,
  rows: readonly EntryEmissionRow[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const result = await tx`
    insert into data_entry_emissions
      (data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, additional_value, scope, meta, computed_at)
    select e, t, f, kg, a, s, m::jsonb, now()
    from unnest(
      ${rows.map((r) => r.dataEntryId)}::bigint[],
      ${rows.map((r) => r.row.emissionTypeId)}::int[],
      ${rows.map((r) => r.row.primaryFactorId)}::bigint[],
      ${rows.map((r) => r.row.kgCo2eq)}::float8[],
      ${rows.map((r) => r.row.additionalValue)}::float8[],
      ${rows.map((r) => r.row.scope)}::smallint[],
      ${rows.map((r) => JSON.stringify(r.row.meta))}::text[]
    ) as u(e, t, f, kg, a, s, m)`;
  return result.count;
}

/** The stored rows of these entries, grouped by entry id. */
export async function loadEmissionsOf(
  tx: Queryable,
  entryIds: readonly number[],
): Promise<Map<number, StoredEmissionRow[]>> {
  const byEntry = new Map<number, StoredEmissionRow[]>();
  if (entryIds.length === 0) return byEntry;
  const rows = await tx<
    {
      id: number;
      data_entry_id: number;
      emission_type_id: number;
      primary_factor_id: number | null;
      kg_co2eq: number;
      additional_value: number | null;
      scope: number | null;
      meta: Record<string, unknown> | null;
    }[]
  >`
    select id, data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, additional_value, scope, meta
    from data_entry_emissions where data_entry_id = any(${[...entryIds]}::bigint[])
    order by id`;
  for (const r of rows) {
    const stored: StoredEmissionRow = {
      id: r.id,
      dataEntryId: r.data_entry_id,
      emissionTypeId: r.emission_type_id,
      primaryFactorId: r.primary_factor_id,
      kgCo2eq: r.kg_co2eq,
      additionalValue: r.additional_value,
      scope: r.scope,
      meta: r.meta ?? {},
    };
    const list = byEntry.get(r.data_entry_id);
    if (list) list.push(stored);
    else byEntry.set(r.data_entry_id, [stored]);
  }
  return byEntry;
}

/** Rewrites stored rows in place by id (they keep their ids), in one UPDATE ... FROM unnest. */
export async function updateEmissionsInPlace(
  tx: Queryable,
  updates: readonly { id: number; row: EmissionRow }[],
): Promise<number> {
  if (updates.length === 0) return 0;
  const result = await tx`
    update data_entry_emissions x set
      emission_type_id = u.t, primary_factor_id = u.f, kg_co2eq = u.kg, additional_value = u.a,
      scope = u.s, meta = u.m::jsonb, computed_at = now()
    from unnest(
      ${updates.map((u) => u.id)}::bigint[],
      ${updates.map((u) => u.row.emissionTypeId)}::int[],
      ${updates.map((u) => u.row.primaryFactorId)}::bigint[],
      ${updates.map((u) => u.row.kgCo2eq)}::float8[],
      ${updates.map((u) => u.row.additionalValue)}::float8[],
      ${updates.map((u) => u.row.scope)}::smallint[],
      ${updates.map((u) => JSON.stringify(u.row.meta))}::text[]
    ) as u(id, t, f, kg, a, s, m)
    where x.id = u.id`;
  return result.count;
}
