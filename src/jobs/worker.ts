// A job worker (spec/interfaces.md §3): claims jobs (woken by LISTEN, polling as a fallback),
// runs each one's work and its finish in one transaction, heartbeats, sweeps stale jobs, and
// stops gracefully. Many may run, in many processes on many hosts, against one PostgreSQL.
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import type { Database, Sql } from "../db/connection.ts";
import { getDataEntryType } from "../reference/enums.ts";
import { slicesToRecalculate } from "./chain.ts";
import type { Logger } from "./log.ts";
import {
  ABORT_CHANNEL,
  claimJob,
  deregisterWorker,
  enqueueRecalcs,
  failJob,
  finishJob,
  heartbeatJob,
  isTransientDatabaseError,
  JOB_CHANNEL,
  type JobEnding,
  lockPipelinesOf,
  refreshPipelines,
  registerWorker,
  releaseJob,
  retryJob,
  sweepStaleJobs,
  type WorkerInfo,
} from "./queue.ts";
import type { ClaimedJob, JobProgress } from "./types.ts";
import { deleteExpiredUploads } from "./uploads.ts";
import { JobFailed, prepareWork } from "./work.ts";
import denoConfig from "../../deno.json" with { type: "json" };
import { transaction, type TransactionSql } from "../db/transaction.ts";

/** The version workers register with. */
export const VERSION: string = denoConfig.version;

/** Options of a {@linkcode JobWorker}. */
export interface WorkerOptions {
  /** Jobs run at once (the embedded database always runs one). @default 1 */
  concurrency?: number;
  /** Claim attempts without a notification, in ms. @default 2000 */
  pollIntervalMs?: number;
  /** A running job refreshes `locked_at` this often, in ms. @default 5000 */
  heartbeatIntervalMs?: number;
  /** A RUNNING job not heartbeating for this long is returned by the sweep, in ms. @default 60000 */
  staleTimeoutMs?: number;
  /** On stop, running jobs may finish for this long before they are aborted, in ms. @default 30000 */
  graceMs?: number;
  /** Consecutive failed heartbeats after which a job is aborted. @default 3 */
  maxHeartbeatFailures?: number;
  /** Uploads no job needs any more are deleted after this long, in s. @default 86400 */
  uploadTtlSeconds?: number;
  /** Entries per rematch chunk (progress and abort points). @default the rematch's */
  chunkSize?: number;
  /** LISTEN for new jobs. @default true on a server, false on the embedded database */
  listen?: boolean;
  /** Where job events go. @default nowhere */
  log?: Logger;
}

/** Why a running job's signal fired. */
export type StopReason = "aborted" | "shutdown" | "lost" | "heartbeat";

class JobInterrupted extends Error {
  override name = "JobInterrupted";
  constructor(readonly reason: StopReason, message: string) {
    super(message);
  }
}

/** How often a running job's progress is written when it moved (heartbeats write it too). */
const PROGRESS_INTERVAL_MS = 1000;

const INTERRUPTIONS: Record<StopReason, string> = {
  aborted: "aborted",
  shutdown: "the worker stopped before the job finished",
  lost: "the job was taken from this worker (swept or recovered): nothing written",
  heartbeat: "its heartbeats failed repeatedly: rolled back",
};

interface RunningJob {
  readonly job: ClaimedJob;
  /** Where the job's files are (an upload's copy): removed when it ends. */
  workDir?: string;
  readonly controller: AbortController;
  progress?: JobProgress;
  /** The progress last written to the job's row. */
  progressWritten?: JobProgress;
  failures: number;
  readonly done: Promise<void>;
}

/** A job worker on a database. */
export class JobWorker {
  /** `host:pid:random`, unique per worker. */
  readonly id: string;
  readonly info: WorkerInfo;
  readonly #sql: Sql;
  /** The database's reader (server only), for recalcs that read a whole slice. */
  readonly #readerSql?: Sql;
  readonly #options: Required<Omit<WorkerOptions, "chunkSize" | "log" | "listen">>;
  readonly #chunkSize?: number;
  readonly #listen: boolean;
  readonly #server: boolean;
  readonly #log: Logger;
  readonly #running = new Map<number, RunningJob>();
  #stopping = false;
  // Set by an abort's notification: the heartbeat loop beats without waiting out its interval.
  #beatNow = false;
  #wake: (() => void) | undefined;
  #wakePending = false;
  #loops: Promise<void>[] = [];
  #unlisten: (() => Promise<void>) | undefined;

