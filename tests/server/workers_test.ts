// Worker processes against one PostgreSQL (server only: the embedded database is one process):
// three workers share 30 jobs, each runs once and jobs of one slice never overlap; a worker
// killed with SIGKILL mid-rematch loses its job to the sweep and another finishes it; SIGTERM
// lets the job finish within the grace period, or rolls it back and returns it to the queue.
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import type { LogEvent } from "../../src/jobs/log.ts";
import { REPEATED_SIGNAL_MS } from "../../src/cli/worker.ts";
import { createServerDatabase, eventually, serverUrl, spawnScript } from "./_server.ts";
import {
  emissionKg,
  holdMiddleEmission,
  holdSliceLock,
  importFactorText,
  itFactors,
  planeFactors,
  queueFactorUpload,
  queueRecalc,
  seedEntries,
  waitForPipelines,
} from "./_seed.ts";

const SERVER = serverUrl();
const options = { ignore: SERVER === undefined, sanitizeOps: false, sanitizeResources: false };

function spawnWorker(url: string, extra: readonly string[] = [], env: Record<string, string> = {}) {
  return spawnScript("worker", [
    "--database-url",
    url,
    "--poll-interval",
    "0.2",
    "--heartbeat",
    "0.2",
    ...extra,
  ], env);
}

const started = (e: LogEvent) => e.event === "worker_started";

Deno.test({
  ...options,
  name:
    "three workers, 30 jobs over six slices: every job runs once, a slice's jobs never overlap, " +
    "uploads of a slice apply in order",
  async fn() {
    const database = await createServerDatabase();
    const { db, url } = database;
    const workers = [spawnWorker(url), spawnWorker(url), spawnWorker(url)];
    try {
      const slices = [
        ["plane", 2023],
        ["plane", 2024],
        ["plane", 2025],
        ["it", 2023],
        ["it", 2024],
        ["it", 2025],
      ] as const;
      for (const [det, year] of slices) {
        await importFactorText(
          db,
          det,
          year,
          det === "plane" ? planeFactors(0.1, 0.3) : itFactors(0.1),
        );
        await seedEntries(db, det, year, 60);
      }
      await Promise.all(workers.map((w) => w.waitFor(started)));
      const pipelines: string[] = [];
      const ingestJobs: number[] = [];
      for (let round = 1; round <= 5; round++) {
        for (const [det, year] of slices) {
          const text = det === "plane"
            ? planeFactors(0.1 * round, 0.3 * round)
            : itFactors(0.1 * round);
          const queued = await queueFactorUpload(
            db,
            det,
            year,
            text,
            `${det}_${year}_${round}.csv`,
          );
          pipelines.push(queued.pipelineId);
          ingestJobs.push(queued.jobId);
        }
      }
      assert.equal(ingestJobs.length, 30);
      const statuses = await waitForPipelines(db, pipelines, 90_000);
      assert.deepEqual([...new Set(statuses.values())], ["SUCCESS"]);

      const jobs = await db.sql<{
        id: number;
        job_type: string;
        data_entry_type_id: number;
        year: number;
        attempts: number;
        state: string;
        result: string;
        locked_by: string;
        started_at: Date;
        finished_at: Date;
      }[]>`select * from data_ingestion_jobs order by id`;
      assert.ok(jobs.every((j) => j.state === "FINISHED" && j.result === "SUCCESS"));
      assert.ok(jobs.every((j) => j.attempts === 1), "a job was claimed twice");
      assert.deepEqual(
        jobs.filter((j) => j.job_type === "factor_ingest").map((j) => j.id),
        ingestJobs,
      );
      // Count the runs in the workers' own logs: one start and one finish per job.
      const events = workers.flatMap((w) => w.events);
      for (const job of jobs) {
        const runs = events.filter((e) => e.job_id === job.id);
        assert.deepEqual(
          runs.map((e) => e.event).sort(),
          ["job_finished", "job_started"],
          `job ${job.id}`,
        );
      }
      assert.ok(new Set(jobs.map((j) => j.locked_by)).size >= 2, "only one worker worked");
      // Jobs of one (type, det, year) never overlap in time.
      const byKey = Map.groupBy(jobs, (j) => `${j.job_type}:${j.data_entry_type_id}:${j.year}`);
      for (const [key, group] of byKey) {
        const sorted = group.toSorted((a, b) => a.started_at.getTime() - b.started_at.getTime());
        for (let i = 1; i < sorted.length; i++) {
          assert.ok(
            sorted[i - 1].finished_at <= sorted[i].started_at,
            `${key}: job ${sorted[i - 1].id} and job ${sorted[i].id} overlap`,
          );
        }
      }
      // The uploads of each slice applied in order (the fifth wins) and the emissions follow them.
      for (const [det, year] of slices) {
        const [factor] = await db.sql<{ ef: number }[]>`
          select max(("values"->>'ef_kg_co2eq_per_km')::float8) as ef from factors
          where data_entry_type_id = 20 and year = ${year}`;
        if (det === "plane") assert.ok(Math.abs(factor.ef - 1.5) < 1e-12);
        const check = await recalculateForDataEntryType(db, {
          dataEntryType: det,
          year,
          dryRun: true,
          full: true,
        });
        assert.equal(check.unchanged, 60, `${det} ${year}: emissions behind the factors`);
      }
    } finally {
      for (const worker of workers) worker.kill("SIGTERM");
      const codes = await Promise.all(workers.map((w) => w.exited));
      assert.deepEqual(codes, [0, 0, 0]);
      const [{ n }] = await database.db.sql<
        { n: number }[]
      >`select count(*)::int as n from workers`;
      assert.equal(n, 0);
      await database.drop();
    }
  },
});

