// The history endpoints of the HTTP API (spec/history.md §3, interfaces.md §4): after imports
// through the library and an upload through the job runner, `GET /v1/history/imports`,
// `/v1/history/imports/{id}` and `/v1/history/rematches` return the imports, the factors they
// changed and the runs with their counts and kg; filters and cursors page them; bad queries get
// 400 naming the field; recalculation-status names each slice's last recorded import.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { rollbackImport } from "../../src/history/rollback.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { call, dispatchForm, startTestServer } from "./_server.ts";
import {
  emissionKg,
  importFactorText,
  itFactors,
  planeFactors,
  seedEntries,
  waitForPipelines,
} from "./_seed.ts";

const testDb = useTestDatabase();

type Body = Record<string, unknown>;
const TOKEN = "hist-s3cret-token-42";
const errorOf = (body: unknown) =>
  (body as { error: { code: string; message: string; details?: { path: string }[] } }).error;

async function withServer(db: Database, fn: (get: Get) => Promise<void>): Promise<void> {
  const server = await startTestServer(db, { tokens: `hist-ops:${TOKEN}` });
  try {
    await fn(async (path) => {
      const { status, body } = await call(server.url, path, { token: TOKEN });
      return { status, body: body as Body };
    });
  } finally {
    await server.stop();
  }
}

type Get = (path: string) => Promise<{ status: number; body: Body }>;

/** Uploads a plane factor file through POST /v1/sync/dispatch; returns its pipeline's job ids. */
async function uploadPlaneFactors(
  db: Database,
  text: string,
  name: string,
): Promise<{ ingest: number; recalc: number }> {
  const server = await startTestServer(db, { tokens: `hist-ops:${TOKEN}` });
  try {
    const response = await call(server.url, "/v1/sync/dispatch", {
      method: "POST",
      token: TOKEN,
      body: dispatchForm({
        target_type: "factors",
        year: 2025,
        config: { module_type_id: "professional_travel", data_entry_type_id: "plane" },
      }, { name, text }),
    });
    assert.equal(response.status, 202, JSON.stringify(response.body));
    const pipeline = (response.body as Body).pipeline_id as string;
    assert.deepEqual([...(await waitForPipelines(db, [pipeline])).values()], ["SUCCESS"]);
    const jobs = await db.sql<{ id: number; job_type: string }[]>`
      select id, job_type from data_ingestion_jobs where pipeline_id = ${pipeline} order by id`;
    return {
      ingest: jobs.find((j) => j.job_type === "factor_ingest")!.id,
      recalc: jobs.find((j) => j.job_type === "emission_recalc")!.id,
    };
  } finally {
    await server.stop();
  }
}

async function importIds(db: Database): Promise<number[]> {
  const rows = await db.sql<{ id: number }[]>`select id from factor_imports order by id`;
  return rows.map((r) => r.id);
}

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

