// One way to reach the database: a PostgreSQL server named by DATABASE_URL, or the embedded
// PGlite database served to postgres.js on a private loopback port.
import postgres from "postgres";
import type { PGlite } from "@electric-sql/pglite";
import type { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { existsSync } from "node:fs";
import net from "node:net";
import { setImmediate } from "node:timers";
import { dirname, join, resolve } from "node:path";
import {
  applyMigrations,
  type MigrationResult,
  requireCurrentSchema,
  SchemaVersionError,
} from "./migrate.ts";

/** The postgres.js client type used across the project. */
export type Sql = postgres.Sql<Record<string, never>>;

/** A session of its own, taken from a client's pool until released. */
export type ReservedSql = postgres.ReservedSql<Record<string, never>>;

/** A transaction (or plain) client: anything that runs tagged-template queries. */
export type Queryable =
  | postgres.Sql<Record<string, never>>
  | postgres.TransactionSql<Record<string, never>>
  | ReservedSql;

/** Which kind of database a {@linkcode Database} talks to. */
export type DatabaseKind = "embedded" | "server";

/**
 * What a command does with the database: `read` never creates or migrates anything and refuses
 * a database whose schema is missing or behind; `write` applies pending migrations first.
 */
export type DatabaseAccess = "read" | "write";

/** An open database: the postgres.js client plus what it is and how to close it. */
export interface Database extends AsyncDisposable {
  /** The postgres.js client. */
  readonly sql: Sql;
  /** `embedded` (PGlite) or `server` (a PostgreSQL server). */
  readonly kind: DatabaseKind;
  /** `embedded: <dir>` or the URL without its password. */
  readonly description: string;
  /** What opening it for writing did to the schema; absent when opened for reading. */
  readonly migrations?: MigrationResult;
  /**
   * Server only: a client of its own (as many connections as `sql`, each opened when first used)
   * on which a rematch reads a whole slice beside its transaction, in that transaction's snapshot
   * (see `readSliceBeside`). Its own pool, so that a rematch waiting for a reader never waits on
   * a connection that another rematch's transaction holds.
   */
  readonly readerSql?: Sql;
  /** Ends every connection; for the embedded database also stops the socket and closes PGlite. */
  close(): Promise<void>;
}

/** Options of {@linkcode openDatabase}. */
export interface OpenDatabaseOptions {
  /** Server URL; "" forces the embedded database. @default Deno.env DATABASE_URL (unset: embedded) */
  databaseUrl?: string;
  /** Embedded data directory. @default Deno.env REMATCH_DATA_DIR (unless empty) or "./.rematch/db" */
  dataDir?: string;
  /** `write` applies pending migrations; `read` only checks the schema. @default "write" */
  access?: DatabaseAccess;
  /**
   * Print on stderr which database is used, migrations being applied and waits for a busy
   * embedded directory. @default true
   */
  announce?: boolean;
  /** Maximum server connections (the embedded database always uses one). @default 4 */
  maxConnections?: number;
  /**
   * Seconds one connection attempt to a server may take (there are at most
   * {@linkcode CONNECT_ATTEMPTS}). @default Deno.env REMATCH_CONNECT_TIMEOUT or 10
   */
  connectTimeout?: number;
  /**
   * Wait while another process has the embedded directory open (with a message on stderr);
   * false fails at once with a {@linkcode DatabaseBusyError}. @default true
   */
  wait?: boolean;
  /**
   * Who runs on the embedded database alone (e.g. "the demo"): when PGlite cannot be loaded, the
   * message says so and names no server as the way out.
   */
  embeddedOnly?: string;
}

/** Thrown when the embedded directory is open in another process and waiting is off. */
export class DatabaseBusyError extends Error {
  override name = "DatabaseBusyError";
}

/** Thrown when no connection to the server could be made within the attempts allowed. */
export class DatabaseConnectError extends Error {
  override name = "DatabaseConnectError";
}

/** How many times connecting to a server is tried before giving up. */
export const CONNECT_ATTEMPTS = 3;

/** Seconds per connection attempt when neither the option nor REMATCH_CONNECT_TIMEOUT says. */
export const DEFAULT_CONNECT_TIMEOUT = 10;

// bigint columns (ids, counts) come back as numbers: ids stay far below 2^53.
const CLIENT_TYPES = {
  bigint: {
    to: 20,
    from: [20],
    serialize: (value: number | bigint) => String(value),
    parse: (value: string) => Number(value),
  },
};

// `scheme://user:password@` (the password may hold anything but whitespace and quotes; the last
// `@` of the word ends it; `host:port/` is no password, whatever `@` its path holds) and the
// `password=value` pairs of connection strings and queries.
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@'"]*:)(?!\d*[/?#])[^\s'"]*@/gi;
const KEY_VALUE_PASSWORD = /(password\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,'"]+)/gi;
const REDACTED = "***";

// Known secrets shorter than this are not searched for as bare text: they would blank out
// ordinary words. Their URL and key=value forms are still redacted by the patterns.
const MIN_BARE_SECRET = 4;

/**
 * Removes passwords from text meant for a person or a log: the password of every URL
 * (`postgres://user:***@host`), every `password=...` pair, and the bare text of the passwords
 * in `DATABASE_URL`, `PGPASSWORD` and the `urls` given (so an unparsable URL leaks nothing).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactSecrets } from "./connection.ts";
 * assert.equal(
 *   redactSecrets("Invalid URL: 'postgres://ops:s3cret@db host/carbon'"),
 *   "Invalid URL: 'postgres://ops:***@db host/carbon'",
 * );
 * assert.equal(redactSecrets("host=db password=s3cret user=ops"), "host=db password=*** user=ops");
 * ```
 */
export function redactSecrets(text: string, urls: readonly string[] = []): string {
  let result = text.replace(URL_PASSWORD, `$1${REDACTED}@`).replace(
    KEY_VALUE_PASSWORD,
    `$1${REDACTED}`,
  );
  for (const secret of knownSecrets(urls)) {
    if (secret.length >= MIN_BARE_SECRET) result = result.replaceAll(secret, REDACTED);
  }
  return result;
}

/**
 * An environment variable, or undefined where the process may not read the environment (a
 * library caller without --allow-env passes what it means as options).
 */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function knownSecrets(urls: readonly string[]): string[] {
  const secrets: string[] = [];
  const env = readEnv;
  for (const url of [...urls, env("DATABASE_URL") ?? ""]) {
    // Lenient on purpose: the URL may be one `new URL` rejects. The password runs from the
    // colon after the user to the last `@`.
    const password = /^[a-z][a-z0-9+.-]*:\/\/[^:/@]*:(.*)@[^@]*$/is.exec(url.trim())?.[1];
    if (password) {
      secrets.push(password);
      try {
        secrets.push(decodeURIComponent(password));
      } catch {
        // not percent-encoded text: the raw form is enough
      }
    }
  }
  const pgPassword = env("PGPASSWORD");
  if (pgPassword) secrets.push(pgPassword);
  // Longest first, so a secret containing another is replaced whole.
  return [...new Set(secrets)].sort((a, b) => b.length - a.length);
}

/** The URL with its password removed, for messages. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    return redactSecrets(parsed.toString(), [url]);
  } catch {
    return redactSecrets(url, [url]);
  }
}

/**
 * Opens the database the environment names. With `write` access (the default) pending
 * migrations are applied, saying so on stderr; with `read` access a database without the
 * schema, or behind it, is refused and nothing is created. Permissions: net and read/write of
 * the data directory; env as well for a server, whose driver reads the `PG*` variables
 * (`--allow-env` suffices; the options take precedence over the variables this module reads).
 *
 * @example
 * ```ts ignore
 * import { openDatabase } from "./connection.ts";
 * await using db = await openDatabase({ dataDir: "/tmp/rematch-example" });
 * console.log(await db.sql`select 1 as one`);
 * ```
 */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const url = options.databaseUrl ?? readEnv("DATABASE_URL") ?? "";
  // An empty REMATCH_DATA_DIR (`export REMATCH_DATA_DIR=`) is unset, as an empty DATABASE_URL
  // is: "" would put the database in the working directory itself (the checkout).
  const dataDir = options.dataDir ?? (readEnv("REMATCH_DATA_DIR") || "./.rematch/db");
  const access = options.access ?? "write";
  const log = (options.announce ?? true) ? (line: string) => console.error(line) : () => {};
  log(`database: ${url ? redactDatabaseUrl(url) : `embedded: ${dataDir}`}`);
  if (url) tolerateDriverWriteAfterClose();
  const db = url
    ? await openServer(url, options.maxConnections ?? 4, options.connectTimeout)
    : await openEmbedded(dataDir, {
      access,
      wait: options.wait ?? true,
      log,
      embeddedOnly: options.embeddedOnly,
    });
  try {
    if (access === "read") {
      await requireCurrentSchema(db.sql);
      return db;
    }
    const migrations = await applyMigrations(db.sql, { onWrite: log });
    return { ...db, migrations };
  } catch (error) {
    await db.close();
    throw error;
  }
}

/**
 * Keeps the process alive through a known postgres.js 3.4.9 race: a message of under 1 KB waits
 * for the event loop's next turn (`setImmediate`) to be written, and when the server ends the
 * connection meanwhile (`pg_terminate_backend`, a restart) that write runs on a socket already
 * set to null and throws where nothing can catch it, ending a worker or a server mid-job. The
 * driver has by then rejected every query of that connection (CONNECTION_CLOSED), so what the
 * write carried belonged to queries already failed: the error is dropped and the process goes on
 * (its job fails, or is retried, as for any lost connection). Any other uncaught error ends the
 * process as before.
 */
export function isDriverWriteAfterClose(error: unknown): boolean {
  // The driver's function, by name: in the bundle its file is the bundle's.
  return error instanceof TypeError &&
    error.message === "Cannot read properties of null (reading 'write')" &&
    /\bat (?:Immediate\.)?nextWrite \(/.test(error.stack ?? "");
}

/**
 * Whether an error says the connection it came through is gone: closed or reset, or the server
 * ending the session (`pg_terminate_backend`, a shutdown, a restart). Nothing more can be sent
 * on it; the server has rolled back its transaction.
 */
export function isConnectionLost(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return [
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "CONNECT_TIMEOUT",
    "ECONNRESET",
    "ECONNREFUSED",
    "EPIPE",
    "57P01", // admin_shutdown (pg_terminate_backend, a fast shutdown)
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now
  ].includes(code) || code.startsWith("08"); // connection exceptions
}

let toleratingWriteAfterClose = false;

function tolerateDriverWriteAfterClose(): void {
  if (toleratingWriteAfterClose) return;
  toleratingWriteAfterClose = true;
  globalThis.addEventListener("error", (event) => {
    if (isDriverWriteAfterClose(event.error)) event.preventDefault();
  });
}

// Both settings are also set on the embedded session, which ignores startup parameters.
function sessionParameters() {
  return {
    // As libpq does, PGAPPNAME names the session (in pg_stat_activity) when set.
    application_name: readEnv("PGAPPNAME") || "rematch",
    // Floats come back with every digit (shortest exact form), whatever the server's or the
    // database's default: a no-op rematch compares stored kg exactly.
    extra_float_digits: 3,
  };
}

// `socket` (a factory of connected sockets) is a postgres.js option its types leave out. The
// factory handed over never rejects: postgres.js (3.4.9) leaves a connection whose factory
// rejected "connecting" for good, a slot of its pool gone, so that after as many failed attempts
// as the pool has connections (a database unreachable for some seconds) every query waited
// forever, the database back or not. A failed connection is handed over as a socket destroyed
// with its error, which postgres.js takes as any connection that failed: its queries fail with
// that error, and the slot is free for the next attempt.
function socketOption(factory: (target: SocketTarget) => Promise<net.Socket>): object {
  return {
    socket: async (target: SocketTarget) => {
      try {
        return await factory(target);
      } catch (error) {
        return failedSocket(error);
      }
    },
  };
}

function failedSocket(error: unknown): net.Socket {
  const socket = new net.Socket();
  // postgres.js writes its startup message to the socket at once (it takes it as connected) and
  // sends it a turn of the event loop later; a connection that closes before that send keeps the
  // message pending, and the slot's next connection, its own message queued behind, never sends
  // it: its queries wait for good. So the write is taken (and dropped), and the socket fails once
  // it has been sent. The listener keeps the error from ever being uncaught.
  socket.write = (() => true) as typeof socket.write;
  socket.on("error", () => {});
  const failure = error instanceof Error ? error : new Error(String(error));
  setTimeout(() => socket.destroy(failure), 10);
  return socket;
}

function clientOptions() {
  return { onnotice: () => {}, types: CLIENT_TYPES, connection: sessionParameters() };
}

/** The connect timeout in seconds: the option, else REMATCH_CONNECT_TIMEOUT, else the default. */
export function connectTimeoutSeconds(option?: number): number {
  if (option !== undefined) return option;
  const text = readEnv("REMATCH_CONNECT_TIMEOUT");
  if (text === undefined || text === "") return DEFAULT_CONNECT_TIMEOUT;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(seconds > 0)) {
    throw new DatabaseConnectError(
      `REMATCH_CONNECT_TIMEOUT: expected a number of seconds above 0 (e.g. 10), got "${text}"`,
    );
  }
  return seconds;
}

// Errors a server sends that may pass: starting up, shutting down, too many connections.
const TRANSIENT_SERVER_ERRORS = new Set(["57P01", "57P03", "53300"]);

async function openServer(url: string, max: number, timeout?: number): Promise<Database> {
  const seconds = connectTimeoutSeconds(timeout);
  const description = redactDatabaseUrl(url);
  for (let attempt = 1;; attempt++) {
    const problem = await tryConnect(url, max, seconds);
    if (!("reason" in problem)) {
      const { sql } = problem;
      const readerSql = postgres(url, {
        ...clientOptions(),
        max,
        connect_timeout: seconds,
        ...socketOption((target) => connectSocket(target, [], seconds)),
      }) as unknown as Sql;
      const close = async () => {
        await Promise.all([sql.end({ timeout: 5 }), readerSql.end({ timeout: 5 })]);
      };
      return { sql, readerSql, kind: "server", description, close, [Symbol.asyncDispose]: close };
    }
    if (!problem.transient || attempt >= CONNECT_ATTEMPTS) {
      const tries = problem.transient
        ? ` (${attempt} attempts of at most ${seconds} s; --connect-timeout or ` +
          "REMATCH_CONNECT_TIMEOUT changes the time)"
        : "";
      throw new DatabaseConnectError(
        `cannot connect to ${description}: ${redactSecrets(problem.reason, [url])}${tries}`,
      );
    }
    await new Promise((done) => setTimeout(done, 500 * attempt));
  }
}

// One attempt: a fresh client whose first query must succeed within the timeout. postgres.js
// alone reconnects at once, forever, when a server hangs up before the session is ready; so the
// client's sockets come from here, and while the attempt runs a hang-up ends it.
async function tryConnect(
  url: string,
  max: number,
  seconds: number,
): Promise<{ sql: Sql } | { reason: string; transient: boolean }> {
  let fail: (reason: string) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = (reason) => reject(new Error(reason));
  });
  failed.catch(() => {});
  let probing = true;
  const sockets: net.Socket[] = [];
  const openSocket = async (target: SocketTarget): Promise<net.Socket> => {
    if (probing && sockets.length > 0) {
      throw new Error("the server closed the connection before the session was ready");
    }
    const socket = await connectSocket(target, sockets, seconds);
    socket.once("close", () => {
      if (probing) fail("the server closed the connection before the session was ready");
    });
    return socket;
  };
  let sql: Sql;
  try {
    sql = postgres(url, {
      ...clientOptions(),
      max,
      connect_timeout: seconds,
      ...socketOption(openSocket),
    }) as unknown as Sql;
  } catch (error) {
    return { reason: (error as Error).message, transient: false };
  }
  const timer = setTimeout(() => fail(`no answer within ${seconds} s`), seconds * 1000);
  try {
    await Promise.race([sql`select 1`, failed]);
    probing = false;
    return { sql };
  } catch (error) {
    probing = false;
    await sql.end({ timeout: 0 }).catch(() => {});
    for (const socket of sockets) socket.destroy();
    if (error instanceof postgres.PostgresError) {
      return { reason: error.message, transient: TRANSIENT_SERVER_ERRORS.has(error.code) };
    }
    return { reason: (error as Error).message, transient: true };
  } finally {
    clearTimeout(timer);
  }
}

