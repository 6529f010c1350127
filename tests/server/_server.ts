// Helpers of the HTTP API and worker tests: a fresh database on the test server (for spawned
// processes, which need its URL), spawned `serve` and `worker` processes whose JSON log lines are
// read as they come, an in-process server, HTTP helpers and a server-sent-events reader.
import assert from "node:assert/strict";
import postgres from "postgres";
import { join } from "node:path";
import { type Database, openDatabase } from "../../src/db/connection.ts";
import { createLogger, type LogEvent } from "../../src/jobs/log.ts";
import { parseApiTokens } from "../../src/server/auth.ts";
import { type RunningServer, type ServeOptions, startServer } from "../../src/server/serve.ts";
import type { WorkerOptions } from "../../src/jobs/worker.ts";

const ROOT = join(import.meta.dirname!, "..", "..");

/** The server URL of this run, or undefined when tests run on the embedded database. */
export function serverUrl(): string | undefined {
  if (Deno.env.get("REMATCH_TEST_BACKEND") === "embedded") return undefined;
  // An empty DATABASE_URL means the embedded database, as for the commands.
  return Deno.env.get("TEST_DATABASE_URL") || Deno.env.get("DATABASE_URL") || undefined;
}

/** A migrated database of its own on the test server, with its URL (for child processes). */
export interface ServerDatabase {
  readonly url: string;
  readonly db: Database;
  drop(): Promise<void>;
}

