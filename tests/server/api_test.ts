// The HTTP API's edges on a real server on a loopback port (in-process, so it runs on both
// backends): authentication, the bind rule, upload paths and limits, validation naming the
// field, the OpenAPI document, listings and the status endpoints.
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { dbTest, holdInTransaction, serverBackendExpected, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { EMISSION_EXPORT_COLUMNS } from "../../src/db/emissions_export.ts";
import {
  call,
  createServerDatabase,
  dispatchForm,
  eventually,
  followPipeline,
  serverUrl,
  spawnScript,
  spawnServe,
  startTestServer,
} from "./_server.ts";
import { importFactorText, itFactors, planeFactors, queueRecalc, seedEntries } from "./_seed.ts";
import { JobWorker } from "../../src/jobs/worker.ts";
import { createLogger } from "../../src/jobs/log.ts";
import { createPipeline } from "../../src/jobs/queue.ts";

const testDb = useTestDatabase();

type Body = Record<string, unknown>;
const errorOf = (body: unknown) => (body as { error: { code: string; message: string } }).error;

async function withServer(
  db: Database,
  options: Parameters<typeof startTestServer>[1],
  fn: (base: string) => Promise<void>,
): Promise<void> {
  const server = await startTestServer(db, options);
  try {
    await fn(server.url);
  } finally {
    await server.stop();
  }
}

async function countRows(db: Database): Promise<{ uploads: number; jobs: number }> {
  const [row] = await db.sql<{ uploads: number; jobs: number }[]>`
    select (select count(*)::int from uploads) as uploads,
      (select count(*)::int from data_ingestion_jobs) as jobs`;
  return row;
}

const RATES = "year,currency,eur_per_unit\n2025,usd,0.9\n";

dbTest(
  testDb,
  "auth: 401 without a token or with a wrong one; the token's name is the actor",
  async (db) => {
    await withServer(db, { tokens: "ci:s3cret-ci,ops:other-secret" }, async (base) => {
      const none = await call(base, "/v1/sync/pipelines");
      assert.equal(none.status, 401);
      assert.equal(errorOf(none.body).code, "unauthorized");
      assert.match(none.headers.get("www-authenticate") ?? "", /Bearer/);
      const wrong = await call(base, "/v1/sync/pipelines", { token: "s3cret-cj" });
      assert.equal(wrong.status, 401);
      const prefix = await call(base, "/v1/sync/pipelines", { token: "s3cret" });
      assert.equal(prefix.status, 401);
      // Health and the OpenAPI document need no token.
      assert.equal((await call(base, "/healthz")).status, 200);
      assert.equal((await call(base, "/v1/openapi.json")).status, 200);
      const ok = await call(base, "/v1/sync/dispatch", {
        method: "POST",
        token: "other-secret",
        body: dispatchForm({ target_type: "rates" }, { name: "rates.csv", text: RATES }),
      });
      assert.equal(ok.status, 202, JSON.stringify(ok.body));
      const pipeline = await call(base, `/v1/sync/pipelines/${(ok.body as Body).pipeline_id}`, {
        token: "s3cret-ci",
      });
      assert.equal((pipeline.body as Body).actor, "ops");
      const [upload] = await db.sql`select actor from uploads`;
      assert.equal(upload.actor, "ops");
    });
  },
);

// A request as a browser page would send it: any Host and Origin (fetch sets its own Host).
async function rawRequest(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const lines = [`${method} ${path} HTTP/1.1`, "Connection: close", "Content-Length: 0"];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    await conn.write(new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`));
    const text = new TextDecoder().decode(
      await new Response(conn.readable).arrayBuffer(),
    );
    return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), body: text.split("\r\n\r\n")[1] };
  } catch (error) {
    conn.close();
    throw error;
  }
}

dbTest(
  testDb,
  "without tokens, a request to a foreign host (DNS rebinding) or from a foreign origin (a web " +
    "page's form) is refused: 403",
  async (db) => {
    await withServer(db, {}, async (base) => {
      const { host } = new URL(base);
      const cases: [Record<string, string>, number][] = [
        [{ Host: host }, 200],
        [{ Host: `localhost:${new URL(base).port}`, Origin: "http://localhost:5173" }, 200],
        [{ Host: `rebind.evil.example:${new URL(base).port}` }, 403],
        [{ Host: host, Origin: "http://evil.example" }, 403],
        [{ Host: host, Origin: "null" }, 403],
      ];
      for (const [headers, status] of cases) {
        const got = await rawRequest(base, "GET", "/v1/sync/workers", headers);
        assert.equal(got.status, status, JSON.stringify(headers));
        if (status === 403) assert.match(got.body, /"code":"forbidden".*REMATCH_API_TOKENS/);
      }
      // A form post from a page: refused before anything is queued.
      const post = await rawRequest(base, "POST", "/v1/sync/recalculate-emissions/2?year=2025", {
        Host: host,
        Origin: "https://evil.example",
      });
      assert.equal(post.status, 403);
      assert.equal((await db.sql`select count(*)::int as n from pipelines`)[0].n, 0);
    });
    // With tokens, the token is the guard: any host and origin.
    await withServer(db, { tokens: "ci:s3cret-ci" }, async (base) => {
      const got = await rawRequest(base, "GET", "/v1/sync/workers", {
        Host: "api.example.org",
        Origin: "https://dashboard.example.org",
        Authorization: "Bearer s3cret-ci",
      });
      assert.equal(got.status, 200);
    });
  },
);

Deno.test("serve refuses a non-loopback address without tokens, before opening any database", async () => {
  const refused = spawnScript("serve", [
    "--hostname",
    "0.0.0.0",
    "--port",
    "0",
    "--database-url",
    "postgres://nobody@127.0.0.1:1/none",
  ], { REMATCH_API_TOKENS: "" });
  const code = await refused.exited;
  assert.equal(code, 1);
  assert.match(refused.stderr(), /refusing to serve on 0\.0\.0\.0 without authentication/);
  assert.doesNotMatch(refused.stderr(), /ECONNREFUSED|connect/i);
});

dbTest(
  testDb,
  "file_path: only an upload of this server; ../ and absolute paths are refused unread",
  async (db) => {
    // A real file the paths point at: if the server read it, a job would exist.
    const dir = await Deno.makeTempDir();
    const outside = join(dir, "rates.csv");
    await Deno.writeTextFile(outside, RATES);
    await withServer(db, {}, async (base) => {
      for (
        const path of [
          outside,
          `../${outside}`,
          "../../etc/passwd",
          "uploads/../../etc/passwd",
          "uploads/0b6c6f1e-8f7a-4d4b-9a55-3c2d1e0f9a8b.csv/../x.csv",
          "file:///etc/passwd",
        ]
      ) {
        const response = await call(base, "/v1/sync/dispatch", {
          method: "POST",
          json: { target_type: "rates", file_path: path },
        });
        assert.equal(response.status, 400, path);
        assert.match(errorOf(response.body).message, /^file_path: not a path returned by/);
      }
      const unknown = await call(base, "/v1/sync/dispatch", {
        method: "POST",
        json: {
          target_type: "rates",
          file_path: "uploads/0b6c6f1e-8f7a-4d4b-9a55-3c2d1e0f9a8b.csv",
        },
      });
      assert.equal(unknown.status, 400);
      assert.match(errorOf(unknown.body).message, /^file_path: no upload uploads\/0b6c6f1e/);
      assert.deepEqual(await countRows(db), { uploads: 0, jobs: 0 });
    });
    await Deno.remove(dir, { recursive: true });
  },
);

dbTest(
  testDb,
  "an upload above the limit is 413 and leaves nothing behind (disk or database)",
  async (db) => {
    const server = await startTestServer(db, { maxUploadBytes: 1000 });
    try {
      const big = "year,currency,eur_per_unit\n" + "2025,usd,0.9\n".repeat(200);
      const form = new FormData();
      form.append("files", new Blob([RATES]), "small.csv");
      form.append("files", new Blob([big]), "big.csv");
      const response = await call(server.url, "/v1/files/temp-upload", {
        method: "POST",
        body: form,
      });
      assert.equal(response.status, 413);
      assert.match(errorOf(response.body).message, /big\.csv" is larger than the 1000 bytes/);
      const dispatched = await call(server.url, "/v1/sync/dispatch", {
        method: "POST",
        body: dispatchForm({ target_type: "rates" }, { name: "big.csv", text: big }),
      });
      assert.equal(dispatched.status, 413);
      assert.deepEqual(await countRows(db), { uploads: 0, jobs: 0 });
      // The files that arrived before the refusal are gone from disk too.
      const leftovers = [];
      for await (const file of Deno.readDir(server.uploadDir)) leftovers.push(file.name);
      assert.deepEqual(leftovers, []);
      // A file that is not .csv is 415.
      const typed = new FormData();
      typed.append("files", new Blob(["x"]), "rates.xlsx");
      const wrongType = await call(server.url, "/v1/files/temp-upload", {
        method: "POST",
        body: typed,
      });
      assert.equal(wrongType.status, 415);
      assert.equal(errorOf(wrongType.body).code, "unsupported_file");
      // A field given twice, or a second file in a dispatch, is a bad request: which was meant?
      const refusals: [(form: FormData) => void, string][] = [
        [(form) => form.append("year", "2024"), "field year: given twice (expected it once)"],
        [
          (form) => form.append("file", new Blob(["y\n"]), "other.csv"),
          "field file: one file per request (this one sends more)",
        ],
        // A field the dispatch does not know, whatever its name.
        [(form) => form.append("modul", "x"), '(body): Unrecognized key: "modul"'],
        [(form) => form.append("__proto__", "x"), '(body): Unrecognized key: "__proto__"'],
      ];
      for (const [add, message] of refusals) {
        const form = planeForm(new TextEncoder().encode("x\n"), "plane.csv");
        add(form);
        const response = await call(server.url, "/v1/sync/dispatch", {
          method: "POST",
          body: form,
        });
        assert.equal(response.status, 400);
        assert.equal(errorOf(response.body).message, message);
      }
      assert.deepEqual(await countRows(db), { uploads: 0, jobs: 0 });
    } finally {
      await server.stop();
    }
  },
);

dbTest(testDb, "bad JSON, enum, year and ids get 400 naming the field", async (db) => {
  await withServer(db, {}, async (base) => {
    const post = (body: string | Body) =>
      call(base, "/v1/sync/dispatch", {
        method: "POST",
        ...(typeof body === "string"
          ? { body, headers: { "content-type": "application/json" } }
          : { json: body }),
      });
    const cases: [string | Body, RegExp][] = [
      ['{"target_type": "factors",', /^body: not valid JSON/],
      [{ target_type: "facts", file_path: "x" }, /^target_type: expected one of "factors"/],
      [{ target_type: "factors", year: 1800, file_path: "x" }, /^year: expected a year between/],
      [{ target_type: "factors", year: "2025", file_path: "x" }, /^year: expected a year/],
      [
        { target_type: "factors", year: 2025, file_path: "x", config: { mode: "upsert" } },
        /^config\.mode: expected "merge" or "replace"/,
      ],
      [
        { target_type: "factors", year: 2025, file_path: "x", config: { modul_type_id: 2 } },
        /^config: Unrecognized key: "modul_type_id"/,
      ],
      [{ target_type: "factors", file_path: "x" }, /^year: is required for factors/],
      [
        { target_type: "factors", year: 2025, file_path: "x", config: { module_type_id: "cars" } },
        /^config\.module_type_id: unknown module "cars"/,
      ],
      [
        {
          target_type: "factors",
          year: 2025,
          file_path: "x",
          config: { module_type_id: "equipment", data_entry_type_id: "plane" },
        },
        /^config\.data_entry_type_id: plane belongs to module professional_travel/,
      ],
      [
        { target_type: "data_entries", file_path: "x", config: {} },
        /^config\.data_entry_type_id: is required for data_entries/,
      ],
    ];
    for (const [body, message] of cases) {
      const response = await post(body);
      assert.equal(response.status, 400, JSON.stringify(body));
      const error = errorOf(response.body);
      assert.equal(error.code, "validation");
      assert.match(error.message, message, JSON.stringify(body));
    }
    const query = await call(base, "/v1/sync/recalculation-status?year=20x5");
    assert.equal(query.status, 400);
    assert.match(errorOf(query.body).message, /^year: expected a year/);
    const list = await call(base, "/v1/sync/pipelines?state=DONE&limit=0");
    assert.equal(list.status, 400);
    assert.match(
      errorOf(list.body).message,
      /state: expected one of RUNNING.*limit: expected at least 1/,
    );
    const job = await call(base, "/v1/sync/jobs/abc");
    assert.equal(job.status, 400);
    assert.match(errorOf(job.body).message, /^id: expected a job id/);
    const recalc = await call(base, "/v1/sync/recalculate-emissions/equipment/plane?year=2025", {
      method: "POST",
    });
    assert.equal(recalc.status, 404);
    const huge = await call(base, "/v1/sync/dispatch", {
      method: "POST",
      json: { target_type: "rates", file_path: "x".repeat(2 * 1024 * 1024) },
    });
    assert.equal(huge.status, 413);
    const stream = await call(base, `/v1/sync/pipelines/${crypto.randomUUID()}/stream`);
    assert.equal(stream.status, 404);
    const media = await call(base, "/v1/sync/dispatch", {
      method: "POST",
      body: "target_type=rates",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(media.status, 415);
    assert.deepEqual(await countRows(db), { uploads: 0, jobs: 0 });
  });
});

dbTest(testDb, "the OpenAPI document describes every route from the same schemas", async (db) => {
  await withServer(db, {}, async (base) => {
    const { status, body } = await call(base, "/v1/openapi.json");
    assert.equal(status, 200);
    const doc = body as {
      openapi: string;
      paths: Record<string, Record<string, Body>>;
      components: { schemas: Record<string, Body> };
    };
    assert.match(doc.openapi, /^3\./);
    for (
      const [path, method] of [
        ["/healthz", "get"],
        ["/v1/files/temp-upload", "post"],
        ["/v1/sync/dispatch", "post"],
        ["/v1/sync/recalculate-emissions/{module_type_id}/{data_entry_type_id}", "post"],
        ["/v1/sync/recalculate-emissions/{module_type_id}", "post"],
        ["/v1/sync/jobs/{id}", "get"],
        ["/v1/sync/jobs/{id}/recover", "post"],
        ["/v1/sync/pipelines", "get"],
        ["/v1/sync/pipelines/{id}", "get"],
        ["/v1/sync/pipelines/{id}/stream", "get"],
        ["/v1/sync/pipelines/{id}/abort", "post"],
        ["/v1/sync/workers", "get"],
        ["/v1/sync/recalculation-status", "get"],
        ["/v1/emissions", "get"],
      ]
    ) {
      assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
    }
    // Any route may fail inside (the database lost): each says so, with the error body it gets.
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods as Record<string, Body>)) {
        const responses = operation.responses as Record<string, Body>;
        assert.deepEqual(
          responses["500"]?.content,
          { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
          `${method} ${path}: 500`,
        );
      }
    }
    // The JSON export's rows, key for key as the export writes them.
    const exported = doc.paths["/v1/emissions"].get as {
      responses: { 200: { content: Record<string, { schema: Body }> } };
    };
    assert.deepEqual(exported.responses[200].content["application/json"].schema, {
      type: "array",
      items: { $ref: "#/components/schemas/EmissionExportRow" },
    });
    const row = doc.components.schemas.EmissionExportRow as { properties: Body };
    assert.deepEqual(Object.keys(row.properties), [...EMISSION_EXPORT_COLUMNS]);
    const dispatch = doc.components.schemas.DispatchRequest as {
      properties: Record<string, { enum?: string[] }>;
    };
    assert.deepEqual(dispatch.properties.target_type.enum, [
      "factors",
      "data_entries",
      "locations",
      "rooms",
      "rates",
    ]);
  });
});

dbTest(
  testDb,
  "healthz, jobs, pipelines (filters, cursor), workers and recalc requests",
  async (db) => {
    await withServer(db, {}, async (base) => {
      const health = await call(base, "/healthz");
      assert.equal((health.body as Body).ok, true);
      assert.equal(
        (health.body as Body).database,
        testDb.current.backend === "embedded" ? "embedded" : "server",
      );

      const pipelines: string[] = [];
      for (const year of [2023, 2024, 2025]) {
        const response = await call(
          base,
          `/v1/sync/recalculate-emissions/professional_travel/plane?year=${year}`,
          { method: "POST" },
        );
        assert.equal(response.status, 202, JSON.stringify(response.body));
        const { pipeline_id } = response.body as Body;
        pipelines.push(pipeline_id as string);
        const { done } = await followPipeline(base, pipeline_id as string);
        assert.equal(done.status, "SUCCESS");
      }
      const failing = await call(base, "/v1/sync/dispatch", {
        method: "POST",
        body: dispatchForm({ target_type: "rates", config: { strict: true } }, {
          name: "rates.csv",
          text: "year,currency,eur_per_unit\n2025,usd,-1\n",
        }),
      });
      const failed = await followPipeline(base, (failing.body as Body).pipeline_id as string);
      assert.equal(failed.done.status, "FAILED");
      const [failedJob] = failed.done.jobs as Body[];
      assert.equal(failedJob.result, "ERROR");
      assert.match(failedJob.status_message as string, /rates\.csv: rejected, nothing written/);
      assert.doesNotMatch(failedJob.status_message as string, /rematch-job-/);

      // Newest first, one per page, the cursor continuing.
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await call(
          base,
          `/v1/sync/pipelines?job_type=emission_recalc&limit=1${cursor ? `&cursor=${cursor}` : ""}`,
        );
        assert.equal(page.status, 200);
        const { pipelines: rows, next_cursor } = page.body as {
          pipelines: Body[];
          next_cursor: string | null;
        };
        seen.push(...rows.map((r) => r.id as string));
        cursor = next_cursor;
      } while (cursor);
      assert.deepEqual(seen, [...pipelines].reverse());
      const byYear = await call(base, "/v1/sync/pipelines?year=2024");
      assert.deepEqual((byYear.body as { pipelines: Body[] }).pipelines.map((p) => p.id), [
        pipelines[1],
      ]);
      const withErrors = await call(base, "/v1/sync/pipelines?has_errors=true");
      assert.deepEqual((withErrors.body as { pipelines: Body[] }).pipelines.map((p) => p.status), [
        "FAILED",
      ]);
      const bad = await call(base, "/v1/sync/pipelines?cursor=bm9wZQ");
      assert.equal(bad.status, 400);

      const job = await call(base, `/v1/sync/jobs/${failedJob.id}`);
      assert.equal((job.body as Body).state, "FINISHED");
      assert.equal((await call(base, "/v1/sync/jobs/424242")).status, 404);
      assert.equal(
        (await call(base, `/v1/sync/jobs/${failedJob.id}/recover`, { method: "POST" })).status,
        409,
      );
      assert.equal(
        (await call(base, `/v1/sync/pipelines/${crypto.randomUUID()}`)).status,
        404,
      );
      const abortEnded = await call(base, `/v1/sync/pipelines/${pipelines[0]}/abort`, {
        method: "POST",
      });
      assert.equal(abortEnded.status, 409);

      const workers = await call(base, "/v1/sync/workers");
      const [worker] = workers.body as Body[];
      assert.equal(worker.pid, Deno.pid);
      assert.deepEqual(worker.running_jobs, []);

      // Module recalc: every det of the module; only_stale with nothing stale is 409.
      const all = await call(base, "/v1/sync/recalculate-emissions/professional_travel?year=2025", {
        method: "POST",
      });
      assert.equal(all.status, 202);
      assert.deepEqual((all.body as { jobs: Body[] }).jobs.map((j) => j.data_entry_type), [
        "plane",
        "train",
      ]);
      await followPipeline(base, (all.body as Body).pipeline_id as string);
      const none = await call(
        base,
        "/v1/sync/recalculate-emissions/professional_travel?year=2025&only_stale=true",
        { method: "POST" },
      );
      assert.equal(none.status, 409);
      assert.equal(errorOf(none.body).code, "nothing_stale");
      // A module without dets has nothing to queue: refused, no pipeline left running for good.
      const pipelineCount = (await db.sql`select count(*)::int as n from pipelines`)[0].n;
      const empty = await call(
        base,
        "/v1/sync/recalculate-emissions/research_facilities?year=2025",
        {
          method: "POST",
        },
      );
      assert.equal(empty.status, 409);
      assert.equal(errorOf(empty.body).code, "nothing_to_recalculate");
      assert.match(errorOf(empty.body).message, /research_facilities has no data entry types/);
      assert.equal((await db.sql`select count(*)::int as n from pipelines`)[0].n, pipelineCount);
    });
  },
);

dbTest(
  testDb,
  "an entries upload takes its year as a check of every row; factor-only fields elsewhere are a 400",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.2));
    await withServer(db, {}, async (base) => {
      const csv = "unit,year,name,equipment_class,sub_class\nU1,2025,Laptop A,Laptop,Standard\n" +
        "U1,2024,Laptop B,Laptop,Standard\n";
      const response = await call(base, "/v1/sync/dispatch", {
        method: "POST",
        body: dispatchForm(
          { target_type: "data_entries", year: 2025, config: { data_entry_type_id: "it" } },
          { name: "it.csv", text: csv },
        ),
      });
      assert.equal(response.status, 202, JSON.stringify(response.body));
      const { done } = await followPipeline(base, (response.body as Body).pipeline_id as string);
      const [job] = done.jobs as Body[];
      assert.equal(job.result, "WARNING");
      const document = job.result_document as { created: number; errors: Body[] };
      assert.equal(document.created, 1);
      assert.deepEqual(document.errors.map((e) => e.message), [
        "line 3: year: expected 2025 (the import's year), got 2024",
      ]);
      // Every row of another year: nothing written, the job ends ERROR with its document.
      const allBad = await call(base, "/v1/sync/dispatch", {
        method: "POST",
        body: dispatchForm(
          { target_type: "data_entries", year: 2026, config: { data_entry_type_id: "it" } },
          { name: "it.csv", text: csv },
        ),
      });
      assert.equal(allBad.status, 202);
      const failed = await followPipeline(base, (allBad.body as Body).pipeline_id as string);
      const [failedJob] = failed.done.jobs as Body[];
      assert.equal(failedJob.result, "ERROR");
      assert.equal(
        failedJob.status_message,
        "it.csv: nothing written: every row is bad (2 errors)",
      );
      assert.equal((failedJob.result_document as { errorsCount: number }).errorsCount, 2);
      const refused: [Record<string, unknown>, string][] = [
        [
          { target_type: "data_entries", config: { data_entry_type_id: "it", mode: "replace" } },
          "config.mode: applies to factors only, not to data_entries",
        ],
        [
          { target_type: "rates", config: { force: true } },
          "config.force: applies to factors only, not to rates",
        ],
        // A merge deletes nothing: the replace guards' overrides would be ignored.
        [
          { target_type: "factors", year: 2025, config: { module_type_id: 2, force: true } },
          "config.force: applies to mode replace only (a merge deletes nothing)",
        ],
        [
          {
            target_type: "factors",
            year: 2025,
            config: { module_type_id: 2, mode: "merge", allow_empty: true },
          },
          "config.allow_empty: applies to mode replace only (a merge deletes nothing)",
        ],
      ];
      for (const [fields, message] of refused) {
        const bad = await call(base, "/v1/sync/dispatch", {
          method: "POST",
          body: dispatchForm(fields as Parameters<typeof dispatchForm>[0], {
            name: "x.csv",
            text: "unit,year\n",
          }),
        });
        assert.equal(bad.status, 400, message);
        assert.equal(errorOf(bad.body).message, message);
      }
    });
  },
);

/** A multipart factor dispatch of plane 2025 with the file `bytes` named `name`. */
function planeForm(bytes: Uint8Array<ArrayBuffer>, name: string): FormData {
  const form = new FormData();
  form.append("target_type", "factors");
  form.append("year", "2025");
  form.append(
    "config",
    JSON.stringify({ module_type_id: "professional_travel", data_entry_type_id: "plane" }),
  );
  form.append("file", new Blob([bytes]), name);
  return form;
}

dbTest(
  testDb,
  "a file no import could read is a 422 naming it, and nothing is stored or queued",
  async (db) => {
    await withServer(db, {}, async (base) => {
      const notUtf8 = new TextEncoder().encode("category,cabin_class\nvery_short_haul,economy\n");
      notUtf8[25] = 0xff;
      const text = (t: string) => new TextEncoder().encode(t);
      const notUtf8Message = "plane_bad.csv: is not valid UTF-8 text: line 2, byte 26 (0xff) " +
        "does not start a UTF-8 character (save the file as UTF-8)";
      const cases: [Uint8Array<ArrayBuffer>, string, string][] = [
        [notUtf8, "plane bad.csv", notUtf8Message],
        [text("\uFEFF\n  \n"), "blank.csv", "blank.csv: is empty (expected a header row)"],
        [text(" , \n,,\n"), "commas.csv", "commas.csv: is empty (expected a header row)"],
        [
          // The header is the first line holding something, as the CSV reader takes it.
          text("  \n,\ncategory,cabin_class\n"),
          "blank-header.csv",
          "blank-header.csv: missing required columns ef_kg_co2eq_per_km, rfi_adjustment, " +
          "min_distance, max_distance",
        ],
        [
          text("category,cabin_class,note\nvery_short_haul,economy,x\n"),
          "plane.csv",
          "plane.csv: missing required columns ef_kg_co2eq_per_km, rfi_adjustment, " +
          "min_distance, max_distance",
        ],
        [
          // A column of that name is ignored as any other the import does not read.
          text("category,__proto__\nvery_short_haul,x\n"),
          "proto.csv",
          "proto.csv: missing required columns cabin_class, ef_kg_co2eq_per_km, rfi_adjustment, " +
          "min_distance, max_distance",
        ],
      ];
      for (const [bytes, name, message] of cases) {
        const response = await call(base, "/v1/sync/dispatch", {
          method: "POST",
          body: planeForm(bytes, name),
        });
        assert.equal(response.status, 422, name);
        assert.deepEqual(errorOf(response.body), { code: "unprocessable_file", message });
      }
      // temp-upload refuses what no import could read; the header is checked at the dispatch.
      const upload = new FormData();
      upload.append("files", new Blob([notUtf8]), "plane bad.csv");
      const refused = await call(base, "/v1/files/temp-upload", { method: "POST", body: upload });
      assert.equal(refused.status, 422);
      assert.equal(errorOf(refused.body).message, notUtf8Message);
      // All or nothing: a good file before the refused one is not kept either.
      const mixed = new FormData();
      mixed.append("files", new Blob([cases[4][0]]), "plane.csv");
      mixed.append("files", new Blob([notUtf8]), "plane bad.csv");
      const half = await call(base, "/v1/files/temp-upload", { method: "POST", body: mixed });
      assert.equal(half.status, 422);
      assert.equal((await db.sql`select count(*)::int as n from uploads`)[0].n, 0);
      const good = new FormData();
      good.append("files", new Blob([cases[4][0]]), "plane.csv");
      const stored = await call(base, "/v1/files/temp-upload", { method: "POST", body: good });
      assert.equal(stored.status, 201);
      const byPath = await call(base, "/v1/sync/dispatch", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          target_type: "factors",
          year: 2025,
          file_path: (stored.body as Body[])[0].path,
          config: { module_type_id: "professional_travel", data_entry_type_id: "plane" },
        }),
      });
      assert.equal(byPath.status, 422);
      assert.deepEqual(errorOf(byPath.body), { code: "unprocessable_file", message: cases[4][2] });
      const [{ uploads }] = await db.sql`select count(*)::int as uploads from uploads`;
      assert.equal(uploads, 1, "only the good file was stored");
      const [{ jobs }] = await db.sql`select count(*)::int as jobs from data_ingestion_jobs`;
      assert.equal(jobs, 0, "nothing was queued");
    });
  },
);

dbTest(
  testDb,
  "a file the import refuses past its header ends its job ERROR with the message naming it",
  async (db) => {
    await withServer(db, {}, async (base) => {
      // A quoted line break in the header: the dispatch cannot see the columns; the job can.
      const form = planeForm(
        new TextEncoder().encode('"cate\ngory",cabin_class\nvery_short_haul,economy\n'),
        "plane bad.csv",
      );
      const response = await call(base, "/v1/sync/dispatch", { method: "POST", body: form });
      assert.equal(response.status, 202);
      const { done } = await followPipeline(base, (response.body as Body).pipeline_id as string);
      assert.equal(done.status, "FAILED");
      const [job] = done.jobs as Body[];
      assert.equal(job.result, "ERROR");
      assert.match(job.status_message as string, /^plane_bad\.csv: missing required columns /);
      assert.deepEqual((job.result_document as Body).error, {
        code: "FileError",
        message: job.status_message,
      });
    });
  },
);

dbTest(
  testDb,
  "recalculation-status reads the slice state; only_stale queues the stale dets of a module",
  async (db) => {
    await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
    await seedEntries(db, "plane", 2025, 10);
    await withServer(db, {}, async (base) => {
      const first = await call(
        base,
        "/v1/sync/recalculate-emissions/professional_travel/plane?year=2025",
        { method: "POST" },
      );
      const { job_id, pipeline_id } = first.body as Body;
      await followPipeline(base, pipeline_id as string);
      const slice = async () => {
        const { status, body } = await call(base, "/v1/sync/recalculation-status?year=2025");
        assert.equal(status, 200);
        const rows = body as Body[];
        // Only slices with entries: train has none.
        assert.deepEqual(rows.map((r) => r.data_entry_type), ["plane"]);
        return rows[0];
      };
      const current = await slice();
      assert.deepEqual([current.state, current.needs_recalculation, current.entries], [
        "current",
        false,
        10,
      ]);
      assert.equal((current.last_recalc as Body).job_id, job_id);
      const none = await call(
        base,
        "/v1/sync/recalculate-emissions/professional_travel?year=2025&only_stale=true",
        { method: "POST" },
      );
      assert.equal(none.status, 409);

      await importFactorText(db, "plane", 2025, planeFactors(0.2, 0.3));
      const stale = await slice();
      assert.equal(stale.needs_recalculation, true);
      assert.match(stale.state as string, /^stale: targeted/);
      assert.equal(stale.scope, "targeted");
      const queued = await call(
        base,
        "/v1/sync/recalculate-emissions/professional_travel?year=2025&only_stale=true",
        { method: "POST" },
      );
      assert.equal(queued.status, 202);
      assert.deepEqual((queued.body as { jobs: Body[] }).jobs.map((j) => j.data_entry_type), [
        "plane",
      ]);
      await followPipeline(base, (queued.body as Body).pipeline_id as string);
      const caughtUp = await slice();
      assert.equal(caughtUp.state, "current");
      const stateJob = (caughtUp.last_recalc as Body).job_id;
      assert.equal(stateJob, (queued.body as { jobs: Body[] }).jobs[0].job_id);
      // A recalc job that finds the slice current commits a no-op, which records no state: the
      // last recalc stays the one that did, with its job.
      const noop = await call(
        base,
        "/v1/sync/recalculate-emissions/professional_travel/plane?year=2025",
        { method: "POST" },
      );
      await followPipeline(base, (noop.body as Body).pipeline_id as string);
      assert.deepEqual((await slice()).last_recalc, caughtUp.last_recalc);
      // A rematch outside any job records the state: no job to name.
      await recalculateForDataEntryType(db, { dataEntryType: "plane", year: 2025, full: true });
      const byHand = (await slice()).last_recalc as Body;
      assert.deepEqual([byHand.scope, byHand.job_id], ["full", null]);
      // A job after it is the last recalc again: the latest run names its job (runs outside jobs
      // have none, and must not sort before it).
      const forced = await call(
        base,
        "/v1/sync/recalculate-emissions/professional_travel/plane?year=2025&full=true",
        { method: "POST" },
      );
      await followPipeline(base, (forced.body as Body).pipeline_id as string);
      const last = (await slice()).last_recalc as Body;
      assert.deepEqual([last.scope, last.job_id], ["full", (forced.body as Body).job_id]);
    });
  },
);

dbTest(
  testDb,
  "exports: at most maxExports stream at once (503 busy, Retry-After), each holding a connection; " +
    "healthz answers 503 when the database does not answer in time",
  async (db) => {
    await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
    await seedEntries(db, "plane", 2025, 5);
    await withServer(db, { limits: { maxExports: 1, healthTimeoutMs: 300 } }, async (base) => {
      assert.equal((await call(base, "/healthz")).status, 200);
      // Reads of the rows and of the schema version wait behind these locks.
      const held = await holdInTransaction(db, async (tx) => {
        await tx`lock table data_entry_emissions in access exclusive mode`;
        await tx`lock table schema_migrations in access exclusive mode`;
      });
      let first: Response | undefined;
      try {
        first = await fetch(`${base}/v1/emissions?det=plane&year=2025&format=csv`);
        assert.equal(first.status, 200);
        // (Bounded: without the limit it would wait on the lock held here.)
        const second = await call(base, "/v1/emissions?det=plane&year=2025&format=json", {
          signal: AbortSignal.timeout(5000),
        });
        assert.equal(second.status, 503);
        assert.equal(errorOf(second.body).code, "busy");
        assert.equal(second.headers.get("retry-after"), "5");
        const health = await call(base, "/healthz", { signal: AbortSignal.timeout(5000) });
        assert.equal(health.status, 503);
        assert.deepEqual(errorOf(health.body), {
          code: "database_unavailable",
          message: "the database did not answer within 0.3 s",
        });
      } finally {
        await held.release();
      }
      const csvLines = (await first!.text()).split("\n").filter(Boolean);
      // The slot is free again once the export is done.
      const again = await call(base, "/v1/emissions?det=plane&year=2025&format=json");
      assert.equal(again.status, 200);
      const rows = (again.body as unknown[]).length;
      assert.ok(rows > 0);
      assert.equal(csvLines.length, rows + 1, "the held export finished whole");
      assert.equal((await call(base, "/healthz")).status, 200);
    });
  },
);

Deno.test({
  name: "dispatch refuses a file larger than the server's heap lets an import read whole (413), " +
    "before any worker takes it",
  ignore: serverUrl() === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const database = await createServerDatabase();
    // A heap of 160 MiB: files of more than 2.5 MiB are more than an import reads whole.
    const serve = await spawnServe(database.url, ["--concurrency", "0"], {
      DENO_V8_FLAGS: "--max-old-space-size=64",
    });
    try {
      const row = "very_short_haul,economy,0.1,1,0,1000\n";
      const text = "category,cabin_class,ef_kg_co2eq_per_km,rfi_adjustment,min_distance," +
        "max_distance\n" + row.repeat(Math.ceil((3 * 1024 * 1024) / row.length));
      const config = { module_type_id: "professional_travel", data_entry_type_id: "plane" };
      const upload = new FormData();
      upload.append("files", new Blob([text]), "plane.csv");
      const stored = await call(serve.url, "/v1/files/temp-upload", {
        method: "POST",
        body: upload,
      });
      assert.equal(stored.status, 201);
      const byPath = await call(serve.url, "/v1/sync/dispatch", {
        method: "POST",
        json: {
          target_type: "factors",
          year: 2025,
          file_path: (stored.body as Body[])[0].path,
          config,
        },
      });
      const multipart = await call(serve.url, "/v1/sync/dispatch", {
        method: "POST",
        body: dispatchForm({ target_type: "factors", year: 2025, config }, {
          name: "plane.csv",
          text,
        }),
      });
      for (const refused of [byPath, multipart]) {
        assert.equal(refused.status, 413);
        assert.equal(errorOf(refused.body).code, "too_large");
        assert.match(
          errorOf(refused.body).message,
          /^plane\.csv: is 3 MiB: a CSV file is read whole/,
        );
      }
      const [{ jobs }] = await database.db
        .sql`select count(*)::int as jobs from data_ingestion_jobs`;
      assert.equal(jobs, 0, "nothing was queued");
    } finally {
      await serve.stop();
      await database.drop();
    }
  },
});

dbTest(
  testDb,
  "exports: one whose client stops reading ends after exportStallMs, and gives its slot back at " +
    "once, while the client still holds its connection",
  async (db) => {
    await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
    await seedEntries(db, "plane", 2025, 60_000);
    const server = await startTestServer(db, { limits: { maxExports: 1, exportStallMs: 300 } });
    const { hostname, port } = new URL(server.url);
    // A client that asks for the export and never reads it (megabytes: more than the sockets
    // between the two hold).
    const stalled = await Deno.connect({ hostname, port: Number(port) });
    try {
      await stalled.write(new TextEncoder().encode(
        "GET /v1/emissions?det=plane&year=2025&format=json HTTP/1.1\r\nHost: " +
          `${hostname}:${port}\r\n\r\n`,
      ));
      for (let i = 0; i < 200 && !server.events.some((e) => e.event === "export_failed"); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const failed = server.events.find((e) => e.event === "export_failed");
      assert.match(String(failed?.message), /the client read nothing for 0\.3 s: export ended/);
      // The stalled client is still connected: the slot is free all the same.
      const next = await fetch(`${server.url}/v1/emissions?det=plane&year=2025&format=csv`, {
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(next.status, 200);
      assert.match(await next.text(), /^entry_id,/);
    } finally {
      stalled.close();
      await server.stop();
    }
  },
  // Tens of thousands of entries, to fill the sockets: the server's share of the suite.
  { ignore: !serverBackendExpected() },
);

Deno.test({
  name: "healthz: 503 database_unavailable when the database cannot be reached",
  ignore: serverUrl() === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const database = await createServerDatabase();
    const name = new URL(database.url).pathname.slice(1);
    const admin = postgres(serverUrl()!, { max: 1, onnotice: () => {} });
    const server = await startTestServer(database.db, { concurrency: 0 });
    try {
      assert.equal((await call(server.url, "/healthz")).status, 200);
      // Nobody may connect any more, and the server's sessions are ended.
      await admin.unsafe(`alter database ${name} allow_connections false`);
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name}`;
      const health = await call(server.url, "/healthz", { signal: AbortSignal.timeout(10_000) });
      assert.equal(health.status, 503);
      assert.equal(errorOf(health.body).code, "database_unavailable");
      assert.match(errorOf(health.body).message, /^the database cannot be reached \(/);
    } finally {
      await server.stop();
      await admin.unsafe(`alter database ${name} allow_connections true`);
      await admin.end();
      await database.drop();
    }
  },
});