/** What postgres.js hands a socket factory: its parsed hosts and ports, or a unix socket path. */
export interface SocketTarget {
  host: string[];
  port: number[];
  path?: string | false;
}

/**
 * The client's sockets (postgres.js's `socket` option): connects to the first host that accepts, in
 * the URL's order (as postgres.js would), each given at most `seconds` when set (a host that drops
 * the connection attempt is passed over then, as postgres.js's own connect timeout would). Every
 * socket opened is pushed to `opened`. A TCP socket sends at once (TCP_NODELAY, as libpq's do):
 * postgres.js leaves Nagle's algorithm on, which can hold the last part of a large statement until
 * the server acknowledges the part before (see "No waiting for acknowledgements" in
 * docs/performance.md).
 */
export async function connectSocket(
  target: SocketTarget,
  opened: net.Socket[] = [],
  seconds?: number,
): Promise<net.Socket> {
  const places: { name: string; open: () => net.Socket }[] = target.path
    ? [{ name: target.path, open: () => net.connect(target.path as string) }]
    : target.host.map((host, i) => {
      const port = target.port[i] ?? target.port[0];
      return { name: `${host}:${port}`, open: () => net.connect(port, host).setNoDelay(true) };
    });
  let lastError: unknown;
  for (const place of places) {
    const socket = place.open();
    opened.push(socket);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = seconds === undefined ? undefined : setTimeout(() => {
          socket.destroy();
          reject(new Error(`${place.name}: no connection within ${seconds} s`));
        }, seconds * 1000);
        const fail = (error: Error) => {
          clearTimeout(timer);
          reject(error);
        };
        socket.once("connect", () => {
          clearTimeout(timer);
          socket.off("error", fail);
          resolve();
        });
        socket.once("error", fail);
      });
      return socket;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

