// The HTTP API of spec/interfaces.md §4 as a Hono app: routes over the job queue and the same
// functions the CLI runs. Bodies, queries and path parameters are validated by the zod schemas of
// schemas.ts, which also make the OpenAPI document.
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { type Database, redactSecrets } from "../db/connection.ts";
import { schemaVersion } from "../db/migrate.ts";
import type { Logger } from "../jobs/log.ts";
import { createPipeline } from "../jobs/queue.ts";
import { CursorError } from "../jobs/status.ts";
import type { NewJob } from "../jobs/types.ts";
import { VERSION } from "../jobs/worker.ts";
import { type ApiToken, authenticate, crossSiteRequest, requestActor } from "./auth.ts";
import { emissionRoutes } from "./emission_routes.ts";
import { ApiError, describeIssues, errorBody } from "./errors.ts";
import { historyRoutes } from "./history_routes.ts";
import { MultipartError } from "./multipart.ts";
import { type Env, INTERNAL_ERROR, json, type RouteContext, withinMs } from "./_routes.ts";
import * as S from "./schemas.ts";
import { syncRoutes } from "./sync_routes.ts";
import { UnsupportedFileError } from "./upload.ts";
import { uploadRoutes } from "./upload_routes.ts";
import { transaction } from "../db/transaction.ts";

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
  /**
   * Exports streamed at once (each holds a database connection for as long as its client reads):
   * more are answered 503. @default 4
   */
  readonly maxExports?: number;
  /** An export whose client has read nothing for this long ends, in ms. @default 60000 */
  readonly exportStallMs?: number;
  /** `/healthz` answers 503 when the database has not answered within this, in ms. @default 5000 */
  readonly healthTimeoutMs?: number;
  /** Called after jobs were queued (wakes a worker of this process). */
  readonly onJobsQueued?: () => void;
  /** Where unexpected errors are logged. */
  readonly log?: Logger;
  /** Ends open event streams (the server is shutting down). */
  readonly signal?: AbortSignal;
}

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
    if (options.signal?.aborted) {
      // The server is stopping: a request cut short by it (an upload whose body can no longer be
      // read) is for the client to send again, not an internal error.
      return c.json(
        errorBody("unavailable", "the server is stopping: send the request again"),
        503,
      );
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
    if (options.tokens.length === 0) {
      const refused = crossSiteRequest(c.req.header("host"), c.req.header("origin"));
      if (refused) return c.json(errorBody("forbidden", refused), 403);
    }
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
    const created = await transaction(sql, (tx) => createPipeline(tx, { kind, actor, meta }, jobs));
    options.onJobsQueued?.();
    return created;
  };

  // Health answers without a token (the auth middleware covers /v1 only).

  app.openapi(
    createRoute({
      method: "get",
      path: "/healthz",
      summary: "Liveness and the database in use",
      responses: {
        200: json(S.Health, "the server and its database answer"),
        503: json(S.ErrorResponse, "the database did not answer in time, or cannot be reached"),
        500: json(S.ErrorResponse, INTERNAL_ERROR),
      },
    }),
    async (c) => {
      // A load balancer's probe gets an answer, even when every connection is taken.
      const timeoutMs = options.healthTimeoutMs ?? 5000;
      // A database that refuses connections is unavailable too, not an internal error.
      const version = schemaVersion(sql).catch((error: unknown) =>
        error instanceof Error ? error : new Error(String(error))
      );
      const answered = await withinMs(version, timeoutMs);
      if (typeof answered !== "number") {
        const why = answered === undefined
          ? `did not answer within ${timeoutMs / 1000} s`
          : `cannot be reached (${redactSecrets(answered.message)})`;
        return c.json(errorBody("database_unavailable", `the database ${why}`), 503);
      }
      return c.json(
        { ok: true, database: db.kind, schemaVersion: answered, version: VERSION },
        200,
      );
    },
  );

  const context: RouteContext = { options, db, sql, maxJsonBytes, queue };
  uploadRoutes(app, context);
  syncRoutes(app, context);
  emissionRoutes(app, context);
  historyRoutes(app, context);

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
