// The SliceStore over a PostgreSQL transaction: a handful of statements per chunk.
import type { Queryable } from "../db/connection.ts";
import {
  deleteEmissionsOf,
  insertEmissions,
  loadEmissionsOf,
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
import type { SliceStore } from "./types.ts";

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
    async readEntries(detId, moduleIds, afterId, limit) {
      const rows = await tx<{ id: number; module_id: number; data: EntryData }[]>`
        select id, carbon_report_module_id as module_id, data from data_entries
        where data_entry_type_id = ${detId} and carbon_report_module_id = any(${[
        ...moduleIds,
      ]}::bigint[])
          and id > ${afterId}
        order by id limit ${limit}`;
      return rows.map((r) => ({ id: r.id, moduleId: r.module_id, data: r.data }));
    },
    async readEntriesById(ids) {
      if (ids.length === 0) return [];
      const rows = await tx<{ id: number; module_id: number; data: EntryData }[]>`
        select id, carbon_report_module_id as module_id, data from data_entries
        where id = any(${[...ids]}::bigint[])
        order by id`;
      return rows.map((r) => ({ id: r.id, moduleId: r.module_id, data: r.data }));
    },
    readEmissions: (entryIds) => loadEmissionsOf(tx, entryIds),
    compareState: (handler, detId, year, moduleIds) =>
      compareSlice(tx, handler, detId, year, moduleIds),
    recordedFactors: (detId, year) => recordedFactors(tx, detId, year),
    targetEntryIds: (detId, moduleIds, factorIds) =>
      targetEntryIds(tx, detId, { moduleIds }, factorIds),
    markEntries: (marks) => markEntries(tx, marks),
    recordState: (record) => recordSliceState(tx, record),
    async writeChunk({ updates, replaceRowsOf, rows, relinks }) {
      if (relinks.length) {
        await tx`
          update data_entries d
          set data = jsonb_set(d.data, '{primary_factor_id}', coalesce(to_jsonb(u.f), 'null'::jsonb)),
            updated_at = now()
          from unnest(${relinks.map((r) => r.id)}::bigint[], ${
          relinks.map((r) => r.factorId)
        }::bigint[])
            as u(i, f)
          where d.id = u.i`;
      }
      const updated = await updateEmissionsInPlace(tx, updates);
      const deleted = await deleteEmissionsOf(tx, replaceRowsOf);
      const inserted = await insertEmissions(tx, rows);
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

/**
 * Recomputes `carbon_report_modules.stats` (scope1, scope2, scope3, total, by_emission_type,
 * entry_count; rollup rows excluded) for these modules in one statement.
 */
export async function refreshModuleStats(
  tx: Queryable,
  moduleIds: readonly number[],
): Promise<void> {
  if (moduleIds.length === 0) return;
  const ids = [...moduleIds];
  const rollups = [...ROLLUP_EMISSION_TYPE_IDS];
  await tx`
    update carbon_report_modules m set
      stats = jsonb_build_object(
        'scope1', coalesce(t.s1, 0), 'scope2', coalesce(t.s2, 0), 'scope3', coalesce(t.s3, 0),
        'total', coalesce(t.total, 0), 'by_emission_type', coalesce(b.by_type, '{}'::jsonb),
        'entry_count', coalesce(c.n, 0)),
      stats_computed_at = now()
    from unnest(${ids}::bigint[]) as mods(id)
    left join (
      select e.carbon_report_module_id as mid,
        sum(x.kg_co2eq) filter (where x.scope = 1) as s1,
        sum(x.kg_co2eq) filter (where x.scope = 2) as s2,
        sum(x.kg_co2eq) filter (where x.scope = 3) as s3,
        sum(x.kg_co2eq) as total
      from data_entries e join data_entry_emissions x on x.data_entry_id = e.id
      where e.carbon_report_module_id = any(${ids}::bigint[]) and x.emission_type_id <> all(${rollups}::int[])
      group by 1
    ) t on t.mid = mods.id
    left join (
      select mid, jsonb_object_agg(emission_type_id::text, kg) as by_type from (
        select e.carbon_report_module_id as mid, x.emission_type_id, sum(x.kg_co2eq) as kg
        from data_entries e join data_entry_emissions x on x.data_entry_id = e.id
        where e.carbon_report_module_id = any(${ids}::bigint[]) and x.emission_type_id <> all(${rollups}::int[])
        group by 1, 2
      ) z group by mid
    ) b on b.mid = mods.id
    left join (
      select carbon_report_module_id as mid, count(*) as n from data_entries
      where carbon_report_module_id = any(${ids}::bigint[]) group by 1
    ) c on c.mid = mods.id
    where m.id = mods.id`;
}