function assertClose(actual: unknown, expected: number, what: string): void {
  assert.equal(typeof actual, "number", what);
  assert.ok(
    Math.abs((actual as number) - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} is not ${expected}`,
  );
}

/** Follows next_cursor from `path` with `limit=1`; returns the ids of every page in order. */
async function pageIds(get: Get, path: string, key: "imports" | "runs"): Promise<number[][]> {
  const pages: number[][] = [];
  let cursor: string | null = null;
  do {
    const separator = path.includes("?") ? "&" : "?";
    const { status, body } = await get(
      `${path}${separator}limit=1${cursor ? `&cursor=${cursor}` : ""}`,
    );
    assert.equal(status, 200, JSON.stringify(body));
    pages.push((body[key] as Body[]).map((row) => row.id as number));
    cursor = body.next_cursor as string | null;
    assert.ok(pages.length <= 10, `${path}: the cursor does not move on`);
  } while (cursor);
  return pages;
}

dbTest(
  testDb,
  "imports, one import's changes and the runs, with their counts, kg, filters and cursors",
  async (db) => {
    // A: plane 2025 by the library (2 inserted); B: it 2024 (1 inserted); C: the plane upload
    // doubling both factors, through the job runner, which chains the recalc run R1.
    await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
    await importFactorText(db, "it", 2024, itFactors(0.05));
    await seedEntries(db, "plane", 2025, 6);
    const kgV1 = sum((await emissionKg(db, "plane", 2025)).values());
    assert.ok(kgV1 > 0, "the seeded entries have emissions");
    const jobs = await uploadPlaneFactors(db, planeFactors(0.2, 0.6), "plane_v2.csv");
    const [a, b, c] = await importIds(db);
    // R2: a rematch through the library after it (the slice is current: nothing to do).
    await recalculateForDataEntryType(db, { dataEntryType: "plane", year: 2025 });
    // Every emission is linear in its factor: doubling both doubles the slice.
    assertClose(sum((await emissionKg(db, "plane", 2025)).values()), 2 * kgV1, "slice kg");

    await withServer(db, async (get) => {
      const all = await get("/v1/history/imports");
      assert.equal(all.status, 200, JSON.stringify(all.body));
      const imports = all.body.imports as Body[];
      assert.deepEqual(imports.map((i) => i.id), [c, b, a]);
      assert.equal(all.body.next_cursor, null);
      const [upload, it, first] = imports;
      assert.deepEqual(
        [upload.data_entry_types, upload.year, upload.mode, upload.source, upload.actor],
        [["plane"], 2025, "merge", "plane_v2.csv", "hist-ops"],
      );
      assert.deepEqual(
        [upload.rows_read, upload.inserted, upload.updated, upload.deleted, upload.unchanged],
        [2, 0, 2, 0, 0],
      );
      assert.equal(upload.job_id, jobs.ingest);
      assert.match(upload.file_sha256 as string, /^[0-9a-f]{64}$/);
      assert.deepEqual([it.data_entry_types, it.year, it.inserted], [["it"], 2024, 1]);
      assert.deepEqual([first.inserted, first.updated, first.job_id], [2, 0, null]);
      // The runs after each import: both plane runs followed C, none came between A and C.
      const runsOfC = upload.runs as Body[];
      assert.equal(upload.runs_count, 2);
      assert.deepEqual(runsOfC.map((r) => r.trigger), ["cli", "job"]);
      assert.deepEqual([first.runs, first.runs_count], [[], 0]);

      // Filters by det (name or id) and year.
      const ids = async (query: string) =>
        ((await get(`/v1/history/imports?${query}`)).body.imports as Body[]).map((i) => i.id);
      assert.deepEqual(await ids("det=plane"), [c, a]);
      assert.deepEqual(await ids("det=20&year=2025"), [c, a]);
      assert.deepEqual(await ids("det=it"), [b]);
      assert.deepEqual(await ids("year=2024"), [b]);
      assert.deepEqual(await ids("det=plane&year=2024"), []);
      // One per page, newest first, the cursor continuing to the end.
      assert.deepEqual(await pageIds(get, "/v1/history/imports", "imports"), [[c], [b], [a]]);
      assert.deepEqual(await pageIds(get, "/v1/history/imports?det=plane", "imports"), [[c], [a]]);

      // C's changes: both plane factors, old → new.
      const detail = await get(`/v1/history/imports/${c}`);
      assert.equal(detail.status, 200, JSON.stringify(detail.body));
      assert.equal((detail.body.import as Body).id, c);
      assert.equal((detail.body.import as Body).source, "plane_v2.csv");
      assert.equal(detail.body.changes_count, 2);
      assert.equal(detail.body.next_offset, null);
      const changes = detail.body.changes as Body[];
      const byClass = new Map(
        changes.map((v) => [(v.classification as Body).cabin_class as string, v]),
      );
      for (const [cabin, before, after] of [["economy", 0.1, 0.2], ["business", 0.3, 0.6]]) {
        const v = byClass.get(cabin as string)!;
        assert.ok(v, `a change of the ${cabin} factor`);
        assert.deepEqual(
          [v.change, v.data_entry_type, v.year, v.changed_keys],
          ["updated", "plane", 2025, ["ef_kg_co2eq_per_km"]],
        );
        assert.equal((v.values_before as Body).ef_kg_co2eq_per_km, before);
        assert.equal((v.values_after as Body).ef_kg_co2eq_per_km, after);
        assert.equal((v.classification as Body).category, "very_short_haul");
      }
      // A's changes are inserts: no values before.
      const inserted = (await get(`/v1/history/imports/${a}`)).body.changes as Body[];
      assert.deepEqual(inserted.map((v) => [v.change, v.values_before]), [
        ["inserted", null],
        ["inserted", null],
      ]);
      // Changes page by limit and offset.
      const head = await get(`/v1/history/imports/${c}?limit=1`);
      assert.deepEqual([(head.body.changes as Body[]).length, head.body.next_offset], [1, 1]);
      const tail = await get(`/v1/history/imports/${c}?limit=1&offset=1`);
      assert.deepEqual([(tail.body.changes as Body[]).length, tail.body.next_offset], [1, null]);
      assert.deepEqual(
        [...(head.body.changes as Body[]), ...(tail.body.changes as Body[])],
        changes,
      );

      // The runs: R2 (library, nothing to do) and R1 (the recalc the upload chained).
      const runs = await get("/v1/history/rematches?det=plane&year=2025");
      assert.equal(runs.status, 200, JSON.stringify(runs.body));
      const [r2, r1] = runs.body.runs as Body[];
      assert.equal((runs.body.runs as Body[]).length, 2);
      assert.deepEqual(
        [r1.trigger, r1.job_id, r1.actor, r1.data_entry_type, r1.year],
        ["job", jobs.recalc, "hist-ops", "plane", 2025],
      );
      // Both factors changed: the recalc read every entry, so its kg are the slice's.
      assertClose(r1.kg_before, kgV1, "R1 kg_before");
      assertClose(r1.kg_after, 2 * kgV1, "R1 kg_after");
      const modules = r1.modules as Body[];
      assertClose(sum(modules.map((m) => m.kg_after as number)), 2 * kgV1, "R1 modules kg_after");
      assert.equal((r1.result as Body).recalculated, 6);
      assert.deepEqual([r2.trigger, r2.scope, r2.job_id], ["cli", "none", null]);
      // R2 read nothing; its kg are the slice's totals all the same (spec/rematch.md §1).
      assertClose(r2.kg_before, 2 * kgV1, "R2 kg_before");
      assertClose(r2.kg_after, 2 * kgV1, "R2 kg_after");
      assert.deepEqual(runsOfC.map((r) => r.id), [r2.id, r1.id]);
      assert.deepEqual(await pageIds(get, "/v1/history/rematches", "runs"), [[r2.id], [r1.id]]);
      const it2024 = await get("/v1/history/rematches?det=it");
      assert.deepEqual([it2024.body.runs, it2024.body.next_cursor], [[], null]);
    });
  },
);

dbTest(testDb, "the history endpoints: 404, 400 naming the field, 401", async (db) => {
  await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
  await importFactorText(db, "plane", 2025, planeFactors(0.2, 0.3));
  await withServer(db, async (get) => {
    const missing = await get("/v1/history/imports/424242");
    assert.equal(missing.status, 404);
    assert.equal(errorOf(missing.body).code, "not_found");
    assert.match(errorOf(missing.body).message, /no factor import 424242/);

    for (
      const [path, field, message] of [
        ["/v1/history/imports?det=nope", "det", /unknown data entry type "nope"/],
        ["/v1/history/imports?year=20x5", "year", /expected a year between/],
        ["/v1/history/imports?limit=0", "limit", /expected at least 1/],
        ["/v1/history/imports?limit=201", "limit", /expected at most 200/],
        ["/v1/history/imports?limit=ten", "limit", /expected an integer from 1 to 200/],
        ["/v1/history/imports?cursor=bm9wZQ", "cursor", /not a next_cursor/],
        ["/v1/history/imports/abc", "id", /expected an import id/],
        ["/v1/history/imports/1?limit=10001", "limit", /expected at most 10000/],
        ["/v1/history/imports/1?offset=-1", "offset", /expected an integer from 0 to/],
        ["/v1/history/rematches?det=", "det", /unknown data entry type ""/],
        ["/v1/history/rematches?import_id=x", "import_id", /expected an import id/],
      ] as const
    ) {
      const { status, body } = await get(path);
      assert.equal(status, 400, `${path}: ${JSON.stringify(body)}`);
      const error = errorOf(body);
      assert.equal(error.code, "validation", path);
      assert.ok(error.message.startsWith(`${field}: `), `${path}: ${error.message}`);
      assert.match(error.message, message, path);
      assert.equal(error.details?.[0].path, field, path);
    }

    // A cursor of one listing is refused by the other.
    const page = await get("/v1/history/imports?limit=1");
    const cursor = page.body.next_cursor as string;
    assert.ok(cursor, "two imports: a second page");
    assert.equal((await get(`/v1/history/imports?cursor=${cursor}`)).status, 200);
    const crossed = await get(`/v1/history/rematches?cursor=${cursor}`);
    assert.equal(crossed.status, 400);
    assert.match(errorOf(crossed.body).message, /^cursor: /);
  });

  const server = await startTestServer(db, { tokens: `hist-ops:${TOKEN}` });
  try {
    for (const path of ["/v1/history/imports", "/v1/history/imports/1", "/v1/history/rematches"]) {
      const anonymous = await call(server.url, path);
      assert.equal(anonymous.status, 401, path);
      assert.equal(errorOf(anonymous.body).code, "unauthorized");
      assert.equal((await call(server.url, path, { token: "wrong" })).status, 401, path);
    }
  } finally {
    await server.stop();
  }
});

dbTest(
  testDb,
  "recalculation-status names each slice's last recorded factor import",
  async (db) => {
    await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
    await seedEntries(db, "plane", 2025, 4);
    // it 2025: entries but no factor import ever recorded.
    await seedEntries(db, "it", 2025, 2);
    const jobs = await uploadPlaneFactors(db, planeFactors(0.2, 0.3), "plane_v2.csv");
    const [, upload] = await importIds(db);
    const lastImport = async (get: Get) => {
      const { status, body } = await get("/v1/sync/recalculation-status?year=2025");
      assert.equal(status, 200, JSON.stringify(body));
      const rows = body as unknown as Body[];
      const of = (det: string) => rows.find((r) => r.data_entry_type === det)!;
      assert.equal(of("it").last_factor_import, null);
      return of("plane").last_factor_import as Body;
    };
    await withServer(db, async (get) => {
      const last = await lastImport(get);
      assert.deepEqual(
        [last.id, last.actor, last.source, last.job_id],
        [upload, "hist-ops", "plane_v2.csv", jobs.ingest],
      );
      const [{ created_at }] = await db.sql<{ created_at: Date }[]>`
        select created_at from factor_imports where id = ${upload}`;
      assert.equal(last.at, created_at.toISOString());
    });

    // A rollback is an import too: it becomes the slice's last, with its actor.
    await db.sql.begin((tx) => rollbackImport(tx, { importId: upload, actor: "undo-bot" }));
    const [, , rollback] = await importIds(db);
    await withServer(db, async (get) => {
      const last = await lastImport(get);
      assert.deepEqual(
        [last.id, last.actor, last.source, last.job_id],
        [rollback, "undo-bot", `rollback of ${upload}`, null],
      );
    });
  },
);

dbTest(testDb, "the OpenAPI document lists the history paths and their schemas", async (db) => {
  await withServer(db, async (get) => {
    const { status, body } = await get("/v1/openapi.json");
    assert.equal(status, 200);
    const doc = body as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    const parameters = (path: string) =>
      (doc.paths[path]?.get?.parameters ?? []).map((p) => `${p.in}:${p.name}`).sort();
    assert.deepEqual(parameters("/v1/history/imports"), [
      "query:cursor",
      "query:det",
      "query:limit",
      "query:year",
    ]);
    assert.deepEqual(parameters("/v1/history/imports/{id}"), [
      "path:id",
      "query:limit",
      "query:offset",
    ]);
    assert.deepEqual(parameters("/v1/history/rematches"), [
      "query:cursor",
      "query:det",
      "query:import_id",
      "query:limit",
      "query:year",
    ]);
    for (const name of ["FactorImportList", "FactorImportDetail", "FactorVersion", "RematchRun"]) {
      assert.ok(doc.components.schemas[name]?.properties, name);
    }
    const status_ = doc.components.schemas.SliceStatus.properties!.last_factor_import as {
      properties?: Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(status_.properties ?? {}).sort(), [
      "actor",
      "at",
      "id",
      "job_id",
      "source",
    ]);
  });
});
