// Rematch runs (spec/history.md §3): recorded by every rematch that commits, listed newest first.
import type { Queryable } from "../db/connection.ts";
import { getDataEntryType } from "../reference/enums.ts";
import type { RematchOptions, RematchResult, RematchRunInfo } from "../rematch/types.ts";
import { currentActor } from "./actor.ts";

/** The result document of a run as stored: the rematch result without its detail lists. */
export type StoredRematchResult = Omit<
  RematchResult,
  "errorDetails" | "warnings" | "diff" | "modules" | "affectedModuleIds"
>;

/** One module of a run, as stored in `rematch_runs.modules`. */
export interface RematchRunModule {
  readonly module_id: number;
  /**
   * kg of the module's entries the run read, before and after (rollups left out): the whole
   * module's in a full run, only the entries a targeted run read (the difference is what it moved).
   */
  readonly kg_before: number;
  readonly kg_after: number;
  readonly entries_changed: number;
  readonly frozen: boolean;
  /** Frozen module: entries a rematch would have changed, and the kg they would move. */
  readonly held_back: number;
  readonly held_back_kg: number;
}

/** A recorded rematch run, as `rematch history --json` and the HTTP API show it. */
export interface RematchRun {
  readonly id: number;
  readonly dataEntryType: string;
  readonly dataEntryTypeId: number;
  readonly year: number;
  /** `none` (the slice was current), `targeted` or `full` (spec/rematch.md rule 17). */
  readonly scope: string;
  readonly trigger: RematchRunInfo["trigger"];
  readonly importId: number | null;
  readonly jobId: number | null;
  readonly actor: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly kgBefore: number;
  readonly kgAfter: number;
  readonly result: StoredRematchResult;
  readonly modules: readonly RematchRunModule[];
}

/** The result without its detail lists (what `rematch_runs.result` keeps). */
export function storedResult(result: RematchResult): StoredRematchResult {
  const {
    errorDetails: _errors,
    warnings: _warnings,
    diff: _diff,
    modules: _modules,
    affectedModuleIds: _affected,
    ...counts
  } = result;
  return counts;
}

/**
 * Records a committed rematch in `rematch_runs`, inside the rematch's transaction, so a rematch
 * that rolls back leaves no run. Timestamps come from the database clock, the one imports use.
 */
export async function recordRematchRun(
  tx: Queryable,
  options: RematchOptions,
  result: RematchResult,
): Promise<number> {
  const run: RematchRunInfo = options.run ?? { trigger: "cli" };
  const document = {
    ...storedResult(result),
    ...(options.carbonReportModuleIds
      ? { carbonReportModuleIds: [...options.carbonReportModuleIds] }
      : {}),
  };
  const modules: RematchRunModule[] = result.modules.map((m) => ({
    module_id: m.moduleId,
    kg_before: m.kgBefore,
    kg_after: m.kgAfter,
    entries_changed: m.entriesChanged,
    frozen: m.frozen,
    held_back: m.heldBack,
    held_back_kg: m.heldBackKg,
  }));
  const [row] = await tx<{ id: number }[]>`
    insert into rematch_runs (data_entry_type_id, year, scope, trigger, import_id, job_id, actor,
      started_at, finished_at, result, kg_before, kg_after, modules)
    values (${result.dataEntryTypeId}, ${result.year}, ${result.scope}, ${run.trigger},
      ${run.importId ?? null}, ${run.jobId ?? null}, ${run.actor ?? currentActor()},
      clock_timestamp() - make_interval(secs => ${result.durationMs / 1000}),
      clock_timestamp(), ${tx.json(document)}, ${result.kgBefore}, ${result.kgAfter},
      ${tx.json(modules as unknown as Parameters<Queryable["json"]>[0])})
    returning id`;
  return row.id;
}

/** Which runs {@linkcode listRematchRuns} returns. */
export interface RematchRunFilter {
  readonly dataEntryTypeId?: number;
  readonly year?: number;
  /** Only the runs that followed this import (its `--rematch`, or a job it chained). */
  readonly importId?: number;
  /** At most this many, newest first. @default 50 */
  readonly limit?: number;
  /** Only runs older than this one (ids below it): the next page after a run listed last. */
  readonly before?: number;
}

/**
 * The recorded rematch runs, newest first (spec/history.md §3: `rematch history`,
 * `GET /v1/history/rematches`).
 *
 * @example
 * ```ts ignore
 * import { listRematchRuns } from "./runs.ts";
 * const runs = await listRematchRuns(db.sql, { dataEntryTypeId: 11, year: 2025 });
 * ```
 */
export async function listRematchRuns(
  sql: Queryable,
  filter: RematchRunFilter = {},
): Promise<RematchRun[]> {
  const det = filter.dataEntryTypeId ?? null;
  const year = filter.year ?? null;
  const importId = filter.importId ?? null;
  const before = filter.before ?? null;
  const rows = await sql<RunRow[]>`
    select id, data_entry_type_id, year, scope, trigger, import_id, job_id, actor, started_at,
      finished_at, result, kg_before, kg_after, modules
    from rematch_runs
    where (${det}::int is null or data_entry_type_id = ${det}::int)
      and (${year}::int is null or year = ${year}::int)
      and (${importId}::bigint is null or import_id = ${importId}::bigint)
      and (${before}::bigint is null or id < ${before}::bigint)
    order by id desc
    limit ${filter.limit ?? 50}`;
  return rows.map(toRun);
}

interface RunRow {
  id: number;
  data_entry_type_id: number;
  year: number;
  scope: string;
  trigger: RematchRunInfo["trigger"];
  import_id: number | null;
  job_id: number | null;
  actor: string;
  started_at: Date;
  finished_at: Date;
  result: StoredRematchResult;
  kg_before: number;
  kg_after: number;
  modules: RematchRunModule[];
}

function toRun(r: RunRow): RematchRun {
  return {
    id: r.id,
    dataEntryType: getDataEntryType(r.data_entry_type_id).name,
    dataEntryTypeId: r.data_entry_type_id,
    year: r.year,
    scope: r.scope,
    trigger: r.trigger,
    importId: r.import_id,
    jobId: r.job_id,
    actor: r.actor,
    startedAt: r.started_at.toISOString(),
    finishedAt: r.finished_at.toISOString(),
    kgBefore: r.kg_before,
    kgAfter: r.kg_after,
    result: r.result,
    modules: r.modules,
  };
}
