// The job queue in SQL (spec/interfaces.md §3): creating pipelines and jobs, the claim, the
// finish compare-and-set, heartbeats, the stale sweep, abort, recover and pipeline status.
// Multi-row work always locks pipelines first (in id order), then jobs: no two transactions
// can wait on each other crosswise.
import { isConnectionLost, type Queryable, type Sql } from "../db/connection.ts";
import { getDataEntryType } from "../reference/enums.ts";
import type {
  ChainedRecalc,
  ClaimedJob,
  JobMeta,
  JobProgress,
  JobResult,
  JobRow,
  NewJob,
  RecalcInput,
  SliceKey,
} from "./types.ts";
import { transaction } from "../db/transaction.ts";

// Claims of jobs with one (job type, module, det, year) key are serialised by this advisory lock
// (two-int form, so it never meets the slice locks' keys).
const JOB_KEY_LOCK_NAMESPACE = 310_999;

/** The notification channel a worker LISTENs on (sent by the trigger of migration 0006). */
export const JOB_CHANNEL = "rematch_jobs";

/**
 * Sent (with the pipeline's id) when a pipeline is aborted: workers heartbeat their running jobs
 * at once, so that an aborted one stops at its next chunk rather than at its next heartbeat.
 */
export const ABORT_CHANNEL = "rematch_aborts";

type Json = Parameters<Queryable["json"]>[0];
const json = (tx: Queryable, value: unknown) => tx.json(value as Json);

/** What a job became part of when it was added to a pipeline. */
export interface AddedJob {
  readonly jobId: number;
  /** The pipeline that owns the job (another one when the job is shared). */
  readonly pipelineId: string;
  readonly state: JobRow["state"];
  /** True when an identical waiting recalc already existed and is now shared. */
  readonly shared: boolean;
}

/** A pipeline just created and its jobs. */
export interface CreatedPipeline {
  readonly pipelineId: string;
  readonly jobs: readonly AddedJob[];
}

/**
 * Creates a pipeline and its jobs inside the caller's transaction. A recalc of a slice that
 * already has a waiting recalc is not created again: the pipeline waits for that one.
 */
export async function createPipeline(
  tx: Queryable,
  pipeline: { kind: string; actor: string | null; meta?: Record<string, unknown> },
  jobs: readonly NewJob[],
): Promise<CreatedPipeline> {
  // Its status follows its jobs: without any, it would stay RUNNING for good.
  if (jobs.length === 0) throw new RangeError("a pipeline needs at least one job");
  const id = crypto.randomUUID();
  await tx`
    insert into pipelines (id, kind, status, meta, actor)
    values (${id}, ${pipeline.kind}, 'RUNNING', ${
    json(tx, pipeline.meta ?? {})
  }, ${pipeline.actor})`;
  const added: AddedJob[] = [];
  for (const job of jobs) added.push(await addJob(tx, id, job, pipeline.actor));
  await refreshPipelines(tx, [id]);
  return { pipelineId: id, jobs: added };
}