  constructor(db: Database, options: WorkerOptions = {}) {
    this.#sql = db.sql;
    this.#readerSql = db.readerSql;
    const concurrency = db.kind === "embedded" ? 1 : Math.max(1, options.concurrency ?? 1);
    this.#options = {
      concurrency,
      pollIntervalMs: options.pollIntervalMs ?? 2000,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 5000,
      staleTimeoutMs: options.staleTimeoutMs ?? 60_000,
      graceMs: options.graceMs ?? DEFAULT_GRACE_MS,
      maxHeartbeatFailures: options.maxHeartbeatFailures ?? 3,
      uploadTtlSeconds: options.uploadTtlSeconds ?? 86_400,
    };
    this.#chunkSize = options.chunkSize;
    this.#listen = options.listen ?? db.kind === "server";
    this.#server = db.kind === "server";
    this.#log = options.log ?? (() => {});
    const host = hostname();
    this.id = `${host}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
    this.info = {
      id: this.id,
      hostname: host,
      pid: Deno.pid,
      version: VERSION,
      concurrency,
      staleTimeoutMs: this.#options.staleTimeoutMs,
    };
  }

  /** Jobs running now. */
  get runningJobs(): number[] {
    return [...this.#running.keys()];
  }

  /**
   * Removes the working directories of the jobs running now (uploaded files among them), at
   * once: for a process about to exit without waiting for its jobs.
   */
  removeWorkDirsNow(): void {
    for (const running of this.#running.values()) {
      if (!running.workDir) continue;
      try {
        Deno.removeSync(running.workDir, { recursive: true });
      } catch {
        // already gone
      }
    }
  }

  /** Registers the worker, starts listening and claiming. */
  async start(): Promise<void> {
    await removeOrphanWorkDirs(tmpdir());
    await registerWorker(this.#sql, this.info);
    if (this.#listen) {
      const listener = await this.#sql.listen(JOB_CHANNEL, () => this.wake());
      // A pipeline was aborted: heartbeat now, which tells each running job whether it was.
      const aborts = await this.#sql.listen(ABORT_CHANNEL, () => {
        this.#beatNow = true;
      });
      this.#unlisten = async () => {
        await Promise.all([listener.unlisten(), aborts.unlisten()]);
      };
    }
    this.#log({
      event: "worker_started",
      worker: this.id,
      concurrency: this.#options.concurrency,
      listen: this.#listen,
      version: VERSION,
    });
    this.#loops = [this.#claimLoop(), this.#heartbeatLoop(), this.#sweepLoop()];
  }

  /** Claims at once instead of at the next poll (a job was just queued in this process). */
  wake(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    if (wake) wake();
    else this.#wakePending = true;
  }

  /**
   * Graceful stop: claims no more, lets running jobs finish for the grace period, then aborts
   * them (rolled back, returned to the queue) and deregisters.
   */
  async stop(reason = "stop requested"): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.wake();
    this.#log({
      event: "worker_stopping",
      worker: this.id,
      running: this.runningJobs,
      message: reason,
    });
    await this.#unlisten?.().catch(() => {});
    const finished = Promise.all([...this.#running.values()].map((r) => r.done));
    const graceOver = await Promise.race([
      finished.then(() => false),
      delay(this.#options.graceMs).then(() => true),
    ]);
    if (graceOver) {
      for (const running of this.#running.values()) {
        running.controller.abort(new JobInterrupted("shutdown", INTERRUPTIONS.shutdown));
      }
    }
    await finished;
    await Promise.all(this.#loops);
    await deregisterWorker(this.#sql, this.id).catch(() => {});
    this.#log({ event: "worker_stopped", worker: this.id });
  }

  // Claims while there is room, else sleeps until a wake-up, a finished job or the poll interval.
  async #claimLoop(): Promise<void> {
    while (!this.#stopping) {
      if (this.#running.size < this.#options.concurrency) {
        let job: ClaimedJob | null = null;
        try {
          job = await claimJob(this.#sql, this.id);
        } catch (error) {
          this.#log({ event: "claim_failed", worker: this.id, message: describe(error) });
        }
        if (job && !this.#stopping) {
          this.#start(job);
          continue;
        }
        if (job) {
          // Claimed while stopping began: give it back untouched.
          await releaseJob(this.#sql, job, "the worker stopped before the job started").catch(
            () => {},
          );
        }
      }
      await this.#sleep(this.#options.pollIntervalMs);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#wakePending || this.#stopping) {
      this.#wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  // Refreshes the registry and every running job; a lost claim or an abort fires the job's signal.
  // Between beats, a job's progress is written once a second when it moved, so that followers of
  // a pipeline see it move whatever the heartbeat's interval.
  async #heartbeatLoop(): Promise<void> {
    const idle = () => this.#stopping && this.#running.size === 0;
    while (!idle()) {
      let sinceProgress = 0;
      for (
        let waited = 0;
        waited < this.#options.heartbeatIntervalMs && !idle() && !this.#beatNow;
        waited += 50
      ) {
        await delay(Math.min(50, this.#options.heartbeatIntervalMs));
        sinceProgress += 50;
        if (sinceProgress >= PROGRESS_INTERVAL_MS) {
          sinceProgress = 0;
          await this.#beatJobs((running) => running.progress !== running.progressWritten, false);
        }
      }
      this.#beatNow = false;
      if (idle()) break;
      await registerWorker(this.#sql, this.info).catch(() => {});
      await this.#beatJobs(() => true, true);
    }
  }

  // Refreshes the lock and progress of the running jobs `which` picks. A lost claim or an abort
  // fires the job's signal; failures count only when `counted` (the regular beats).
  async #beatJobs(which: (running: RunningJob) => boolean, counted: boolean): Promise<void> {
    for (const running of [...this.#running.values()]) {
      if (running.controller.signal.aborted || !which(running)) continue;
      const progress = running.progress;
      try {
        const outcome = await heartbeatJob(this.#sql, running.job, progress);
        running.failures = 0;
        running.progressWritten = progress;
        if (outcome !== "ok") {
          running.controller.abort(new JobInterrupted(outcome, INTERRUPTIONS[outcome]));
        }
      } catch (error) {
        if (!counted) continue;
        running.failures++;
        this.#log({
          event: "heartbeat_failed",
          worker: this.id,
          job_id: running.job.id,
          failures: running.failures,
          message: describe(error),
        });
        if (running.failures >= this.#options.maxHeartbeatFailures) {
          running.controller.abort(new JobInterrupted("heartbeat", INTERRUPTIONS.heartbeat));
        }
      }
    }
  }

  async #sweepLoop(): Promise<void> {
    const interval = Math.max(200, this.#options.staleTimeoutMs / 2);
    while (!this.#stopping) {
      try {
        const returned = await sweepStaleJobs(this.#sql, this.#options.staleTimeoutMs / 1000);
        for (const job of returned) {
          this.#log({
            event: "job_swept",
            worker: this.id,
            job_id: job.id,
            outcome: job.outcome,
            message: job.message,
          });
        }
        if (returned.length) this.wake();
        await deleteExpiredUploads(this.#sql, this.#options.uploadTtlSeconds);
      } catch (error) {
        this.#log({ event: "sweep_failed", worker: this.id, message: describe(error) });
      }
      await this.#stoppable(interval);
    }
  }

  // Sleeps, but wakes early once stopping begins.
  async #stoppable(ms: number): Promise<void> {
    const step = 50;
    for (let waited = 0; waited < ms && !this.#stopping; waited += step) await delay(step);
  }

  #start(job: ClaimedJob): void {
    const controller = new AbortController();
    const running = { job, controller, failures: 0 } as {
      -readonly [K in keyof RunningJob]: RunningJob[K];
    };
    running.done = this.#run(running).finally(() => {
      this.#running.delete(job.id);
      this.wake();
    });
    this.#running.set(job.id, running);
  }

  async #run(running: RunningJob): Promise<void> {
    const { job, controller } = running;
    const started = performance.now();
    const fields = describeJob(job, this.id);
    this.#log({ event: "job_started", ...fields });
    // Named with this process's id: a worker starting later removes it if this one died.
    const workDir = await Deno.makeTempDir({ prefix: `rematch-job-${job.id}-p${Deno.pid}-` });
    running.workDir = workDir;
    try {
      const work = await prepareWork(job, {
        sql: this.#sql,
        readerSql: this.#readerSql,
        workDir,
        signal: controller.signal,
        onProgress: (done, total) => {
          running.progress = { done, total };
        },
        chunkSize: this.#chunkSize,
      });
      const ending = await transaction(this.#sql, async (tx) => {
        const forget = await this.#cancelOnAbort(tx, controller.signal);
        let outcome: Awaited<ReturnType<typeof work.run>>;
        try {
          outcome = await work.run(tx);
        } finally {
          forget();
        }
        // A stop or an abort that came during work the rematch could not interrupt.
        controller.signal.throwIfAborted();
        const pipelines = await lockPipelinesOf(tx, job);
        if (pipelines.aborted) throw new JobInterrupted("aborted", INTERRUPTIONS.aborted);
        const stale = await slicesToRecalculate(tx, outcome.touched);
        const chained = await enqueueRecalcs(tx, job.pipeline_id, stale, job.meta.actor ?? null);
        const ending: JobEnding = {
          result: outcome.result,
          message: outcome.message +
            (chained.length
              ? `; ${chained.length} recalc${chained.length > 1 ? "s" : ""} queued`
              : ""),
          meta: {
            result: outcome.document,
            ...(running.progress ? { progress: running.progress } : {}),
            ...(chained.length ? { chained } : {}),
          },
        };
        if (!(await finishJob(tx, job, ending))) {
          throw new JobInterrupted("lost", INTERRUPTIONS.lost);
        }
        await refreshPipelines(tx, pipelines.ids);
        return ending;
      }) as JobEnding;
      this.#log({
        event: "job_finished",
        ...fields,
        result: ending.result,
        duration_ms: Math.round(performance.now() - started),
        message: ending.message,
      });
    } catch (error) {
      await this.#end(running, error, started, fields);
    } finally {
      await Deno.remove(workDir, { recursive: true }).catch(() => {});
    }
  }

  /**
   * A statement the job waits on (a row another session holds, say) does not see the abort,
   * which the work only looks at between its steps: the server is asked to cancel whatever the
   * job's transaction runs then. The transaction's start time keeps the cancel off any later
   * transaction of the same connection (compared as text: the driver would cut a timestamp
   * parameter to the millisecond). The embedded database never waits on another session.
   */
  async #cancelOnAbort(tx: TransactionSql, signal: AbortSignal): Promise<() => void> {
    if (!this.#server) return () => {};
    const [{ pid, started }] = await tx<{ pid: number; started: string }[]>`
      select pg_backend_pid() as pid, now()::text as started`;
    const cancel = () => {
      this.#sql`
        select pg_cancel_backend(pid) from pg_stat_activity
        where pid = ${pid} and xact_start = ${started}::text::timestamptz`.catch(() => {});
    };
    signal.addEventListener("abort", cancel, { once: true });
    // An abort that came while the statement above ran.
    if (signal.aborted) cancel();
    return () => signal.removeEventListener("abort", cancel);
  }

  // The work rolled back: give the job back (stop), say nothing (lost claim) or end it ERROR.
  async #end(
    running: RunningJob,
    error: unknown,
    started: number,
    fields: Record<string, unknown>,
  ): Promise<void> {
    const { job, controller } = running;
    const interruption = error instanceof JobInterrupted
      ? error
      : controller.signal.reason instanceof JobInterrupted
      ? controller.signal.reason
      : undefined;
    const duration_ms = Math.round(performance.now() - started);
    try {
      if (interruption?.reason === "shutdown") {
        const released = await releaseJob(
          this.#sql,
          job,
          `worker ${this.id} stopped before the job finished: rolled back and returned to the queue`,
        );
        this.#log({
          event: "job_released",
          ...fields,
          duration_ms,
          message: released ? "rolled back and returned to the queue" : INTERRUPTIONS.lost,
        });
        return;
      }
      if (interruption?.reason === "lost") {
        this.#log({ event: "job_lost", ...fields, duration_ms, message: INTERRUPTIONS.lost });
        return;
      }
      if (
        interruption?.reason === "heartbeat" || (!interruption && isTransientDatabaseError(error))
      ) {
        // Rolled back for a reason of the moment (the database out of reach of its heartbeats
        // included): tried again, as a job the sweep returns.
        const why = `${interruption ? interruption.message : describe(error)} (worker ${this.id})`;
        const outcome = await retryJob(this.#sql, job, why);
        this.#log({
          event: outcome === "failed" ? "job_finished" : outcome ? "job_retried" : "job_lost",
          ...fields,
          result: outcome === "failed" ? "ERROR" : undefined,
          duration_ms,
          message: outcome ? why : INTERRUPTIONS.lost,
        });
        return;
      }
      const message = interruption ? interruption.message : describe(error);
      const document = error instanceof JobFailed ? error.document : undefined;
      const meta = {
        ...(document === undefined ? {} : { result: document }),
        ...(running.progress ? { progress: running.progress } : {}),
      };
      const ended = await failJob(this.#sql, job, message, meta);
      this.#log({
        event: ended ? "job_finished" : "job_lost",
        ...fields,
        result: ended ? "ERROR" : undefined,
        duration_ms,
        message: ended ? message : INTERRUPTIONS.lost,
      });
    } catch (secondary) {
      // The database is unreachable: the sweep will return the job once its heartbeat is stale.
      this.#log({
        event: "job_end_failed",
        ...fields,
        duration_ms,
        message: `${describe(error)}; then: ${describe(secondary)}`,
      });
    }
  }
}

function describeJob(job: ClaimedJob, worker: string): Record<string, unknown> {
  const det = job.data_entry_type_id === null
    ? undefined
    : getDataEntryType(job.data_entry_type_id).name;
  return {
    worker,
    job_id: job.id,
    job_type: job.job_type,
    pipeline_id: job.pipeline_id,
    det,
    year: job.year ?? undefined,
    attempt: job.attempts,
  };
}

/** An error as one line: the messages of domain errors, the kind of anything unexpected. */
export function describe(error: unknown): string {
  if (error instanceof JobFailed) return error.message;
  if (error instanceof Error) {
    return error.name === "Error" ? error.message : `${error.name}: ${error.message}`;
  }
  return String(error);
}

/** How long a stopping worker lets its running jobs finish by default, in ms. */
export const DEFAULT_GRACE_MS = 30_000;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Removes the job working directories (`rematch-job-<job>-p<pid>-...`) that processes no longer
 * running left in `root`: a worker killed (kill -9, a crash) cannot remove its own, and an upload's
 * copy may be large. A directory whose process cannot be told dead (another system than Linux, a
 * process of that id running) is kept.
 */
export async function removeOrphanWorkDirs(root: string): Promise<string[]> {
  if (Deno.build.os !== "linux") return [];
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(root)) {
      const pid = /^rematch-job-\d+-p(\d+)-/.exec(entry.name)?.[1];
      if (!entry.isDirectory || pid === undefined || Number(pid) === Deno.pid) continue;
      const alive = await Deno.stat(`/proc/${pid}`).then(() => true, () => false);
      if (alive) continue;
      await Deno.remove(join(root, entry.name), { recursive: true }).then(
        () => removed.push(entry.name),
        () => {},
      );
    }
  } catch {
    // an unreadable temporary directory: nothing to tidy
  }
  return removed;
}