/** Queues a rematch of a big slice whose factors just doubled; returns the expected kg. */
async function doubleAndQueue(
  db: Parameters<typeof seedEntries>[0],
  factor: number,
): Promise<{ jobId: number; pipelineId: string; before: Map<number, number> }> {
  const before = await emissionKg(db, "plane", 2025);
  await importFactorText(db, "plane", 2025, planeFactors(0.1 * factor, 0.3 * factor));
  return { ...(await queueRecalc(db, "plane", 2025)), before };
}

async function progressOf(
  db: Parameters<typeof seedEntries>[0],
  jobId: number,
): Promise<number | undefined> {
  const [row] = await db.sql<{ done: number | null; state: string }[]>`
    select (meta->'progress'->>'done')::int as done, state from data_ingestion_jobs
    where id = ${jobId}`;
  if (row.state === "FINISHED") throw new Error(`job ${jobId} finished before it was interrupted`);
  return row.done !== null && row.done > 0 ? row.done : undefined;
}

Deno.test({
  ...options,
  name: "SIGKILL mid-rematch: the sweep returns the job, another worker finishes it, the data " +
    "equals one clean run; SIGTERM: the job finishes within the grace, or rolls back and returns",
  async fn() {
    const database = await createServerDatabase();
    const { db, url } = database;
    // A worker killed mid-job cannot remove its job's work directory: theirs go in one of the
    // test's own, removed at the end.
    const tmp = await Deno.makeTempDir({ prefix: "rematch-test-workers-" });
    const spawned: ReturnType<typeof spawnWorker>[] = [];
    const worker = (extra: string[]) => {
      const w = spawnWorker(url, ["--chunk-size", "100", "--stale-timeout", "1.5", ...extra], {
        TMPDIR: tmp,
      });
      spawned.push(w);
      return w;
    };
    let hold: Awaited<ReturnType<typeof holdMiddleEmission>> | undefined;
    try {
      await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
      await seedEntries(db, "plane", 2025, 6000);

      // SIGKILL while the rematch is halfway (held there by a row lock on a middle row).
      const first = await doubleAndQueue(db, 2);
      hold = await holdMiddleEmission(db, "plane", 2025);
      const victim = worker([]);
      await victim.waitFor((e) => e.event === "job_started" && e.job_id === first.jobId);
      await eventually(() => progressOf(db, first.jobId), "progress of the first run", 30_000);
      victim.kill("SIGKILL");
      assert.notEqual(await victim.exited, 0);
      await hold.release();
      // Killed mid-transaction: nothing of the first run is visible.
      assert.deepEqual(await emissionKg(db, "plane", 2025), first.before);
      const rescuer = worker([]);
      const finished = await rescuer.waitFor(
        (e) => e.event === "job_finished" && e.job_id === first.jobId,
        60_000,
      );
      assert.equal(finished.result, "SUCCESS");
      assert.ok(rescuer.events.some((e) => e.event === "job_swept" && e.job_id === first.jobId));
      const [job] = await db.sql`select attempts, locked_by, status_message
        from data_ingestion_jobs where id = ${first.jobId}`;
      assert.equal(job.attempts, 2);
      const after = await emissionKg(db, "plane", 2025);
      assert.deepEqual([...after.keys()], [...first.before.keys()]);
      for (const [id, kg] of first.before) {
        assert.ok(Math.abs(after.get(id)! - 2 * kg) < 1e-9 * kg, `row ${id}`);
      }
      const clean = await recalculateForDataEntryType(db, {
        dataEntryType: "plane",
        year: 2025,
        dryRun: true,
        full: true,
      });
      assert.equal(clean.unchanged, 6000);

      // SIGTERM with the default grace: the job finishes, then the worker leaves. The row is held
      // before the job is queued: the rescuer, idle, takes a new job at once (LISTEN/NOTIFY), and
      // could pass the middle row before a hold taken after it.
      hold = await holdMiddleEmission(db, "plane", 2025);
      const second = await doubleAndQueue(db, 3);
      await eventually(() => progressOf(db, second.jobId), "progress of the second job");
      rescuer.kill("SIGTERM");
      await rescuer.waitFor((e) => e.event === "worker_stopping");
      await hold.release();
      assert.equal(await rescuer.exited, 0);
      const [done] = await db.sql`select state, result from data_ingestion_jobs
        where id = ${second.jobId}`;
      assert.deepEqual([done.state, done.result], ["FINISHED", "SUCCESS"]);

      // SIGTERM with a short grace: rolled back, returned to the queue, the attempt not counted,
      // though the job waits on the held row all along (its statement is cancelled).
      hold = await holdMiddleEmission(db, "plane", 2025);
      const third = await doubleAndQueue(db, 4);
      const quick = worker(["--grace", "0.1"]);
      await eventually(() => progressOf(db, third.jobId), "progress of the third job");
      quick.kill("SIGTERM");
      await quick.waitFor((e) => e.event === "worker_stopping");
      const exited = await Promise.race([
        quick.exited.then((code) => ({ code })),
        new Promise((r) => setTimeout(() => r("still running with the row held"), 20_000)),
      ]);
      await hold.release();
      assert.deepEqual(exited, { code: 0 });
      assert.ok(quick.events.some((e) => e.event === "job_released" && e.job_id === third.jobId));
      const [released] = await db.sql`select state, attempts, locked_by from data_ingestion_jobs
        where id = ${third.jobId}`;
      assert.deepEqual([released.state, released.attempts, released.locked_by], [
        "NOT_STARTED",
        0,
        null,
      ]);
      assert.deepEqual(await emissionKg(db, "plane", 2025), third.before);
      const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from workers`;
      assert.equal(n, 0);
    } finally {
      // A step that failed while a row was held: let it go first, so that the failure is what the
      // test reports (a transaction left open would be cut by the database's drop, and its
      // rejection would stop the whole file instead).
      await hold?.release().catch(() => {});
      for (const w of spawned) w.kill("SIGKILL");
      await Promise.all(spawned.map((w) => w.exited));
      await database.drop();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  ...options,
  name: "a new job wakes an idle worker at once (LISTEN/NOTIFY), long before its next poll",
  async fn() {
    const database = await createServerDatabase();
    const worker = spawnScript("worker", ["--database-url", database.url, "--poll-interval", "60"]);
    try {
      await worker.waitFor((e) => e.event === "worker_started" && e.listen === true);
      // Let its first (immediate) claim pass, so only a notification can wake it now.
      await new Promise((r) => setTimeout(r, 500));
      const { jobId } = await queueRecalc(database.db, "plane", 2025);
      // Well before the 60 s poll: only the notification can have woken it.
      await worker.waitFor((e) => e.event === "job_finished" && e.job_id === jobId, 10_000);
    } finally {
      worker.kill("SIGTERM");
      assert.equal(await worker.exited, 0);
      await database.drop();
    }
  },
});

Deno.test({
  ...options,
  name: "a second SIGTERM ends a worker at once, with SIGTERM's exit code",
  async fn() {
    const database = await createServerDatabase();
    const { db, url } = database;
    // Its job waits for a slice another transaction holds: the first signal waits for the job.
    const held = await holdSliceLock(db, 20, 2025);
    const worker = spawnWorker(url, ["--grace", "60"]);
    try {
      await worker.waitFor(started);
      const { jobId } = await queueRecalc(db, "plane", 2025);
      const jobStarted = await worker.waitFor((e) =>
        e.event === "job_started" && e.job_id === jobId
      );
      // The job's working directory, named with the worker's process id (host:pid:...).
      const pid = String(jobStarted.worker).split(":").at(-2);
      const workDirs = () =>
        [...Deno.readDirSync(tmpdir())].filter((e) =>
          e.name.startsWith(`rematch-job-${jobId}-p${pid}-`)
        );
      // Made right after the job_started line is logged: waited for.
      await eventually(
        () => Promise.resolve(workDirs().length > 0 ? true : undefined),
        "the job's working directory",
      );
      assert.equal(workDirs().length, 1);
      worker.kill("SIGTERM");
      await worker.waitFor((e) => e.event === "worker_stopping");
      // Sooner, it is the first one delivered twice (see REPEATED_SIGNAL_MS).
      await new Promise((done) => setTimeout(done, REPEATED_SIGNAL_MS + 100));
      worker.kill("SIGTERM");
      assert.equal(await worker.exited, 143, worker.stderr());
      assert.ok(worker.events.some((e) => e.event === "worker_killed"));
      // Exiting at once, it removed that directory all the same.
      assert.deepEqual(workDirs(), []);
    } finally {
      worker.kill("SIGKILL");
      await held.release();
      await database.drop();
    }
  },
});

for (
  const [command, extra, startedEvent, stoppedEvent, keys] of [
    ["worker", [], "worker_started", "worker_stopped", ["worker", "stopped"]],
    ["serve", ["--port", "18377"], "server_listening", "server_stopped", ["url", "stopped"]],
  ] as const
) {
  Deno.test({
    ...options,
    name: `${command} --json: standard output is one JSON document; the log goes to stderr`,
    async fn() {
      const database = await createServerDatabase();
      const script = new URL(`../../scripts/${command}.ts`, import.meta.url).pathname;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-q", "-A", script, "--database-url", database.url, ...extra, "--json"],
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let stderr = "";
      const reading = (async () => {
        for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
          stderr += chunk;
        }
      })();
      try {
        await eventually(
          () => Promise.resolve(stderr.includes(` ${startedEvent} `) ? true : undefined),
          `${command}'s start on stderr`,
        );
      } finally {
        child.kill("SIGTERM");
        const stdout = new TextDecoder().decode(
          new Uint8Array(await new Response(child.stdout).arrayBuffer()),
        );
        const status = await child.status;
        await reading;
        await database.drop();
        assert.equal(status.code, 0, stderr);
        const doc = JSON.parse(stdout);
        assert.deepEqual(Object.keys(doc), [...keys]);
        assert.equal(doc.stopped, "SIGTERM");
        assert.ok(stderr.includes(` ${stoppedEvent} `), stderr);
      }
    },
  });
}

