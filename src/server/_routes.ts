// What the route modules share: the app type, the request context, response helpers.
import type { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Database, Sql } from "../db/connection.ts";
import type { CreatedPipeline } from "../jobs/queue.ts";
import type { NewJob } from "../jobs/types.ts";
import type { ApiOptions } from "./app.ts";
import * as S from "./schemas.ts";

/** Hono's environment: the actor the request acts as. */
export type Env = { Variables: { actor: string } };

/** The API app. */
export type ApiApp = OpenAPIHono<Env>;

/** What every route module gets. */
export interface RouteContext {
  readonly options: ApiOptions;
  readonly db: Database;
  readonly sql: Sql;
  /** Bytes of a JSON body. */
  readonly maxJsonBytes: number;
  /** Creates a pipeline of jobs and wakes the local worker. */
  queue(
    kind: string,
    actor: string,
    jobs: readonly NewJob[],
    meta?: Record<string, unknown>,
  ): Promise<CreatedPipeline>;
}

/**
 * `work`'s value, or `undefined` when `ms` pass first (its timer cleared either way; a rejection
 * of `work` is passed on).
 */
export async function withinMs<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A JSON response of the OpenAPI document. */
export const json = (schema: z.ZodType, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

/** What a 500 says of itself: nothing of the error is shown. */
export const INTERNAL_ERROR =
  "internal error (the database was lost, or a bug): nothing of it is shown, the server log says more";

/** The error responses every authenticated route may give. */
export const ERRORS = {
  400: json(S.ErrorResponse, "invalid request: the message names the field"),
  401: json(S.ErrorResponse, "missing or wrong bearer token"),
  403: json(
    S.ErrorResponse,
    "without tokens: a request to a host, or from an origin, other than a loopback one",
  ),
  500: json(S.ErrorResponse, INTERNAL_ERROR),
};

/** The routes' security requirement (a bearer token, when tokens are configured). */
export const SECURITY = [{ bearer: [] }];

/** The 202 body of a single-job dispatch. */
export function dispatched(created: CreatedPipeline) {
  const [job] = created.jobs;
  return {
    job_id: job.jobId,
    pipeline_id: created.pipelineId,
    state: job.state,
    shared: job.shared,
  };
}