/** Adds one job to a pipeline (a waiting recalc of the same slice is shared instead). */
export async function addJob(
  tx: Queryable,
  pipelineId: string,
  job: NewJob,
  actor: string | null,
): Promise<AddedJob> {
  const meta: JobMeta = { input: job.input as Record<string, unknown>, actor };
  if (job.jobType !== "emission_recalc") {
    const [row] = await tx<{ id: number }[]>`
      insert into data_ingestion_jobs
        (pipeline_id, job_type, module_type_id, data_entry_type_id, year, meta)
      values (${pipelineId}, ${job.jobType}, ${job.moduleTypeId}, ${job.dataEntryTypeId},
        ${job.year}, ${json(tx, meta)})
      returning id`;
    return { jobId: row.id, pipelineId, state: "NOT_STARTED", shared: false };
  }
  const input = job.input as RecalcInput;
  // The waiting recalc may start between the insert that met it and the read that looks for it:
  // then a new one can be inserted, so try again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const [row] = await tx<{ id: number }[]>`
      insert into data_ingestion_jobs
        (pipeline_id, job_type, module_type_id, data_entry_type_id, year, meta)
      values (${pipelineId}, 'emission_recalc', ${job.moduleTypeId}, ${job.dataEntryTypeId},
        ${job.year}, ${json(tx, meta)})
      on conflict (data_entry_type_id, year)
        where job_type = 'emission_recalc' and state = 'NOT_STARTED'
      do nothing
      returning id`;
    if (row) return { jobId: row.id, pipelineId, state: "NOT_STARTED", shared: false };
    // FOR SHARE holds off its claim until this transaction commits: the worker that finishes
    // it then sees the link and refreshes this pipeline too.
    const [waiting] = await tx<{ id: number; pipeline_id: string }[]>`
      select id, pipeline_id from data_ingestion_jobs
      where job_type = 'emission_recalc' and state = 'NOT_STARTED'
        and data_entry_type_id = ${job.dataEntryTypeId} and year = ${job.year}
      for share`;
    if (!waiting) continue;
    if (input.full) {
      // The shared recalc does what both asked for: the whole slice.
      await tx`
        update data_ingestion_jobs set meta = jsonb_set(meta, '{input,full}', 'true')
        where id = ${waiting.id} and state = 'NOT_STARTED'`;
    }
    if (waiting.pipeline_id !== pipelineId) {
      await tx`
        insert into pipeline_links (pipeline_id, job_id) values (${pipelineId}, ${waiting.id})
        on conflict do nothing`;
    }
    return {
      jobId: waiting.id,
      pipelineId: waiting.pipeline_id,
      state: "NOT_STARTED",
      shared: true,
    };
  }
  throw new Error(
    `could not queue a recalc of det ${job.dataEntryTypeId} ${job.year}: the waiting one kept starting`,
  );
}

/**
 * Queues one emission_recalc per slice in the pipeline (the chain of an ingest); a slice with a
 * waiting recalc shares it.
 */
export async function enqueueRecalcs(
  tx: Queryable,
  pipelineId: string,
  slices: readonly SliceKey[],
  actor: string | null,
): Promise<ChainedRecalc[]> {
  const chained: ChainedRecalc[] = [];
  for (const slice of slices) {
    const det = getDataEntryType(slice.dataEntryTypeId);
    const added = await addJob(tx, pipelineId, {
      jobType: "emission_recalc",
      moduleTypeId: det.moduleTypeId,
      dataEntryTypeId: det.id,
      year: slice.year,
      input: { data_entry_type_id: det.id, year: slice.year, full: false },
    }, actor);
    chained.push({
      job_id: added.jobId,
      pipeline_id: added.pipelineId,
      data_entry_type: det.name,
      data_entry_type_id: det.id,
      year: slice.year,
      shared: added.shared,
    });
  }
  return chained;
}

/**
 * Recomputes the status of these pipelines from their jobs and the jobs they wait for: RUNNING
 * while any runs or waits, then FAILED when the first job ended ERROR, PARTIAL when some job
 * ended ERROR or WARNING, else SUCCESS. Locks the pipelines first, so two jobs finishing
 * together both count.
 */
export async function refreshPipelines(tx: Queryable, ids: readonly string[]): Promise<void> {
  const unique = [...new Set(ids)].sort();
  if (unique.length === 0) return;
  await tx`select id from pipelines where id = any(${unique}::uuid[]) order by id for update`;
  await tx`
    with member as (
      select j.pipeline_id, j.id, j.state, j.result, 0 as linked
      from data_ingestion_jobs j where j.pipeline_id = any(${unique}::uuid[])
      union all
      select l.pipeline_id, j.id, j.state, j.result, 1 as linked
      from pipeline_links l join data_ingestion_jobs j on j.id = l.job_id
      where l.pipeline_id = any(${unique}::uuid[])
    ), computed as (
      select pipeline_id,
        case
          when bool_or(state <> 'FINISHED') then 'RUNNING'
          when (array_agg(result order by linked, id))[1] = 'ERROR' then 'FAILED'
          when bool_or(result in ('ERROR', 'WARNING')) then 'PARTIAL'
          else 'SUCCESS'
        end as status
      from member group by pipeline_id
    )
    -- An aborted pipeline did not do all it was for (what it had not done was aborted, or
    -- handed over to a pipeline sharing it): at best PARTIAL.
    update pipelines p set status = case
        when p.aborted_at is not null and c.status = 'SUCCESS' then 'PARTIAL' else c.status end,
      updated_at = clock_timestamp()
    from computed c where p.id = c.pipeline_id`;
  // An aborted pipeline left without a job of its own or one it waits for (it only shared others'
  // jobs, or handed its own over) has ended.
  await tx`
    update pipelines p set status = 'FAILED', updated_at = clock_timestamp()
    where p.id = any(${unique}::uuid[]) and p.aborted_at is not null and p.status = 'RUNNING'
      and not exists (select 1 from data_ingestion_jobs j where j.pipeline_id = p.id)
      and not exists (select 1 from pipeline_links l where l.pipeline_id = p.id)`;
}

/** The pipelines a job counts in (its own, then those waiting for it), locked in id order. */
export async function lockPipelinesOf(
  tx: Queryable,
  job: { id: number; pipeline_id: string },
): Promise<{ ids: string[]; aborted: boolean }> {
  // Locked first (an abort holds them while it hands the job over), then the job's owner read as
  // it is now, not as claimed nor as it was when the lock was asked for: an abort hands a job
  // other pipelines wait for over to one of them, which was among those locked here.
  const rows = await tx<{ id: string }[]>`
    select p.id from pipelines p
    where p.id = (select pipeline_id from data_ingestion_jobs where id = ${job.id})
       or p.id = ${job.pipeline_id}
       or p.id in (select pipeline_id from pipeline_links where job_id = ${job.id})
    order by p.id for update`;
  const [owner] = await tx<{ id: string; aborted: boolean }[]>`
    select p.id, p.aborted_at is not null as aborted
    from data_ingestion_jobs j join pipelines p on p.id = j.pipeline_id
    where j.id = ${job.id}`;
  const ids = rows.map((r) => r.id);
  return {
    ids: owner && !ids.includes(owner.id) ? [...ids, owner.id].sort() : ids,
    aborted: owner?.aborted ?? false,
  };
}

// An older job of an overlapping key still waiting to be claimed (such jobs run in the order they
// were queued: two uploads of a slice apply in upload order).
const WAITING_SQL = `r.state = 'NOT_STARTED' and r.locked_by is null
  and r.attempts < r.max_attempts and (r.run_after is null or r.run_after <= now())`;

/**
 * Claims the oldest claimable job, or returns null (a claim that matches nothing is a silent
 * no-op). Candidates are read `FOR UPDATE SKIP LOCKED`; a job waits for a later claim while a job
 * of an overlapping key runs, or an older one waits: same type and module, and the same det and
 * year or none on either side (a module-wide upload writes every det of its module, an entries
 * upload without a year any year of its det, so each is ordered against the others). Claiming
 * demotes the previous current job of its exact (type, module, det, year) and makes this one
 * current, in one transaction. A claim that found every candidate's key being claimed by another
 * worker tries again a moment later rather than waiting for the next poll.
 */
export async function claimJob(sql: Sql, workerId: string): Promise<ClaimedJob | null> {
  for (let attempt = 1;; attempt++) {
    const outcome = await claimOnce(sql, workerId);
    if (outcome !== "contended") return outcome;
    if (attempt === 5) return null;
    await new Promise((resolve) => setTimeout(resolve, 10 * attempt));
  }
}

async function claimOnce(sql: Sql, workerId: string): Promise<ClaimedJob | null | "contended"> {
  return await transaction(sql, async (tx) => {
    const waiting = tx.unsafe(WAITING_SQL);
    const candidates = await tx<JobRow[]>`
      select c.* from data_ingestion_jobs c
      where c.state = 'NOT_STARTED' and c.locked_by is null and c.attempts < c.max_attempts
        and (c.run_after is null or c.run_after <= now())
        and not exists (
          select 1 from data_ingestion_jobs r
          where r.job_type = c.job_type
            and coalesce(r.module_type_id, -1) = coalesce(c.module_type_id, -1)
            and (r.data_entry_type_id is null or c.data_entry_type_id is null
              or r.data_entry_type_id = c.data_entry_type_id)
            and (r.year is null or c.year is null or r.year = c.year)
            and ((r.is_current and r.state = 'RUNNING') or (r.id < c.id and ${waiting})))
      order by c.id limit 5
      for update of c skip locked`;
    let contended = false;
    for (const candidate of candidates) {
      const claimed = await claimCandidate(tx, candidate, workerId);
      if (claimed === "contended") contended = true;
      else if (claimed) return claimed;
    }
    return contended ? "contended" : null;
  }) as ClaimedJob | null | "contended";
}

async function claimCandidate(
  tx: Queryable,
  job: JobRow,
  workerId: string,
): Promise<ClaimedJob | null | "contended"> {
  // Claims of overlapping keys take one lock: (type, module), whatever the det and the year.
  const key = jobKey({ ...job, data_entry_type_id: null, year: null });
  const [lock] = await tx<{ ok: boolean }[]>`
    select pg_try_advisory_xact_lock(${JOB_KEY_LOCK_NAMESPACE}, hashtext(${key})) as ok`;
  // Another worker is claiming a job of an overlapping key: ask again in a moment.
  if (!lock.ok) return "contended";
  // Read again under the key lock: a claim committed since the candidate read is seen now.
  const waiting = tx.unsafe(WAITING_SQL);
  const det = job.data_entry_type_id ?? -1;
  const [blocked] = await tx<{ id: number }[]>`
    select r.id from data_ingestion_jobs r
    where r.job_type = ${job.job_type}
      and coalesce(r.module_type_id, -1) = ${job.module_type_id ?? -1}
      and (r.data_entry_type_id is null or ${det}::int = -1 or r.data_entry_type_id = ${det})
      and (r.year is null or ${job.year ?? -1}::int = -1 or r.year = ${job.year ?? -1})
      and ((r.is_current and r.state = 'RUNNING') or (r.id < ${job.id} and ${waiting}))
    limit 1`;
  if (blocked) return null;
  await tx`
    update data_ingestion_jobs set is_current = false
    where is_current and id <> ${job.id} and job_type = ${job.job_type}
      and coalesce(module_type_id, -1) = ${job.module_type_id ?? -1}
      and coalesce(data_entry_type_id, -1) = ${job.data_entry_type_id ?? -1}
      and coalesce(year, -1) = ${job.year ?? -1}`;
  // The compare-and-set of the claim: it still waits, unlocked, with attempts left.
  const [claimed] = await tx<ClaimedJob[]>`
    update data_ingestion_jobs
    set state = 'RUNNING', locked_by = ${workerId}, locked_at = clock_timestamp(),
      started_at = clock_timestamp(), attempts = attempts + 1, is_current = true,
      meta = meta - 'progress'
    where id = ${job.id} and state = 'NOT_STARTED' and locked_by is null
      and attempts < max_attempts and (run_after is null or run_after <= now())
    returning *`;
  return claimed ?? null;
}

function jobKey(job: Pick<JobRow, "job_type" | "module_type_id" | "data_entry_type_id" | "year">) {
  return [job.job_type, job.module_type_id, job.data_entry_type_id, job.year].join(":");
}

/** How a job ends. */
export interface JobEnding {
  readonly result: JobResult;
  readonly message: string;
  /** Merged into the job's meta (result document, progress, chained recalcs). */
  readonly meta: Partial<JobMeta>;
}

/**
 * The finish compare-and-set: ends the job only while `claim` still holds it (same worker, same
 * attempt, RUNNING). Returns false when the claim was lost: the caller must write nothing.
 */
export async function finishJob(
  tx: Queryable,
  claim: ClaimedJob,
  ending: JobEnding,
): Promise<boolean> {
  const rows = await tx`
    update data_ingestion_jobs
    set state = 'FINISHED', result = ${ending.result}, status_message = ${ending.message},
      meta = meta || ${json(tx, ending.meta)}, finished_at = clock_timestamp(),
      locked_at = clock_timestamp()
    where id = ${claim.id} and locked_by = ${claim.locked_by} and attempts = ${claim.attempts}
      and state = 'RUNNING'
    returning id`;
  return rows.length === 1;
}

/** Ends a job as ERROR in a transaction of its own (its data work was rolled back). */
export async function failJob(
  sql: Sql,
  claim: ClaimedJob,
  message: string,
  meta: Partial<JobMeta> = {},
): Promise<boolean> {
  return await transaction(sql, async (tx) => {
    const pipelines = await lockPipelinesOf(tx, claim);
    const done = await finishJob(tx, claim, { result: "ERROR", message, meta });
    if (done) await refreshPipelines(tx, pipelines.ids);
    return done;
  }) as boolean;
}

/**
 * Puts a job back in the queue, or hands it over when a recalc of its slice is already waiting
 * (the partial unique index allows one): it then ends SUCCESS saying so, and its pipelines wait
 * for the waiting one. A job of an aborted pipeline is not queued again: it ends ERROR "aborted",
 * as the abort ends the pipeline's waiting jobs (waiting, a later upload of its slice would share
 * it, and it would end "aborted" for that upload too, its recalc never run).
 */
async function requeue(
  tx: Queryable,
  job: JobRow,
  message: string,
  options: { restoreAttempt: boolean },
): Promise<"requeued" | "handed-over" | "aborted"> {
  // The job's owner as it is now (an abort hands a job other pipelines share over to one of them).
  const [owner] = await tx<{ aborted: boolean }[]>`
    select p.aborted_at is not null as aborted
    from data_ingestion_jobs j join pipelines p on p.id = j.pipeline_id
    where j.id = ${job.id}`;
  if (owner?.aborted) {
    await tx`
      update data_ingestion_jobs
      set state = 'FINISHED', result = 'ERROR', status_message = 'aborted',
        finished_at = clock_timestamp()
      where id = ${job.id}`;
    return "aborted";
  }
  if (job.job_type === "emission_recalc") {
    const [waiting] = await tx<{ id: number }[]>`
      select id from data_ingestion_jobs
      where job_type = 'emission_recalc' and state = 'NOT_STARTED'
        and data_entry_type_id = ${job.data_entry_type_id} and year = ${job.year}
      for share`;
    if (waiting) {
      await tx`
        update data_ingestion_jobs
        set state = 'FINISHED', result = 'SUCCESS', finished_at = clock_timestamp(),
          status_message = ${`${message}; handed over to job ${waiting.id}, which was waiting for the same slice`},
          meta = meta || ${json(tx, { result: { handedOverTo: waiting.id } })}
        where id = ${job.id}`;
      await tx`
        insert into pipeline_links (pipeline_id, job_id)
        select pipeline_id, ${waiting.id}::bigint from (
          select ${job.pipeline_id}::uuid as pipeline_id
          union select pipeline_id from pipeline_links where job_id = ${job.id}
        ) p
        where pipeline_id <> (select pipeline_id from data_ingestion_jobs where id = ${waiting.id})
        on conflict do nothing`;
      return "handed-over";
    }
  }
  await tx`
    update data_ingestion_jobs
    set state = 'NOT_STARTED', locked_by = null, locked_at = null, started_at = null,
      attempts = attempts - ${options.restoreAttempt ? 1 : 0}, status_message = ${message},
      -- The rolled-back attempt's progress is no progress of the job waiting again.
      meta = meta - 'progress'
    where id = ${job.id}`;
  return "requeued";
}

/** What a requeue did, as a returned job tells it: a job of an aborted pipeline ended "aborted". */
function returnedAs(
  outcome: Awaited<ReturnType<typeof requeue>>,
  message: string,
): { outcome: ReturnedJob["outcome"]; message: string } {
  return outcome === "aborted" ? { outcome: "failed", message: "aborted" } : { outcome, message };
}

/** The job as `claim` still holds it (same worker, same attempt, RUNNING), locked; else none. */
async function heldJob(tx: Queryable, claim: ClaimedJob): Promise<JobRow | undefined> {
  const [job] = await tx<JobRow[]>`
    select * from data_ingestion_jobs
    where id = ${claim.id} and locked_by = ${claim.locked_by} and attempts = ${claim.attempts}
      and state = 'RUNNING'
    for update`;
  return job;
}

/**
 * A job that stopped for `why` (its worker gone silent, its connection lost): back to the queue
 * with its attempt counted while it has attempts left, else ended ERROR saying so.
 */
async function requeueOrEnd(
  tx: Queryable,
  job: JobRow,
  why: string,
): Promise<{ outcome: ReturnedJob["outcome"]; message: string }> {
  if (job.attempts < job.max_attempts) {
    const message =
      `${why}; returned to the queue (attempt ${job.attempts} of ${job.max_attempts} used)`;
    return returnedAs(await requeue(tx, job, message, { restoreAttempt: false }), message);
  }
  const message = `${why}; no attempts left (${job.attempts} of ${job.max_attempts}): not retried`;
  await tx`
    update data_ingestion_jobs
    set state = 'FINISHED', result = 'ERROR', status_message = ${message},
      finished_at = clock_timestamp()
    where id = ${job.id}`;
  return { outcome: "failed", message };
}

/**
 * A worker that stops gracefully gives its job back: rolled back, NOT_STARTED again, the
 * attempt not counted (the job did not fail).
 */
export async function releaseJob(sql: Sql, claim: ClaimedJob, message: string): Promise<boolean> {
  return await transaction(sql, async (tx) => {
    const pipelines = await lockPipelinesOf(tx, claim);
    const job = await heldJob(tx, claim);
    if (!job) return false;
    await requeue(tx, job, message, { restoreAttempt: true });
    await refreshPipelines(tx, pipelines.ids);
    return true;
  }) as boolean;
}

/**
 * A job that failed for a reason of the moment (its connection lost, a deadlock) goes back to the
 * queue with its attempt counted, as the sweep returns a silent one; with no attempts left it
 * ends ERROR saying so. False when the claim was lost meanwhile.
 */
export async function retryJob(
  sql: Sql,
  claim: ClaimedJob,
  why: string,
): Promise<ReturnedJob["outcome"] | false> {
  return await transaction(sql, async (tx) => {
    const pipelines = await lockPipelinesOf(tx, claim);
    const job = await heldJob(tx, claim);
    if (!job) return false;
    const { outcome } = await requeueOrEnd(tx, job, why);
    await refreshPipelines(tx, pipelines.ids);
    return outcome;
  }) as ReturnedJob["outcome"] | false;
}

/**
 * Whether a job's error is of the moment rather than of its input: the connection was lost
 * (closed, reset, the server shutting down or terminating the session), or the database chose
 * the transaction as a deadlock's or a serialization conflict's victim. Such a job is retried.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  // serialization_failure, deadlock_detected
  return isConnectionLost(error) || code === "40001" || code === "40P01";
}

/** What a heartbeat learned. */
export type HeartbeatOutcome = "ok" | "lost" | "aborted";

/**
 * Refreshes a running job's `locked_at` and progress. `lost` when the claim is no longer this
 * worker's (swept, recovered); `aborted` when its pipeline was aborted.
 */
export async function heartbeatJob(
  sql: Queryable,
  claim: ClaimedJob,
  progress: JobProgress | undefined,
): Promise<HeartbeatOutcome> {
  const rows = progress
    ? await sql<{ aborted: boolean }[]>`
      update data_ingestion_jobs j
      set locked_at = clock_timestamp(), meta = jsonb_set(j.meta, '{progress}', ${
      json(sql, progress)
    })
      where id = ${claim.id} and locked_by = ${claim.locked_by} and attempts = ${claim.attempts}
        and state = 'RUNNING'
      returning (select p.aborted_at is not null from pipelines p where p.id = j.pipeline_id)
        as aborted`
    : await sql<{ aborted: boolean }[]>`
      update data_ingestion_jobs j set locked_at = clock_timestamp()
      where id = ${claim.id} and locked_by = ${claim.locked_by} and attempts = ${claim.attempts}
        and state = 'RUNNING'
      returning (select p.aborted_at is not null from pipelines p where p.id = j.pipeline_id)
        as aborted`;
  if (rows.length === 0) return "lost";
  return rows[0].aborted ? "aborted" : "ok";
}

/** A job the sweep or a recovery dealt with. */
export interface ReturnedJob {
  readonly id: number;
  readonly outcome: "requeued" | "handed-over" | "failed";
  readonly message: string;
}

function describeStale(job: JobRow): string {
  const last = job.locked_at ? job.locked_at.toISOString() : "never";
  return `worker ${job.locked_by} stopped sending heartbeats (last at ${last})`;
}

/**
 * How long a running job of `data_ingestion_jobs j` may stay silent before a sweep with
 * `staleSeconds` returns it: the longer of that and the timeout its worker registered (a worker
 * with a slower heartbeat than the sweeping process's is not robbed of a job it still runs).
 */
function staleAfter(sql: Queryable, staleSeconds: number) {
  return sql`make_interval(secs => greatest(${staleSeconds}::float8,
    coalesce((select w.stale_timeout_ms from workers w where w.id = j.locked_by), 0) / 1000.0))`;
}

/**
 * The stale sweep: every RUNNING job whose `locked_at` is older than `staleSeconds` goes back to
 * NOT_STARTED when it has attempts left, else ends FINISHED+ERROR saying so. Workers not seen for
 * as long are removed from the registry.
 */
export async function sweepStaleJobs(sql: Sql, staleSeconds: number): Promise<ReturnedJob[]> {
  const stale = await sql<{ id: number; pipeline_id: string }[]>`
    select id, pipeline_id from data_ingestion_jobs j
    where state = 'RUNNING' and locked_at < clock_timestamp() - ${staleAfter(sql, staleSeconds)}
    order by id limit 100`;
  const returned: ReturnedJob[] = [];
  for (const candidate of stale) {
    const done = await transaction(sql, async (tx) => {
      const pipelines = await lockPipelinesOf(tx, candidate);
      const [job] = await tx<JobRow[]>`
        select * from data_ingestion_jobs j
        where id = ${candidate.id} and state = 'RUNNING'
          and locked_at < clock_timestamp() - ${staleAfter(tx, staleSeconds)}
        for update skip locked`;
      if (!job) return undefined;
      const result: ReturnedJob = {
        id: job.id,
        ...await requeueOrEnd(tx, job, describeStale(job)),
      };
      await refreshPipelines(tx, pipelines.ids);
      return result;
    });
    if (done) returned.push(done as ReturnedJob);
  }
  await sql`
    delete from workers
    where last_seen_at < clock_timestamp() - make_interval(secs => greatest(
      ${staleSeconds}::float8, coalesce(stale_timeout_ms, 0) / 1000.0))`;
  return returned;
}

/** Why a recovery was refused. */
export type RecoverRefusal = "not-found" | "not-running" | "not-stale";

/**
 * Returns a RUNNING job silent for longer than the stale timeout its worker registered (else
 * `staleSeconds`, the caller's) to NOT_STARTED by hand, as the sweep would. An operator's recovery
 * is one more try even when no attempts are left.
 */
export async function recoverJob(
  sql: Sql,
  jobId: number,
  staleSeconds: number,
): Promise<ReturnedJob | RecoverRefusal> {
  const [found] = await sql<{ id: number; pipeline_id: string }[]>`
    select id, pipeline_id from data_ingestion_jobs where id = ${jobId}`;
  if (!found) return "not-found";
  return await transaction(sql, async (tx) => {
    const pipelines = await lockPipelinesOf(tx, found);
    const [job] = await tx<(JobRow & { stale: boolean })[]>`
      select *, locked_at < clock_timestamp() - make_interval(secs => coalesce(
        (select w.stale_timeout_ms from workers w where w.id = j.locked_by) / 1000.0,
        ${staleSeconds}::float8)) as stale
      from data_ingestion_jobs j where id = ${jobId} for update of j`;
    if (job.state !== "RUNNING") return "not-running";
    if (!job.stale) return "not-stale";
    const message = `${describeStale(job)}; recovered by hand`;
    if (job.attempts >= job.max_attempts) {
      await tx`update data_ingestion_jobs set max_attempts = attempts + 1 where id = ${jobId}`;
    }
    const outcome = await requeue(tx, job, message, { restoreAttempt: false });
    await refreshPipelines(tx, pipelines.ids);
    return { id: jobId, ...returnedAs(outcome, message) };
  }) as ReturnedJob | RecoverRefusal;
}

/** What an abort did. */
export interface AbortOutcome {
  /** Waiting jobs ended ERROR "aborted". */
  readonly waitingAborted: number;
  /** Running jobs that will see the abort at their next chunk (or heartbeat). */
  readonly running: number;
}

/**
 * Aborts a pipeline: its waiting jobs end ERROR "aborted" at once, its running jobs see the abort
 * at their next heartbeat or chunk and roll back; it stops waiting for other pipelines' jobs.
 * Null when there is no such pipeline; "finished" when it had already ended.
 */
export async function abortPipeline(
  sql: Sql,
  pipelineId: string,
): Promise<AbortOutcome | null | "finished"> {
  return await transaction(sql, async (tx) => {
    // This pipeline and those sharing its unfinished jobs, locked in id order (as a worker that
    // finishes a job locks the pipelines it counts in).
    const locked = await tx<{ id: string; status: string; aborted: boolean }[]>`
      select id, status, aborted_at is not null as aborted from pipelines
      where id = ${pipelineId}
        or id in (
          select l.pipeline_id from pipeline_links l
          join data_ingestion_jobs j on j.id = l.job_id
          where j.pipeline_id = ${pipelineId} and j.state <> 'FINISHED')
      order by id for update`;
    const pipeline = locked.find((p) => p.id === pipelineId);
    if (!pipeline) return null;
    if (pipeline.status !== "RUNNING") return "finished";
    // A pipeline sharing one of its waiting recalcs right now holds it FOR SHARE until it commits
    // its link (see addJob): wait for that, so that the statements below, each reading anew, see
    // it among the heirs instead of aborting the recalc it waits for.
    await tx`
      select id from data_ingestion_jobs
      where pipeline_id = ${pipelineId} and state = 'NOT_STARTED'
      order by id for update`;
    await tx`update pipelines set aborted_at = clock_timestamp() where id = ${pipelineId}`;
    // It no longer waits for other pipelines' jobs.
    await tx`delete from pipeline_links where pipeline_id = ${pipelineId}`;
    // Its unfinished jobs that other pipelines wait for are theirs now (the oldest link's): the
    // work they asked for goes on, and a running one is not aborted.
    // (A data-modifying WITH runs whether or not the rest reads it.)
    await tx`
      with heir as (
        select distinct on (l.job_id) l.job_id, l.pipeline_id
        from pipeline_links l
        join data_ingestion_jobs j on j.id = l.job_id
        join pipelines p on p.id = l.pipeline_id
        where j.pipeline_id = ${pipelineId} and j.state <> 'FINISHED' and p.aborted_at is null
        order by l.job_id, p.created_at, p.id
      ), moved as (
        update data_ingestion_jobs j set pipeline_id = h.pipeline_id
        from heir h where j.id = h.job_id
      )
      delete from pipeline_links l using heir h
      where l.pipeline_id = h.pipeline_id and l.job_id = h.job_id`;
    const waiting = await tx`
      update data_ingestion_jobs
      set state = 'FINISHED', result = 'ERROR', status_message = 'aborted',
        finished_at = clock_timestamp()
      where pipeline_id = ${pipelineId} and state = 'NOT_STARTED'
      returning id`;
    const [running] = await tx<{ n: number }[]>`
      select count(*)::int as n from data_ingestion_jobs
      where pipeline_id = ${pipelineId} and state = 'RUNNING'`;
    await refreshPipelines(tx, locked.map((p) => p.id));
    // Delivered at commit, to the workers that LISTEN.
    if (running.n > 0) await tx`select pg_notify(${ABORT_CHANNEL}, ${pipelineId})`;
    return { waitingAborted: waiting.length, running: running.n };
  }) as AbortOutcome | null | "finished";
}

// ---- the worker registry ----------------------------------------------------------------------

/** A worker as registered. */
export interface WorkerInfo {
  readonly id: string;
  readonly hostname: string;
  readonly pid: number;
  readonly version: string;
  readonly concurrency: number;
  /** How long its running jobs may stay silent before any sweep returns them, in ms. */
  readonly staleTimeoutMs?: number;
}

/**
 * Registers a worker, or refreshes its `last_seen_at` (re-registering it when a sweep removed it
 * meanwhile).
 */
export async function registerWorker(sql: Queryable, worker: WorkerInfo): Promise<void> {
  await sql`
    insert into workers (id, hostname, pid, version, concurrency, stale_timeout_ms)
    values (${worker.id}, ${worker.hostname}, ${worker.pid}, ${worker.version},
      ${worker.concurrency}, ${worker.staleTimeoutMs ?? null})
    on conflict (id) do update set last_seen_at = clock_timestamp()`;
}

/** Removes a worker from the registry. */
export async function deregisterWorker(sql: Queryable, workerId: string): Promise<void> {
  await sql`delete from workers where id = ${workerId}`;
}
