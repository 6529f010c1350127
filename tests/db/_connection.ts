// Helpers of the connection tests: fake servers, a guard against hangs, a slice whose kg need
// every digit, and running a task script as a subprocess.
import assert from "node:assert/strict";
import type { Database } from "../../src/db/connection.ts";
import { type DenoRun, runDeno } from "../_deno.ts";
import { createTestEntries, importFactorText, IT_HEADER } from "../integration/_slice.ts";

/** A pid no process has: a child that has already exited. */
export async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

/** A TCP server on a free loopback port: `close` hangs up at once, `silent` never answers. */
export function fakeServer(kind: "close" | "silent") {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  let accepted = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      accepted++;
      if (kind === "close") conn.close();
      else held.push(conn);
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get accepted() {
      return accepted;
    },
    async stop() {
      listener.close();
      await serving.catch(() => {});
      for (const conn of held) conn.close();
    },
  };
}

/**
 * A loopback port that passes its first `served` connections through to `target` (a port on
 * 127.0.0.1), then stops accepting: once `fill` has filled its queue, the kernel drops further
 * connection attempts, which hang as they would behind a dropping firewall.
 */
export function gatedPort(served = 0, target?: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const links: Deno.Conn[] = [];
  const accepting = (async () => {
    for (let i = 0; i < served; i++) {
      const conn = await listener.accept();
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: target! });
      links.push(conn, upstream);
      conn.readable.pipeTo(upstream.writable).catch(() => {});
      upstream.readable.pipeTo(conn.writable).catch(() => {});
    }
  })();
  const queued: Deno.Conn[] = [];
  return {
    port,
    /** Fills the queue, once the served connections are in: the next attempt hangs. */
    async fill() {
      await accepting;
      for (let i = 0; i < 10_000; i++) {
        const attempt = Deno.connect({ hostname: "127.0.0.1", port });
        const conn = await Promise.race([
          attempt,
          new Promise<undefined>((done) => setTimeout(() => done(undefined), 200)),
        ]);
        if (!conn) {
          attempt.then((late) => late.close(), () => {});
          return;
        }
        queued.push(conn);
      }
      assert.fail("the listener's queue never filled");
    },
    close() {
      for (const conn of [...queued, ...links]) {
        try {
          conn.close();
        } catch {
          // closed by its other end already
        }
      }
      listener.close();
    },
  };
}

/** Fails instead of hanging when `promise` does not settle within `seconds`. */
export async function within<T>(seconds: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: still running after ${seconds} s`)),
      1000 * seconds,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** An it slice whose stored kg need 17 significant digits to be told apart from neighbours. */
export async function seedPreciseSlice(db: Database): Promise<number[]> {
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,37.7,3.3,41,127,0.117\n`);
  const ids = await createTestEntries(
    db,
    "it",
    2025,
    [1, 3, 7].map((hours) => ({
      name: `laptop ${hours}`,
      equipment_class: "Laptop",
      sub_class: "Standard",
      active_usage_hours_per_week: hours,
      standby_usage_hours_per_week: 11,
    })),
  );
  const kgs = (await db.sql<{ kg: number }[]>`
    select kg_co2eq as kg from data_entry_emissions where data_entry_id = any(${ids}::bigint[])`)
    .map((r) => r.kg);
  assert.ok(kgs.length > 0);
  // The premise: at least one value changes when printed with 15 digits.
  assert.ok(kgs.some((kg) => Number(kg.toPrecision(15)) !== kg), kgs.join(", "));
  return ids;
}

/** Ids, kg and computed_at of the slice's rows: what a no-op rematch must leave alone. */
export async function rowsOf(db: Database, ids: number[]) {
  return (await db.sql`
    select id, kg_co2eq, computed_at from data_entry_emissions
    where data_entry_id = any(${ids}::bigint[]) order by id`).map((r) => ({ ...r }));
}

/** What a subprocess printed, and its exit code. */
export type ScriptRun = DenoRun;

/** Runs `deno run -A scripts/<name>.ts ...args` with `env` added to the environment. */
export function runScript(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<ScriptRun> {
  const script = new URL(`../../scripts/${name}.ts`, import.meta.url).pathname;
  return runDeno(["run", "-A", script, ...args], { env });
}

/** A 2025 equipment module with `stats` (computed) for each unit code, created; their ids. */
export async function equipmentModules(
  db: Database,
  unitCodes: readonly string[],
  stats: Record<string, unknown>,
): Promise<number[]> {
  const ids: number[] = [];
  for (const code of unitCodes) {
    const [unit] = await db.sql<{ id: number }[]>`
      insert into units (code, name) values (${code}, ${code}) returning id`;
    const [report] = await db.sql<{ id: number }[]>`
      insert into carbon_reports (unit_id, year) values (${unit.id}, 2025) returning id`;
    const [mod] = await db.sql<{ id: number }[]>`
      insert into carbon_report_modules (carbon_report_id, module_type_id, stats, stats_computed_at)
      values (${report.id}, 4, ${db.sql.json(stats as never)}, now()) returning id`;
    ids.push(mod.id);
  }
  return ids;
}
