// The job queue of spec/interfaces.md §3, statement by statement: claim, is_current, finish CAS,
// dedup of waiting recalcs, the stale sweep, recover, abort and pipeline status.
import assert from "node:assert/strict";
import {
  dbTest,
  holdInTransaction,
  serverBackendExpected,
  untilSomeoneWaitsForALock,
  useTestDatabase,
} from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import {
  abortPipeline,
  claimJob,
  createPipeline,
  enqueueRecalcs,
  failJob,
  finishJob,
  heartbeatJob,
  isTransientDatabaseError,
  lockPipelinesOf,
  recoverJob,
  refreshPipelines,
  registerWorker,
  releaseJob,
  retryJob,
  sweepStaleJobs,
} from "../../src/jobs/queue.ts";
import { getPipeline } from "../../src/jobs/status.ts";
import { deleteExpiredUploads } from "../../src/jobs/uploads.ts";
import type { ClaimedJob, NewJob } from "../../src/jobs/types.ts";

const testDb = useTestDatabase();

function recalc(det: number, year: number, full = false): NewJob {
  const moduleTypeId = det === 20 || det === 21 ? 2 : 4;
  return {
    jobType: "emission_recalc",
    moduleTypeId,
    dataEntryTypeId: det,
    year,
    input: { data_entry_type_id: det, year, full },
  };
}

function reference(kind: "locations" | "rooms" | "rates"): NewJob {
  return {
    jobType: "reference_ingest",
    moduleTypeId: null,
    dataEntryTypeId: null,
    year: null,
    input: {
      upload_id: crypto.randomUUID(),
      file_name: `${kind}.csv`,
      kind,
      strict: false,
    },
  };
}

function factors(moduleTypeId: number, det: number | null, year: number): NewJob {
  return {
    jobType: "factor_ingest",
    moduleTypeId,
    dataEntryTypeId: det,
    year,
    input: {
      upload_id: crypto.randomUUID(),
      file_name: "factors.csv",
      year,
      data_entry_type_id: det,
      module_type_id: moduleTypeId,
      mode: "merge",
      strict: false,
      allow_empty: false,
      force: false,
    },
  };
}

async function pipeline(db: Database, jobs: NewJob[]) {
  return await db.sql.begin((tx) => createPipeline(tx, { kind: "test", actor: "tester" }, jobs));
}

async function finish(db: Database, job: ClaimedJob, result: "SUCCESS" | "WARNING" | "ERROR") {
  return await db.sql.begin(async (tx) => {
    const done = await finishJob(tx, job, { result, message: result.toLowerCase(), meta: {} });
    await refreshPipelines(tx, [job.pipeline_id]);
    return done;
  });
}

async function status(db: Database, id: string): Promise<string> {
  return (await getPipeline(db.sql, id))!.pipeline.status;
}

async function ageLock(db: Database, jobId: number, seconds: number) {
  await db.sql`update data_ingestion_jobs
    set locked_at = clock_timestamp() - make_interval(secs => ${seconds}) where id = ${jobId}`;
}

dbTest(
  testDb,
  "claim: oldest claimable job, RUNNING with lock, start and attempt; nothing left is null",
  async (db) => {
    const { jobs } = await pipeline(db, [recalc(20, 2025), recalc(21, 2025)]);
    const first = await claimJob(db.sql, "w1");
    assert.ok(first);
    assert.equal(first.id, jobs[0].jobId);
    assert.deepEqual([first.state, first.locked_by, first.attempts, first.is_current], [
      "RUNNING",
      "w1",
      1,
      true,
    ]);
    assert.ok(first.started_at && first.locked_at);
    const second = await claimJob(db.sql, "w2");
    assert.equal(second?.id, jobs[1].jobId);
    assert.equal(await claimJob(db.sql, "w3"), null);
  },
);

dbTest(testDb, "claim skips jobs not due yet and jobs without attempts left", async (db) => {
  const { jobs } = await pipeline(db, [recalc(20, 2025), recalc(21, 2025)]);
  await db.sql`update data_ingestion_jobs set run_after = now() + interval '1 hour'
    where id = ${jobs[0].jobId}`;
  await db.sql`update data_ingestion_jobs set attempts = max_attempts where id = ${jobs[1].jobId}`;
  assert.equal(await claimJob(db.sql, "w1"), null);
  await db.sql`update data_ingestion_jobs set run_after = now() - interval '1 second'
    where id = ${jobs[0].jobId}`;
  assert.equal((await claimJob(db.sql, "w1"))?.id, jobs[0].jobId);
});