Deno.test({
  ...options,
  name: "a job whose connection is terminated mid-rematch is tried again, and the worker lives on",
  async fn() {
    const database = await createServerDatabase();
    const { db, url } = database;
    const worker = spawnWorker(url, ["--chunk-size", "100"]);
    let hold: Awaited<ReturnType<typeof holdMiddleEmission>> | undefined;
    try {
      await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
      await seedEntries(db, "plane", 2025, 2000);
      await worker.waitFor(started);
      // The rematch stops on a locked row halfway; its session is then ended from outside.
      const job = await doubleAndQueue(db, 2);
      hold = await holdMiddleEmission(db, "plane", 2025);
      await worker.waitFor((e) => e.event === "job_started" && e.job_id === job.jobId);
      const [{ ended }] = await eventually(async () => {
        const rows = await db.sql<{ ended: boolean }[]>`
          select pg_terminate_backend(pid) as ended from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`;
        return rows.length ? rows : undefined;
      }, "the rematch waiting on the held row");
      assert.equal(ended, true);
      const retried = await worker.waitFor((e) => e.event === "job_retried");
      assert.match(String(retried.message), /CONNECTION_CLOSED|terminating connection/);
      await hold.release();
      hold = undefined;
      const finished = await worker.waitFor(
        (e) => e.event === "job_finished" && e.job_id === job.jobId,
        60_000,
      );
      assert.equal(finished.result, "SUCCESS");
      const [row] = await db.sql`select attempts from data_ingestion_jobs where id = ${job.jobId}`;
      assert.equal(row.attempts, 2);
      const after = await emissionKg(db, "plane", 2025);
      for (const [id, kg] of job.before) {
        assert.ok(Math.abs(after.get(id)! - 2 * kg) < 1e-9 * kg, `row ${id}`);
      }
    } finally {
      await hold?.release();
      worker.kill("SIGTERM");
      assert.equal(await worker.exited, 0, worker.stderr());
      await database.drop();
    }
  },
});

