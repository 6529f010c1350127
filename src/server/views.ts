// Rows as the HTTP API shows them: snake_case, ISO timestamps, det and module names beside ids.
import type { z } from "@hono/zod-openapi";
import type {
  FactorImport as ImportRecord,
  FactorImportDetail as ImportDetailRecord,
  FactorImportListing,
  FactorVersion as VersionRecord,
} from "../history/imports.ts";
import type { RematchRun as RunRecord } from "../history/runs.ts";
import type { PipelineDetail, PipelineSummary as SummaryRow, WorkerRow } from "../jobs/status.ts";
import type { JobRow } from "../jobs/types.ts";
import { findDataEntryType, findModuleType } from "../reference/enums.ts";
import type {
  FactorImport,
  FactorImportDetail,
  FactorImportListed,
  FactorVersion,
  Job,
  Pipeline,
  PipelineSummary,
  RematchRun,
  Worker,
} from "./schemas.ts";

function iso(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null;
}

/** A job row as the API shows it. */
export function jobView(job: JobRow): z.infer<typeof Job> {
  const meta = job.meta ?? { input: {} };
  return {
    id: job.id,
    pipeline_id: job.pipeline_id,
    job_type: job.job_type,
    module_type_id: job.module_type_id,
    module_type: job.module_type_id === null
      ? null
      : findModuleType(job.module_type_id)?.name ?? null,
    data_entry_type_id: job.data_entry_type_id,
    data_entry_type: job.data_entry_type_id === null
      ? null
      : findDataEntryType(job.data_entry_type_id)?.name ?? null,
    year: job.year,
    state: job.state,
    result: job.result,
    status_message: job.status_message,
    is_current: job.is_current,
    locked_by: job.locked_by,
    attempts: job.attempts,
    max_attempts: job.max_attempts,
    created_at: iso(job.created_at),
    started_at: iso(job.started_at),
    locked_at: iso(job.locked_at),
    finished_at: iso(job.finished_at),
    run_after: iso(job.run_after),
    actor: meta.actor ?? null,
    input: meta.input ?? {},
    progress: meta.progress ?? null,
    result_document: meta.result ?? null,
    chained: [...(meta.chained ?? [])],
  };
}

/** A pipeline with its jobs as the API shows it. */
export function pipelineView(detail: PipelineDetail): z.infer<typeof Pipeline> {
  const { pipeline, jobs, waitsFor } = detail;
  const all = [...jobs, ...waitsFor];
  return {
    id: pipeline.id,
    kind: pipeline.kind,
    status: pipeline.status,
    actor: pipeline.actor,
    meta: pipeline.meta,
    created_at: iso(pipeline.created_at),
    updated_at: iso(pipeline.updated_at),
    aborted_at: iso(pipeline.aborted_at),
    jobs: jobs.map(jobView),
    waits_for: waitsFor.map(jobView),
    progress: {
      jobs: all.length,
      finished: all.filter((j) => j.state === "FINISHED").length,
      running: all.filter((j) => j.state === "RUNNING").map((j) => ({
        job_id: j.id,
        done: j.meta?.progress?.done ?? 0,
        total: j.meta?.progress?.total ?? 0,
      })),
    },
  };
}

/** A pipeline of a listing as the API shows it. */
export function pipelineSummaryView(row: SummaryRow): z.infer<typeof PipelineSummary> {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    actor: row.actor,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    aborted_at: iso(row.aborted_at),
    jobs: row.jobs,
    jobs_finished: row.jobs_finished,
    jobs_with_errors: row.jobs_with_errors,
  };
}

/** A worker as the API shows it. */
export function workerView(row: WorkerRow): z.infer<typeof Worker> {
  return {
    id: row.id,
    hostname: row.hostname,
    pid: row.pid,
    version: row.version,
    concurrency: row.concurrency,
    started_at: iso(row.started_at),
    last_seen_at: iso(row.last_seen_at),
    running_jobs: row.running_jobs,
  };
}

/** A recorded factor import as the API shows it. */
export function factorImportView(i: ImportRecord): z.infer<typeof FactorImport> {
  return {
    id: i.id,
    year: i.year,
    data_entry_types: [...i.dataEntryTypes],
    data_entry_type_ids: [...i.dataEntryTypeIds],
    module_type: i.moduleType,
    module_type_id: i.moduleTypeId,
    mode: i.mode,
    source: i.source,
    file_sha256: i.fileSha256,
    actor: i.actor,
    job_id: i.jobId,
    rollback_of: i.rollbackOf,
    rolled_back_by: [...i.rolledBackBy],
    rows_read: i.rowsRead,
    inserted: i.inserted,
    updated: i.updated,
    deleted: i.deleted,
    unchanged: i.unchanged,
    created_at: i.createdAt,
  };
}

/** A factor import of the history, with the runs that followed it. */
export function factorImportListedView(i: FactorImportListing): z.infer<typeof FactorImportListed> {
  return {
    ...factorImportView(i),
    runs: i.runs.map((r) => ({
      id: r.id,
      data_entry_type: r.dataEntryType,
      trigger: r.trigger,
      import_id: r.importId,
      finished_at: r.finishedAt,
      kg_before: r.kgBefore,
      kg_after: r.kgAfter,
    })),
    runs_count: i.runsCount,
  };
}

/** One factor an import changed. */
export function factorVersionView(v: VersionRecord): z.infer<typeof FactorVersion> {
  return {
    factor_id: v.factorId,
    data_entry_type: v.dataEntryType,
    data_entry_type_id: v.dataEntryTypeId,
    year: v.year,
    emission_type_id: v.emissionTypeId,
    classification: v.classification,
    change: v.change,
    values_before: v.valuesBefore,
    values_after: v.valuesAfter,
    changed_keys: [...v.changedKeys],
  };
}

/** An import with a page of its changes (`offset`: where the page starts). */
export function factorImportDetailView(
  detail: ImportDetailRecord,
  offset: number,
): z.infer<typeof FactorImportDetail> {
  const end = offset + detail.changes.length;
  return {
    import: factorImportView(detail.import),
    changes: detail.changes.map(factorVersionView),
    changes_count: detail.changesCount,
    next_offset: end < detail.changesCount ? end : null,
  };
}

/** A recorded rematch run as the API shows it. */
export function rematchRunView(r: RunRecord): z.infer<typeof RematchRun> {
  return {
    id: r.id,
    data_entry_type: r.dataEntryType,
    data_entry_type_id: r.dataEntryTypeId,
    year: r.year,
    scope: r.scope,
    trigger: r.trigger,
    import_id: r.importId,
    job_id: r.jobId,
    actor: r.actor,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    kg_before: r.kgBefore,
    kg_after: r.kgAfter,
    result: r.result,
    modules: r.modules.map((m) => ({ ...m })),
  };
}
