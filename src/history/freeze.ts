// Frozen (validated, published) carbon report modules (spec/history.md §4): a rematch never
// writes them and entry writes into them are refused.
import type { Database, Queryable } from "../db/connection.ts";
import { lockSlice, SliceBusyError } from "../db/locks.ts";
import { type DataEntryType, findModuleType, listDataEntryTypes } from "../reference/enums.ts";
import { recalculateForDataEntryType } from "../rematch/run.ts";
import { markEntries } from "../rematch/state.ts";
import { EMPTY_MODULE_STATS } from "../rematch/module_stats.ts";
import { currentActor } from "./actor.ts";

/** Which modules to freeze or unfreeze: one unit's report of a year, one module or all. */
export interface ReportTarget {
  readonly unitCode: string;
  readonly year: number;
  /** @default every module of the report */
  readonly moduleTypeId?: number;
}

/** A carbon report module and its freeze. */
export interface ReportModule {
  readonly moduleId: number;
  readonly unitCode: string;
  readonly year: number;
  readonly moduleType: string;
  readonly moduleTypeId: number;
  /** Null when not frozen. */
  readonly frozenAt: string | null;
  readonly frozenBy: string | null;
  readonly frozenReason: string | null;
}

/** Thrown when the unit, its report of the year or the module does not exist. */
export class ReportNotFoundError extends Error {
  override name = "ReportNotFoundError";
}

/** Thrown when an entry write targets a frozen module. */
export class FrozenModuleError extends Error {
  override name = "FrozenModuleError";
  constructor(readonly module: ReportModule) {
    super(
      `module ${module.moduleType} of unit ${module.unitCode} ${module.year} (module ${module.moduleId}) ` +
        `is frozen since ${module.frozenAt} by ${module.frozenBy} (${module.frozenReason}): its ` +
        `entries cannot be written; unfreeze it first with: reports unfreeze --unit ${
          quoteArg(module.unitCode)
        } --year ${module.year} --module ${module.moduleType}`,
    );
  }
}

