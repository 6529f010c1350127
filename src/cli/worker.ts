// `worker [--concurrency N]`: a job worker only (spec/interfaces.md §2-§3). Many may run, on many
// hosts, against one PostgreSQL; each stops gracefully on SIGINT or SIGTERM.
import { z } from "zod";
import { defineCommand, EXIT, SIGNAL_EXIT } from "./command.ts";
import { createLogger, type LogFormat } from "../jobs/log.ts";
import { checkJobSettings } from "../jobs/settings.ts";
import { JobWorker, type WorkerOptions } from "../jobs/worker.ts";
import { DEFAULT_CHUNK } from "../rematch/recalculate.ts";

/** The worker flags `worker` and `serve` share. */
export const WORKER_OPTIONS = {
  "log-format": { type: "string" },
  "poll-interval": { type: "string" },
  heartbeat: { type: "string" },
  "stale-timeout": { type: "string" },
  grace: { type: "string" },
  "chunk-size": { type: "string" },
} as const;

/** Their usage lines. */
export const WORKER_USAGE =
  `  --log-format F       text (default) or json: one JSON line per job start and finish
  --poll-interval S    look for jobs this often without a notification (default 2)
  --heartbeat S        a running job refreshes its lock this often (default 5)
  --stale-timeout S    a RUNNING job silent this long is returned to the queue by the
                       sweep of any worker (default 60; at least twice --heartbeat)
  --grace S            on SIGINT/SIGTERM, let running jobs finish this long, then roll
                       them back and return them to the queue (default 30)
  --chunk-size N       entries per rematch chunk: progress and abort points (default ${DEFAULT_CHUNK})`;

// A timer fires at once when its delay exceeds 2^31 - 1 ms: longer is refused, not shortened.
const MAX_TIMER_MS = 2 ** 31 - 1;
const TOO_LONG = `at most ${Math.floor(MAX_TIMER_MS / 1000)} seconds (about 24 days)`;

/** Seconds given as text, in ms (0 allowed), at most what a timer holds. */
const milliseconds = (example: number) =>
  z.string().regex(/^\d+(\.\d+)?$/, `expected a number of seconds (e.g. ${example})`)
    .transform((s) => Math.round(Number(s) * 1000)).refine((ms) => ms <= MAX_TIMER_MS, TOO_LONG);

const seconds = (name: string) =>
  milliseconds(5).refine((ms) => ms > 0, `--${name}: expected more than 0 seconds`);

/** Each running job holds two database connections; more than this is no setting anyone means. */
export const MAX_CONCURRENCY = 1000;

/** A chunk's entries and rows are held in memory while it is computed and written. */
const MAX_CHUNK = 100_000;

const positiveInt = (what: string) =>
  z.string().regex(/^\d+$/, `expected ${what}`).transform(Number)
    .refine(Number.isSafeInteger, "too large");

/** The schema of the shared worker flags. */
export const workerFlags = {
  "log-format": z.enum(["text", "json"], { error: 'expected "text" or "json"' }).default("text"),
  "poll-interval": seconds("poll-interval").optional(),
  heartbeat: seconds("heartbeat").optional(),
  "stale-timeout": seconds("stale-timeout").optional(),
  grace: milliseconds(30).optional(),
  "chunk-size": positiveInt("a number of entries (e.g. 1000)").refine(
    (n) => n > 0,
    "expected at least 1",
  ).refine((n) => n <= MAX_CHUNK, `at most ${MAX_CHUNK}`).optional(),
};

/**
 * The heartbeat at most half the stale timeout (defaults 5 and 60 s): slower, any worker's sweep
 * would hand a job that is still running to another worker, and it would run twice.
 */
export function checkWorkerTimings(
  flags: { heartbeat?: number; "stale-timeout"?: number },
  ctx: z.RefinementCtx,
): void {
  const heartbeat = flags.heartbeat ?? 5000;
  const stale = flags["stale-timeout"] ?? 60_000;
  if (heartbeat * 2 > stale) {
    ctx.addIssue({
      code: "custom",
      path: [flags.heartbeat === undefined ? "stale-timeout" : "heartbeat"],
      message: `a heartbeat every ${heartbeat / 1000} s needs a stale timeout of at least ` +
        `${(heartbeat * 2) / 1000} s (twice as long), not ${stale / 1000} s: a job would be ` +
        "returned to the queue while it still runs",
    });
  }
}

