// The HTTP API of spec/interfaces.md §4 as a Hono app: routes over the job queue and the same
// functions the CLI runs. Bodies, queries and path parameters are validated by the zod schemas of
// schemas.ts, which also make the OpenAPI document.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { streamSSE } from "hono/streaming";
import type { Database } from "../db/connection.ts";
import { exportEmissions } from "../db/emissions_export.ts";
import { schemaVersion } from "../db/migrate.ts";
import type { Logger } from "../jobs/log.ts";
import { abortPipeline, createPipeline, recoverJob } from "../jobs/queue.ts";
import { recalculationStatus } from "../jobs/recalc_status.ts";
import { CursorError, getJob, getPipeline, listPipelines, listWorkers } from "../jobs/status.ts";
import type { NewJob } from "../jobs/types.ts";
import { findUpload, parseUploadPath, storeUpload } from "../jobs/uploads.ts";
import { VERSION } from "../jobs/worker.ts";
import { findDataEntryType, findModuleType, listDataEntryTypes } from "../reference/enums.ts";
import { type ApiToken, authenticate, requestActor } from "./auth.ts";
import { planDispatch } from "./dispatch.ts";
import { ApiError, describeIssues, errorBody, invalidField } from "./errors.ts";
import { multipartBoundary, MultipartError } from "./multipart.ts";
import * as S from "./schemas.ts";
import { receiveForm, UnsupportedFileError } from "./upload.ts";
import { jobView, pipelineSummaryView, pipelineView, workerView } from "./views.ts";

/** What the API needs. */
export interface ApiOptions {
  readonly db: Database;
  /** Accepted bearer tokens; none means no authentication (the server then binds loopback only). */
  readonly tokens: readonly ApiToken[];
  /** Where uploads are written while they arrive (removed once stored in the database). */
  readonly uploadDir: string;
  /** Bytes of one uploaded file. */
  readonly maxUploadBytes: number;
  /** Bytes of a JSON body. @default 1048576 */
  readonly maxJsonBytes?: number;
  /** A RUNNING job older than this may be recovered by hand, in ms. */
  readonly staleTimeoutMs: number;
  /** How often a pipeline stream looks for changes, in ms. @default 250 */
  readonly streamPollMs?: number;
  /** Called after jobs were queued (wakes a worker of this process). */
  readonly onJobsQueued?: () => void;
  /** Where unexpected errors are logged. */
  readonly log?: Logger;
  /** Ends open event streams (the server is shutting down). */
  readonly signal?: AbortSignal;
}

type Env = { Variables: { actor: string } };