function quoteArg(text: string): string {
  return /^[\w.@:/-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

interface ModuleRow {
  id: number;
  unit_code: string;
  year: number;
  module_type_id: number;
  frozen_at: Date | null;
  frozen_by: string | null;
  frozen_reason: string | null;
}

function toModule(r: ModuleRow): ReportModule {
  return {
    moduleId: r.id,
    unitCode: r.unit_code,
    year: r.year,
    moduleType: findModuleType(r.module_type_id)?.name ?? String(r.module_type_id),
    moduleTypeId: r.module_type_id,
    frozenAt: r.frozen_at?.toISOString() ?? null,
    frozenBy: r.frozen_by,
    frozenReason: r.frozen_reason,
  };
}

/**
 * The modules of a unit's report, locked for update, after taking the slice locks of every det
 * of those modules (det id order, as imports and rematches take them): a rematch or entry write
 * of those slices finishes before a freeze changes, and none starts until it commits. With
 * `complete`, a whole report gets a module of every module type that has dets, those missing
 * created empty: freezing a whole report freezes the modules its later entries would create too.
 */
async function lockReportModules(
  tx: Queryable,
  target: ReportTarget,
  { complete = false }: { readonly complete?: boolean } = {},
): Promise<ModuleRow[]> {
  const [unit] = await tx<{ id: number }[]>`select id from units where code = ${target.unitCode}`;
  if (!unit) throw new ReportNotFoundError(`there is no unit "${target.unitCode}"`);
  const moduleTypes = target.moduleTypeId === undefined ? null : [target.moduleTypeId];
  const wanted = await tx<{ module_type_id: number }[]>`
    select m.module_type_id from carbon_report_modules m
    join carbon_reports r on r.id = m.carbon_report_id
    where r.unit_id = ${unit.id} and r.year = ${target.year}
      and (${moduleTypes}::int[] is null or m.module_type_id = any(${moduleTypes}::int[]))`;
  const [report] = complete && moduleTypes === null
    ? await tx<{ id: number }[]>`
      select id from carbon_reports where unit_id = ${unit.id} and year = ${target.year}`
    : [];
  if (wanted.length === 0 && !report) {
    const what = target.moduleTypeId === undefined
      ? "report"
      : `module ${findModuleType(target.moduleTypeId)?.name ?? target.moduleTypeId} in its report`;
    throw new ReportNotFoundError(`unit "${target.unitCode}" has no ${what} for ${target.year}`);
  }
  const types = new Set(
    report ? listDataEntryTypes().map((d) => d.moduleTypeId) : wanted.map((w) => w.module_type_id),
  );
  for (const det of listDataEntryTypes().filter((d) => types.has(d.moduleTypeId))) {
    await lockSlice(tx, det.id, target.year, { detName: det.name });
  }
  if (report) {
    // Under the slice locks: an entry write creating one of these waits for this freeze, then
    // finds it frozen.
    await tx`
      insert into carbon_report_modules (carbon_report_id, module_type_id, stats, stats_computed_at)
      select ${report.id}, t, ${EMPTY_MODULE_STATS}::text::jsonb, now()
      from unnest(${[...types]}::int[]) as t
      on conflict (carbon_report_id, module_type_id) do nothing`;
  }
  return await tx<ModuleRow[]>`
    select m.id, ${target.unitCode} as unit_code, r.year, m.module_type_id, m.frozen_at,
      m.frozen_by, m.frozen_reason
    from carbon_report_modules m
    join carbon_reports r on r.id = m.carbon_report_id
    where r.unit_id = ${unit.id} and r.year = ${target.year}
      and m.module_type_id = any(${[...types]}::int[])
    order by m.module_type_id
    for update of m`;
}

/** What a freeze or unfreeze did. */
export interface FreezeResult {
  /** Modules whose state this call changed, as they are now. */
  readonly changed: readonly ReportModule[];
  /** Modules already in the asked state, left as they were. */
  readonly unchanged: readonly ReportModule[];
}

/**
 * Freezes the modules of a unit's report (all, or one) inside the caller's transaction, and drops
 * the pending marks of their entries (unfreezing marks them all again). An already frozen module
 * keeps its freeze (time, actor, reason). A whole report is frozen with a module of every module
 * type: those it does not have yet are created empty and frozen, so that no later entry write can
 * add an open module to it. Throws {@linkcode ReportNotFoundError} when there is nothing to
 * freeze.
 *
 * @example
 * ```ts ignore
 * import { freezeModules } from "./freeze.ts";
 * import { transaction } from "../db/transaction.ts";
 * await transaction(db.sql, (tx) =>
 *   freezeModules(tx, { unitCode: "U1", year: 2025 }, { reason: "published 2026-03-01" })
 * );
 * ```
 */
export async function freezeModules(
  tx: Queryable,
  target: ReportTarget,
  freeze: { readonly reason: string; readonly actor?: string },
): Promise<FreezeResult> {
  const modules = await lockReportModules(tx, target, { complete: true });
  const open = modules.filter((m) => m.frozen_at === null).map((m) => m.id);
  const frozen = open.length
    ? await tx<ModuleRow[]>`
      update carbon_report_modules m
      set frozen_at = clock_timestamp(), frozen_by = ${freeze.actor ?? currentActor()},
        frozen_reason = ${freeze.reason}
      where m.id = any(${open}::bigint[])
      returning m.id, ${target.unitCode} as unit_code, ${target.year}::int as year,
        m.module_type_id, m.frozen_at, m.frozen_by, m.frozen_reason`
    : [];
  if (open.length) {
    // A rematch writes nothing of a frozen module, so it could never clear these marks, and its
    // slice would stay stale for as long as the freeze holds. Unfreezing marks every entry of the
    // module for the next rematch: nothing is lost.
    await tx`delete from data_entry_pending p using data_entries d
      where d.id = p.data_entry_id and d.carbon_report_module_id = any(${open}::bigint[])`;
  }
  return {
    changed: frozen.map(toModule).sort((a, b) => a.moduleTypeId - b.moduleTypeId),
    unchanged: modules.filter((m) => m.frozen_at !== null).map(toModule),
  };
}

/**
 * Unfreezes the modules of a unit's report (all, or one) inside the caller's transaction.
 * Their emissions stay as they were until the next rematch of their slices brings them up to
 * date: their entries are marked for it (spec/rematch.md rule 16), so their slices are stale
 * (`status`) and the next rematch reads them even when nothing else changed. `changed` lists the
 * modules as they were (with their freeze).
 */
export async function unfreezeModules(tx: Queryable, target: ReportTarget): Promise<FreezeResult> {
  const modules = await lockReportModules(tx, target);
  const frozen = modules.filter((m) => m.frozen_at !== null);
  if (frozen.length) {
    const ids = frozen.map((m) => m.id);
    await tx`
      update carbon_report_modules
      set frozen_at = null, frozen_by = null, frozen_reason = null
      where id = any(${ids}::bigint[])`;
    const entries = await tx<{ id: number }[]>`
      select id from data_entries where carbon_report_module_id = any(${ids}::bigint[])`;
    // The slice state vouches for rows a rematch computed; these were held back from it.
    await markEntries(tx, { unvouched: { reason: "rematched", ids: entries.map((e) => e.id) } });
  }
  return {
    changed: frozen.map(toModule),
    unchanged: modules.filter((m) => m.frozen_at === null).map(toModule),
  };
}

/**
 * The frozen modules among `moduleIds`, with unit and year: what an entry write checks before
 * writing into them.
 */
export async function frozenModules(
  tx: Queryable,
  moduleIds: readonly number[],
): Promise<ReportModule[]> {
  if (moduleIds.length === 0) return [];
  const rows = await tx<ModuleRow[]>`
    select m.id, u.code as unit_code, r.year, m.module_type_id, m.frozen_at, m.frozen_by,
      m.frozen_reason
    from carbon_report_modules m
    join carbon_reports r on r.id = m.carbon_report_id
    join units u on u.id = r.unit_id
    where m.id = any(${[...new Set(moduleIds)]}::bigint[]) and m.frozen_at is not null
    order by m.id`;
  return rows.map(toModule);
}

/** A frozen module whose stored emissions differ from what the current factors give. */
export interface FrozenModuleBehind extends ReportModule {
  readonly dataEntryType: string;
  /** Entries whose rows (or link) a rematch would change if the module were not frozen. */
  readonly entriesBehind: number;
  /** The kg they would move (after − before). */
  readonly kgDelta: number;
}

/**
 * The frozen modules (of a year, optionally of one det's module type) whose emissions differ
 * from the current factors, per det: a dry rematch of just those modules, nothing written
 * (spec/history.md §4: what `status` shows). Each dry rematch takes its slice's lock; with
 * `onBusy`, a slice another rematch or import holds is not waited for but told to it, and left
 * out.
 *
 * @example
 * ```ts ignore
 * import { frozenModulesBehind } from "./freeze.ts";
 * for (const m of await frozenModulesBehind(db, { year: 2025 })) {
 *   console.log(m.unitCode, m.moduleType, m.dataEntryType, m.entriesBehind, m.kgDelta);
 * }
 * ```
 */
export async function frozenModulesBehind(
  db: Pick<Database, "sql">,
  filter: { readonly year?: number; readonly dataEntryTypeId?: number } = {},
  onBusy?: (slice: { readonly dataEntryType: string; readonly year: number }) => void,
): Promise<FrozenModuleBehind[]> {
  const year = filter.year ?? null;
  const rows = await db.sql<ModuleRow[]>`
    select m.id, u.code as unit_code, r.year, m.module_type_id, m.frozen_at, m.frozen_by,
      m.frozen_reason
    from carbon_report_modules m
    join carbon_reports r on r.id = m.carbon_report_id
    join units u on u.id = r.unit_id
    where m.frozen_at is not null and (${year}::int is null or r.year = ${year}::int)
    order by r.year, m.id`;
  const behind: FrozenModuleBehind[] = [];
  const slices = new Map<string, { det: DataEntryType; year: number; modules: ReportModule[] }>();
  for (const module of rows.map(toModule)) {
    for (const det of listDataEntryTypes()) {
      if (det.moduleTypeId !== module.moduleTypeId) continue;
      if (filter.dataEntryTypeId !== undefined && det.id !== filter.dataEntryTypeId) continue;
      const key = `${det.id}:${module.year}`;
      const slice = slices.get(key) ?? { det, year: module.year, modules: [] };
      slice.modules.push(module);
      slices.set(key, slice);
    }
  }
  for (const { det, year, modules } of slices.values()) {
    let result;
    try {
      result = await recalculateForDataEntryType(db.sql, {
        dataEntryType: det.id,
        year,
        carbonReportModuleIds: modules.map((m) => m.moduleId),
        dryRun: true,
        // A current slice state says nothing of frozen modules: they are read whatever it says.
        full: true,
        noWait: onBusy !== undefined,
      });
    } catch (error) {
      if (!(onBusy && error instanceof SliceBusyError)) throw error;
      onBusy({ dataEntryType: det.name, year });
      continue;
    }
    const held = new Map(result.modules.map((m) => [m.moduleId, m]));
    for (const module of modules) {
      const tally = held.get(module.moduleId);
      if (!tally?.heldBack) continue;
      behind.push({
        ...module,
        dataEntryType: det.name,
        entriesBehind: tally.heldBack,
        kgDelta: tally.heldBackKg,
      });
    }
  }
  return behind;
}