dbTest(
  testDb,
  "is_current: a RUNNING job holds its key; the next claim of the key demotes the finished one",
  async (db) => {
    // Reference imports of one kind share the key (reference_ingest, -, -, -).
    const a = await pipeline(db, [reference("locations")]);
    const b = await pipeline(db, [reference("locations")]);
    const other = await pipeline(db, [recalc(20, 2025)]);
    const first = (await claimJob(db.sql, "w1"))!;
    assert.equal(first.id, a.jobs[0].jobId);
    // b waits while a runs; the claim takes the next key instead.
    const next = (await claimJob(db.sql, "w2"))!;
    assert.equal(next.id, other.jobs[0].jobId);
    assert.equal(await claimJob(db.sql, "w2"), null);
    assert.ok(await finish(db, first, "SUCCESS"));
    const third = (await claimJob(db.sql, "w2"))!;
    assert.equal(third.id, b.jobs[0].jobId);
    const current = await db.sql<{ id: number; is_current: boolean }[]>`
    select id, is_current from data_ingestion_jobs where job_type = 'reference_ingest' order by id`;
    assert.deepEqual(current.map((r) => r.is_current), [false, true]);
  },
);

dbTest(
  testDb,
  "a module-wide upload and its dets' uploads apply in the order they were queued, never at once",
  async (db) => {
    // equipment (4) 2025: the whole module, then it (11) alone, then the whole module again;
    // it 2024 and purchase (6) 2025 overlap none of them.
    const wide = await pipeline(db, [factors(4, null, 2025)]);
    const it = await pipeline(db, [factors(4, 11, 2025)]);
    const wideAgain = await pipeline(db, [factors(4, null, 2025)]);
    const lastYear = await pipeline(db, [factors(4, 11, 2024)]);
    const purchases = await pipeline(db, [factors(6, null, 2025)]);
    const first = (await claimJob(db.sql, "w1"))!;
    assert.equal(first.id, wide.jobs[0].jobId);
    // The it upload waits for the module-wide one queued before it; the others go on.
    const others = [(await claimJob(db.sql, "w2"))!.id, (await claimJob(db.sql, "w3"))!.id];
    assert.deepEqual(others, [lastYear.jobs[0].jobId, purchases.jobs[0].jobId]);
    assert.equal(await claimJob(db.sql, "w4"), null);
    assert.ok(await finish(db, first, "SUCCESS"));
    const second = (await claimJob(db.sql, "w4"))!;
    assert.equal(second.id, it.jobs[0].jobId);
    // The second module-wide upload waits for the it upload, which runs.
    assert.equal(await claimJob(db.sql, "w5"), null);
    assert.ok(await finish(db, second, "SUCCESS"));
    assert.equal((await claimJob(db.sql, "w5"))?.id, wideAgain.jobs[0].jobId);
  },
);

dbTest(
  testDb,
  "finish is a compare-and-set: another worker, another attempt or a finished job write nothing",
  async (db) => {
    await pipeline(db, [recalc(20, 2025)]);
    const job = (await claimJob(db.sql, "w1"))!;
    assert.equal(await finish(db, { ...job, locked_by: "w2" }, "SUCCESS"), false);
    assert.equal(await finish(db, { ...job, attempts: job.attempts + 1 }, "SUCCESS"), false);
    assert.equal(await finish(db, job, "WARNING"), true);
    assert.equal(await finish(db, job, "SUCCESS"), false);
    const [row] = await db.sql`select state, result, status_message from data_ingestion_jobs`;
    assert.deepEqual([row.state, row.result, row.status_message], [
      "FINISHED",
      "WARNING",
      "warning",
    ]);
  },
);

