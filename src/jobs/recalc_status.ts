// GET /v1/sync/recalculation-status and the module recalc's `only_stale`: per (module, det) of a
// year, whether its emissions follow its factors, from the slice state (spec/rematch.md rule 18).
import type { Queryable } from "../db/connection.ts";
import { lastFactorImports } from "../history/imports.ts";
import { getDataEntryType } from "../reference/enums.ts";
import { type RematchScope, sliceStatus } from "../rematch/state.ts";

/** One slice's recalculation status. */
export interface SliceRecalcStatus {
  readonly moduleTypeId: number;
  readonly moduleType: string;
  readonly dataEntryTypeId: number;
  readonly dataEntryType: string;
  readonly year: number;
  readonly entries: number;
  readonly factors: number;
  /** `current`, `stale: targeted (...)`, `stale: full (why)` or `never rematched`. */
  readonly state: string;
  /** What a rematch would do now. */
  readonly scope: RematchScope;
  readonly needsRecalculation: boolean;
  /**
   * The last recorded factor import of the slice (spec/history.md §1): its id, when, who, from
   * which file (or `rollback of N`) and its job (if one ran it). Null when none is recorded.
   */
  readonly lastFactorImport: {
    id: number;
    at: string;
    actor: string;
    source: string;
    jobId: number | null;
  } | null;
  /** The last rematch that recorded the slice's state, and the job that ran it (null: not a job). */
  readonly lastRecalc: {
    at: string;
    scope: "targeted" | "full";
    errors: number;
    jobId: number | null;
  } | null;
}

/** Every slice of `year` with entries (optionally of one module), computed from the data. */
export async function recalculationStatus(
  sql: Queryable,
  year: number,
  moduleTypeId?: number,
): Promise<SliceRecalcStatus[]> {
  const slices = (await sliceStatus(sql, { year })).filter((s) =>
    moduleTypeId === undefined || getDataEntryType(s.dataEntryTypeId).moduleTypeId === moduleTypeId
  );
  if (slices.length === 0) return [];
  const dets = slices.map((s) => s.dataEntryTypeId);
  const imports = await lastFactorImports(sql, year, dets);
  // The job (if any) of the run that recorded the slice's state: the last whole-slice rematch
  // that read something (a no-op records no state; a module-restricted one none either). A job
  // finished since without committing a rematch (aborted, failed) is not it. The latest run by its
  // own id (`r.id`: a bare `id` would be the output column, the job's id, with runs outside jobs
  // sorting first).
  const recalcJobs = await sql<{ det: number; id: number | null }[]>`
    select distinct on (r.data_entry_type_id) r.data_entry_type_id as det, r.job_id as id
    from rematch_runs r
    where r.year = ${year} and r.data_entry_type_id = any(${dets}::int[]) and r.scope <> 'none'
      and not (r.result ? 'carbonReportModuleIds')
    order by r.data_entry_type_id, r.id desc`;
  const recalc = new Map(recalcJobs.map((j) => [j.det, j.id]));
  return slices.map((slice) => {
    const det = getDataEntryType(slice.dataEntryTypeId);
    const last = imports.get(det.id);
    return {
      moduleTypeId: det.moduleTypeId,
      moduleType: det.moduleName,
      dataEntryTypeId: det.id,
      dataEntryType: det.name,
      year,
      entries: slice.entries,
      factors: slice.factors,
      state: slice.label,
      scope: slice.scope,
      needsRecalculation: slice.state !== "current",
      lastFactorImport: last
        ? {
          id: last.id,
          at: last.createdAt,
          actor: last.actor,
          source: last.source,
          jobId: last.jobId,
        }
        : null,
      lastRecalc: slice.lastRematch
        ? {
          at: slice.lastRematch.at,
          scope: slice.lastRematch.scope,
          errors: slice.lastRematch.summary.errors,
          jobId: recalc.get(det.id) ?? null,
        }
        : null,
    };
  });
}
