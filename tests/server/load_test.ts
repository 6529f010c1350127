// A bounded load test on loopback (server only): 20 concurrent clients send 200 recalc dispatches
// and 2,000 status reads to a spawned `serve` process, then stop. No response may be an error and
// every pipeline must finish; the latency of the status reads is printed, never asserted.
import assert from "node:assert/strict";
import { createServerDatabase, serverUrl, spawnScript, spawnServe } from "./_server.ts";
import {
  importFactorText,
  itFactors,
  planeFactors,
  seedEntries,
  waitForPipelines,
} from "./_seed.ts";

const CLIENTS = 20;
const DISPATCHES_PER_CLIENT = 10;
const READS_PER_CLIENT = 100;
const SLICES = [
  "professional_travel/plane?year=2024",
  "professional_travel/plane?year=2025",
  "equipment/it?year=2024",
  "equipment/it?year=2025",
];

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

Deno.test({
  name:
    "load: 200 dispatches and 2,000 status reads from 20 clients, no error, every pipeline ends",
  ignore: serverUrl() === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const database = await createServerDatabase();
    const { db } = database;
    for (const year of [2024, 2025]) {
      await importFactorText(db, "plane", year, planeFactors(0.1, 0.3));
      await importFactorText(db, "it", year, itFactors(0.1));
      await seedEntries(db, "plane", year, 30);
      await seedEntries(db, "it", year, 30);
    }
    const serve = await spawnServe(database.url, ["--concurrency", "2"]);
    const started = performance.now();
    try {
      const pipelines = new Set<string>();
      const failures: string[] = [];
      const readLatencies: number[] = [];
      const client = async (n: number) => {
        const mine: string[] = [];
        for (let i = 0; i < DISPATCHES_PER_CLIENT; i++) {
          const slice = SLICES[(n + i) % SLICES.length];
          const response = await fetch(`${serve.url}/v1/sync/recalculate-emissions/${slice}`, {
            method: "POST",
          });
          const body = await response.json();
          if (response.status !== 202) failures.push(`dispatch ${response.status}`);
          else mine.push(body.pipeline_id);
          // Status reads interleave with the dispatches.
          for (let r = 0; r < READS_PER_CLIENT / DISPATCHES_PER_CLIENT; r++) {
            const id = mine[(r * 7 + n) % mine.length];
            const t0 = performance.now();
            const read = await fetch(`${serve.url}/v1/sync/pipelines/${id}`);
            await read.arrayBuffer();
            readLatencies.push(performance.now() - t0);
            if (read.status !== 200) failures.push(`read ${read.status}`);
          }
        }
        for (const id of mine) pipelines.add(id);
      };
      await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));
      assert.deepEqual(failures, []);
      assert.equal(readLatencies.length, CLIENTS * READS_PER_CLIENT);
      const statuses = await waitForPipelines(db, [...pipelines], 120_000);
      assert.deepEqual([...new Set(statuses.values())], ["SUCCESS"]);
      const sorted = readLatencies.toSorted((a, b) => a - b);
      const [{ jobs }] = await db.sql<{ jobs: number }[]>`
        select count(*)::int as jobs from data_ingestion_jobs`;
      console.log(
        `load: ${CLIENTS * DISPATCHES_PER_CLIENT} dispatches (${pipelines.size} pipelines, ` +
          `${jobs} recalc jobs after sharing), ${sorted.length} status reads in ` +
          `${Math.round(performance.now() - started)} ms; status read latency p50 ` +
          `${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms`,
      );
    } finally {
      assert.equal(await serve.stop(), 0, serve.stderr());
      await database.drop();
    }
  },
});

Deno.test({
  name: "load: a flood of connections that exhausts the server's open files stops it accepting " +
    "only until they close: it listens again, and answers",
  ignore: serverUrl() === undefined || Deno.build.os !== "linux",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const database = await createServerDatabase();
    // API only (no worker): few descriptors of its own, so that the flood reaches the limit.
    const serve = spawnScript(
      "serve",
      ["--port", "0", "--database-url", database.url, "--concurrency", "0"],
      {},
      { fileLimit: 96 },
    );
    const flood: Deno.TcpConn[] = [];
    try {
      const listening = await serve.waitFor((e) => e.event === "server_listening");
      const base = listening.url as string;
      const { port } = new URL(base);
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      // Requests whose headers never end, each holding a descriptor of the server's.
      const unfinished = new TextEncoder().encode("GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: ");
      // Once the server has stopped accepting, a connection is refused or reset: enough.
      for (let i = 0; i < 150; i++) {
        try {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
          flood.push(conn);
          await conn.write(unfinished);
        } catch {
          break;
        }
      }
      const failed = await serve.waitFor((e) => e.event === "server_failed", 10_000);
      assert.match(
        failed.message as string,
        /stopped accepting connections \(.*Too many open files/,
      );
      for (const conn of flood.splice(0)) conn.close();
      await serve.waitFor((e) => e.event === "server_listening" && e.message === "listening again");
      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 200);
      assert.equal((await health.json()).ok, true);
    } finally {
      for (const conn of flood) conn.close();
      serve.kill("SIGTERM");
      assert.equal(await serve.exited, 0, serve.stderr());
      await database.drop();
    }
  },
});
