// The zod schemas of the HTTP API: every body, query and path parameter, and the responses.
// The OpenAPI document (GET /v1/openapi.json) is generated from these same schemas.
import { z } from "@hono/zod-openapi";
import { JOB_RESULTS, JOB_STATES, JOB_TYPES, PIPELINE_STATUSES } from "../jobs/types.ts";
import { MAX_YEAR, MIN_YEAR } from "../reference/years.ts";

/** A failure: `{error: {code, message, details?}}`. */
export const ErrorResponse = z.object({
  error: z.object({
    code: z.string().openapi({ example: "validation" }),
    message: z.string().openapi({ example: "year: expected an integer between 1990 and 2100" }),
    details: z.unknown().optional(),
  }),
}).openapi("Error");

const yearMessage = `expected a year between ${MIN_YEAR} and ${MAX_YEAR}`;

/** A year in a JSON body. */
export const Year = z.number({ error: yearMessage }).int(yearMessage).min(MIN_YEAR, yearMessage)
  .max(MAX_YEAR, yearMessage).openapi({ example: 2025 });

/** A year in a query string. */
export const YearQuery = z.string({ error: `is required (${yearMessage})` })
  .regex(/^\d{4}$/, yearMessage).transform(Number).pipe(Year)
  .openapi({ type: "string", example: "2025" });

/** A module type or det: its id or its name. */
export const IdOrName = z.union([z.number().int(), z.string().min(1)], {
  error: "expected an id or a name",
}).openapi({ example: "plane" });

/** What an upload dispatch imports. */
export const TargetType = z.enum(["factors", "data_entries", "locations", "rooms", "rates"], {
  error: 'expected one of "factors", "data_entries", "locations", "rooms", "rates"',
});

/** The options of a dispatch. */
export const DispatchConfig = z.strictObject({
  module_type_id: IdOrName.optional().openapi({
    description: "factors, data_entries: the module (id or name)",
    example: "professional_travel",
  }),
  data_entry_type_id: IdOrName.optional().openapi({
    description: "factors: one det of the module (absent: the whole module, routed by its " +
      "routing column); data_entries: the det of the CSV (required)",
  }),
  mode: z.enum(["merge", "replace"], { error: 'expected "merge" or "replace"' }).optional()
    .openapi({ description: "factors: merge (default) or replace" }),
  strict: z.boolean().optional().openapi({ description: "any bad row rejects the import" }),
  allow_empty: z.boolean().optional().openapi({
    description: "factors, replace: accept a file without data rows",
  }),
  force: z.boolean().optional().openapi({
    description: "factors, replace: accept deleting more than half of a slice's factors",
  }),
}).openapi("DispatchConfig");

/** The fields of a dispatch, as JSON or as multipart fields beside the file. */
export const DispatchFields = z.strictObject({
  target_type: TargetType,
  year: Year.optional().openapi({ description: "required for factors" }),
  config: DispatchConfig.default({}),
});

/** A JSON dispatch: the fields plus the `path` of a temp upload. */
export const DispatchBody = DispatchFields.extend({
  file_path: z.string({ error: "is required (a path returned by /v1/files/temp-upload)" })
    .openapi({ example: "uploads/0b6c6f1e-8f7a-4d4b-9a55-3c2d1e0f9a8b.csv" }),
}).openapi("DispatchRequest");

/** 202 of a dispatch or a recalc request. */
export const Dispatched = z.object({
  job_id: z.number().int(),
  pipeline_id: z.uuid(),
  state: z.enum(JOB_STATES),
  shared: z.boolean().openapi({
    description: "true when a recalc of the slice was already waiting and is shared",
  }),
}).openapi("Dispatched");

/** 202 of a module recalc request. */
export const DispatchedMany = z.object({
  pipeline_id: z.uuid(),
  jobs: z.array(Dispatched.extend({ data_entry_type: z.string() })),
}).openapi("DispatchedMany");

/** One stored upload. */
export const Uploaded = z.object({
  path: z.string().openapi({ example: "uploads/0b6c6f1e-8f7a-4d4b-9a55-3c2d1e0f9a8b.csv" }),
  file_name: z.string(),
  size_bytes: z.number().int(),
  sha256: z.string(),
}).openapi("Upload");

const timestamp = z.string().nullable().openapi({ format: "date-time" });

/** A job as the API shows it. */
export const Job = z.object({
  id: z.number().int(),
  pipeline_id: z.uuid(),
  job_type: z.enum(JOB_TYPES),
  module_type_id: z.number().int().nullable(),
  module_type: z.string().nullable(),
  data_entry_type_id: z.number().int().nullable(),
  data_entry_type: z.string().nullable(),
  year: z.number().int().nullable(),
  state: z.enum(JOB_STATES),
  result: z.enum(JOB_RESULTS).nullable(),
  status_message: z.string().nullable(),
  is_current: z.boolean(),
  locked_by: z.string().nullable(),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  created_at: timestamp,
  started_at: timestamp,
  locked_at: timestamp,
  finished_at: timestamp,
  run_after: timestamp,
  actor: z.string().nullable(),
  input: z.record(z.string(), z.unknown()),
  progress: z.object({ done: z.number(), total: z.number() }).nullable(),
  result_document: z.unknown().openapi({
    description: "the full result: the same JSON the CLI prints",
  }),
  chained: z.array(z.object({
    job_id: z.number().int(),
    pipeline_id: z.uuid(),
    data_entry_type: z.string(),
    data_entry_type_id: z.number().int(),
    year: z.number().int(),
    shared: z.boolean(),
  })),
}).openapi("Job");