Deno.test({
  ...options,
  name: "a running job's progress is written once a second when it moves, whatever the heartbeat",
  async fn() {
    const database = await createServerDatabase();
    const { db, url } = database;
    let hold: Awaited<ReturnType<typeof holdMiddleEmission>> | undefined;
    // A heartbeat far longer than the wait below: only the progress writes can show it.
    const w = spawnScript("worker", [
      "--database-url",
      url,
      "--poll-interval",
      "0.2",
      "--heartbeat",
      "60",
      "--stale-timeout",
      "300",
      "--chunk-size",
      "100",
    ]);
    try {
      await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
      await seedEntries(db, "plane", 2025, 2000);
      hold = await holdMiddleEmission(db, "plane", 2025);
      const queued = await doubleAndQueue(db, 2);
      await w.waitFor((e) => e.event === "job_started" && e.job_id === queued.jobId);
      const done = await eventually(() => progressOf(db, queued.jobId), "its progress", 5_000);
      assert.ok(done >= 100 && done < 2000, `progress ${done}`);
      await hold.release();
      hold = undefined;
      const finished = await w.waitFor(
        (e) => e.event === "job_finished" && e.job_id === queued.jobId,
      );
      assert.equal(finished.result, "SUCCESS");
      const [job] = await db.sql`select meta->'progress' as progress from data_ingestion_jobs
        where id = ${queued.jobId}`;
      assert.deepEqual(job.progress, { done: 2000, total: 2000 });
    } finally {
      await hold?.release();
      w.kill("SIGTERM");
      await w.exited;
      await database.drop();
    }
  },
});
