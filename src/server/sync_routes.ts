// The /v1/sync routes besides dispatch: recalc requests, jobs, pipelines (with their event
// stream and abort), recover, workers and the recalculation status.
import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { abortPipeline, recoverJob } from "../jobs/queue.ts";
import { recalculationStatus } from "../jobs/recalc_status.ts";
import { getJob, getPipeline, listPipelines, listWorkers } from "../jobs/status.ts";
import type { NewJob } from "../jobs/types.ts";
import { findDataEntryType, findModuleType, listDataEntryTypes } from "../reference/enums.ts";
import { ApiError } from "./errors.ts";
import { type ApiApp, dispatched, ERRORS, json, type RouteContext, SECURITY } from "./_routes.ts";
import * as S from "./schemas.ts";
import { jobView, pipelineSummaryView, pipelineView, workerView } from "./views.ts";

/** The recalc, job, pipeline, worker and status routes. */
export function syncRoutes(app: ApiApp, context: RouteContext): void {
  const { options, sql, queue } = context;
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/sync/recalculate-emissions/{module_type_id}/{data_entry_type_id}",
      summary: "Queue the recalc of one (det, year) slice",
      security: SECURITY,
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
      security: SECURITY,
      request: { params: S.ModuleRecalcParams, query: S.ModuleRecalcQuery },
      responses: {
        202: json(S.DispatchedMany, "queued"),
        ...ERRORS,
        404: json(S.ErrorResponse, "no such module"),
        409: json(
          S.ErrorResponse,
          "the module has no data entry types, or only_stale and none of them is stale",
        ),
      },
    }),
    async (c) => {
      const { module_type_id } = c.req.valid("param");
      const { year, only_stale } = c.req.valid("query");
      const module = pathModule(module_type_id);
      let dets = listDataEntryTypes().filter((d) => d.moduleTypeId === module.id);
      // A pipeline of no job would stay RUNNING for good.
      if (dets.length === 0) {
        throw new ApiError(
          409,
          "nothing_to_recalculate",
          `module ${module.name} has no data entry types: nothing to recalculate`,
        );
      }
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

  // Jobs, pipelines, workers.

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/sync/jobs/{id}",
      summary: "One job: state, result, progress, its full result document",
      security: SECURITY,
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
      security: SECURITY,
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
      security: SECURITY,
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
      security: SECURITY,
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
      security: SECURITY,
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
        // Jobs last sent waiting: one that started and ended between two reads is sent as
        // RUNNING (as it was when it started) before it is sent as it ended. A job already
        // finished at the stream's first read was not seen waiting, and is sent as it is.
        const waiting = new Set<number>();
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
            const wasWaiting = waiting.delete(job.id);
            if (job.state === "NOT_STARTED") waiting.add(job.id);
            else if (job.state === "FINISHED" && job.started_at && wasWaiting) {
              const started = {
                ...job,
                state: "RUNNING",
                result: null,
                status_message: null,
                finished_at: null,
                progress: null,
                result_document: null,
              };
              await stream.writeSSE({ event: "job", data: JSON.stringify(started) });
            }
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
      security: SECURITY,
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
      security: SECURITY,
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
      summary: "Per (module, det) of a year with entries: whether its emissions follow its " +
        "factors (the slice state of `deno task status`)",
      security: SECURITY,
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
          scope: s.scope,
          needs_recalculation: s.needsRecalculation,
          last_factor_import: s.lastFactorImport
            ? {
              id: s.lastFactorImport.id,
              at: s.lastFactorImport.at,
              actor: s.lastFactorImport.actor,
              source: s.lastFactorImport.source,
              job_id: s.lastFactorImport.jobId,
            }
            : null,
          last_recalc: s.lastRecalc
            ? {
              at: s.lastRecalc.at,
              scope: s.lastRecalc.scope,
              errors: s.lastRecalc.errors,
              job_id: s.lastRecalc.jobId,
            }
            : null,
        })),
        200,
      );
    },
  );
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
