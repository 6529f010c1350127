// The SliceStore over a PostgreSQL transaction: one cursor reads the slice, a handful of
// statements write each chunk.
import type { Queryable } from "../db/connection.ts";
import {
  deleteEmissionsOf,
  insertEmissions,
  type StoredEmissionRow,
  storedEmissionRow,
  updateEmissionsInPlace,
} from "../db/emissions.ts";
import { lockSlice } from "../db/locks.ts";
import { loadSliceInputs, sliceModuleIds } from "../db/slice.ts";
import type { EntryData } from "../handlers/types.ts";
import { ROLLUP_EMISSION_TYPE_IDS } from "../reference/emission_types.ts";
import { getDataEntryType } from "../reference/enums.ts";
import {
  compareSlice,
  markEntries,
  recordedFactors,
  recordSliceState,
  targetEntryIds,
} from "./state.ts";
import type { SliceChunk, SliceEntry, SliceStore } from "./types.ts";

/** A store that reads and writes through `tx` (which must be a transaction). */
export function createPgSliceStore(tx: Queryable): SliceStore {
  return {
    lockSlice: (detId, year, noWait, onWait) =>
      lockSlice(tx, detId, year, { noWait, onWait, detName: getDataEntryType(detId).name }),
    loadInputs: (handler, detId, year) => loadSliceInputs(tx, handler, detId, year),
    moduleIds: (moduleTypeId, year, only) => sliceModuleIds(tx, moduleTypeId, year, only),
    async countEntries(detId, moduleIds) {
      const [row] = await tx<{ n: number }[]>`
        select count(*) as n from data_entries
        where data_entry_type_id = ${detId} and carbon_report_module_id = any(${[
        ...moduleIds,
      ]}::bigint[])`;
      return row.n;
    },
    readSlice: (detId, moduleIds, chunkSize, entryIds) =>
      readSlice(tx, detId, moduleIds, chunkSize, entryIds),
    compareState: (handler, detId, year, moduleIds) =>
      compareSlice(tx, handler, detId, year, moduleIds),
    recordedFactors: (detId, year) => recordedFactors(tx, detId, year),
    targetEntryIds: (detId, moduleIds, factorIds) =>
      targetEntryIds(tx, detId, { moduleIds }, factorIds),
    markEntries: (marks) => markEntries(tx, marks),
    recordState: (record) => recordSliceState(tx, record),
    async writeChunk({ updates, replaceRowsOf, rows, relinks }) {
      // Sent together: the connection runs them in order, without a round trip between them.
      const relinked = relinks.length && tx`
          update data_entries d
          set data = jsonb_set(d.data, '{primary_factor_id}', coalesce(to_jsonb(u.f), 'null'::jsonb)),
            updated_at = now()
          from unnest(${relinks.map((r) => r.id)}::bigint[], ${
        relinks.map((r) => r.factorId)
      }::bigint[])
            as u(i, f)
          where d.id = u.i`;
      const [, updated, deleted, inserted] = await Promise.all([
        relinked,
        updateEmissionsInPlace(tx, updates),
        deleteEmissionsOf(tx, replaceRowsOf),
        insertEmissions(tx, rows),
      ]);
      return { updated, deleted, inserted };
    },
    async refreshModuleStats(moduleIds) {
      await refreshModuleStats(tx, moduleIds);
    },
    async frozenModuleIds(moduleIds) {
      const rows = await tx<{ id: number }[]>`
        select id from carbon_report_modules
        where id = any(${[...moduleIds]}::bigint[]) and frozen_at is not null
        order by id`;
      return rows.map((r) => r.id);
    },
  };
}

let cursors = 0;

/** Rows a FETCH returns; an entry's rows never straddle two chunks (see readSlice). */
interface SliceRow {
  id: number;
  module_id: number;
  data: string;
  row_id: number | null;
  emission_type_id: number;
  primary_factor_id: number | null;
  kg_co2eq: number;
  additional_value: number | null;
  scope: number | null;
  meta: string | null;
}

/**
 * The slice in one pass: a cursor over its entries in id order (all of them, or only
 * `entryIds`), each joined to its stored rows (one index probe per entry, whatever else the table
 * holds), fetched `chunkSize` rows at a time. The next FETCH is sent before a chunk is handed
 * over, so the server reads it while the caller computes (and while the caller's writes, queued
 * on the same connection, run). The cursor sees the slice as it was when declared: the rematch's
 * own writes never show up in it.
 */
