// The plan's acceptance step (plan 310-D, issue 10): seed plane entries, upload a v2 plane factor
// CSV through POST /v1/sync/dispatch, follow the pipeline's stream until it is done, and find the
// same emission row ids with the new kg, and a strict-dropped entry for the removed factor.
// Then the same through temp-upload + JSON dispatch for a module file (equipment routing).
// Run against a spawned `serve` process on the server, and in-process on the embedded database.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Database, openDatabase } from "../../src/db/connection.ts";
import {
  call,
  createServerDatabase,
  dispatchForm,
  followPipeline,
  serverUrl,
  spawnServe,
  startTestServer,
} from "./_server.ts";

const FIXTURES = join(import.meta.dirname!, "..", "..", "fixtures", "matrix");

const PLANE_V1 = await Deno.readTextFile(
  join(FIXTURES, "professional_travel__plane_strict_drop", "factors_v1.csv"),
);
// v2, the whole set: economy is gone, business goes from 0.3 to 0.45 kg/km.
const PLANE_V2 = `category,cabin_class,ef_kg_co2eq_per_km,rfi_adjustment,min_distance,max_distance
very_short_haul,business,0.45,1,0,800
`;
const LOCATIONS = await Deno.readTextFile(
  join(FIXTURES, "professional_travel__plane", "locations.csv"),
);
const PLANE_ENTRIES = `unit,year,origin_iata,destination_iata,cabin_class,number_of_trips
U1,2025,GVA,CDG,economy,1
U1,2025,GVA,CDG,business,2
`;
const IT_ENTRIES =
  `unit,year,name,equipment_class,sub_class,active_usage_hours_per_week,standby_usage_hours_per_week
U1,2025,office laptop,Laptop,Standard,40,128
`;
const equipmentFile = (ef: number) =>
  `equipment_category,equipment_class,sub_class,active_power_w,standby_power_w,active_usage_hours_per_week,standby_usage_hours_per_week,ef_kg_co2eq_per_kwh
it,Laptop,Standard,100,10,40,128,${ef}
`;

type Body = Record<string, unknown>;

async function dispatchFile(
  base: string,
  fields: { target_type: string; year?: number; config?: Record<string, unknown> },
  name: string,
  text: string,
): Promise<Body> {
  const response = await call(base, "/v1/sync/dispatch", {
    method: "POST",
    body: dispatchForm(fields, { name, text }),
  });
  assert.equal(response.status, 202, JSON.stringify(response.body));
  const body = response.body as Body;
  const { done } = await followPipeline(base, body.pipeline_id as string);
  assert.equal(done.status, "SUCCESS", JSON.stringify(done, null, 2));
  return done;
}

interface EmissionRow {
  id: number;
  data_entry_id: number;
  kg_co2eq: number;
  primary_factor_id: number | null;
}

async function emissionsOf(db: Database, det: number): Promise<EmissionRow[]> {
  return await db.sql<EmissionRow[]>`
    select x.id, x.data_entry_id, x.kg_co2eq, x.primary_factor_id
    from data_entry_emissions x join data_entries e on e.id = x.data_entry_id
    where e.data_entry_type_id = ${det} order by e.id, x.id`;
}

async function entryIds(db: Database, det: number): Promise<number[]> {
  const rows = await db.sql<{ id: number }[]>`
    select id from data_entries where data_entry_type_id = ${det} order by id`;
  return rows.map((r) => r.id);
}

