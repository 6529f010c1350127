// The bench's own databases: one fresh database per case, never the one DATABASE_URL names.
// On a server: CREATE DATABASE beside it, DROP at the end; embedded: a temporary directory.
import postgres from "postgres";
import { join } from "node:path";
import { type Database, openDatabase, redactDatabaseUrl } from "../db/connection.ts";

/** Where a bench case's database lives (plain data: it is handed to the phase processes). */
export type BenchTarget =
  | { readonly kind: "server"; readonly url: string }
  | { readonly kind: "embedded"; readonly dataDir: string };

/** A case's database: where it is, and how to remove it. */
export interface BenchDatabase {
  readonly target: BenchTarget;
  /** The database without its password, for messages. */
  readonly description: string;
  /** Drops the database (server) or removes its directory (embedded). */
  drop(): Promise<void>;
}

// The databases created and not dropped yet: what an interrupted run drops on its way out.
const live = new Set<BenchDatabase>();

/**
 * Drops every bench database of this process not dropped yet (a run stopped by SIGINT or
 * SIGTERM: its `finally` blocks never run).
 */
export async function dropLiveBenchDatabases(): Promise<void> {
  await Promise.allSettled([...live].map((database) => database.drop()));
}

/**
 * Creates a fresh, empty database for one case: on the server of `serverUrl` when given, else an
 * embedded database in a new temporary directory. Migrations run when it is first opened.
 */
export async function createBenchDatabase(
  serverUrl: string | undefined,
  label: string,
): Promise<BenchDatabase> {
  const suffix = `${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 6)}`;
  if (serverUrl) {
    const name = `rematch_bench_${label.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${suffix}`;
    const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`create database ${name}`);
    } catch (error) {
      await admin.end();
      throw error;
    }
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    return tracked({
      target: { kind: "server", url: url.toString() },
      description: redactDatabaseUrl(url.toString()),
      async drop() {
        try {
          await admin.unsafe(`drop database if exists ${name} with (force)`);
        } finally {
          await admin.end();
        }
      },
    });
  }
  const dir = await Deno.makeTempDir({ prefix: `rematch-bench-${label}-` });
  const dataDir = join(dir, "db");
  return tracked({
    target: { kind: "embedded", dataDir },
    description: `embedded: ${dataDir}`,
    drop: () => Deno.remove(dir, { recursive: true }),
  });
}

// Listed as live until dropped; dropping twice (the run's `finally` and an interrupt) drops once.
function tracked(database: BenchDatabase): BenchDatabase {
  let dropping: Promise<void> | undefined;
  const entry: BenchDatabase = {
    target: database.target,
    description: database.description,
    drop: () => dropping ??= database.drop().finally(() => live.delete(entry)),
  };
  live.add(entry);
  return entry;
}

/**
 * Opens a case's database (migrations applied), quietly; on a server with at most
 * `maxConnections` connections (the product's default when not given).
 */
export function openBenchDatabase(target: BenchTarget, maxConnections?: number): Promise<Database> {
  return target.kind === "server"
    ? openDatabase({ databaseUrl: target.url, announce: false, maxConnections })
    : openDatabase({ databaseUrl: "", dataDir: target.dataDir, announce: false });
}

/** Opens the database, runs `fn`, and closes it again (the embedded one admits one process). */
export async function withBenchDatabase<T>(
  target: BenchTarget,
  fn: (db: Database) => Promise<T>,
): Promise<T> {
  const db = await openBenchDatabase(target);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