const json = (schema: z.ZodType, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

const ERRORS = {
  400: json(S.ErrorResponse, "invalid request: the message names the field"),
  401: json(S.ErrorResponse, "missing or wrong bearer token"),
};

/** Builds the API app. */
export function createApi(options: ApiOptions): OpenAPIHono<Env> {
  const { db } = options;
  const sql = db.sql;
  const maxJsonBytes = options.maxJsonBytes ?? 1024 * 1024;
  const app = new OpenAPIHono<Env>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const { message, details } = describeIssues(result.error.issues);
        return c.json(errorBody("validation", message, details), 400);
      }
    },
  });

  app.onError((error, c) => {
    if (error instanceof ApiError) {
      return c.json(errorBody(error.code, error.message, error.details), error.status);
    }
    if (error instanceof MultipartError) {
      return c.json(
        errorBody(error.status === 413 ? "too_large" : "bad_multipart", error.message),
        error.status,
      );
    }
    if (error instanceof UnsupportedFileError) {
      return c.json(errorBody("unsupported_file", error.message), 415);
    }
    if (error instanceof CursorError) {
      return c.json(errorBody("validation", `cursor: ${error.message}`), 400);
    }
    if (error instanceof HTTPException) {
      return c.json(errorBody("bad_request", error.message), error.status as 400);
    }
    options.log?.({
      event: "request_failed",
      method: c.req.method,
      path: c.req.path,
      message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
    return c.json(errorBody("internal", "internal error (the server log says more)"), 500);
  });

  app.notFound((c) =>
    c.json(errorBody("not_found", `no route ${c.req.method} ${c.req.path}`), 404)
  );

  // Everything under /v1 but the OpenAPI document needs a token when tokens are configured.
  app.use("/v1/*", async (c, next) => {
    if (c.req.path === "/v1/openapi.json") return await next();
    let name: string | undefined;
    if (options.tokens.length > 0) {
      name = authenticate(c.req.header("authorization"), options.tokens);
      if (name === undefined) {
        c.header("WWW-Authenticate", 'Bearer realm="rematch"');
        return c.json(
          errorBody(
            "unauthorized",
            c.req.header("authorization")
              ? "the bearer token is not one of REMATCH_API_TOKENS"
              : "missing Authorization: Bearer <token>",
          ),
          401,
        );
      }
    }
    c.set("actor", requestActor(name));
    await next();
  });

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });

  /** Creates a pipeline of jobs and wakes the local worker. */
  const queue = async (
    kind: string,
    actor: string,
    jobs: readonly NewJob[],
    meta: Record<string, unknown> = {},
  ) => {
    const created = await sql.begin((tx) => createPipeline(tx, { kind, actor, meta }, jobs));
    options.onJobsQueued?.();
    return created;
  };

  // ---- health and the document --------------------------------------------------------------

  app.openapi(
    createRoute({
      method: "get",
      path: "/healthz",
      summary: "Liveness and the database in use",
      responses: { 200: json(S.Health, "the server and its database answer") },
    }),
    async (c) => {
      return c.json({
        ok: true,
        database: db.kind,
        schemaVersion: await schemaVersion(sql),
        version: VERSION,
      }, 200);
    },
  );

  // ---- uploads and dispatch -----------------------------------------------------------------

  const security = [{ bearer: [] }];

  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/v1/files/temp-upload",
    summary: "Upload CSV files; returns the paths a dispatch names them by",
    security,
    request: {
      body: {
        content: {
          "multipart/form-data": {
            schema: z.object({
              files: z.array(z.string().openapi({ format: "binary" })),
            }),
          },
        },
      },
    },
    responses: {
      201: json(z.array(S.Uploaded), "the files, stored"),
      ...ERRORS,
      413: json(S.ErrorResponse, "a file is larger than the upload limit"),
      415: json(S.ErrorResponse, "not multipart, or a file that is not .csv"),
    },
  });

  app.post("/v1/files/temp-upload", async (c) => {
    const form = await receiveUpload(c.req.raw, ["files"], options);
    try {
      if (form.files.length === 0) throw invalidField("files", "no file was uploaded");
      const stored = [];
      for (const file of form.files) {
        const upload = await storeUpload(sql, {
          path: file.path,
          fileName: file.fileName,
          actor: c.get("actor"),
        });
        stored.push({
          path: upload.path,
          file_name: upload.fileName,
          size_bytes: upload.sizeBytes,
          sha256: upload.sha256,
        });
      }
      return c.json(stored, 201);
    } finally {
      await form.discard();
    }
  });

  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/v1/sync/dispatch",
    summary: "Queue an import of an uploaded file (a factor upload chains the recalcs)",
    security,
    request: {
      body: {
        content: {
          "application/json": { schema: S.DispatchBody },
          "multipart/form-data": {
            schema: z.object({
              target_type: S.TargetType,
              year: z.string().optional(),
              config: z.string().optional().openapi({ description: "DispatchConfig as JSON" }),
              file: z.string().openapi({ format: "binary" }),
            }),
          },
        },
      },
    },
    responses: {
      202: json(S.Dispatched, "queued"),
      ...ERRORS,
      413: json(S.ErrorResponse, "the file or the body is too large"),
      415: json(S.ErrorResponse, "neither JSON nor multipart, or a file that is not .csv"),
    },
  });

  app.post("/v1/sync/dispatch", async (c) => {
    const actor = c.get("actor");
    const type = c.req.header("content-type") ?? "";
    if (/^application\/json\b/i.test(type)) {
      const body = await readJsonBody(c.req.raw, maxJsonBytes);
      const parsed = S.DispatchBody.safeParse(body);
      if (!parsed.success) {
        const { message, details } = describeIssues(parsed.error.issues);
        throw new ApiError(400, "validation", message, details);
      }
      const plan = planDispatch(parsed.data);
      const uploadId = parseUploadPath(parsed.data.file_path);
      if (!uploadId) {
        throw invalidField(
          "file_path",
          "not a path returned by POST /v1/files/temp-upload (expected uploads/<id>.csv)",
        );
      }
      const upload = await findUpload(sql, uploadId);
      if (!upload) {
        throw invalidField("file_path", `no upload ${parsed.data.file_path} (it may have expired)`);
      }
      const job = plan.job({ id: upload.id, fileName: upload.file_name });
      const created = await queue(plan.kind, actor, [job], {
        target_type: parsed.data.target_type,
        file_name: upload.file_name,
      });
      return c.json(dispatched(created), 202);
    }
    if (!multipartBoundary(type)) {
      throw new ApiError(
        415,
        "unsupported_media_type",
        "expected application/json (with file_path) or multipart/form-data (with the file in file)",
      );
    }
    const form = await receiveUpload(c.req.raw, ["file"], options);
    try {
      const fields: Record<string, unknown> = {};
      for (const [name, value] of form.fields) {
        if (name === "year") fields.year = /^\s*\d+\s*$/.test(value) ? Number(value) : value;
        else if (name === "config") {
          try {
            fields.config = JSON.parse(value);
          } catch (error) {
            throw invalidField("config", `not valid JSON: ${(error as Error).message}`);
          }
        } else fields[name] = value;
      }
      const parsed = S.DispatchFields.safeParse(fields);
      if (!parsed.success) {
        const { message, details } = describeIssues(parsed.error.issues);
        throw new ApiError(400, "validation", message, details);
      }
      const plan = planDispatch(parsed.data);
      if (form.files.length !== 1) {
        throw invalidField("file", form.files.length ? "send one file" : "is required (the CSV)");
      }
      const [file] = form.files;
      const upload = await storeUpload(sql, { path: file.path, fileName: file.fileName, actor });
      const job = plan.job({ id: upload.id, fileName: upload.fileName });
      const created = await queue(plan.kind, actor, [job], {
        target_type: parsed.data.target_type,
        file_name: upload.fileName,
      });
      return c.json(dispatched(created), 202);
    } finally {
      await form.discard();
    }
  });

  // ---- recalc requests ----------------------------------------------------------------------

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/sync/recalculate-emissions/{module_type_id}/{data_entry_type_id}",
      summary: "Queue the recalc of one (det, year) slice",
      security,
      request: { params: S.RecalcParams, query: S.RecalcQuery },
      responses: {
        202: json(S.Dispatched, "queued (or sharing a recalc already waiting)"),
        ...ERRORS,
        404: json(S.ErrorResponse, "no such module, or no such det in it"),
      },
    }),
    async (c) => {
      const params = c.req.valid("param");
      const { year, full } = c.req.valid("query");
      const module = pathModule(params.module_type_id);
      const det = findDataEntryType(params.data_entry_type_id);
      if (!det || det.moduleTypeId !== module.id) {
        throw new ApiError(
          404,
          "not_found",
          `no data entry type "${params.data_entry_type_id}" in module ${module.name}`,
        );
      }
      const created = await queue("recalculation", c.get("actor"), [
        recalcJob(det.id, det.moduleTypeId, year, full ?? false),
      ]);
      return c.json(dispatched(created), 202);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/sync/recalculate-emissions/{module_type_id}",
      summary: "Queue the recalc of every det of a module for a year (only_stale: the stale ones)",
      security,
      request: { params: S.ModuleRecalcParams, query: S.ModuleRecalcQuery },
      responses: {
        202: json(S.DispatchedMany, "queued"),
        ...ERRORS,
        404: json(S.ErrorResponse, "no such module"),
        409: json(S.ErrorResponse, "only_stale and no det of the module is stale"),
      },
    }),
    async (c) => {
      const { module_type_id } = c.req.valid("param");
      const { year, only_stale } = c.req.valid("query");
      const module = pathModule(module_type_id);
      let dets = listDataEntryTypes().filter((d) => d.moduleTypeId === module.id);
      if (only_stale) {
        const stale = new Set(
          (await recalculationStatus(sql, year, module.id))
            .filter((s) => s.needsRecalculation).map((s) => s.dataEntryTypeId),
        );
        dets = dets.filter((d) => stale.has(d.id));
        if (dets.length === 0) {
          throw new ApiError(
            409,
            "nothing_stale",
            `no det of module ${module.name} is stale for ${year}`,
          );
        }
      }
      const created = await queue(
        "recalculation",
        c.get("actor"),
        dets.map((d) => recalcJob(d.id, d.moduleTypeId, year, false)),
      );
      return c.json({
        pipeline_id: created.pipelineId,
        jobs: created.jobs.map((job, i) => ({
          job_id: job.jobId,
          pipeline_id: created.pipelineId,
          state: job.state,
          shared: job.shared,
          data_entry_type: dets[i].name,
        })),
      }, 202);
    },
  );

  // ---- jobs, pipelines, workers -------------------------------------------------------------

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/sync/jobs/{id}",
      summary: "One job: state, result, progress, its full result document",
      security,
      request: { params: S.JobIdParam },
      responses: {
        200: json(S.Job, "the job"),
        ...ERRORS,
        404: json(S.ErrorResponse, "no such job"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const job = await getJob(sql, id);
      if (!job) throw new ApiError(404, "not_found", `no job ${id}`);
      return c.json(jobView(job), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/sync/jobs/{id}/recover",
      summary: "Return a RUNNING job whose heartbeat is older than the stale timeout to the queue",
      security,
      request: { params: S.JobIdParam },
      responses: {
        200: json(S.Job, "returned to the queue (or handed over to a waiting recalc)"),
        ...ERRORS,
        404: json(S.ErrorResponse, "no such job"),
        409: json(S.ErrorResponse, "the job is not running, or its heartbeat is recent"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const outcome = await recoverJob(sql, id, options.staleTimeoutMs / 1000);
      if (outcome === "not-found") throw new ApiError(404, "not_found", `no job ${id}`);
      if (outcome === "not-running") {
        throw new ApiError(409, "not_running", `job ${id} is not RUNNING: nothing to recover`);
      }
      if (outcome === "not-stale") {
        throw new ApiError(
          409,
          "not_stale",
          `job ${id} sent a heartbeat within the last ${options.staleTimeoutMs / 1000} s: ` +
            "its worker is alive",
        );
      }
      options.onJobsQueued?.();
      return c.json(jobView((await getJob(sql, id))!), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/sync/pipelines",
      summary: "Pipelines, newest first",
      security,
      request: { query: S.PipelineListQuery },
      responses: { 200: json(S.PipelineList, "a page of pipelines"), ...ERRORS },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const page = await listPipelines(sql, {
        status: q.state,
        year: q.year,
        jobType: q.job_type,
        hasErrors: q.has_errors,
        limit: q.limit,
        cursor: q.cursor,
      });
      return c.json({
        pipelines: page.pipelines.map(pipelineSummaryView),
        next_cursor: page.nextCursor,
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/sync/pipelines/{id}",
      summary: "One pipeline: status, jobs, progress",
      security,
      request: { params: S.PipelineIdParam },
      responses: {
        200: json(S.Pipeline, "the pipeline"),
        ...ERRORS,
        404: json(S.ErrorResponse, "no such pipeline"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const detail = await getPipeline(sql, id);
      if (!detail) throw new ApiError(404, "not_found", `no pipeline ${id}`);
      return c.json(pipelineView(detail), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/sync/pipelines/{id}/stream",
      summary: "Server-sent events: one per job state or progress change, until the pipeline ends",
      description: "Events: `job` (a job as GET /v1/sync/jobs/{id} shows it) and `pipeline` " +
        "(the status); the last one is `done` with the whole pipeline.",
      security,
      request: { params: S.PipelineIdParam },
      responses: {
        200: { content: { "text/event-stream": { schema: z.string() } }, description: "events" },
        ...ERRORS,
        404: json(S.ErrorResponse, "no such pipeline"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      if (!(await getPipeline(sql, id))) throw new ApiError(404, "not_found", `no pipeline ${id}`);
      const pollMs = options.streamPollMs ?? 250;
      return streamSSE(c, async (stream) => {
        const seen = new Map<number, string>();
        let status = "";
        let lastWrite = Date.now();
        while (!stream.aborted && !stream.closed && !options.signal?.aborted) {
          const detail = await getPipeline(sql, id);
          if (!detail) return;
          const view = pipelineView(detail);
          for (const job of [...view.jobs, ...view.waits_for]) {
            const key = JSON.stringify([job.state, job.result, job.progress, job.status_message]);
            if (seen.get(job.id) === key) continue;
            seen.set(job.id, key);
            await stream.writeSSE({ event: "job", data: JSON.stringify(job) });
            lastWrite = Date.now();
          }
          if (view.status !== status) {
            status = view.status;
            await stream.writeSSE({
              event: "pipeline",
              data: JSON.stringify({ id, status, progress: view.progress }),
            });
            lastWrite = Date.now();
          }
          if (view.status !== "RUNNING") {
            await stream.writeSSE({ event: "done", data: JSON.stringify(view) });
            return;
          }
          if (Date.now() - lastWrite > 15_000) {
            await stream.write(": keep-alive\n\n");
            lastWrite = Date.now();
          }
          await stream.sleep(pollMs);
        }
      });
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/sync/pipelines/{id}/abort",
      summary: "Abort a pipeline: waiting jobs end ERROR aborted, running ones roll back",
      security,
      request: { params: S.PipelineIdParam },
      responses: {
        202: json(
          z.object({
            pipeline: S.Pipeline,
            waiting_aborted: z.number().int(),
            running: z.number().int(),
          }),
          "aborting: running jobs roll back at their next chunk",
        ),
        ...ERRORS,
        404: json(S.ErrorResponse, "no such pipeline"),
        409: json(S.ErrorResponse, "the pipeline has already ended"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const outcome = await abortPipeline(sql, id);
      if (outcome === null) throw new ApiError(404, "not_found", `no pipeline ${id}`);
      if (outcome === "finished") {
        throw new ApiError(409, "finished", `pipeline ${id} has already ended: nothing to abort`);
      }
      const detail = (await getPipeline(sql, id))!;
      return c.json({
        pipeline: pipelineView(detail),
        waiting_aborted: outcome.waitingAborted,
        running: outcome.running,
      }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/sync/workers",
      summary: "Live workers, their version and the jobs they run",
      security,
      responses: {
        200: json(z.array(S.Worker), "workers seen within the stale timeout"),
        ...ERRORS,
      },
    }),
    async (c) => {
      const workers = await listWorkers(sql, options.staleTimeoutMs / 1000);
      return c.json(workers.map(workerView), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/sync/recalculation-status",
      summary: "Per (module, det) of a year: whether its emissions follow its factors",
      security,
      request: { query: S.StatusQuery },
      responses: {
        200: json(z.array(S.SliceStatus), "the slices with entries or factors"),
        ...ERRORS,
      },
    }),
    async (c) => {
      const { year } = c.req.valid("query");
      const slices = await recalculationStatus(sql, year);
      return c.json(
        slices.map((s) => ({
          module_type_id: s.moduleTypeId,
          module_type: s.moduleType,
          data_entry_type_id: s.dataEntryTypeId,
          data_entry_type: s.dataEntryType,
          year: s.year,
          entries: s.entries,
          factors: s.factors,
          state: s.state,
          needs_recalculation: s.needsRecalculation,
          last_factor_import: s.lastFactorImport
            ? { at: s.lastFactorImport.at.toISOString(), job_id: s.lastFactorImport.jobId }
            : null,
          last_recalc: s.lastRecalc
            ? {
              at: s.lastRecalc.at.toISOString(),
              job_id: s.lastRecalc.jobId,
              result: s.lastRecalc.result,
            }
            : null,
        })),
        200,
      );
    },
  );

  // ---- emissions ----------------------------------------------------------------------------

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/emissions",
      summary: "Every emission row of a (det, year) slice, streamed as CSV or JSON",
      security,
      request: { query: S.EmissionsQuery },
      responses: {
        200: {
          content: {
            "text/csv": { schema: z.string() },
            "application/json": { schema: z.string() },
          },
          description: "the rows (the same as `emissions export`)",
        },
        ...ERRORS,
      },
    }),
    (c) => {
      const { det: detText, year, format } = c.req.valid("query");
      const det = findDataEntryType(detText);
      if (!det) {
        throw invalidField(
          "det",
          `unknown data entry type "${detText}" (expected a name such as plane, or its id)`,
        );
      }
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      const writer = writable.getWriter();
      const sink = {
        async write(bytes: Uint8Array) {
          await writer.write(bytes);
          return bytes.byteLength;
        },
      };
      exportEmissions(db, { det: det.id, year, format }, sink).then(
        () => writer.close(),
        (error) => {
          options.log?.({ event: "export_failed", message: String(error) });
          return writer.abort(error);
        },
      ).catch(() => {});
      return new Response(readable, {
        status: 200,
        headers: {
          "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/json",
          "content-disposition": `attachment; filename="${det.name}-${year}.${format}"`,
        },
      });
    },
  );

  app.doc("/v1/openapi.json", {
    openapi: "3.0.3",
    info: {
      title: "rematch",
      version: VERSION,
      description: "Upload emission factor and data files, follow the jobs they start, and read " +
        "the recomputed emissions (spec/interfaces.md §4).",
    },
  });

  return app;
}

function pathModule(value: string) {
  const module = findModuleType(value);
  if (!module) throw new ApiError(404, "not_found", `no module "${value}"`);
  return module;
}

function recalcJob(detId: number, moduleTypeId: number, year: number, full: boolean): NewJob {
  return {
    jobType: "emission_recalc",
    moduleTypeId,
    dataEntryTypeId: detId,
    year,
    input: { data_entry_type_id: detId, year, full },
  };
}

function dispatched(created: Awaited<ReturnType<typeof createPipeline>>) {
  const [job] = created.jobs;
  return {
    job_id: job.jobId,
    pipeline_id: created.pipelineId,
    state: job.state,
    shared: job.shared,
  };
}

/** Receives a multipart upload, refusing at once a declared length beyond the limits. */
async function receiveUpload(
  request: Request,
  fileFields: readonly string[],
  options: ApiOptions,
) {
  const boundary = multipartBoundary(request.headers.get("content-type"));
  if (!boundary) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      `expected multipart/form-data with the file in ${fileFields.join(" or ")}`,
    );
  }
  const maxFiles = fileFields.includes("files") ? 10 : 1;
  const declared = Number(request.headers.get("content-length") ?? NaN);
  // Room for the form's own text beside the files.
  if (declared > maxFiles * options.maxUploadBytes + 1024 * 1024) {
    throw new ApiError(
      413,
      "too_large",
      `the request is ${declared} bytes: above the ${options.maxUploadBytes} bytes upload limit`,
    );
  }
  if (!request.body) throw invalidField(fileFields[0], "is required: the request has no body");
  return await receiveForm(request.body, boundary, {
    dir: options.uploadDir,
    fileFields,
    maxFileBytes: options.maxUploadBytes,
    maxFiles,
  });
}

/** Reads a JSON body of at most `limit` bytes; 413 past it, 400 when it is not JSON. */
async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > limit) {
    throw new ApiError(413, "too_large", `the body is above the ${limit} bytes limit for JSON`);
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let text = "";
  let size = 0;
  try {
    if (request.body) {
      for await (const chunk of request.body) {
        size += chunk.byteLength;
        if (size > limit) {
          throw new ApiError(
            413,
            "too_large",
            `the body is above the ${limit} bytes limit for JSON`,
          );
        }
        text += decoder.decode(chunk, { stream: true });
      }
    }
    text += decoder.decode();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(400, "validation", "body: not valid UTF-8 text");
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, "validation", `body: not valid JSON: ${(error as Error).message}`);
  }
}