dbTest(
  testDb,
  "a waiting recalc of a slice is shared, not created twice; the second pipeline waits for it",
  async (db) => {
    const first = await pipeline(db, [recalc(20, 2025)]);
    const second = await pipeline(db, [recalc(20, 2025, true), recalc(20, 2024)]);
    assert.equal(second.jobs[0].jobId, first.jobs[0].jobId);
    assert.equal(second.jobs[0].shared, true);
    assert.equal(second.jobs[1].shared, false);
    const [{ n }] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from data_ingestion_jobs
    where data_entry_type_id = 20 and year = 2025`;
    assert.equal(n, 1);
    // The shared job does what both asked: the whole slice.
    const [shared] = await db.sql`select meta from data_ingestion_jobs where id = ${
      first.jobs[0].jobId
    }`;
    assert.equal(shared.meta.input.full, true);
    const detail = (await getPipeline(db.sql, second.pipelineId))!;
    assert.deepEqual(detail.waitsFor.map((j) => j.id), [first.jobs[0].jobId]);

    const job2025 = (await claimJob(db.sql, "w1"))!;
    const job2024 = (await claimJob(db.sql, "w1"))!;
    assert.ok(await finish(db, job2024, "SUCCESS"));
    // Its own job is done, the shared one runs: still RUNNING.
    assert.equal(await status(db, second.pipelineId), "RUNNING");
    // A new recalc of the slice while the shared one runs is a new job.
    const third = await pipeline(db, [recalc(20, 2025)]);
    assert.equal(third.jobs[0].shared, false);
    await db.sql.begin(async (tx) => {
      await finishJob(tx, job2025, { result: "SUCCESS", message: "ok", meta: {} });
      await refreshPipelines(tx, [first.pipelineId, second.pipelineId]);
    });
    assert.equal(await status(db, first.pipelineId), "SUCCESS");
    assert.equal(await status(db, second.pipelineId), "SUCCESS");
  },
);

dbTest(
  testDb,
  "pipeline status: FAILED when the first job ends ERROR, PARTIAL when a later one ends ERROR or WARNING",
  async (db) => {
    const failed = await pipeline(db, [recalc(20, 2025), recalc(21, 2025)]);
    const a = (await claimJob(db.sql, "w"))!;
    const b = (await claimJob(db.sql, "w"))!;
    assert.ok(await failJob(db.sql, a, "broken"));
    assert.equal(await status(db, failed.pipelineId), "RUNNING");
    assert.ok(await finish(db, b, "SUCCESS"));
    assert.equal(await status(db, failed.pipelineId), "FAILED");

    const partial = await pipeline(db, [recalc(20, 2024), recalc(21, 2024)]);
    const c = (await claimJob(db.sql, "w"))!;
    const d = (await claimJob(db.sql, "w"))!;
    assert.ok(await finish(db, c, "SUCCESS"));
    assert.ok(await finish(db, d, "WARNING"));
    assert.equal(await status(db, partial.pipelineId), "PARTIAL");

    const ok = await pipeline(db, [recalc(20, 2023)]);
    assert.ok(await finish(db, (await claimJob(db.sql, "w"))!, "SUCCESS"));
    assert.equal(await status(db, ok.pipelineId), "SUCCESS");
  },
);

dbTest(
  testDb,
  "the sweep waits out the stale timeout a job's worker registered, when longer than its own",
  async (db) => {
    // A worker with a slow heartbeat (stale timeout 120 s), swept by a process whose own is 60 s.
    const slow = { id: "slow", hostname: "h", pid: 1, version: "v", concurrency: 1 };
    await registerWorker(db.sql, { ...slow, staleTimeoutMs: 120_000 });
    await pipeline(db, [recalc(20, 2025)]);
    const job = (await claimJob(db.sql, "slow"))!;
    await ageLock(db, job.id, 90);
    assert.deepEqual(await sweepStaleJobs(db.sql, 60), []);
    const [alive] = await db.sql`select state from data_ingestion_jobs where id = ${job.id}`;
    assert.equal(alive.state, "RUNNING");
    // Its registry row stays while its own timeout has not passed either.
    await db.sql`update workers set last_seen_at = clock_timestamp() - interval '90 seconds'`;
    await sweepStaleJobs(db.sql, 60);
    assert.equal((await db.sql`select id from workers`).length, 1);
    // Silent past both: returned, and the row goes.
    await ageLock(db, job.id, 130);
    await db.sql`update workers set last_seen_at = clock_timestamp() - interval '130 seconds'`;
    const [returned] = await sweepStaleJobs(db.sql, 60);
    assert.deepEqual([returned.id, returned.outcome], [job.id, "requeued"]);
    assert.equal((await db.sql`select id from workers`).length, 0);
  },
);

dbTest(
  testDb,
  "the sweep returns a silent RUNNING job to the queue while it has attempts, else ends it ERROR",
  async (db) => {
    await pipeline(db, [recalc(20, 2025)]);
    const job = (await claimJob(db.sql, "lost-worker"))!;
    assert.equal(await heartbeatJob(db.sql, job, { done: 900, total: 1000 }), "ok");
    assert.deepEqual(await sweepStaleJobs(db.sql, 60), []);
    await ageLock(db, job.id, 120);
    const [returned] = await sweepStaleJobs(db.sql, 60);
    assert.equal(returned.id, job.id);
    assert.equal(returned.outcome, "requeued");
    assert.match(returned.message, /worker lost-worker stopped sending heartbeats.*attempt 1 of 3/);
    const [row] = await db.sql`select state, locked_by, attempts, meta from data_ingestion_jobs`;
    assert.deepEqual([row.state, row.locked_by, row.attempts], ["NOT_STARTED", null, 1]);
    // Waiting again, it shows no progress of the attempt that rolled back.
    assert.equal("progress" in row.meta, false);
    // The lost worker's finish now writes nothing.
    assert.equal(await finish(db, job, "SUCCESS"), false);

    // Third attempt lost too: no attempts left.
    await db.sql`update data_ingestion_jobs set attempts = 2`;
    const last = (await claimJob(db.sql, "w2"))!;
    assert.equal(last.attempts, 3);
    // A new attempt starts without the last one's progress.
    assert.equal("progress" in last.meta, false);
    await ageLock(db, last.id, 120);
    const [ended] = await sweepStaleJobs(db.sql, 60);
    assert.equal(ended.outcome, "failed");
    const [final] = await db.sql`select state, result, status_message from data_ingestion_jobs`;
    assert.deepEqual([final.state, final.result], ["FINISHED", "ERROR"]);
    assert.match(final.status_message, /no attempts left \(3 of 3\): not retried/);
  },
);

dbTest(
  testDb,
  "a job that failed for a reason of the moment goes back to the queue, its attempt counted",
  async (db) => {
    await pipeline(db, [recalc(20, 2025)]);
    const first = (await claimJob(db.sql, "w1"))!;
    assert.equal(await retryJob(db.sql, first, "CONNECTION_CLOSED"), "requeued");
    const [row] = await db.sql`select state, locked_by, attempts, status_message
      from data_ingestion_jobs`;
    assert.deepEqual([row.state, row.locked_by, row.attempts], ["NOT_STARTED", null, 1]);
    assert.equal(
      row.status_message,
      "CONNECTION_CLOSED; returned to the queue (attempt 1 of 3 used)",
    );
    // The claim is gone: a second retry of it writes nothing.
    assert.equal(await retryJob(db.sql, first, "again"), false);
    await db.sql`update data_ingestion_jobs set attempts = 2`;
    const last = (await claimJob(db.sql, "w2"))!;
    assert.equal(await retryJob(db.sql, last, "deadlock detected"), "failed");
    const [final] = await db.sql`select state, result, status_message from data_ingestion_jobs`;
    assert.deepEqual([final.state, final.result], ["FINISHED", "ERROR"]);
    assert.equal(
      final.status_message,
      "deadlock detected; no attempts left (3 of 3): not retried",
    );
  },
);

Deno.test("transient database errors: a lost connection, a deadlock; not a data error", () => {
  for (const code of ["CONNECTION_CLOSED", "ECONNRESET", "57P01", "08006", "40P01", "40001"]) {
    assert.equal(isTransientDatabaseError(Object.assign(new Error("x"), { code })), true, code);
  }
  for (const error of [new Error("x"), Object.assign(new Error("x"), { code: "23505" }), null]) {
    assert.equal(isTransientDatabaseError(error), false, String(error));
  }
});

dbTest(
  testDb,
  "a swept recalc whose slice already has a waiting recalc is handed over to it",
  async (db) => {
    const first = await pipeline(db, [recalc(20, 2025)]);
    const running = (await claimJob(db.sql, "lost"))!;
    const second = await pipeline(db, [recalc(20, 2025)]);
    assert.equal(second.jobs[0].shared, false);
    await ageLock(db, running.id, 120);
    const [swept] = await sweepStaleJobs(db.sql, 60);
    assert.equal(swept.outcome, "handed-over");
    const detail = (await getPipeline(db.sql, first.pipelineId))!;
    assert.equal(detail.jobs[0].result, "SUCCESS");
    assert.match(detail.jobs[0].status_message!, /handed over to job \d+/);
    assert.deepEqual(detail.waitsFor.map((j) => j.id), [second.jobs[0].jobId]);
    assert.equal(detail.pipeline.status, "RUNNING");
  },
);

dbTest(
  testDb,
  "recover: only a RUNNING job whose heartbeat is stale; it goes back to the queue",
  async (db) => {
    const { jobs } = await pipeline(db, [recalc(20, 2025)]);
    assert.equal(await recoverJob(db.sql, 999_999, 60), "not-found");
    assert.equal(await recoverJob(db.sql, jobs[0].jobId, 60), "not-running");
    const job = (await claimJob(db.sql, "w1"))!;
    assert.equal(await recoverJob(db.sql, job.id, 60), "not-stale");
    await ageLock(db, job.id, 120);
    const recovered = await recoverJob(db.sql, job.id, 60);
    assert.ok(typeof recovered === "object" && recovered.outcome === "requeued");
    assert.equal((await claimJob(db.sql, "w2"))?.id, job.id);

    // A job of a registered worker is stale by the timeout that worker registered, not the
    // caller's: 3 s (a worker with a quick heartbeat), then 120 s (a slow one).
    const registered = (id: string, staleTimeoutMs: number) =>
      registerWorker(db.sql, {
        id,
        hostname: "h",
        pid: 1,
        version: "v",
        concurrency: 1,
        staleTimeoutMs,
      });
    for (
      const [worker, timeoutMs, silentS, expected] of [
        ["quick", 3_000, 10, "requeued"],
        ["slow", 120_000, 90, "not-stale"],
      ] as const
    ) {
      await registered(worker, timeoutMs);
      await pipeline(db, [recalc(21, 2025)]);
      const held = (await claimJob(db.sql, worker))!;
      await ageLock(db, held.id, silentS);
      const outcome = await recoverJob(db.sql, held.id, 60);
      assert.equal(typeof outcome === "object" ? outcome.outcome : outcome, expected, worker);
      if (expected === "not-stale") {
        await ageLock(db, held.id, 130);
        const later = await recoverJob(db.sql, held.id, 60);
        assert.ok(typeof later === "object" && later.outcome === "requeued");
      }
      const again = (await claimJob(db.sql, "w3"))!;
      assert.equal(again.id, held.id);
      assert.ok(await finish(db, again, "SUCCESS"));
    }
  },
);

dbTest(
  testDb,
  "abort: waiting jobs end ERROR aborted at once; an ended pipeline cannot be aborted",
  async (db) => {
    const p = await pipeline(db, [recalc(20, 2025), recalc(21, 2025)]);
    const running = (await claimJob(db.sql, "w1"))!;
    const outcome = await abortPipeline(db.sql, p.pipelineId);
    assert.deepEqual(outcome, { waitingAborted: 1, running: 1 });
    const detail = (await getPipeline(db.sql, p.pipelineId))!;
    assert.deepEqual(detail.jobs.map((j) => [j.state, j.result, j.status_message]), [
      ["RUNNING", null, null],
      ["FINISHED", "ERROR", "aborted"],
    ]);
    assert.ok(detail.pipeline.aborted_at);
    assert.ok(await failJob(db.sql, running, "aborted"));
    assert.equal(await status(db, p.pipelineId), "FAILED");
    assert.equal(await abortPipeline(db.sql, p.pipelineId), "finished");
    assert.equal(await abortPipeline(db.sql, crypto.randomUUID()), null);
  },
);

dbTest(
  testDb,
  "abort: a running job of an aborted pipeline that is swept, retried or recovered ends aborted",
  async (db) => {
    const jobOf = async (id: number) => {
      const [row] = await db.sql`select state, result, status_message from data_ingestion_jobs
        where id = ${id}`;
      return [row.state, row.result, row.status_message];
    };
    // A's recalc of plane 2025 runs on a worker that dies; A is aborted meanwhile.
    const a = await pipeline(db, [recalc(20, 2025)]);
    const lost = (await claimJob(db.sql, "killed"))!;
    assert.deepEqual(await abortPipeline(db.sql, a.pipelineId), { waitingAborted: 0, running: 1 });
    await ageLock(db, lost.id, 120);
    const [swept] = await sweepStaleJobs(db.sql, 60);
    assert.deepEqual([swept.id, swept.outcome, swept.message], [lost.id, "failed", "aborted"]);
    assert.deepEqual(await jobOf(lost.id), ["FINISHED", "ERROR", "aborted"]);
    assert.equal(await status(db, a.pipelineId), "FAILED");
    // B's upload of plane factors then queues a recalc of its own: none of A's waits to be shared
    // (and to end "aborted" for B too).
    const b = await pipeline(db, [recalc(20, 2025)]);
    assert.equal(b.jobs[0].shared, false);
    const claimed = (await claimJob(db.sql, "w"))!;
    assert.equal(claimed.pipeline_id, b.pipelineId);
    assert.ok(await finish(db, claimed, "SUCCESS"));
    assert.equal(await status(db, b.pipelineId), "SUCCESS");

    // The same when the job's connection was lost (retried), or its worker recovered by hand.
    const c = await pipeline(db, [recalc(21, 2025)]);
    const retried = (await claimJob(db.sql, "w1"))!;
    await abortPipeline(db.sql, c.pipelineId);
    assert.equal(await retryJob(db.sql, retried, "CONNECTION_CLOSED"), "failed");
    assert.deepEqual(await jobOf(retried.id), ["FINISHED", "ERROR", "aborted"]);
    assert.equal(await status(db, c.pipelineId), "FAILED");
    const d = await pipeline(db, [recalc(21, 2025)]);
    const recovered = (await claimJob(db.sql, "w2"))!;
    await abortPipeline(db.sql, d.pipelineId);
    await ageLock(db, recovered.id, 120);
    const outcome = await recoverJob(db.sql, recovered.id, 60);
    assert.ok(typeof outcome === "object" && outcome.outcome === "failed");
    assert.deepEqual(await jobOf(recovered.id), ["FINISHED", "ERROR", "aborted"]);
    assert.equal(await claimJob(db.sql, "w3"), null);
  },
);

dbTest(
  testDb,
  "abort: a job other pipelines share goes on for them; a pipeline that only shared ends at once",
  async (db) => {
    // A queues the recalc of plane 2025; B and C share it.
    const a = await pipeline(db, [recalc(20, 2025)]);
    const b = await pipeline(db, [recalc(20, 2025)]);
    const c = await pipeline(db, [recalc(20, 2025)]);
    assert.deepEqual([b.jobs[0].shared, c.jobs[0].shared], [true, true]);
    const job = a.jobs[0].jobId;
    // B only waits for A's job: aborted, it has ended, and the job waits on for A and C.
    assert.deepEqual(await abortPipeline(db.sql, b.pipelineId), { waitingAborted: 0, running: 0 });
    assert.equal(await status(db, b.pipelineId), "FAILED");
    // A owns the job C waits for: aborting A hands it to C instead of ending it.
    assert.deepEqual(await abortPipeline(db.sql, a.pipelineId), { waitingAborted: 0, running: 0 });
    assert.equal(await status(db, a.pipelineId), "FAILED");
    assert.equal(await status(db, c.pipelineId), "RUNNING");
    const claimed = (await claimJob(db.sql, "w1"))!;
    assert.deepEqual([claimed.id, claimed.pipeline_id], [job, c.pipelineId]);
    assert.ok(await finish(db, claimed, "SUCCESS"));
    assert.equal(await status(db, c.pipelineId), "SUCCESS");
    assert.deepEqual((await getPipeline(db.sql, c.pipelineId))!.jobs.map((j) => j.id), [job]);

    // Running: D's recalc of train 2025, which E shares. Aborting D lets it run on for E.
    const d = await pipeline(db, [recalc(21, 2025)]);
    const e = await pipeline(db, [recalc(21, 2025)]);
    const running = (await claimJob(db.sql, "w2"))!;
    assert.equal(running.pipeline_id, d.pipelineId);
    assert.deepEqual(await abortPipeline(db.sql, d.pipelineId), { waitingAborted: 0, running: 0 });
    assert.equal(await heartbeatJob(db.sql, running, undefined), "ok");
    // The worker's finish, as it runs it: the pipelines the job counts in now, then the job.
    await db.sql.begin(async (tx) => {
      const counted = await lockPipelinesOf(tx, running);
      assert.equal(counted.aborted, false, "the job's owner now, not the aborted one");
      assert.ok(
        await finishJob(tx, running, { result: "SUCCESS", message: "success", meta: {} }),
      );
      await refreshPipelines(tx, counted.ids);
    });
    assert.deepEqual([await status(db, d.pipelineId), await status(db, e.pipelineId)], [
      "FAILED",
      "SUCCESS",
    ]);
  },
);

dbTest(
  testDb,
  "abort while a worker finishes the job it hands over: the worker counts it in its new owner",
  async (db) => {
    const d = await pipeline(db, [recalc(21, 2025)]);
    const e = await pipeline(db, [recalc(21, 2025)]);
    const running = (await claimJob(db.sql, "w"))!;
    assert.equal(running.pipeline_id, d.pipelineId);
    // D's row held, so that the abort waits first, then the worker's finish behind it.
    const hold = await holdInTransaction(
      db,
      (tx) => tx`select 1 from pipelines where id = ${d.pipelineId} for update`,
    );
    const waiting = async (n: number) => {
      for (let i = 0; i < 500; i++) {
        const [{ c }] = await db.sql<{ c: number }[]>`
          select count(*)::int as c from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`;
        if (c >= n) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`${n} sessions never waited`);
    };
    const abort = abortPipeline(db.sql, d.pipelineId);
    await waiting(1);
    const finishing = db.sql.begin(async (tx) => {
      const counted = await lockPipelinesOf(tx, running);
      if (counted.aborted) return "aborted";
      assert.ok(await finishJob(tx, running, { result: "SUCCESS", message: "ok", meta: {} }));
      await refreshPipelines(tx, counted.ids);
      return "finished";
    });
    await waiting(2);
    await hold.release();
    assert.deepEqual(await abort, { waitingAborted: 0, running: 0 });
    assert.equal(await finishing, "finished");
    assert.deepEqual([await status(db, d.pipelineId), await status(db, e.pipelineId)], [
      "FAILED",
      "SUCCESS",
    ]);
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "abort while an upload's finish shares the pipeline's waiting recalc: it goes on for the upload",
  async (db) => {
    const upload = await pipeline(db, [factors(2, 20, 2025)]);
    const ingest = (await claimJob(db.sql, "w"))!;
    assert.equal(ingest.id, upload.jobs[0].jobId);
    // A waits to recalculate plane 2025.
    const a = await pipeline(db, [recalc(20, 2025)]);
    const recalcId = a.jobs[0].jobId;
    // The upload's finish, as the worker runs it: its chain shares A's waiting recalc, and its
    // transaction is still open when A is aborted.
    const shared = Promise.withResolvers<boolean>();
    const commit = Promise.withResolvers<void>();
    const finishing = db.sql.begin(async (tx) => {
      const counted = await lockPipelinesOf(tx, ingest);
      const [chained] = await enqueueRecalcs(tx, upload.pipelineId, [{
        dataEntryTypeId: 20,
        year: 2025,
      }], "t");
      shared.resolve(chained.shared && chained.job_id === recalcId);
      await commit.promise;
      assert.ok(await finishJob(tx, ingest, { result: "SUCCESS", message: "ok", meta: {} }));
      await refreshPipelines(tx, counted.ids);
    });
    assert.equal(await shared.promise, true);
    const abort = abortPipeline(db.sql, a.pipelineId);
    await untilSomeoneWaitsForALock(db);
    commit.resolve();
    await finishing;
    assert.deepEqual(await abort, { waitingAborted: 0, running: 0 });
    // The recalc the upload waits for is not aborted: it is the upload's now.
    const [job] = await db.sql`select state, result, pipeline_id from data_ingestion_jobs
      where id = ${recalcId}`;
    assert.deepEqual([job.state, job.result, job.pipeline_id], [
      "NOT_STARTED",
      null,
      upload.pipelineId,
    ]);
    assert.deepEqual([await status(db, a.pipelineId), await status(db, upload.pipelineId)], [
      "FAILED",
      "RUNNING",
    ]);
    const claimed = (await claimJob(db.sql, "w2"))!;
    assert.equal(claimed.id, recalcId);
    assert.ok(
      await db.sql.begin(async (tx) => {
        const counted = await lockPipelinesOf(tx, claimed);
        const done = await finishJob(tx, claimed, { result: "SUCCESS", message: "ok", meta: {} });
        await refreshPipelines(tx, counted.ids);
        return done;
      }),
    );
    assert.equal(await status(db, upload.pipelineId), "SUCCESS");
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "abort: the oldest pipeline sharing a job inherits it; an aborted pipeline ends PARTIAL at best",
  async (db) => {
    // Pipeline ids are random: make the younger sharer's id sort first.
    let a, older, younger;
    for (;;) {
      await db.sql`delete from pipeline_links`;
      await db.sql`delete from data_ingestion_jobs`;
      await db.sql`delete from pipelines`;
      a = await pipeline(db, [recalc(20, 2025)]);
      older = await pipeline(db, [recalc(20, 2025)]);
      younger = await pipeline(db, [recalc(20, 2025)]);
      if (younger.pipelineId < older.pipelineId) break;
    }
    await abortPipeline(db.sql, a.pipelineId);
    const [job] = await db.sql`select pipeline_id from data_ingestion_jobs`;
    assert.equal(job.pipeline_id, older.pipelineId);
    await db.sql`delete from pipeline_links`;
    await db.sql`delete from data_ingestion_jobs`;

    // A reference upload done, its recalc shared and handed over by the abort: not SUCCESS.
    const upload = await pipeline(db, [reference("rates")]);
    const claimed = (await claimJob(db.sql, "w"))!;
    assert.equal(claimed.id, upload.jobs[0].jobId);
    await db.sql.begin(async (tx) => {
      await finishJob(tx, claimed, { result: "SUCCESS", message: "ok", meta: {} });
      await enqueueRecalcs(tx, upload.pipelineId, [{ dataEntryTypeId: 21, year: 2025 }], "t");
      await refreshPipelines(tx, [upload.pipelineId]);
    });
    const sharer = await pipeline(db, [recalc(21, 2025)]);
    assert.equal(sharer.jobs[0].shared, true);
    await abortPipeline(db.sql, upload.pipelineId);
    assert.equal(await status(db, upload.pipelineId), "PARTIAL");
    assert.equal(await status(db, sharer.pipelineId), "RUNNING");
  },
);

dbTest(
  testDb,
  "an entries upload without a year is ordered against the det's uploads of a year",
  async (db) => {
    const entries = (year: number | null): NewJob => ({
      jobType: "entries_ingest",
      moduleTypeId: 2,
      dataEntryTypeId: 20,
      year,
      input: {
        upload_id: crypto.randomUUID(),
        file_name: "e.csv",
        data_entry_type_id: 20,
        strict: false,
        ...(year === null ? {} : { year }),
      },
    } as NewJob);
    const anyYear = await pipeline(db, [entries(null)]);
    const ofYear = await pipeline(db, [entries(2025)]);
    const first = (await claimJob(db.sql, "w1"))!;
    assert.equal(first.id, anyYear.jobs[0].jobId);
    assert.equal(await claimJob(db.sql, "w2"), null);
    assert.ok(await finish(db, first, "SUCCESS"));
    assert.equal((await claimJob(db.sql, "w2"))?.id, ofYear.jobs[0].jobId);
  },
);

dbTest(
  testDb,
  "a released job (graceful stop) is waiting again, its attempt not counted",
  async (db) => {
    await pipeline(db, [recalc(20, 2025)]);
    const job = (await claimJob(db.sql, "w1"))!;
    assert.ok(await releaseJob(db.sql, job, "stopping"));
    const [row] = await db.sql`select state, locked_by, attempts, status_message
    from data_ingestion_jobs`;
    assert.deepEqual([row.state, row.locked_by, row.attempts, row.status_message], [
      "NOT_STARTED",
      null,
      0,
      "stopping",
    ]);
    assert.equal(await releaseJob(db.sql, job, "again"), false);
  },
);

// Two connections at once: the server only (the embedded database is one session).
dbTest(
  testDb,
  "jobs of one key are claimed in queue order, even while the oldest is locked by another claim",
  async (db) => {
    const first = await pipeline(db, [reference("rates")]);
    const second = await pipeline(db, [reference("rates")]);
    const other = await pipeline(db, [recalc(20, 2025)]);
    // Another worker's claim transaction holds the oldest row: the next one of its key must wait.
    const held = Promise.withResolvers<void>();
    const locked = Promise.withResolvers<void>();
    const holding = db.sql.begin(async (tx) => {
      await tx`select id from data_ingestion_jobs where id = ${first.jobs[0].jobId} for update`;
      locked.resolve();
      await held.promise;
    });
    await locked.promise;
    try {
      const claimed = (await claimJob(db.sql, "w2"))!;
      assert.equal(claimed.id, other.jobs[0].jobId);
      assert.equal(await claimJob(db.sql, "w2"), null);
    } finally {
      held.resolve();
      await holding;
    }
    assert.equal((await claimJob(db.sql, "w1"))?.id, first.jobs[0].jobId);
    assert.equal(await claimJob(db.sql, "w1"), null);
    assert.equal(second.jobs[0].state, "NOT_STARTED");
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "expired uploads go, unless a job that has not finished still needs them",
  async (db) => {
    const [kept, gone] = [crypto.randomUUID(), crypto.randomUUID()];
    for (const id of [kept, gone]) {
      await db.sql`insert into uploads (id, file_name, size_bytes, sha256, created_at)
      values (${id}, 'rates.csv', 1, 'x', now() - interval '2 days')`;
      await db.sql`insert into upload_chunks (upload_id, seq, data) values (${id}, 0, '\\x41')`;
    }
    const job = reference("rates");
    await pipeline(db, [{ ...job, input: { ...job.input, upload_id: kept } as NewJob["input"] }]);
    assert.equal(await deleteExpiredUploads(db.sql, 86_400), 1);
    const left = await db.sql<{ id: string }[]>`select id from uploads`;
    assert.deepEqual(left.map((r) => r.id), [kept]);
    const claimed = (await claimJob(db.sql, "w"))!;
    assert.ok(await finish(db, claimed, "SUCCESS"));
    assert.equal(await deleteExpiredUploads(db.sql, 86_400), 1);
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from upload_chunks`;
    assert.equal(n, 0);
  },
);