async function acceptance(base: string, db: Database): Promise<void> {
  // Seed through the API: airports, the v1 factors, two plane entries.
  await dispatchFile(base, { target_type: "locations" }, "locations.csv", LOCATIONS);
  await dispatchFile(
    base,
    {
      target_type: "factors",
      year: 2025,
      config: { module_type_id: "professional_travel", data_entry_type_id: "plane" },
    },
    "plane_v1.csv",
    PLANE_V1,
  );
  await dispatchFile(
    base,
    {
      target_type: "data_entries",
      config: { data_entry_type_id: "plane" },
    },
    "plane_entries.csv",
    PLANE_ENTRIES,
  );
  const [economy, business] = await entryIds(db, 20);
  const before = await emissionsOf(db, 20);
  assert.deepEqual(before.map((r) => r.data_entry_id), [economy, business]);
  // GVA-CDG economy at 0.1 kg/km is the matrix fixture's 50.3 kg; business: 3 × the factor,
  // 2 trips.
  assert.ok(Math.abs(before[0].kg_co2eq - 50.3) < 0.05, `economy kg ${before[0].kg_co2eq}`);
  assert.ok(Math.abs(before[1].kg_co2eq - before[0].kg_co2eq * 6) < 1e-9);

  // The acceptance step: upload v2 (replace), follow the stream until the pipeline is done.
  const response = await call(base, "/v1/sync/dispatch", {
    method: "POST",
    body: dispatchForm({
      target_type: "factors",
      year: 2025,
      config: { module_type_id: 2, data_entry_type_id: 20, mode: "replace" },
    }, { name: "plane_v2.csv", text: PLANE_V2 }),
  });
  assert.equal(response.status, 202, JSON.stringify(response.body));
  const dispatched = response.body as Body;
  assert.equal(dispatched.state, "NOT_STARTED");
  const { events, done } = await followPipeline(base, dispatched.pipeline_id as string);
  assert.equal(done.status, "SUCCESS");
  const jobs = done.jobs as Body[];
  assert.deepEqual(jobs.map((j) => [j.job_type, j.state, j.result]), [
    ["factor_ingest", "FINISHED", "SUCCESS"],
    ["emission_recalc", "FINISHED", "SUCCESS"],
  ]);
  assert.equal(jobs[0].id, dispatched.job_id);
  const ingest = jobs[0].result_document as Body;
  assert.deepEqual([ingest.updated, ingest.deleted, ingest.inserted], [1, 1, 0]);
  assert.deepEqual(
    (jobs[0].chained as Body[]).map((c) => [c.data_entry_type, c.year, c.job_id]),
    [["plane", 2025, jobs[1].id]],
  );
  const recalc = jobs[1].result_document as Body;
  assert.deepEqual([recalc.entries, recalc.recalculated, recalc.dropped, recalc.errors], [
    2,
    2,
    1,
    0,
  ]);
  // The stream told each job's way to FINISHED, and the pipeline's end.
  for (const job of jobs) {
    assert.ok(
      events.some((e) => e.event === "job" && e.data.id === job.id && e.data.state === "FINISHED"),
      `no FINISHED event for job ${job.id}`,
    );
  }
  assert.ok(events.some((e) => e.event === "pipeline" && e.data.status === "SUCCESS"));

  // Same row id, new kg (0.45 / 0.3); the economy entry stays, without emissions.
  const after = await emissionsOf(db, 20);
  assert.equal(after.length, 1);
  assert.equal(after[0].id, before[1].id);
  assert.equal(after[0].data_entry_id, business);
  assert.ok(Math.abs(after[0].kg_co2eq - before[1].kg_co2eq * 1.5) < 1e-9 * after[0].kg_co2eq);
  assert.deepEqual(await entryIds(db, 20), [economy, business]);

  // The export endpoint streams what is stored.
  const exported = await call(base, "/v1/emissions?det=plane&year=2025&format=json");
  assert.equal(exported.status, 200);
  const rows = exported.body as Body[];
  assert.deepEqual(rows.map((r) => [r.entry_id, r.kg_co2eq]), [[business, after[0].kg_co2eq]]);

  // A module file (equipment, routed by equipment_category) through temp-upload + JSON.
  await dispatchFile(
    base,
    {
      target_type: "factors",
      year: 2025,
      config: { module_type_id: "equipment" },
    },
    "equipment_v1.csv",
    equipmentFile(0.1),
  );
  await dispatchFile(
    base,
    {
      target_type: "data_entries",
      config: { module_type_id: "equipment", data_entry_type_id: "it" },
    },
    "it_entries.csv",
    IT_ENTRIES,
  );
  const [laptopBefore] = await emissionsOf(db, 11);
  assert.ok(Math.abs(laptopBefore.kg_co2eq - 27.456) < 1e-9, `it kg ${laptopBefore.kg_co2eq}`);
  const form = new FormData();
  form.append("files", new Blob([equipmentFile(0.2)]), "equipment_v2.csv");
  const uploaded = await call(base, "/v1/files/temp-upload", { method: "POST", body: form });
  assert.equal(uploaded.status, 201, JSON.stringify(uploaded.body));
  const [{ path }] = uploaded.body as { path: string }[];
  assert.match(path, /^uploads\/[0-9a-f-]{36}\.csv$/);
  const json = await call(base, "/v1/sync/dispatch", {
    method: "POST",
    json: {
      target_type: "factors",
      year: 2025,
      file_path: path,
      config: { module_type_id: "equipment" },
    },
  });
  assert.equal(json.status, 202, JSON.stringify(json.body));
  const module = await followPipeline(base, (json.body as Body).pipeline_id as string);
  assert.equal(module.done.status, "SUCCESS");
  const moduleJobs = module.done.jobs as Body[];
  // Routing: only it is in the file, so only it is recalculated.
  assert.deepEqual(moduleJobs.map((j) => [j.job_type, j.data_entry_type]), [
    ["factor_ingest", null],
    ["emission_recalc", "it"],
  ]);
  const [laptopAfter] = await emissionsOf(db, 11);
  assert.equal(laptopAfter.id, laptopBefore.id);
  assert.ok(Math.abs(laptopAfter.kg_co2eq - 54.912) < 1e-9, `it kg ${laptopAfter.kg_co2eq}`);
}

const SERVER = serverUrl();

Deno.test({
  name: "acceptance on the server: a v2 plane CSV dispatched to a spawned serve process updates " +
    "the stored emissions in place and strict-drops the removed factor; a module file too",
  ignore: SERVER === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const database = await createServerDatabase();
    const serve = await spawnServe(database.url);
    try {
      await acceptance(serve.url, database.db);
    } finally {
      assert.equal(await serve.stop(), 0, serve.stderr());
      await database.drop();
    }
  },
});

Deno.test({
  name: "acceptance on the embedded database: the same in one process (API and worker)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "rematch-acceptance-" });
    const db = await openDatabase({ databaseUrl: "", dataDir: join(dir, "db"), announce: false });
    const server = await startTestServer(db);
    try {
      await acceptance(server.url, db);
    } finally {
      await server.stop();
      await db.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