/** The worker options of the shared flags. */
export function workerOptionsOf(flags: {
  "poll-interval"?: number;
  heartbeat?: number;
  "stale-timeout"?: number;
  grace?: number;
  "chunk-size"?: number;
}): Omit<WorkerOptions, "concurrency" | "log"> {
  return {
    pollIntervalMs: flags["poll-interval"],
    heartbeatIntervalMs: flags.heartbeat,
    staleTimeoutMs: flags["stale-timeout"],
    graceMs: flags.grace,
    chunkSize: flags["chunk-size"],
  };
}

/** The validated arguments of `worker`. */
export interface WorkerArgs {
  readonly concurrency: number;
  readonly logFormat: LogFormat;
  readonly worker: Omit<WorkerOptions, "concurrency" | "log">;
}

const USAGE = `Usage: deno task worker [--concurrency N] [options] [--database-url URL]

Runs jobs queued by the HTTP API (deno task serve) until SIGINT or SIGTERM: factor, entries and
reference imports and the emission recalcs they chain. Start as many as you like, on as many
hosts as you like, against one PostgreSQL (DATABASE_URL): each job runs exactly once, and jobs of
one slice never overlap. New jobs wake workers at once (LISTEN/NOTIFY); they also poll.

  --concurrency N      jobs run at once (default 1; the embedded database runs one)
${WORKER_USAGE}

Exit codes: 0 stopped; 1 failed to start; 2 bad usage.`;

const schema = z.object({
  positionals: z.array(z.string()).max(0, "takes no arguments"),
  concurrency: positiveInt("a number of jobs (e.g. 2)").refine((n) => n >= 1, "expected at least 1")
    .refine((n) => n <= MAX_CONCURRENCY, `at most ${MAX_CONCURRENCY}`)
    .default(1),
  ...workerFlags,
}).superRefine(checkWorkerTimings).transform((flags): WorkerArgs => ({
  concurrency: flags.concurrency,
  logFormat: flags["log-format"],
  worker: workerOptionsOf(flags),
}));

/** A log line to standard error. */
export const logToStderr = (line: string): void => console.error(line);

/**
 * A stop signal that comes this soon after the first is the same stop delivered twice, not a
 * second one: Ctrl-C (SIGINT to the terminal's process group) or a service manager's SIGTERM to
 * every process of the service reaches `deno task` too, which hands it on to this process.
 */
export const REPEATED_SIGNAL_MS = 500;

/**
 * Resolves with the signal's name at the first SIGINT or SIGTERM; a second one, at least
 * {@linkcode REPEATED_SIGNAL_MS} later, exits at once.
 */
export function untilStopSignal(
  onSecond: (signal: keyof typeof SIGNAL_EXIT) => void,
): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();
  let firstAt: number | undefined;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      const now = performance.now();
      if (firstAt === undefined) {
        firstAt = now;
        resolve(signal);
      } else if (now - firstAt >= REPEATED_SIGNAL_MS) {
        onSecond(signal);
      }
    });
  }
  return promise;
}

/** `worker [--concurrency N]` */
export const workerCommand = defineCommand({
  name: "worker",
  summary: "a job worker only (many may run, on many hosts)",
  usage: USAGE,
  options: { concurrency: { type: "string" }, ...WORKER_OPTIONS },
  schema,
  handlesStopSignals: true,
  async run(args, context) {
    // A setting jobs read, wrong, is refused now: not by every job this worker would claim.
    checkJobSettings();
    // With --json, standard output carries the one JSON document: the log goes to stderr.
    const log = createLogger(args.logFormat, context.json ? logToStderr : undefined);
    // Set once started: a second signal removes its jobs' working directories before exiting.
    const started: { worker?: JobWorker } = {};
    const stopped = untilStopSignal((signal) => {
      log({ event: "worker_killed", message: `second ${signal}: exiting without waiting` });
      started.worker?.removeWorkDirsNow();
      Deno.exit(SIGNAL_EXIT[signal]);
    });
    const db = await context.database({ maxConnections: args.concurrency + 4 });
    const worker = new JobWorker(db, { ...args.worker, concurrency: args.concurrency, log });
    started.worker = worker;
    await worker.start();
    const signal = await stopped;
    await worker.stop(`${signal} received`);
    return {
      exitCode: EXIT.ok,
      json: { worker: worker.id, stopped: signal },
      text: "",
    };
  },
});
