// Reading jobs, pipelines and workers for the HTTP API (and anyone watching the queue).
import type { Queryable } from "../db/connection.ts";
import type { JobRow, JobType, PipelineStatus } from "./types.ts";

/** A row of `pipelines`. */
export interface PipelineRow {
  readonly id: string;
  readonly kind: string;
  readonly status: PipelineStatus;
  readonly actor: string | null;
  readonly meta: Record<string, unknown> | null;
  readonly created_at: Date;
  readonly updated_at: Date;
  readonly aborted_at: Date | null;
}

/** A pipeline with its jobs and the jobs of other pipelines it waits for. */
export interface PipelineDetail {
  readonly pipeline: PipelineRow;
  readonly jobs: readonly JobRow[];
  readonly waitsFor: readonly JobRow[];
}

/** One job by id, or undefined. */
export async function getJob(sql: Queryable, id: number): Promise<JobRow | undefined> {
  const [job] = await sql<JobRow[]>`select * from data_ingestion_jobs where id = ${id}`;
  return job;
}

/** One pipeline with its jobs, or undefined. */
export async function getPipeline(
  sql: Queryable,
  id: string,
): Promise<PipelineDetail | undefined> {
  const [pipeline] = await sql<PipelineRow[]>`select * from pipelines where id = ${id}`;
  if (!pipeline) return undefined;
  const jobs = await sql<JobRow[]>`
    select * from data_ingestion_jobs where pipeline_id = ${id} order by id`;
  const waitsFor = await sql<JobRow[]>`
    select j.* from pipeline_links l join data_ingestion_jobs j on j.id = l.job_id
    where l.pipeline_id = ${id} order by j.id`;
  return { pipeline, jobs, waitsFor };
}

/** Filters of {@linkcode listPipelines}. */
export interface PipelineFilters {
  readonly status?: PipelineStatus;
  /** Pipelines with a job of this year. */
  readonly year?: number;
  /** Pipelines with a job of this type. */
  readonly jobType?: JobType;
  /** true: some job ended ERROR or WARNING; false: none did. */
  readonly hasErrors?: boolean;
  /** @default 50 */
  readonly limit?: number;
  /** The `next_cursor` of the previous page. */
  readonly cursor?: string;
}

/** A pipeline in a listing: its row and counts of its jobs. */
export type PipelineSummary = PipelineRow & {
  readonly jobs: number;
  readonly jobs_finished: number;
  readonly jobs_with_errors: number;
};

/** A malformed cursor. */
export class CursorError extends Error {
  override name = "CursorError";
}

// A cursor is the last row's (created_at in microseconds, id): the keyset of the ordering.
function encodeCursor(createdUs: number, id: string): string {
  return btoa(`${createdUs}_${id}`).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function decodeCursor(cursor: string): { createdUs: number; id: string } {
  let text: string;
  try {
    text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    throw new CursorError("not a cursor returned by this API");
  }
  const match = /^(\d{1,17})_([0-9a-f-]{36})$/.exec(text);
  if (!match) throw new CursorError("not a cursor returned by this API");
  return { createdUs: Number(match[1]), id: match[2] };
}

/** Pipelines, newest first, filtered; `nextCursor` continues the listing when there is more. */
export async function listPipelines(
  sql: Queryable,
  filters: PipelineFilters = {},
): Promise<{ pipelines: PipelineSummary[]; nextCursor: string | null }> {
  const limit = filters.limit ?? 50;
  const after = filters.cursor === undefined ? undefined : decodeCursor(filters.cursor);
  const rows = await sql<(PipelineSummary & { created_us: number })[]>`
    select p.*, (extract(epoch from p.created_at) * 1000000)::bigint as created_us,
      s.jobs, s.jobs_finished, s.jobs_with_errors
    from pipelines p
      cross join lateral (
        select count(*)::int as jobs,
          count(*) filter (where j.state = 'FINISHED')::int as jobs_finished,
          count(*) filter (where j.result in ('ERROR', 'WARNING'))::int as jobs_with_errors,
          bool_or(j.year = ${filters.year ?? null}) as has_year,
          bool_or(j.job_type = ${filters.jobType ?? null}) as has_type
        from data_ingestion_jobs j where j.pipeline_id = p.id
      ) s
    where (${filters.status ?? null}::text is null or p.status = ${filters.status ?? null})
      and (${filters.year ?? null}::int is null or s.has_year)
      and (${filters.jobType ?? null}::text is null or s.has_type)
      and (${filters.hasErrors ?? null}::boolean is null
        or (s.jobs_with_errors > 0) = ${filters.hasErrors ?? null})
      and (${after?.createdUs ?? null}::bigint is null
        or ((extract(epoch from p.created_at) * 1000000)::bigint, p.id)
          < (${after?.createdUs ?? null}::bigint, ${after?.id ?? null}::uuid))
    order by created_us desc, p.id desc
    limit ${limit + 1}`;
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    pipelines: page.map(({ created_us: _, ...row }) => row),
    nextCursor: rows.length > limit && last ? encodeCursor(last.created_us, last.id) : null,
  };
}

/** A live worker and the jobs it holds. */
export interface WorkerRow {
  readonly id: string;
  readonly hostname: string;
  readonly pid: number;
  readonly version: string;
  readonly concurrency: number;
  readonly started_at: Date;
  readonly last_seen_at: Date;
  readonly running_jobs: number[];
}

/** Workers seen within `staleSeconds`, with the jobs they are running. */
export async function listWorkers(sql: Queryable, staleSeconds: number): Promise<WorkerRow[]> {
  return await sql<WorkerRow[]>`
    select w.*, coalesce((
      select array_agg(j.id order by j.id) from data_ingestion_jobs j
      where j.locked_by = w.id and j.state = 'RUNNING'), '{}') as running_jobs
    from workers w
    where w.last_seen_at >= clock_timestamp() - make_interval(secs => ${staleSeconds})
    order by w.started_at, w.id`;
}
