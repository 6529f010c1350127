// `serve`: the HTTP API on Deno.serve, plus an in-process job worker, with the bind rule of
// spec/interfaces.md §4 (no tokens → loopback only) and a graceful stop.
import type { Database } from "../db/connection.ts";
import { DEFAULT_MAX_FILE_BYTES } from "../imports/file.ts";
import type { Logger } from "../jobs/log.ts";
import {
  DEFAULT_GRACE_MS,
  describe as describeError,
  JobWorker,
  type WorkerOptions,
} from "../jobs/worker.ts";
import { type ApiOptions, createApi } from "./app.ts";
import { type ApiToken, isLoopbackHost } from "./auth.ts";

/** Options of {@linkcode startServer}. */
export interface ServeOptions {
  readonly db: Database;
  /** @default "127.0.0.1" */
  readonly hostname?: string;
  /** 0 picks a free port. @default 8000 */
  readonly port?: number;
  /** Accepted bearer tokens (`REMATCH_API_TOKENS`); none: loopback only, no authentication. */
  readonly tokens: readonly ApiToken[];
  /** Jobs the in-process worker runs at once; 0: no worker (API only). @default 1 */
  readonly concurrency?: number;
  /** The in-process worker's timings. */
  readonly worker?: Omit<WorkerOptions, "concurrency" | "log">;
  /** Bytes of one uploaded file. @default the import file limit (256 MiB) */
  readonly maxUploadBytes?: number;
  /** Where uploads arrive before they are stored. @default a new temporary directory */
  readonly uploadDir?: string;
  /** Limits of the API's exports and health check (see {@linkcode ApiOptions}). */
  readonly limits?: Pick<
    ApiOptions,
    "maxExports" | "exportStallMs" | "healthTimeoutMs" | "streamPollMs"
  >;
  readonly log: Logger;
}

/** A running server. */
export interface RunningServer {
  readonly url: string;
  readonly hostname: string;
  readonly port: number;
  readonly worker?: JobWorker;
  /** Where uploads arrive before they are stored in the database. */
  readonly uploadDir: string;
  /**
   * Stops accepting requests and stops the worker gracefully, both at once: the worker claims
   * nothing more while requests are still open. Requests still open when the worker has stopped
   * and the grace period has passed are not waited for.
   */
  stop(reason?: string): Promise<void>;
  /**
   * Removes, at once, the files the server and its worker keep for requests and jobs in progress
   * (its own upload directory, the jobs' working directories): for a process about to exit
   * without stopping.
   */
  removeFilesNow(): void;
}

/** Refused at start: a non-loopback bind without tokens. */
export class ServeRefusedError extends Error {
  override name = "ServeRefusedError";
}

/** A timer to await, and to cancel once it is no longer needed. */
function delay(ms: number): { promise: Promise<void>; cancel: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  return { promise, cancel: () => clearTimeout(timer) };
}

/** How long a server that stopped accepting waits before it listens again. */
const RELISTEN_MS = 1000;

/** Throws {@linkcode ServeRefusedError} for a non-loopback address without tokens. */
export function checkBind(hostname: string, tokens: readonly ApiToken[]): void {
  if (tokens.length === 0 && !isLoopbackHost(hostname)) {
    throw new ServeRefusedError(
      `refusing to serve on ${hostname} without authentication: set REMATCH_API_TOKENS ` +
        "(name:secret pairs) or bind to a loopback address such as 127.0.0.1",
    );
  }
}