// PGlite (PostgreSQL in WebAssembly) is loaded only when the embedded database is used: commands
// against a server never load it, and the bundle leaves it out (it loads it from npm on use).
async function loadEmbedded(embeddedOnly: string | undefined) {
  try {
    const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([
      import("@electric-sql/pglite"),
      import("@electric-sql/pglite-socket"),
    ]);
    return { PGlite, PGLiteSocketServer };
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new DatabaseConnectError(
      `the embedded database (npm:@electric-sql/pglite) cannot be loaded here (${reason}): ` +
        (embeddedOnly
          ? `${embeddedOnly} runs on it alone; run it where Deno can fetch npm packages once (they ` +
            "stay in its cache), or use the other commands against a server"
          : "set DATABASE_URL or --database-url to a PostgreSQL server"),
    );
  }
}

async function openEmbedded(
  dataDir: string,
  options: {
    access: DatabaseAccess;
    wait: boolean;
    log: (line: string) => void;
    embeddedOnly: string | undefined;
  },
): Promise<Database> {
  const dir = resolve(dataDir);
  const embedded = await loadEmbedded(options.embeddedOnly);
  if (options.access === "read" && !existsSync(join(dir, "PG_VERSION"))) {
    // Creating the directory would be a write: a reader leaves the disk as it found it.
    throw new SchemaVersionError(
      `the embedded database ${dataDir} does not exist: run \`deno task migrate\` first ` +
        "(this command only reads)",
    );
  }
  await Deno.mkdir(dirname(dir), { recursive: true });
  const releaseLock = await lockDataDir(dir, options);
  let pglite: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    pglite = await embedded.PGlite.create(dir);
    for (const [name, value] of Object.entries(sessionParameters())) {
      await pglite.query("select set_config($1, $2, false)", [name, String(value)]);
    }
    // One connection: PGlite is a single backend session, so several client connections
    // would interleave inside each other's transactions.
    server = new embedded.PGLiteSocketServer({
      db: pglite,
      host: "127.0.0.1",
      port: 0,
      maxConnections: 1,
    });
    await server.start();
    const port = Number(server.getServerConn().split(":").pop());
    const sql = postgres({
      ...clientOptions(),
      host: "127.0.0.1",
      port,
      user: "postgres",
      database: "postgres",
      max: 1,
      ...socketOption((target) => connectSocket(target)),
    }) as unknown as Sql;
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await sql.end({ timeout: 5 });
      await server!.stop();
      await pglite!.close();
      await releaseLock();
    };
    return {
      sql,
      kind: "embedded",
      description: `embedded: ${dataDir}`,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await server?.stop().catch(() => {});
    await pglite?.close().catch(() => {});
    await releaseLock();
    throw error;
  }
}

