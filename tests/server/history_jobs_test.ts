// A factor upload through the HTTP API is recorded like a CLI import (spec/history.md §1): the
// import names the token's name and the file's SHA-256, and the recalc it chains records its run
// with trigger `job`, its job id and the same actor.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import { listFactorImports } from "../../src/history/imports.ts";
import { listRematchRuns } from "../../src/history/runs.ts";
import { sha256Hex } from "../../src/history/sha256.ts";
import { call, dispatchForm, startTestServer } from "./_server.ts";
import { importFactorText, planeFactors, seedEntries, waitForPipelines } from "./_seed.ts";

const testDb = useTestDatabase();

dbTest(
  testDb,
  "an API factor upload records its import and its chained run as the token's name",
  async (db) => {
    await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
    await seedEntries(db, "plane", 2025, 5);
    const server = await startTestServer(db, { tokens: "ops-upload:s3cret-token-123456" });
    try {
      const text = planeFactors(0.2, 0.6);
      const response = await call(server.url, "/v1/sync/dispatch", {
        method: "POST",
        token: "s3cret-token-123456",
        body: dispatchForm({
          target_type: "factors",
          year: 2025,
          config: { module_type_id: "professional_travel", data_entry_type_id: "plane" },
        }, { name: "plane_x2.csv", text }),
      });
      assert.equal(response.status, 202, JSON.stringify(response.body));
      const pipeline = (response.body as { pipeline_id: string }).pipeline_id;
      assert.deepEqual([...(await waitForPipelines(db, [pipeline])).values()], ["SUCCESS"]);

      const [upload] = await listFactorImports(db.sql, {
        dataEntryTypeId: 20,
        year: 2025,
        limit: 1,
      });
      assert.equal(upload.actor, "ops-upload");
      assert.equal(upload.source, "plane_x2.csv");
      assert.equal(upload.fileSha256, await sha256Hex(new TextEncoder().encode(text)));
      assert.deepEqual([upload.updated, upload.unchanged], [2, 0]);
      const jobs = await db.sql<{ id: number; job_type: string }[]>`
      select id, job_type from data_ingestion_jobs where pipeline_id = ${pipeline} order by id`;
      const ingest = jobs.find((j) => j.job_type === "factor_ingest")!;
      const recalc = jobs.find((j) => j.job_type === "emission_recalc")!;
      assert.equal(upload.jobId, ingest.id);

      const [run] = await listRematchRuns(db.sql, { dataEntryTypeId: 20, year: 2025 });
      assert.deepEqual([run.trigger, run.jobId, run.actor], ["job", recalc.id, "ops-upload"]);
      // The history of the upload names the run that followed it.
      assert.deepEqual(upload.runs.map((r) => r.id), [run.id]);
    } finally {
      await server.stop();
    }
  },
);