dbTest(
  testDb,
  "stop: the worker claims nothing more while a request is still open, and the stop waits for " +
    "that request no longer than the grace",
  async (db) => {
    const server = await startTestServer(db, { worker: { graceMs: 300 } });
    const { hostname, port } = new URL(server.url);
    const client = await Deno.connect({ hostname, port: Number(port) });
    const uploader = await Deno.connect({ hostname, port: Number(port) });
    try {
      // Two uploads that send their headers and the start of their body, then nothing more: one
      // the server answers (403, a host it does not serve) without reading its body, which keeps
      // the connection open; one under way, whose body is being read.
      const upload = (host: string) =>
        new TextEncoder().encode(
          `POST /v1/files/temp-upload HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 100000\r\n` +
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n" +
            'Content-Disposition: form-data; name="files"; filename="rates.csv"\r\n\r\nyear,',
        );
      await client.write(upload("test"));
      await uploader.write(upload(`${hostname}:${port}`));
      // Their headers are complete: the server has the requests from their arrival on.
      await new Promise((r) => setTimeout(r, 300));
      const stopping = server.stop("test stop");
      // The upload under way is told to send again.
      const answer = new Uint8Array(4096);
      const read = await uploader.read(answer);
      assert.match(
        new TextDecoder().decode(answer.subarray(0, read ?? 0)),
        /^HTTP\/1\.1 503[^]*"code":"unavailable"/,
      );
      await eventually(
        () => Promise.resolve(server.events.find((e) => e.event === "worker_stopping")),
        "the worker to be told to stop",
        5_000,
      );
      const { jobs: [queued] } = await createPipeline(db.sql, { kind: "recalc", actor: null }, [{
        jobType: "emission_recalc",
        moduleTypeId: 2,
        dataEntryTypeId: 20,
        year: 2025,
        input: { data_entry_type_id: 20, year: 2025, full: false },
      }]);
      const ended = await Promise.race([
        stopping.then(() => "stopped"),
        new Promise((r) => setTimeout(() => r("still waiting"), 10_000)),
      ]);
      assert.equal(ended, "stopped");
      assert.ok(server.events.some((e) => e.event === "requests_cut"));
      const [job] = await db.sql<{ state: string }[]>`
        select state from data_ingestion_jobs where id = ${queued.jobId}`;
      assert.equal(job.state, "NOT_STARTED");
    } finally {
      client.close();
      uploader.close();
    }
  },
);