/** Creates a fresh database on the server of `DATABASE_URL`. */
export async function createServerDatabase(): Promise<ServerDatabase> {
  const base = serverUrl();
  if (!base) throw new Error("these tests need DATABASE_URL (a PostgreSQL server)");
  const name = `rematch_api_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const db = await openDatabase({
    databaseUrl: url.toString(),
    announce: false,
    maxConnections: 8,
  });
  return {
    url: url.toString(),
    db,
    async drop() {
      await db.close();
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** A spawned `serve` or `worker` process. */
export interface Spawned {
  readonly process: Deno.ChildProcess;
  /** Every JSON log line so far (stdout). */
  readonly events: LogEvent[];
  /** Everything printed on stderr so far. */
  readonly stderr: () => string;
  /** Waits for the first event matching `test` (already seen or yet to come). */
  waitFor(test: (event: LogEvent) => boolean, timeoutMs?: number): Promise<LogEvent>;
  /** Sends a signal. */
  kill(signal: Deno.Signal): void;
  /** Resolves with the exit code. */
  readonly exited: Promise<number>;
}

/** Spawns `deno run -A scripts/<script>.ts ...args` with JSON logs. */
export function spawnScript(
  script: "serve" | "worker",
  args: readonly string[],
  env: Record<string, string> = {},
  options: { readonly fileLimit?: number } = {},
): Spawned {
  const command = [
    Deno.execPath(),
    "run",
    "-A",
    join(ROOT, "scripts", `${script}.ts`),
    "--log-format",
    "json",
    ...args,
  ];
  // With a limit of open files, through a shell that sets it (`ulimit -n`) and becomes the process.
  const [program, ...programArgs] = options.fileLimit === undefined
    ? command
    : ["bash", "-c", `ulimit -n ${options.fileLimit} && exec "$@"`, "bash", ...command];
  const process = new Deno.Command(program, {
    args: programArgs,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const events: LogEvent[] = [];
  const waiters: { test: (e: LogEvent) => boolean; resolve: (e: LogEvent) => void }[] = [];
  let stderr = "";
  const readStdout = (async () => {
    let pending = "";
    for await (const chunk of process.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (pending + chunk).split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith("{")) continue;
        const event = JSON.parse(line) as LogEvent;
        events.push(event);
        for (const waiter of [...waiters]) {
          if (waiter.test(event)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(event);
          }
        }
      }
    }
  })();
  const readStderr = (async () => {
    for await (const chunk of process.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  const exited = (async () => {
    const status = await process.status;
    await Promise.all([readStdout, readStderr]);
    return status.code;
  })();
  return {
    process,
    events,
    stderr: () => stderr,
    exited,
    kill: (signal) => {
      try {
        process.kill(signal);
      } catch {
        // already gone
      }
    },
    waitFor(test, timeoutMs = 30_000) {
      const seen = events.find(test);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `${script}: no matching log line within ${timeoutMs} ms; stderr:\n${stderr}\n` +
                `events:\n${events.map((e) => JSON.stringify(e)).join("\n")}`,
            ),
          );
        }, timeoutMs);
        const waiter = {
          test,
          resolve: (event: LogEvent) => {
            clearTimeout(timer);
            resolve(event);
          },
        };
        waiters.push(waiter);
        exited.then(() => {
          if (!waiters.includes(waiter)) return;
          clearTimeout(timer);
          reject(new Error(`${script} exited before the expected log line; stderr:\n${stderr}`));
        });
      });
    },
  };
}

/** Spawns `serve` on a free loopback port and waits until it listens; returns its base URL. */
export async function spawnServe(
  databaseUrl: string,
  args: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<Spawned & { url: string; stop(): Promise<number> }> {
  const spawned = spawnScript("serve", [
    "--port",
    "0",
    "--database-url",
    databaseUrl,
    "--poll-interval",
    "0.2",
    ...args,
  ], env);
  const listening = await spawned.waitFor((e) => e.event === "server_listening");
  return {
    ...spawned,
    url: listening.url as string,
    async stop() {
      spawned.kill("SIGTERM");
      return await spawned.exited;
    },
  };
}

/** An in-process server on the test's database (one process: what the embedded backend allows). */
export async function startTestServer(
  db: Database,
  options: {
    tokens?: string;
    maxUploadBytes?: number;
    concurrency?: number;
    worker?: WorkerOptions;
    limits?: ServeOptions["limits"];
  } = {},
): Promise<RunningServer & { events: LogEvent[] }> {
  const events: LogEvent[] = [];
  const log = createLogger("json", (line) => events.push(JSON.parse(line)));
  const server = await startServer({
    db,
    port: 0,
    tokens: parseApiTokens(options.tokens),
    concurrency: options.concurrency ?? 1,
    maxUploadBytes: options.maxUploadBytes,
    limits: options.limits,
    worker: {
      pollIntervalMs: 100,
      heartbeatIntervalMs: 200,
      staleTimeoutMs: 5000,
      ...options.worker,
    },
    log,
  });
  return Object.assign(server, { events });
}

/** fetch with an optional bearer token; returns status and parsed JSON (or text). */
export async function call(
  base: string,
  path: string,
  init: RequestInit & { token?: string; json?: unknown } = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("content-type", "application/json");
    body = JSON.stringify(init.json);
  }
  const response = await fetch(`${base}${path}`, { ...init, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  if ((response.headers.get("content-type") ?? "").includes("application/json")) {
    parsed = JSON.parse(text);
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** A multipart dispatch of a file. */
export function dispatchForm(
  fields: { target_type: string; year?: number; config?: Record<string, unknown> },
  file: { name: string; text: string },
): FormData {
  const form = new FormData();
  form.append("target_type", fields.target_type);
  if (fields.year !== undefined) form.append("year", String(fields.year));
  if (fields.config) form.append("config", JSON.stringify(fields.config));
  form.append("file", new Blob([file.text], { type: "text/csv" }), file.name);
  return form;
}

/** One server-sent event. */
export interface StreamEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

/** Reads `/v1/sync/pipelines/{id}/stream` until its `done` event (or the timeout). */
export async function followPipeline(
  base: string,
  pipelineId: string,
  options: { token?: string; timeoutMs?: number } = {},
): Promise<{ events: StreamEvent[]; done: Record<string, unknown> }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 60_000);
  try {
    const response = await fetch(`${base}/v1/sync/pipelines/${pipelineId}/stream`, {
      headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
    const events: StreamEvent[] = [];
    let pending = "";
    for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let end: number;
      while ((end = pending.indexOf("\n\n")) !== -1) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6))
          .join("\n");
        if (!event) continue;
        const parsed = { event, data: JSON.parse(data) };
        events.push(parsed);
        if (event === "done") return { events, done: parsed.data };
      }
    }
    throw new Error(`the stream ended without a done event: ${JSON.stringify(events)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls until `check` returns a value (not undefined) or the timeout passes. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
