// Chaining and its guards: two uploads of one slice in quick succession queue at most one waiting
// recalc; a recalc never reads half-written factors (it waits for the import's slice lock); an
// aborted running rematch rolls back and its job ends ERROR "aborted".
import assert from "node:assert/strict";
import { dbTest, serverBackendExpected, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { importFactors } from "../../src/db/factors.ts";
import { parseCsv } from "../../src/imports/csv.ts";
import { createLogger } from "../../src/jobs/log.ts";
import { JobWorker } from "../../src/jobs/worker.ts";
import { call, dispatchForm, eventually, followPipeline, startTestServer } from "./_server.ts";
import {
  emissionKg,
  holdMiddleEmission,
  holdSliceLock,
  importFactorText,
  planeFactors,
  queueRecalc,
  seedEntries,
  waitForPipelines,
} from "./_seed.ts";

const testDb = useTestDatabase();
type Body = Record<string, unknown>;

dbTest(
  testDb,
  "two uploads of one slice in quick succession: one waiting recalc, shared by both pipelines",
  async (db) => {
    await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
    await seedEntries(db, "plane", 2025, 20);
    const before = await emissionKg(db, "plane", 2025);
    // API only: the jobs wait until a worker starts.
    const server = await startTestServer(db, { concurrency: 0 });
    const worker = new JobWorker(db, { pollIntervalMs: 100, log: createLogger("json", () => {}) });
    try {
      const pipelines: string[] = [];
      for (const factor of [2, 3]) {
        const response = await call(server.url, "/v1/sync/dispatch", {
          method: "POST",
          body: dispatchForm({
            target_type: "factors",
            year: 2025,
            config: { module_type_id: "professional_travel", data_entry_type_id: "plane" },
          }, { name: `plane_x${factor}.csv`, text: planeFactors(0.1 * factor, 0.3 * factor) }),
        });
        assert.equal(response.status, 202);
        pipelines.push((response.body as Body).pipeline_id as string);
      }
      await worker.start();
      const statuses = await waitForPipelines(db, pipelines);
      assert.deepEqual([...statuses.values()], ["SUCCESS", "SUCCESS"]);
      const recalcs = await db.sql<{ id: number; pipeline_id: string }[]>`
      select id, pipeline_id from data_ingestion_jobs where job_type = 'emission_recalc'`;
      assert.equal(recalcs.length, 1);
      const second = await call(server.url, `/v1/sync/pipelines/${pipelines[1]}`);
      const view = second.body as { jobs: Body[]; waits_for: Body[] };
      assert.deepEqual(view.waits_for.map((j) => j.id), [recalcs[0].id]);
      const chained = view.jobs[0].chained as Body[];
      assert.deepEqual(chained.map((c) => [c.job_id, c.shared]), [[recalcs[0].id, true]]);
      // The one recalc ran after both uploads: the emissions follow the second.
      const after = await emissionKg(db, "plane", 2025);
      for (const [id, kg] of before) assert.ok(Math.abs(after.get(id)! - 3 * kg) < 1e-9 * kg);
    } finally {
      await worker.stop();
      await server.stop();
    }
  },
);

dbTest(
  testDb,
  "a recalc never reads half-written factors: it waits for the import holding the slice",
  async (db) => {
    await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
    await seedEntries(db, "plane", 2025, 20);
    const before = await emissionKg(db, "plane", 2025);
    const worker = new JobWorker(db, { pollIntervalMs: 50, log: createLogger("json", () => {}) });
    await worker.start();
    const release = Promise.withResolvers<void>();
    const written = Promise.withResolvers<void>();
    let recalc: { jobId: number; pipelineId: string } | undefined;
    // The import writes both factors, then holds its transaction (and the slice lock) open.
    const importing = db.sql.begin(async (tx) => {
      await importFactors(tx, {
        file: "plane_x2.csv",
        table: parseCsv("plane_x2.csv", planeFactors(0.2, 0.6)),
        year: 2025,
        target: { dataEntryTypeId: 20 },
      });
      written.resolve();
      await release.promise;
    });
    try {
      await written.promise;
      recalc = await queueRecalc(db, "plane", 2025);
      await eventually(async () => {
        const [row] = await db.sql`select state from data_ingestion_jobs where id = ${
          recalc!.jobId
        }`;
        return row.state === "RUNNING" ? true : undefined;
      }, "the recalc to start");
      // Running, but waiting on the slice lock: nothing changed yet.
      await new Promise((r) => setTimeout(r, 300));
      const [waiting] = await db
        .sql`select state from data_ingestion_jobs where id = ${recalc.jobId}`;
      assert.equal(waiting.state, "RUNNING");
      assert.deepEqual(await emissionKg(db, "plane", 2025), before);
    } finally {
      release.resolve();
      await importing;
    }
    await waitForPipelines(db, [recalc!.pipelineId]);
    const after = await emissionKg(db, "plane", 2025);
    // Both factors doubled, so every row doubled: no row saw one new factor and one old.
    for (const [id, kg] of before) assert.ok(Math.abs(after.get(id)! - 2 * kg) < 1e-9 * kg);
    await worker.stop();
  },
  { ignore: !serverBackendExpected() },
);

/**
 * Until a job has tried a slice lock that another transaction holds: a job waits for it by trying
 * it again and again (so that its abort can end the wait), between tries idle in its transaction.
 */
async function waitingForSliceLock(db: Database, who: string): Promise<void> {
  await eventually(async () => {
    const [waiting] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and query like '%pg_try_advisory_xact_lock%'
        and pid <> pg_backend_pid()`;
    return waiting.n > 0 ? true : undefined;
  }, `${who} waiting for the slice lock`);
}

/**
 * `entries` plane 2025 entries computed with the first factors, then every factor doubled (not
 * rematched): returns the emissions' kg by row as they were computed.
 */
async function planeFactorsDoubled(db: Database, entries: number): Promise<Map<number, number>> {
  await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
  await seedEntries(db, "plane", 2025, entries);
  const before = await emissionKg(db, "plane", 2025);
  await importFactorText(db, "plane", 2025, planeFactors(0.2, 0.6));
  return before;
}

/**
 * A recalc of plane 2025 (every factor changed) queued while `hold` holds something it needs,
 * aborted once `running` says it is under way: it must end ERROR "aborted", its pipeline FAILED,
 * and the emissions stay as they were. `releaseFirst`: the hold is let go before the abort can be
 * seen (a wait the abort cannot cut short); else it is held until the job has ended.
 */
async function abortHeldRecalc(
  db: Database,
  hold: () => Promise<{ release(): Promise<void> }>,
  running: (url: string, jobId: number) => Promise<void>,
  releaseFirst: boolean,
  heartbeatIntervalMs = 50,
): Promise<void> {
  const before = await planeFactorsDoubled(db, 1000);
  const server = await startTestServer(db, {
    worker: { chunkSize: 50, heartbeatIntervalMs },
  });
  const held = await hold();
  try {
    const response = await call(
      server.url,
      "/v1/sync/recalculate-emissions/professional_travel/plane?year=2025",
      { method: "POST" },
    );
    assert.equal(response.status, 202);
    const { pipeline_id, job_id } = response.body as Body;
    await running(server.url, job_id as number);
    const aborted = await call(server.url, `/v1/sync/pipelines/${pipeline_id}/abort`, {
      method: "POST",
    });
    assert.equal(aborted.status, 202);
    assert.equal((aborted.body as Body).running, 1);
    if (releaseFirst) await held.release();
    // Held, the job ends as soon as it sees the abort, or not at all.
    const { done } = await followPipeline(server.url, pipeline_id as string, {
      timeoutMs: releaseFirst ? 60_000 : 10_000,
    });
    assert.equal(done.status, "FAILED");
    const [job] = done.jobs as Body[];
    assert.deepEqual([job.state, job.result, job.status_message], [
      "FINISHED",
      "ERROR",
      "aborted",
    ]);
    assert.deepEqual(await emissionKg(db, "plane", 2025), before);
  } finally {
    await held.release();
    await server.stop();
  }
}

dbTest(
  testDb,
  "abort of a running rematch: rolled back, job ERROR aborted, pipeline FAILED",
  async (db) => {
    // The rematch stops halfway on a locked row until the abort is in.
    await abortHeldRecalc(db, () => holdMiddleEmission(db, "plane", 2025), async (url, jobId) => {
      await eventually(async () => {
        const job = await call(url, `/v1/sync/jobs/${jobId}`);
        const { progress, state } = job.body as {
          progress: { done: number } | null;
          state: string;
        };
        assert.notEqual(state, "FINISHED", "the rematch finished before the abort");
        return progress && progress.done > 0 ? true : undefined;
      }, "progress of the rematch");
    }, true);
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "abort of a recalc waiting for its slice's lock: the wait is cancelled, job ERROR aborted",
  async (db) => {
    // Another transaction holds the plane slice until the job has ended. The worker's next
    // heartbeat is a minute away: only the abort's notification can tell it within 10 s.
    await abortHeldRecalc(
      db,
      () => holdSliceLock(db, 20, 2025),
      async () => {
        await waitingForSliceLock(db, "the recalc");
      },
      false,
      60_000,
    );
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "abort of an upload's job waiting for a slice lock (factors, entries): cancelled, nothing written",
  async (db) => {
    const server = await startTestServer(db, { worker: { heartbeatIntervalMs: 50 } });
    const uploads = [
      {
        fields: {
          target_type: "factors",
          year: 2025,
          config: { module_type_id: 2, data_entry_type_id: "plane" },
        },
        file: { name: "plane.csv", text: planeFactors(0.1, 0.3) },
        detId: 20,
      },
      {
        fields: { target_type: "data_entries", config: { data_entry_type_id: "it" } },
        file: { name: "it.csv", text: "unit,year,name,equipment_class\nU1,2025,pc,Laptop\n" },
        detId: 11,
      },
    ];
    try {
      for (const upload of uploads) {
        const held = await holdSliceLock(db, upload.detId, 2025);
        try {
          const response = await call(server.url, "/v1/sync/dispatch", {
            method: "POST",
            body: dispatchForm(upload.fields, upload.file),
          });
          assert.equal(response.status, 202, JSON.stringify(response.body));
          const { pipeline_id } = response.body as Body;
          await waitingForSliceLock(db, `the ${upload.file.name} job`);
          const aborted = await call(server.url, `/v1/sync/pipelines/${pipeline_id}/abort`, {
            method: "POST",
          });
          assert.equal(aborted.status, 202);
          const { done } = await followPipeline(server.url, pipeline_id as string, {
            timeoutMs: 10_000,
          });
          const [job] = done.jobs as Body[];
          assert.deepEqual(
            [job.result, job.status_message],
            ["ERROR", "aborted"],
            upload.file.name,
          );
        } finally {
          await held.release();
        }
      }
      const [{ factors }] = await db.sql<
        { factors: number }[]
      >`select count(*)::int as factors from factors`;
      const [{ entries }] = await db.sql<
        { entries: number }[]
      >`select count(*)::int as entries from data_entries`;
      assert.deepEqual([factors, entries], [0, 0]);
    } finally {
      await server.stop();
    }
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "a job whose heartbeats fail repeatedly is rolled back and returned to the queue, then redone",
  async (db) => {
    const before = await planeFactorsDoubled(db, 200);
    // Every heartbeat fails (the write that refreshes a running job's lock); claims and finishes
    // go through.
    await db.sql.unsafe(`
      create function test_refuse_heartbeat() returns trigger language plpgsql as $$
      begin raise exception 'heartbeat refused by the test'; end $$;
      create trigger test_refuse_heartbeat before update on data_ingestion_jobs for each row
        when (old.state = 'RUNNING' and new.state = 'RUNNING') execute function test_refuse_heartbeat();`);
    const server = await startTestServer(db, { worker: { heartbeatIntervalMs: 50 } });
    // The recalc waits on the slice lock meanwhile, long enough for its heartbeats to fail.
    const held = await holdSliceLock(db, 20, 2025);
    try {
      const { pipelineId, jobId } = await queueRecalc(db, "plane", 2025);
      const message = await eventually(async () => {
        const [job] = await db.sql<{ status_message: string | null }[]>`
          select status_message from data_ingestion_jobs where id = ${jobId}`;
        return job.status_message ?? undefined;
      }, "the job's first attempt to end");
      assert.match(
        message,
        /its heartbeats failed repeatedly: rolled back \(worker .*\); returned to the queue \(attempt 1 of 3 used\)/,
      );
      await db.sql.unsafe(`drop trigger test_refuse_heartbeat on data_ingestion_jobs`);
      await held.release();
      const { done } = await followPipeline(server.url, pipelineId);
      assert.equal(done.status, "SUCCESS");
      const [job] = done.jobs as Body[];
      assert.equal(job.result, "SUCCESS");
      assert.ok((job.attempts as number) >= 2, `attempts ${job.attempts}`);
      const after = await emissionKg(db, "plane", 2025);
      for (const [id, kg] of before) assert.ok(Math.abs(after.get(id)! - 2 * kg) < 1e-9 * kg);
    } finally {
      await held.release();
      await server.stop();
    }
  },
  { ignore: !serverBackendExpected() },
);
