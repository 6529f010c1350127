// The SliceStore over a PostgreSQL transaction: one cursor reads the slice, a handful of
// statements write each chunk.
import type { Queryable, Sql } from "../db/connection.ts";
import { deleteEmissionsOf, insertEmissions, updateEmissionsInPlace } from "../db/emissions.ts";
import { lockSlice } from "../db/locks.ts";
import { loadSliceInputs, sliceModuleIds } from "../db/slice.ts";
import { ROLLUP_EMISSION_TYPE_IDS } from "../reference/emission_types.ts";
import { getDataEntryType } from "../reference/enums.ts";
import {
  compareSlice,
  forgetSliceKgTotals,
  liveFactorStamp,
  markEntries,
  pendingEntryIds,
  recordedFactors,
  recordFactorStamp,
  recordSliceKgTotal,
  recordSliceState,
  sliceKgTotal,
  targetCandidates,
} from "./state.ts";
import { addStatsChange, type ModuleStatsChange } from "./module_stats.ts";
import { readSlice, readSliceBeside, withoutJit } from "./slice_cursor.ts";
import type { SliceStore } from "./types.ts";

/** Options of {@linkcode createPgSliceStore}. */
export interface PgSliceStoreOptions {
  /**
   * Reads slices beside `tx` on a session of this client (see `readSliceBeside`): whole ones, and
   * targeted ones longer than a chunk. Only for a transaction that has not written the slice's
   * entries or rows before the rematch.
   */
  readonly reader?: Sql;
}