/** A pipeline with its jobs. */
export const Pipeline = z.object({
  id: z.uuid(),
  kind: z.string(),
  status: z.enum(PIPELINE_STATUSES),
  actor: z.string().nullable(),
  meta: z.record(z.string(), z.unknown()).nullable(),
  created_at: timestamp,
  updated_at: timestamp,
  aborted_at: timestamp,
  jobs: z.array(Job),
  waits_for: z.array(Job).openapi({
    description: "jobs of other pipelines this one shares (a recalc that was already waiting)",
  }),
  progress: z.object({
    jobs: z.number().int(),
    finished: z.number().int(),
    running: z.array(z.object({ job_id: z.number().int(), done: z.number(), total: z.number() })),
  }),
}).openapi("Pipeline");

/** A pipeline in a listing. */
export const PipelineSummary = z.object({
  id: z.uuid(),
  kind: z.string(),
  status: z.enum(PIPELINE_STATUSES),
  actor: z.string().nullable(),
  created_at: timestamp,
  updated_at: timestamp,
  aborted_at: timestamp,
  jobs: z.number().int(),
  jobs_finished: z.number().int(),
  jobs_with_errors: z.number().int(),
}).openapi("PipelineSummary");

const booleanQuery = z.enum(["true", "false"], { error: 'expected "true" or "false"' })
  .transform((v) => v === "true");

/** Query of the pipeline listing. */
export const PipelineListQuery = z.object({
  state: z.enum(PIPELINE_STATUSES, {
    error: `expected one of ${PIPELINE_STATUSES.join(", ")}`,
  }).optional(),
  year: YearQuery.optional(),
  job_type: z.enum(JOB_TYPES, { error: `expected one of ${JOB_TYPES.join(", ")}` }).optional(),
  has_errors: booleanQuery.optional(),
  limit: z.string().regex(/^\d+$/, "expected an integer from 1 to 200").transform(Number)
    .pipe(z.number().int().min(1, "expected at least 1").max(200, "expected at most 200"))
    .optional().openapi({ type: "string", example: "50" }),
  cursor: z.string().max(200).optional().openapi({
    description: "next_cursor of the previous page",
  }),
});

/** A page of pipelines, newest first. */
export const PipelineList = z.object({
  pipelines: z.array(PipelineSummary),
  next_cursor: z.string().nullable(),
}).openapi("PipelineList");

/** Path parameter: a job id. */
export const JobIdParam = z.object({
  id: z.string().regex(/^\d{1,15}$/, "expected a job id (an integer)").transform(Number)
    .openapi({ param: { name: "id", in: "path" }, type: "string", example: "12" }),
});

/** Path parameter: a pipeline id. */
export const PipelineIdParam = z.object({
  id: z.uuid({ error: "expected a pipeline id (a UUID)" }).openapi({
    param: { name: "id", in: "path" },
  }),
});

/** Query of a recalc request. */
export const RecalcQuery = z.object({
  year: YearQuery,
  full: booleanQuery.optional().openapi({ description: "recompute the whole slice" }),
});

/** Query of a module recalc request. */
export const ModuleRecalcQuery = z.object({
  year: YearQuery,
  only_stale: booleanQuery.optional().openapi({
    description: "only the dets whose slice is not current (409 when none is)",
  }),
});

/** Path of a recalc request. */
export const RecalcParams = z.object({
  module_type_id: z.string().openapi({ param: { name: "module_type_id", in: "path" } }),
  data_entry_type_id: z.string().openapi({ param: { name: "data_entry_type_id", in: "path" } }),
});

/** Path of a module recalc request. */
export const ModuleRecalcParams = z.object({
  module_type_id: z.string().openapi({ param: { name: "module_type_id", in: "path" } }),
});

/** A live worker. */
export const Worker = z.object({
  id: z.string(),
  hostname: z.string(),
  pid: z.number().int(),
  version: z.string(),
  concurrency: z.number().int(),
  started_at: timestamp,
  last_seen_at: timestamp,
  running_jobs: z.array(z.number().int()),
}).openapi("Worker");

/** GET /healthz. */
export const Health = z.object({
  ok: z.boolean(),
  database: z.enum(["embedded", "server"]),
  schemaVersion: z.number().int(),
  version: z.string(),
}).openapi("Health");

/** Query of the emissions export. */
export const EmissionsQuery = z.object({
  det: z.string({ error: "is required (a data entry type name or id)" }),
  year: YearQuery,
  format: z.enum(["csv", "json"], { error: 'expected "csv" or "json"' }).default("csv"),
});

/** Query of the recalculation status. */
export const StatusQuery = z.object({ year: YearQuery });

/** One slice's recalculation status. */
export const SliceStatus = z.object({
  module_type_id: z.number().int(),
  module_type: z.string(),
  data_entry_type_id: z.number().int(),
  data_entry_type: z.string(),
  year: z.number().int(),
  entries: z.number().int(),
  factors: z.number().int(),
  state: z.string().openapi({ example: "stale: targeted (1 factors, about 120 entries)" }),
  scope: z.enum(["none", "targeted", "full"]).openapi({
    description: "what a rematch would do now",
  }),
  needs_recalculation: z.boolean(),
  last_factor_import: z.object({ at: timestamp, job_id: z.number().int().nullable() }).nullable(),
  last_recalc: z.object({
    at: timestamp,
    scope: z.enum(["targeted", "full"]),
    errors: z.number().int(),
    job_id: z.number().int().nullable(),
  }).nullable(),
}).openapi("SliceStatus");