dbTest(
  testDb,
  "stream: a job that starts and ends between two reads is sent RUNNING before it is sent FINISHED",
  async (db) => {
    await importFactorText(db, "plane", 2025, planeFactors(0.1, 0.3));
    await seedEntries(db, "plane", 2025, 5);
    // No worker in the server; reads 3 s apart.
    const server = await startTestServer(db, { concurrency: 0, limits: { streamPollMs: 3000 } });
    try {
      const { pipelineId, jobId } = await queueRecalc(db, "plane", 2025);
      const followed = followPipeline(server.url, pipelineId);
      // The stream's first read (at once) finds the job waiting; it then runs to its end.
      await new Promise((r) => setTimeout(r, 300));
      const worker = new JobWorker(db, { pollIntervalMs: 50, log: createLogger("json", () => {}) });
      await worker.start();
      try {
        await eventually(async () => {
          const [job] = await db.sql<{ state: string }[]>`
            select state from data_ingestion_jobs where id = ${jobId}`;
          return job.state === "FINISHED" ? true : undefined;
        }, "the job to finish");
      } finally {
        await worker.stop();
      }
      const { events } = await followed;
      const states = events.filter((e) => e.event === "job").map((
        e,
      ) => [e.data.state, e.data.result]);
      assert.deepEqual(states, [["NOT_STARTED", null], ["RUNNING", null], ["FINISHED", "SUCCESS"]]);
      const running = events.find((e) => e.event === "job" && e.data.state === "RUNNING")!;
      assert.equal(running.data.id, jobId);
      assert.equal(running.data.finished_at, null);
      assert.ok(running.data.started_at);
      // A stream opened once the job is done was never told it waited: it is sent as it ended.
      const late = await followPipeline(server.url, pipelineId);
      assert.deepEqual(
        late.events.filter((e) => e.event === "job").map((e) => e.data.state),
        ["FINISHED"],
      );
    } finally {
      await server.stop();
    }
  },
);