async function* readSlice(
  tx: Queryable,
  detId: number,
  moduleIds: readonly number[],
  chunkSize: number,
  entryIds?: readonly number[],
): AsyncGenerator<SliceChunk> {
  if (moduleIds.length === 0 || entryIds?.length === 0) return;
  const size = Math.max(1, Math.floor(chunkSize));
  const cursor = `rematch_slice_${++cursors}`;
  const only = entryIds ? tx`and d.id = any(${[...entryIds]}::bigint[])` : tx``;
  // `offset 0` keeps the lateral subquery a per-entry index probe: a merge join would walk the
  // emission rows of every det.
  await tx`
    declare ${tx(cursor)} no scroll cursor for
    select d.id, d.carbon_report_module_id as module_id, d.data::text as data,
      x.id as row_id, x.emission_type_id, x.primary_factor_id, x.kg_co2eq, x.additional_value,
      x.scope, x.meta
    from data_entries d
    left join lateral (
      select e.id, e.emission_type_id, e.primary_factor_id, e.kg_co2eq, e.additional_value,
        e.scope, e.meta::text as meta
      from data_entry_emissions e where e.data_entry_id = d.id offset 0
    ) x on true
    where d.data_entry_type_id = ${detId} and d.carbon_report_module_id = any(${[
    ...moduleIds,
  ]}::bigint[]) ${only}
    order by d.id`;
  const fetch = () => {
    const rows = tx.unsafe<SliceRow[]>(`fetch forward ${size} from ${cursor}`);
    // A failed FETCH is seen where it is awaited; until then it must not count as unhandled.
    rows.catch(() => {});
    return rows;
  };
  let next = fetch();
  let held: SliceRow[] = [];
  while (true) {
    const fetched = await next;
    const last = fetched.length < size;
    if (!last) next = fetch();
    let rows = held.length ? [...held, ...fetched] : fetched;
    held = [];
    if (!last && rows.length) {
      // The last entry's rows may go on in the next FETCH: it waits for them.
      const lastId = rows[rows.length - 1].id;
      let cut = rows.length;
      while (cut > 0 && rows[cut - 1].id === lastId) cut--;
      if (cut > 0) {
        held = rows.slice(cut);
        rows = rows.slice(0, cut);
      } else {
        held = rows;
        rows = [];
      }
    }
    if (rows.length) yield chunkOf(rows);
    if (last) break;
  }
  await tx.unsafe(`close ${cursor}`);
}

function chunkOf(rows: readonly SliceRow[]): SliceChunk {
  const entries: SliceEntry[] = [];
  const stored = new Map<number, StoredEmissionRow[]>();
  let entryRows: StoredEmissionRow[] | undefined;
  for (const r of rows) {
    if (entries.length === 0 || entries[entries.length - 1].id !== r.id) {
      entries.push({ id: r.id, moduleId: r.module_id, data: JSON.parse(r.data) as EntryData });
      entryRows = undefined;
    }
    if (r.row_id === null) continue;
    const row = storedEmissionRow({
      id: r.row_id,
      dataEntryId: r.id,
      emissionTypeId: r.emission_type_id,
      primaryFactorId: r.primary_factor_id,
      kgCo2eq: r.kg_co2eq,
      additionalValue: r.additional_value,
      scope: r.scope,
      metaText: r.meta,
    });
    if (entryRows) entryRows.push(row);
    else stored.set(r.id, entryRows = [row]);
  }
  // Rows in id order within an entry, as the comparison pairs them.
  for (const list of stored.values()) if (list.length > 1) list.sort((a, b) => a.id - b.id);
  return { entries, stored };
}

/**
 * Recomputes `carbon_report_modules.stats` (scope1, scope2, scope3, total, by_emission_type,
 * entry_count; rollup rows excluded) for these modules in one statement: one pass over their
 * emission rows (summed per module and type, then per module) and one count of their entries.
 */
export async function refreshModuleStats(
  tx: Queryable,
  moduleIds: readonly number[],
): Promise<void> {
  if (moduleIds.length === 0) return;
  const ids = [...moduleIds];
  const rollups = [...ROLLUP_EMISSION_TYPE_IDS];
  await tx`
    with per_type as (
      select e.carbon_report_module_id as mid, x.emission_type_id as t,
        sum(x.kg_co2eq) as kg,
        sum(x.kg_co2eq) filter (where x.scope = 1) as s1,
        sum(x.kg_co2eq) filter (where x.scope = 2) as s2,
        sum(x.kg_co2eq) filter (where x.scope = 3) as s3
      from data_entries e join data_entry_emissions x on x.data_entry_id = e.id
      where e.carbon_report_module_id = any(${ids}::bigint[])
        and x.emission_type_id <> all(${rollups}::int[])
      group by 1, 2
    ), per_module as (
      select mid, sum(s1) as s1, sum(s2) as s2, sum(s3) as s3, sum(kg) as total,
        jsonb_object_agg(t::text, kg) as by_type
      from per_type group by mid
    ), counts as (
      select carbon_report_module_id as mid, count(*) as n from data_entries
      where carbon_report_module_id = any(${ids}::bigint[]) group by 1
    )
    update carbon_report_modules m set
      stats = jsonb_build_object(
        'scope1', coalesce(t.s1, 0), 'scope2', coalesce(t.s2, 0), 'scope3', coalesce(t.s3, 0),
        'total', coalesce(t.total, 0), 'by_emission_type', coalesce(t.by_type, '{}'::jsonb),
        'entry_count', coalesce(c.n, 0)),
      stats_computed_at = now()
    from unnest(${ids}::bigint[]) as mods(id)
    left join per_module t on t.mid = mods.id
    left join counts c on c.mid = mods.id
    where m.id = mods.id`;
}