/** A store that reads and writes through `tx` (which must be a transaction). */
export function createPgSliceStore(tx: Queryable, options: PgSliceStoreOptions = {}): SliceStore {
  const { reader } = options;
  return {
    lockSlice: (detId, year, noWait, onWait, signal) =>
      lockSlice(tx, detId, year, {
        noWait,
        onWait,
        signal,
        detName: getDataEntryType(detId).name,
      }),
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
    sliceKg: (detId, moduleIds) => sliceKgTotal(tx, detId, moduleIds),
    // A targeted read of one chunk or less stays on the transaction: no write waits behind it, so
    // a second session has nothing to overlap (1,000 entries of 100,000: 142 to 178 ms either
    // way). Longer ones go beside, their reads running while the previous chunk is written (10,000
    // entries of 1,000,000 in a fresh process: 439 to 625 ms against 527 to 689 ms).
    readSlice: (detId, moduleIds, chunkSize, entryIds) =>
      reader && (!entryIds || entryIds.length > chunkSize)
        ? readSliceBeside(tx, reader, detId, moduleIds, chunkSize, entryIds)
        : readSlice(tx, detId, moduleIds, chunkSize, entryIds),
    compareState: (handler, detId, year, moduleIds) =>
      compareSlice(tx, handler, detId, year, moduleIds),
    lockAndCompareState(handler, detId, year) {
      // The transaction's connection runs its statements in the order sent: the comparison, sent
      // before the lock is answered, still runs once the lock is taken.
      const locked = lockSlice(tx, detId, year, { detName: getDataEntryType(detId).name });
      const comparison = compareSlice(tx, handler, detId, year);
      comparison.catch(() => {});
      return locked.then(() => comparison);
    },
    recordedFactors: (detId, year, ids) => recordedFactors(tx, detId, year, ids),
    factorStamp: (detId, year) => liveFactorStamp(tx, detId, year),
    // The candidates, not narrowed to the modules: the slice's cursor keeps to them anyway.
    targetEntryIds: (detId, _moduleIds, factorIds) => targetCandidates(tx, detId, factorIds),
    pendingEntryIds: (detId) => pendingEntryIds(tx, detId),
    markEntries: (marks) => markEntries(tx, marks),
    recordState: (record) => recordSliceState(tx, record),
    recordKgTotal: (dataEntryTypeId, year, kg) =>
      kg === null
        ? forgetSliceKgTotals(tx, [{ dataEntryTypeId, year }])
        : recordSliceKgTotal(tx, dataEntryTypeId, year, kg),
    recordFactorStamp: (detId, year, stamp) => recordFactorStamp(tx, detId, year, stamp),
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
    refreshModuleStats: (moduleIds, changes) =>
      changes ? updateModuleStats(tx, changes) : refreshModuleStats(tx, moduleIds),
    forgetModuleStats: (moduleIds) => forgetModuleStats(tx, moduleIds),
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
 * Moves the stats of modules by `changes` where their stored stats allow (see
 * {@linkcode applyModuleStatsChanges}); the others, and the modules of `resum`, are summed again
 * from their rows.
 */
export async function updateModuleStats(
  tx: Queryable,
  changes: readonly ModuleStatsChange[],
  resum: readonly number[] = [],
): Promise<void> {
  const left = await applyModuleStatsChanges(tx, changes, resum);
  const again = [...new Set([...left, ...resum])].sort((a, b) => a - b);
  // Applying changes locked these rows already, in its one ordered pass; without any, lock them.
  if (changes.some((c) => !c.recompute)) await sumModuleStats(tx, again);
  else await refreshModuleStats(tx, again);
}

/**
 * Locks the rows of these modules in id order. Every writer of module stats takes all the locks
 * it needs this way before writing any: two rematches of dets of one module type (or a rematch
 * and an entry write) touch the same modules, and locks taken in two passes, or in a join's
 * order, could each wait for the other. The lock is the one an UPDATE of non-key columns takes
 * (`for no key update`): entries being inserted into a module hold a key-share lock on its row
 * (their foreign key), which it does not wait for.
 */
async function lockModules(tx: Queryable, moduleIds: readonly number[]): Promise<void> {
  await tx`select id from carbon_report_modules where id = any(${[...moduleIds]}::bigint[])
    order by id for no key update`;
}

/**
 * Marks the stats of these modules as not computed (a write skipped them): the next update sums
 * them again instead of adding changes to them.
 */
export async function forgetModuleStats(
  tx: Queryable,
  moduleIds: readonly number[],
): Promise<void> {
  if (moduleIds.length === 0) return;
  await lockModules(tx, moduleIds);
  await tx`
    update carbon_report_modules set stats_computed_at = null
    where id = any(${[...moduleIds]}::bigint[])`;
}

/**
 * Recomputes `carbon_report_modules.stats` (scope1, scope2, scope3, total, by_emission_type,
 * entry_count; rollup rows excluded) for these modules in one statement: their entries through
 * the module index, each entry's rows through the entry index (so the cost follows the modules
 * refreshed, not the size of the table), summed per module and type, then per module.
 */
export async function refreshModuleStats(
  tx: Queryable,
  moduleIds: readonly number[],
): Promise<void> {
  if (moduleIds.length === 0) return;
  await lockModules(tx, moduleIds);
  await sumModuleStats(tx, moduleIds);
}

// The recompute of refreshModuleStats, its modules' rows locked by the caller.
async function sumModuleStats(tx: Queryable, moduleIds: readonly number[]): Promise<void> {
  if (moduleIds.length === 0) return;
  const ids = [...moduleIds];
  const rollups = [...ROLLUP_EMISSION_TYPE_IDS];
  await withoutJit(tx);
  // `offset 0` keeps the lateral subquery a per-entry index probe: a join would scan the rows of
  // every module.
  await tx`
    with per_type as (
      select e.carbon_report_module_id as mid, x.emission_type_id as t,
        sum(x.kg_co2eq) as kg,
        sum(x.kg_co2eq) filter (where x.scope = 1) as s1,
        sum(x.kg_co2eq) filter (where x.scope = 2) as s2,
        sum(x.kg_co2eq) filter (where x.scope = 3) as s3
      from data_entries e
      cross join lateral (
        select r.emission_type_id, r.kg_co2eq, r.scope from data_entry_emissions r
        where r.data_entry_id = e.id offset 0
      ) x
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

/**
 * Adds each change to its module's stored stats and returns the ids of the modules it could not
 * update that way (to be recomputed in full): those whose change says so, and those whose stored
 * stats cannot be trusted as a base (see {@linkcode addStatsChange}). The stats are read under
 * row locks, in module id order (with those of `alsoLock`, to be summed again after), added to
 * here and written back in one statement: the server parses each new stats value once instead of
 * taking the old one apart key by key.
 */
export async function applyModuleStatsChanges(
  tx: Queryable,
  changes: readonly ModuleStatsChange[],
  alsoLock: readonly number[] = [],
): Promise<number[]> {
  const recompute = changes.filter((c) => c.recompute).map((c) => c.moduleId);
  const deltas = changes.filter((c) => !c.recompute);
  if (deltas.length === 0) return recompute;
  // The modules to be summed again are locked in the same pass, in the same order.
  const others = [...recompute, ...alsoLock];
  const rows = await tx<{ id: number; stats: string | null; computed: boolean }[]>`
    select id, stats::text as stats, stats_computed_at is not null as computed
    from carbon_report_modules
    where id = any(${[...deltas.map((c) => c.moduleId), ...others]}::bigint[])
    order by id for no key update`;
  const stored = new Map(rows.map((r) => [r.id, r]));
  const ids: number[] = [];
  const texts: string[] = [];
  for (const change of deltas) {
    const row = stored.get(change.moduleId);
    const next = row?.computed ? addStatsChange(row.stats, change) : undefined;
    if (next === undefined) {
      recompute.push(change.moduleId);
    } else {
      ids.push(change.moduleId);
      texts.push(next);
    }
  }
  if (ids.length) {
    await tx`
      update carbon_report_modules m set stats = u.s::jsonb, stats_computed_at = now()
      from unnest(${ids}::bigint[], ${texts}::text[]) as u(id, s)
      where m.id = u.id`;
  }
  return recompute.sort((a, b) => a - b);
}
