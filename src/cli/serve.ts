// `serve [--port P] [--hostname H]`: the HTTP API of spec/interfaces.md §4 plus an in-process job
// worker, until SIGINT or SIGTERM (then: no new requests, running jobs finish or roll back).
import { z } from "zod";
import { defineCommand, EXIT, flag, SIGNAL_EXIT } from "./command.ts";
import { createLogger, type LogFormat } from "../jobs/log.ts";
import type { WorkerOptions } from "../jobs/worker.ts";
import { type ApiToken, parseApiTokens } from "../server/auth.ts";
import { checkBind, startServer } from "../server/serve.ts";
import { checkJobSettings } from "../jobs/settings.ts";
import { DEFAULT_MAX_FILE_BYTES, describeBytes } from "../imports/file.ts";
import {
  checkWorkerTimings,
  logToStderr,
  MAX_CONCURRENCY,
  untilStopSignal,
  WORKER_OPTIONS,
  WORKER_USAGE,
  workerFlags,
  workerOptionsOf,
} from "./worker.ts";

/** The validated arguments of `serve`. */
export interface ServeArgs {
  readonly hostname: string;
  readonly port: number;
  readonly concurrency: number;
  readonly maxUploadBytes?: number;
  readonly logFormat: LogFormat;
  readonly worker: Omit<WorkerOptions, "concurrency" | "log">;
}

const USAGE = `Usage: deno task serve [--port P] [--hostname H] [--concurrency N] [options]
         [--database-url URL]

Serves the HTTP API (OpenAPI document at /v1/openapi.json) and runs queued jobs in the same
process, until SIGINT or SIGTERM. Add workers elsewhere with deno task worker.

Authentication: REMATCH_API_TOKENS holds comma-separated name:secret pairs (a bare secret is
named api); requests then need Authorization: Bearer <secret>, and the token's name is recorded
as who did what. Without tokens the server binds only to a loopback address, and answers only
requests to a loopback host from no web page but a loopback one (403 otherwise; behind a proxy,
configure tokens or have it send Host: 127.0.0.1).

  --port P             port (default 8000; 0 picks a free one, printed at start)
  --hostname H         address to bind (default 127.0.0.1)
  --concurrency N      jobs the in-process worker runs at once (default 1; 0: API only)
  --max-upload-size S  largest uploaded file (default ${
  describeBytes(DEFAULT_MAX_FILE_BYTES).replace(" ", "")
}), e.g. 50MiB
${WORKER_USAGE}

Exit codes: 0 stopped; 1 failed to start (e.g. a non-loopback address without tokens); 2 bad
usage.`;

const schema = z.object({
  positionals: z.array(z.string()).max(0, "takes no arguments"),
  port: flag.int("--port").refine((p) => p >= 0 && p <= 65535, "expected a port from 0 to 65535")
    .default(8000),
  hostname: z.string().min(1, "expected an address").default("127.0.0.1"),
  concurrency: flag.int("--concurrency").refine((n) => n >= 0, "expected 0 or more")
    .refine((n) => n <= MAX_CONCURRENCY, `at most ${MAX_CONCURRENCY}`).default(1),
  "max-upload-size": flag.byteSize().optional(),
  ...workerFlags,
}).superRefine((flags, ctx) => {
  // Without a worker (--concurrency 0) nothing heartbeats: the stale timeout only feeds recover.
  if (flags.concurrency > 0) checkWorkerTimings(flags, ctx);
}).transform((flags): ServeArgs => ({
  hostname: flags.hostname,
  port: flags.port,
  concurrency: flags.concurrency,
  maxUploadBytes: flags["max-upload-size"],
  logFormat: flags["log-format"],
  worker: workerOptionsOf(flags),
}));

/** `serve [--port P] [--hostname H]` */
export const serveCommand = defineCommand({
  name: "serve",
  summary: "the HTTP API, with a job worker in the same process",
  usage: USAGE,
  options: {
    port: { type: "string" },
    hostname: { type: "string" },
    concurrency: { type: "string" },
    "max-upload-size": { type: "string" },
    ...WORKER_OPTIONS,
  },
  schema,
  handlesStopSignals: true,
  async run(args, context) {
    const tokens: ApiToken[] = parseApiTokens(Deno.env.get("REMATCH_API_TOKENS"));
    // Refused before the database is even opened, as a setting its jobs read that is wrong.
    checkBind(args.hostname, tokens);
    checkJobSettings();
    // With --json, standard output carries the one JSON document: the log goes to stderr.
    const log = createLogger(args.logFormat, context.json ? logToStderr : undefined);
    // Set once started: a second signal removes its jobs' and uploads' files before exiting.
    const started: { server?: Awaited<ReturnType<typeof startServer>> } = {};
    const stopped = untilStopSignal((signal) => {
      log({ event: "server_killed", message: `second ${signal}: exiting without waiting` });
      started.server?.removeFilesNow();
      Deno.exit(SIGNAL_EXIT[signal]);
    });
    const db = await context.database({ maxConnections: args.concurrency + 8 });
    const server = await startServer({
      db,
      hostname: args.hostname,
      port: args.port,
      tokens,
      concurrency: args.concurrency,
      worker: args.worker,
      maxUploadBytes: args.maxUploadBytes,
      log,
    });
    started.server = server;
    const signal = await stopped;
    await server.stop(`${signal} received`);
    return { exitCode: EXIT.ok, json: { url: server.url, stopped: signal }, text: "" };
  },
});
