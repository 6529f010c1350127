// One way to reach the database: a PostgreSQL server named by DATABASE_URL, or the embedded
// PGlite database served to postgres.js on a private loopback port.
import postgres from "postgres";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { dirname, resolve } from "node:path";
import { applyMigrations } from "./migrate.ts";

/** The postgres.js client type used across the project. */
export type Sql = postgres.Sql<Record<string, never>>;

/** A transaction (or plain) client: anything that runs tagged-template queries. */
export type Queryable =
  | postgres.Sql<Record<string, never>>
  | postgres.TransactionSql<Record<string, never>>;

/** Which kind of database a {@linkcode Database} talks to. */
export type DatabaseKind = "embedded" | "server";

/** An open database: the postgres.js client plus what it is and how to close it. */
export interface Database extends AsyncDisposable {
  /** The postgres.js client. */
  readonly sql: Sql;
  /** `embedded` (PGlite) or `server` (a PostgreSQL server). */
  readonly kind: DatabaseKind;
  /** `embedded: <dir>` or the URL without its password. */
  readonly description: string;
  /** Ends every connection; for the embedded database also stops the socket and closes PGlite. */
  close(): Promise<void>;
}

/** Options of {@linkcode openDatabase}. */
export interface OpenDatabaseOptions {
  /** Server URL; "" forces the embedded database. @default Deno.env DATABASE_URL (unset: embedded) */
  databaseUrl?: string;
  /** Embedded data directory. @default Deno.env REMATCH_DATA_DIR or "./.rematch/db" */
  dataDir?: string;
  /** Apply pending migrations after connecting. @default true */
  migrate?: boolean;
  /** Print one line on stderr saying which database is used. @default true */
  announce?: boolean;
  /** Maximum server connections (the embedded database always uses one). @default 4 */
  maxConnections?: number;
}

/** Thrown when the embedded directory is already open in another live process. */
export class DatabaseBusyError extends Error {
  override name = "DatabaseBusyError";
}

// bigint columns (ids, counts) come back as numbers: ids stay far below 2^53.
const CLIENT_TYPES = {
  bigint: {
    to: 20,
    from: [20],
    serialize: (value: number | bigint) => String(value),
    parse: (value: string) => Number(value),
  },
};

/** The URL with its password removed, for messages. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    return parsed.toString();
  } catch {
    return "(unparsable DATABASE_URL)";
  }
}

/**
 * Opens the database the environment names and applies pending migrations.
 *
 * @example
 * ```ts ignore
 * import { openDatabase } from "./connection.ts";
 * await using db = await openDatabase({ dataDir: "/tmp/rematch-example" });
 * console.log(await db.sql`select 1 as one`);
 * ```
 */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const url = options.databaseUrl ?? Deno.env.get("DATABASE_URL") ?? "";
  const db = url ? openServer(url, options.maxConnections ?? 4) : await openEmbedded(
    options.dataDir ?? Deno.env.get("REMATCH_DATA_DIR") ?? "./.rematch/db",
  );
  if (options.announce ?? true) console.error(`database: ${db.description}`);
  if (options.migrate ?? true) {
    try {
      await applyMigrations(db.sql);
    } catch (error) {
      await db.close();
      throw error;
    }
  }
  return db;
}

function clientOptions() {
  return { onnotice: () => {}, types: CLIENT_TYPES, connection: { application_name: "rematch" } };
}

function openServer(url: string, max: number): Database {
  const sql = postgres(url, { ...clientOptions(), max }) as unknown as Sql;
  const close = () => sql.end({ timeout: 5 });
  return {
    sql,
    kind: "server",
    description: redactDatabaseUrl(url),
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function openEmbedded(dataDir: string): Promise<Database> {
  const dir = resolve(dataDir);
  await Deno.mkdir(dirname(dir), { recursive: true });
  const releaseLock = await lockDataDir(dir);
  let pglite: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    pglite = await PGlite.create(dir);
    // One connection: PGlite is a single backend session, so several client connections
    // would interleave inside each other's transactions.
    server = new PGLiteSocketServer({ db: pglite, host: "127.0.0.1", port: 0, maxConnections: 1 });
    await server.start();
    const port = Number(server.getServerConn().split(":").pop());
    const sql = postgres({
      ...clientOptions(),
      host: "127.0.0.1",
      port,
      user: "postgres",
      database: "postgres",
      max: 1,
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

// PGlite cannot share a directory between processes: a pid file beside it keeps a second
// command out while the first runs, and is taken over when its process is gone.
async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const lockPath = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await Deno.writeTextFile(lockPath, String(Deno.pid), { createNew: true });
      return () => Deno.remove(lockPath).catch(() => {});
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      const holder = Number((await Deno.readTextFile(lockPath).catch(() => "")).trim());
      if (holder && processIsAlive(holder)) {
        throw new DatabaseBusyError(
          `embedded database ${dir} is in use by process ${holder}; wait for it or set DATABASE_URL`,
        );
      }
      await Deno.remove(lockPath).catch(() => {});
    }
  }
  throw new DatabaseBusyError(`could not lock embedded database ${dir} (${lockPath})`);
}

/** True when a process with this id is running (signal 0-style probe). */
export function processIsAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}