/**
 * Starts the API (and the in-process worker). Without tokens it binds only to a loopback address
 * and says so; another address without tokens is refused.
 *
 * @example
 * ```ts ignore
 * import { startServer } from "./serve.ts";
 * const server = await startServer({ db, tokens: [], port: 0, log: console.log });
 * console.log(server.url);
 * await server.stop();
 * ```
 */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  checkBind(hostname, options.tokens);
  const staleTimeoutMs = options.worker?.staleTimeoutMs ?? 60_000;
  const graceMs = options.worker?.graceMs ?? DEFAULT_GRACE_MS;
  const concurrency = options.concurrency ?? 1;
  const worker = concurrency > 0
    ? new JobWorker(options.db, { ...options.worker, concurrency, log: options.log })
    : undefined;
  const ownUploadDir = options.uploadDir === undefined;
  const uploadDir = options.uploadDir ?? await Deno.makeTempDir({ prefix: "rematch-uploads-" });
  const closing = new AbortController();
  const app = createApi({
    db: options.db,
    tokens: options.tokens,
    uploadDir,
    maxUploadBytes: options.maxUploadBytes ?? DEFAULT_MAX_FILE_BYTES,
    staleTimeoutMs,
    onJobsQueued: () => worker?.wake(),
    ...options.limits,
    log: options.log,
    signal: closing.signal,
  });
  const { promise: listening, resolve } = Promise.withResolvers<Deno.NetAddr>();
  let server = Deno.serve({
    hostname,
    port: options.port ?? 8000,
    onListen: (addr) => resolve(addr as Deno.NetAddr),
  }, app.fetch);
  const addr = await listening;
  const shownHost = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `http://${shownHost}:${addr.port}`;
  // Deno stops accepting for good when accepting fails (out of file descriptors: a flood of
  // connections), and rejects `finished`: the server listens again (same address) once it can,
  // its worker going on meanwhile, rather than die or stay deaf.
  let relisten: ReturnType<typeof setTimeout> | undefined;
  const watch = (current: Deno.HttpServer) => {
    current.finished.catch((error: unknown) => {
      if (closing.signal.aborted) return;
      options.log({
        event: "server_failed",
        url,
        message: `stopped accepting connections (${describeError(error)}): listening again in ` +
          `${RELISTEN_MS / 1000} s`,
      });
      const again = () => {
        relisten = undefined;
        if (closing.signal.aborted) return;
        try {
          server = Deno.serve({ hostname, port: addr.port, onListen: () => {} }, app.fetch);
        } catch (retry) {
          options.log({
            event: "server_failed",
            url,
            message: `cannot listen again (${describeError(retry)}): trying again in ` +
              `${RELISTEN_MS / 1000} s`,
          });
          relisten = setTimeout(again, RELISTEN_MS);
          return;
        }
        options.log({ event: "server_listening", url, message: "listening again" });
        watch(server);
      };
      relisten = setTimeout(again, RELISTEN_MS);
    });
  };
  watch(server);
  try {
    await worker?.start();
  } catch (error) {
    closing.abort();
    clearTimeout(relisten);
    await server.shutdown().catch(() => {});
    if (ownUploadDir) await Deno.remove(uploadDir, { recursive: true }).catch(() => {});
    throw error;
  }
  options.log({
    event: "server_listening",
    url,
    database: options.db.description,
    worker: worker?.id,
    message: options.tokens.length
      ? `authentication: ${options.tokens.length} token(s) from REMATCH_API_TOKENS`
      : "no REMATCH_API_TOKENS: no authentication, loopback only",
  });
  let stopped: Promise<void> | undefined;
  return {
    url,
    hostname: addr.hostname,
    port: addr.port,
    worker,
    uploadDir,
    removeFilesNow() {
      worker?.removeWorkDirsNow();
      if (!ownUploadDir) return;
      try {
        Deno.removeSync(uploadDir, { recursive: true });
      } catch {
        // already gone
      }
    },
    stop(reason = "stop requested") {
      stopped ??= (async () => {
        closing.abort();
        clearTimeout(relisten);
        // Deno's shutdown ends the reads of request bodies at once (an upload in progress is
        // answered 503), but waits for the requests still open (a response a client does not
        // read, a connection that stalls): the worker must not claim meanwhile, and the stop must
        // not wait for them past the grace.
        const requestsDone = server.shutdown().catch(() => {});
        const graceOver = delay(graceMs);
        await worker?.stop(reason);
        const cut = await Promise.race([
          requestsDone.then(() => false),
          graceOver.promise.then(() => true),
        ]);
        graceOver.cancel();
        if (cut) {
          options.log({
            event: "requests_cut",
            url,
            message: `requests still open ${graceMs / 1000} s after the stop were not waited for`,
          });
        }
        if (ownUploadDir) await Deno.remove(uploadDir, { recursive: true }).catch(() => {});
        options.log({ event: "server_stopped", url, message: reason });
      })();
      return stopped;
    },
  };
}