/** Who holds an embedded directory, as written into its lock file. */
export interface LockHolder {
  /** Process id. */
  readonly pid: number;
  /** The command line (passwords redacted). */
  readonly command: string;
  /** When it took the directory (ISO 8601). */
  readonly since: string;
}

/** The lock file of an embedded data directory: `<dir>.lock`, beside it. */
export function lockFileOf(dataDir: string): string {
  return `${resolve(dataDir)}.lock`;
}

/**
 * Reads who holds (or last held) the directory from its lock file; undefined when the file is
 * missing, empty or unreadable. Holding is decided by the OS lock alone, never by this text.
 */
export async function readLockHolder(dataDir: string): Promise<LockHolder | undefined> {
  const text = await Deno.readTextFile(lockFileOf(dataDir)).catch(() => "");
  try {
    const holder = JSON.parse(text);
    if (typeof holder?.pid === "number") {
      return { pid: holder.pid, command: String(holder.command), since: String(holder.since) };
    }
  } catch {
    // an older pid-only file, or one being written
  }
  return undefined;
}

const LOCK_POLL_MS = 100;

// PGlite cannot share a directory between processes. An exclusive OS lock (flock) on
// `<dir>.lock`, held as long as the directory is open, keeps every other process out; the kernel
// drops it when the process ends however it ends, so a lock never outlives its holder and
// taking it is one atomic step. The file stays; its text only says who holds it.
async function lockDataDir(
  dir: string,
  options: { wait: boolean; log: (line: string) => void },
): Promise<() => Promise<void>> {
  const lockPath = lockFileOf(dir);
  const file = await Deno.open(lockPath, { read: true, write: true, create: true });
  try {
    let said: string | undefined;
    let lastRead: string | undefined;
    for (let polls = 0; !(await file.tryLock(true)); polls++) {
      const holder = await readLockHolder(dir);
      const busy = `embedded database ${dir} is in use: its lock file ${lockPath} is held by ${
        describeHolder(holder)
      }`;
      if (!options.wait) {
        throw new DatabaseBusyError(
          `${busy}; not waiting (--no-wait): run again once it has finished, or set DATABASE_URL`,
        );
      }
      // The text is written just after the lock is taken: for an instant it still names the
      // previous (perhaps killed) holder, or nobody. A holder is named once the same text is read
      // twice in a row, and named again only when another one is.
      const read = JSON.stringify(holder ?? null);
      const stable = read === lastRead;
      lastRead = read;
      if (holder && stable ? busy !== said : said === undefined && polls >= 5) {
        options.log(`waiting: ${busy} (--no-wait fails instead)`);
        said = busy;
      }
      await new Promise((done) => setTimeout(done, LOCK_POLL_MS));
    }
    const holder: LockHolder = {
      pid: Deno.pid,
      command: redactSecrets(commandLine()),
      since: new Date().toISOString(),
    };
    await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
    const bytes = new TextEncoder().encode(`${JSON.stringify(holder)}\n`);
    for (let offset = 0; offset < bytes.length;) {
      offset += await file.write(bytes.subarray(offset));
    }
  } catch (error) {
    file.close();
    throw error;
  }
  return async () => {
    // Emptied while still locked, so the next holder's text is never overwritten.
    await file.truncate(0).catch(() => {});
    file.close();
  };
}

function describeHolder(holder: LockHolder | undefined): string {
  return holder
    ? `process ${holder.pid} (${holder.command}) since ${holder.since}`
    : "another process (it has not written its name yet)";
}

function commandLine(): string {
  const main = Deno.mainModule.startsWith("file:")
    ? decodeURIComponent(new URL(Deno.mainModule).pathname)
    : Deno.mainModule;
  return [main, ...Deno.args].join(" ");
}

/**
 * Resolves once what the driver queued is on its way to the server. Nothing a query writes leaves
 * the process before the event loop turns: postgres.js holds a short message (a FETCH) for the
 * loop's next turn, and the socket's write completes in the turn after it. A FETCH meant to run
 * on the server while the caller computes would otherwise leave only when the caller next waits,
 * and every read would be waited for whole. Measured (a FETCH of 1,000 rows, then 15 ms of
 * computing): waited for 6.2 ms without a turn, 5.5 ms after one, 1.7 ms (parsing its rows) after
 * two, which take 0.8 ms (a zero timeout instead takes 2.4 ms).
 */
export async function untilSent(): Promise<void> {
  for (let turn = 0; turn < 2; turn++) await new Promise((done) => setImmediate(done));
}
