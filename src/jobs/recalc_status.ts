// GET /v1/sync/recalculation-status and the module recalc's `only_stale`: per (module, det) of a
// year, whether its emissions follow its factors.
import type { Queryable } from "../db/connection.ts";
import { getDataEntryType } from "../reference/enums.ts";

/** One slice's recalculation status. */
export interface SliceRecalcStatus {
  readonly moduleTypeId: number;
  readonly moduleType: string;
  readonly dataEntryTypeId: number;
  readonly dataEntryType: string;
  readonly year: number;
  readonly entries: number;
  readonly factors: number;
  readonly state: string;
  readonly needsRecalculation: boolean;
  readonly lastFactorImport: { at: Date; jobId: number | null } | null;
  readonly lastRecalc: { at: Date; jobId: number | null; result: string | null } | null;
}

interface SliceFacts {
  det: number;
  entries: number;
  factors: number;
  factors_changed_at: Date | null;
  factor_job_id: number | null;
  orphaned_rows: number;
  oldest_computed: Date | null;
  recalc_at: Date | null;
  recalc_job_id: number | null;
  recalc_result: string | null;
}

/**
 * The slices of `year` that have entries or factors, with their state. Until the slice state of
 * spec/rematch.md rule 16 exists, the state is read from the data: emission rows that lost their
 * factor (`stale: factors deleted`), emissions computed before the factors last changed with no
 * recalc of the slice since (`stale: factors changed`), else `current`.
 */
export async function recalculationStatus(
  sql: Queryable,
  year: number,
  moduleTypeId?: number,
): Promise<SliceRecalcStatus[]> {
  const rows = await sql<SliceFacts[]>`
    with dets as (
      select id from data_entry_types
      where ${moduleTypeId ?? null}::int is null or module_type_id = ${moduleTypeId ?? null}
    ), entries as (
      select e.data_entry_type_id as det, count(*)::int as n
      from data_entries e
        join carbon_report_modules m on m.id = e.carbon_report_module_id
        join carbon_reports r on r.id = m.carbon_report_id
      where r.year = ${year} and e.data_entry_type_id in (select id from dets)
      group by 1
    ), factors as (
      select f.data_entry_type_id as det, count(*)::int as n, max(f.updated_at) as changed_at,
        (array_agg(f.last_seen_job_id order by f.updated_at desc))[1] as job_id
      from factors f
      where f.year = ${year} and f.data_entry_type_id in (select id from dets)
      group by 1
    ), emissions as (
      select e.data_entry_type_id as det, min(x.computed_at) as oldest,
        count(*) filter (where x.primary_factor_id is null
          and coalesce((x.meta->>'override')::boolean, false) = false)::int as orphaned
      from data_entry_emissions x
        join data_entries e on e.id = x.data_entry_id
        join carbon_report_modules m on m.id = e.carbon_report_module_id
        join carbon_reports r on r.id = m.carbon_report_id
      where r.year = ${year} and e.data_entry_type_id in (select id from dets)
      group by 1
    ), recalcs as (
      select distinct on (j.data_entry_type_id) j.data_entry_type_id as det,
        j.started_at as at, j.id as job_id, j.result
      from data_ingestion_jobs j
      where j.job_type = 'emission_recalc' and j.state = 'FINISHED' and j.year = ${year}
        and j.result in ('SUCCESS', 'WARNING') and j.data_entry_type_id in (select id from dets)
      order by j.data_entry_type_id, j.started_at desc
    )
    select d.id as det, coalesce(e.n, 0) as entries, coalesce(f.n, 0) as factors,
      f.changed_at as factors_changed_at, f.job_id as factor_job_id,
      coalesce(x.orphaned, 0) as orphaned_rows, x.oldest as oldest_computed, rc.at as recalc_at, rc.job_id as recalc_job_id,
      rc.result as recalc_result
    from dets d
      left join entries e on e.det = d.id
      left join factors f on f.det = d.id
      left join emissions x on x.det = d.id
      left join recalcs rc on rc.det = d.id
    where e.n is not null or f.n is not null
    order by d.id`;
  return rows.map((row) => {
    const det = getDataEntryType(row.det);
    const changed = row.factors_changed_at;
    // Emissions computed before the factors last changed, and no recalc since.
    const behind = changed !== null && row.oldest_computed !== null &&
      row.oldest_computed < changed && (row.recalc_at === null || row.recalc_at < changed);
    const state = row.orphaned_rows > 0
      ? `stale: factors deleted (${row.orphaned_rows} emission rows without their factor)`
      : behind
      ? "stale: factors changed"
      : "current";
    return {
      moduleTypeId: det.moduleTypeId,
      moduleType: det.moduleName,
      dataEntryTypeId: det.id,
      dataEntryType: det.name,
      year,
      entries: row.entries,
      factors: row.factors,
      state,
      needsRecalculation: state !== "current",
      lastFactorImport: row.factors_changed_at
        ? { at: row.factors_changed_at, jobId: row.factor_job_id }
        : null,
      lastRecalc: row.recalc_at
        ? { at: row.recalc_at, jobId: row.recalc_job_id, result: row.recalc_result }
        : null,
    };
  });
}
