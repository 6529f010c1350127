// Test databases: each test file gets its own fresh database. TEST_DATABASE_URL / DATABASE_URL
// → a uniquely named database on that server; else a Docker engine → @testcontainers/postgresql;
// else an embedded PGlite in a temporary directory. REMATCH_TEST_BACKEND=embedded forces PGlite.
import postgres from "postgres";
import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { type Database, openDatabase, type Queryable } from "../src/db/connection.ts";
import { type CommandSpec, runCommand } from "../src/cli/command.ts";
import { parseArgs } from "node:util";

/** Which backend the harness chose for this run. */
export type TestBackend = "server" | "docker" | "embedded";

/** A test file's database plus its backend. */
export interface TestDatabase {
  readonly db: Database;
  readonly backend: TestBackend;
  /** The test database's URL on a server backend (for subprocesses); undefined when embedded. */
  readonly url?: string;
}

let announced = false;
// `deno test --parallel` runs files in separate isolates of one process: a marker file keyed by
// the process id makes the run say its backend once.
async function announce(backend: TestBackend, detail: string): Promise<void> {
  if (announced) return;
  announced = true;
  await holdRunLock();
  try {
    Deno.writeTextFileSync(join(tmpDir(), `rematch-test-backend-${Deno.pid}`), backend, {
      createNew: true,
    });
  } catch {
    return;
  }
  console.error(`test database backend: ${backend} (${detail})`);
}

function tmpDir(): string {
  return Deno.env.get("TMPDIR") ?? "/tmp";
}

let docker: Promise<{ url?: string; why: string }> | undefined;

// The part of @testcontainers/postgresql the harness uses.
interface TestcontainersPostgres {
  PostgreSqlContainer: new (image: string) => {
    start(): Promise<{ getConnectionUri(): string }>;
  };
}

// Started at most once per isolate; any failure (no engine) falls through to embedded, and the
// announcement says why.
function dockerServer(): Promise<{ url?: string; why: string }> {
  docker ??= (async () => {
    const socket = Deno.env.get("DOCKER_HOST") ?? "/var/run/docker.sock";
    if (!Deno.env.get("DOCKER_HOST") && !existsSync(socket)) {
      return { why: `no DATABASE_URL and no Docker engine at ${socket}` };
    }
    try {
      // Test-only and heavy (Docker client, native build scripts): kept out of deno.json and the
      // lockfile, and out of the module graph (a computed specifier), so installing rematch never
      // fetches it; Deno fetches it from npm on the first run that gets here.
      const specifier = ["npm:@testcontainers", "postgresql@12.2.0"].join("/");
      const { PostgreSqlContainer } = await import(specifier) as TestcontainersPostgres;
      const container = await new PostgreSqlContainer("postgres:15").start();
      return { url: container.getConnectionUri(), why: "testcontainers postgres:15" };
    } catch (error) {
      return { why: `no DATABASE_URL; Docker failed: ${(error as Error).message.split("\n")[0]}` };
    }
  })();
  return docker;
}

async function chooseServer(): Promise<{ url?: string; backend: TestBackend; why: string }> {
  if (Deno.env.get("REMATCH_TEST_BACKEND") === "embedded") {
    return { backend: "embedded", why: "REMATCH_TEST_BACKEND=embedded" };
  }
  const url = Deno.env.get("TEST_DATABASE_URL") || Deno.env.get("DATABASE_URL");
  if (url) return { url, backend: "server", why: "one database per test file" };
  const found = await dockerServer();
  return found.url
    ? { url: found.url, backend: "docker", why: found.why }
    : { backend: "embedded", why: found.why };
}

/**
 * True when this run's test databases live on a PostgreSQL server (URL given, not forced to
 * embedded). Concurrency tests need one: PGlite serves every connection from one session.
 */
export function serverBackendExpected(): boolean {
  return Deno.env.get("REMATCH_TEST_BACKEND") !== "embedded" &&
    Boolean(Deno.env.get("TEST_DATABASE_URL") || Deno.env.get("DATABASE_URL"));
}

/** Creates a fresh migrated database for one test file. */
export async function createTestDatabase(): Promise<TestDatabase & { drop(): Promise<void> }> {
  const server = await chooseServer();
  if (server.url) {
    const name = `rematch_test_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`;
    const admin = postgres(server.url, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    const url = new URL(server.url);
    url.pathname = `/${name}`;
    await announce(server.backend, server.why);
    const db = await openDatabase({ databaseUrl: url.toString(), announce: false });
    return {
      db,
      backend: server.backend,
      url: url.toString(),
      async drop() {
        await db.close();
        await admin.unsafe(`drop database if exists ${name} with (force)`);
        await admin.end();
      },
    };
  }
  await announce("embedded", `PGlite in a temporary directory per test file; ${server.why}`);
  const dir = await Deno.makeTempDir({ prefix: "rematch-test-" });
  const dataDir = join(dir, "db");
  // initdb plus migrations cost seconds; a migrated template directory is copied instead.
  cpSync(await embeddedTemplate(), dataDir, { recursive: true });
  const db = await openDatabase({ databaseUrl: "", dataDir, announce: false });
  return {
    db,
    backend: "embedded",
    async drop() {
      await db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

let template: Promise<string> | undefined;

// One migrated template per isolate, named after the process so that a later run can remove the
// templates of runs that are gone (an unload hook cannot: with --parallel, one isolate runs several
// test files and unload fires after the first).
function embeddedTemplate(): Promise<string> {
  template ??= (async () => {
    // Test files run in isolates of one process: the first template built is shared by all.
    const shared = join(tmpDir(), `rematch-template-${Deno.pid}`);
    if (existsSync(join(shared, "db"))) return join(shared, "db");
    await holdRunLock();
    await removeStaleTemplates();
    const dir = await Deno.makeTempDir({ prefix: `rematch-template-${Deno.pid}-` });
    const db = await openDatabase({ databaseUrl: "", dataDir: join(dir, "db"), announce: false });
    await db.close();
    try {
      await Deno.rename(dir, shared);
    } catch {
      // Another isolate published its template first: use that one.
      await Deno.remove(dir, { recursive: true });
    }
    return join(shared, "db");
  })();
  return template;
}

// Files named after this process (templates, the backend marker) are cleaned up by a later run
// once the process is gone. It holds a shared OS lock on `rematch-run-<pid>.lock` while it lives
// (every isolate of the process takes one); the kernel drops it when the process ends, so a later
// run knows the owner is gone when it can take the lock exclusively. No signal is sent, and a
// reused pid cannot fool it.
let runLock: Promise<void> | undefined;
function holdRunLock(): Promise<void> {
  runLock ??= (async () => {
    const file = await Deno.open(runLockPath(Deno.pid), { write: true, create: true });
    await file.lock(false); // kept open, and so held, until the process ends
  })();
  return runLock;
}

function runLockPath(pid: number): string {
  return join(tmpDir(), `rematch-run-${pid}.lock`);
}

async function ownerIsGone(pid: number): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(runLockPath(pid), { write: true });
  } catch {
    return true; // left by a run older than the lock files, or already cleaned
  }
  try {
    return await file.tryLock(true);
  } finally {
    file.close();
  }
}

async function removeStaleTemplates(): Promise<void> {
  for await (const entry of Deno.readDir(tmpDir())) {
    const match = /^rematch-(?:template|test-backend|run)-(\d+)/.exec(entry.name);
    const pid = Number(match?.[1]);
    if (!pid || pid === Deno.pid || !(await ownerIsGone(pid))) continue;
    await Deno.remove(join(tmpDir(), entry.name), { recursive: true }).catch(() => {});
  }
}

const DATA_TABLES = [
  "rematch_runs",
  "factor_versions",
  "factor_imports",
  "data_ingestion_jobs",
  "workers",
  "uploads",
  "pipelines",
  "data_entry_emissions",
  "data_entries",
  "carbon_report_modules",
  "carbon_reports",
  "units",
  "factors",
  "locations",
  "building_rooms",
  "exchange_rates",
  "slice_states",
];

/** Empties every data table (reference tables and migrations stay). */
export async function truncateData(db: Database): Promise<void> {
  await db.sql.unsafe(`truncate ${DATA_TABLES.join(", ")} restart identity cascade`);
}

/**
 * Registers this test file's database: created before its first test, dropped after its last.
 * Use {@linkcode dbTest} for tests that need it; each such test starts from empty data tables.
 */
export function useTestDatabase(): { readonly current: TestDatabase } {
  let handle: (TestDatabase & { drop(): Promise<void> }) | undefined;
  Deno.test.beforeAll(async () => {
    handle = await createTestDatabase();
  });
  Deno.test.afterAll(async () => {
    await handle?.drop();
  });
  return {
    get current() {
      if (!handle) {
        throw new Error("test database not ready: call useTestDatabase() at module level");
      }
      return handle;
    },
  };
}

/** A Deno.test that runs against the file's database after emptying its data tables. */
export function dbTest(
  handle: { readonly current: TestDatabase },
  name: string,
  fn: (db: Database) => Promise<void>,
  options: { ignore?: boolean } = {},
): void {
  Deno.test({
    name,
    ignore: options.ignore,
    // postgres.js keeps its sockets and their reads open between tests by design.
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const { db } = handle.current;
      await truncateData(db);
      await fn(db);
    },
  });
}

/**
 * The command with its database replaced by the test's: flags, validation, output and exit codes
 * run as on the command line. (Pointing the CLI at a test database through the environment would
 * race: parallel test files share one process environment.)
 */
export function onDatabase<T>(spec: CommandSpec<T>, db: Database): CommandSpec<T> {
  return {
    ...spec,
    run: (args, context) => spec.run(args, { ...context, database: () => Promise.resolve(db) }),
  };
}

/** Runs a command as `main` does, capturing what it prints. */
export async function runCaptured<T>(
  spec: CommandSpec<T>,
  argv: string[],
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => out.push(parts.join(" "));
  console.error = (...parts: unknown[]) => err.push(parts.join(" "));
  try {
    const code = await runCommand(spec, argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** Runs a command's body on the test database, its argv parsed and validated as the CLI does. */
export async function runOn<T>(spec: CommandSpec<T>, db: Database, argv: string[], json = false) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: spec.options,
    allowPositionals: true,
    strict: true,
  });
  return await spec.run(spec.schema.parse({ ...values, positionals }), {
    database: () => Promise.resolve(db),
    json,
    interactive: false,
  });
}

/** A database URL nothing listens on: for CLI runs that must fail before reaching a database. */
export const NO_DATABASE = ["--database-url", "postgres://nobody@127.0.0.1:1/none"];

/** Runs the command as the CLI does (without a reachable database), capturing what it prints. */
export function runCli<T>(spec: CommandSpec<T>, argv: string[]) {
  return runCaptured(spec, [...argv, ...NO_DATABASE]);
}

/** Runs `take` in a transaction of its own and holds what it locked until released. */
export async function holdInTransaction(
  db: Database,
  take: (tx: Queryable) => Promise<unknown>,
): Promise<{ release(): Promise<void> }> {
  const locked = Promise.withResolvers<void>();
  const done = Promise.withResolvers<void>();
  const holding = db.sql.begin(async (tx) => {
    await take(tx);
    locked.resolve();
    await done.promise;
  });
  await locked.promise;
  return {
    async release() {
      done.resolve();
      await holding;
    },
  };
}

/** Until some session of the database waits for a lock (about 5 s at most). */
export async function untilSomeoneWaitsForALock(db: Database): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const [{ waiting }] = await db.sql<{ waiting: number }[]>`
      select count(*)::int as waiting from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`;
    if (waiting > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}
