// The zod schemas of the HTTP API: every body, query and path parameter, and the responses.
// The OpenAPI document (GET /v1/openapi.json) is generated from these same schemas.
import { z } from "@hono/zod-openapi";
import { JOB_RESULTS, JOB_STATES, JOB_TYPES, PIPELINE_STATUSES } from "../jobs/types.ts";
import { findDataEntryType } from "../reference/enums.ts";
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
  year: Year.optional().openapi({
    description: "factors: required; data_entries: every row must be of this year (optional); " +
      "locations, rooms, rates: recorded on the job (their rows give their own year, or none)",
  }),
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
const instant = z.string().openapi({ format: "date-time" });
const TRIGGERS = ["cli", "job", "import", "rollback"] as const;

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

/** An integer from `min` to `max` in a query string. */
function integerQuery(min: number, max: number, example: string) {
  return z.string().regex(/^\d+$/, `expected an integer from ${min} to ${max}`).transform(Number)
    .pipe(z.number().int().min(min, `expected at least ${min}`).max(max, `expected at most ${max}`))
    .openapi({ type: "string", example });
}

/** The page size of a listing (newest first). */
export const LimitQuery = integerQuery(1, 200, "50").openapi({
  description: "at most this many (default 50)",
});

/** Where a listing continues. */
export const CursorQuery = z.string().max(200).openapi({
  description: "next_cursor of the previous page",
});

/** Query of the pipeline listing. */
export const PipelineListQuery = z.object({
  state: z.enum(PIPELINE_STATUSES, {
    error: `expected one of ${PIPELINE_STATUSES.join(", ")}`,
  }).optional(),
  year: YearQuery.optional(),
  job_type: z.enum(JOB_TYPES, { error: `expected one of ${JOB_TYPES.join(", ")}` }).optional(),
  has_errors: booleanQuery.optional(),
  limit: LimitQuery.optional(),
  cursor: CursorQuery.optional(),
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
  last_factor_import: z.object({
    id: z.number().int(),
    at: instant,
    actor: z.string(),
    source: z.string().openapi({ description: "the file name, or `rollback of N`" }),
    job_id: z.number().int().nullable(),
  }).nullable().openapi({
    description: "the slice's last recorded factor import (GET /v1/history/imports/{id})",
  }),
  last_recalc: z.object({
    at: timestamp,
    scope: z.enum(["targeted", "full"]),
    errors: z.number().int(),
    job_id: z.number().int().nullable().openapi({
      description: "the job that ran it; null when it ran outside a job (CLI, import --rematch)",
    }),
  }).nullable().openapi({
    description: "the last rematch that recorded the slice's state (a no-op records none)",
  }),
}).openapi("SliceStatus");

/** One row of `GET /v1/emissions` as JSON (the CSV has the same columns, in this order). */
export const EmissionExportRow = z.object({
  entry_id: z.number().int(),
  module_id: z.number().int(),
  unit_code: z.string(),
  data_entry_type: z.string(),
  emission_type_id: z.number().int(),
  emission_type: z.string(),
  primary_factor_id: z.number().int().nullable(),
  kg_co2eq: z.number(),
  additional_value: z.number().nullable(),
  scope: z.number().int().nullable(),
}).openapi("EmissionExportRow");

/** A det in a query string: its name or id, resolved to its id. */
export const DetQuery = z.string().transform((text, ctx) => {
  const det = findDataEntryType(text);
  if (det) return det.id;
  ctx.issues.push({
    code: "custom",
    input: text,
    message: `unknown data entry type "${text}" (expected a name such as plane, or its id)`,
  });
  return z.NEVER;
}).openapi({ type: "string", description: "a data entry type name or id", example: "plane" });

/** Query of the factor import history. */
export const ImportListQuery = z.object({
  det: DetQuery.optional().openapi({ description: "imports touching this det (name or id)" }),
  year: YearQuery.optional(),
  limit: LimitQuery.optional(),
  cursor: CursorQuery.optional(),
});

/** Query of the rematch run history. */
export const RunListQuery = z.object({
  det: DetQuery.optional().openapi({ description: "runs of this det (name or id)" }),
  year: YearQuery.optional(),
  import_id: z.string().regex(/^\d{1,15}$/, "expected an import id (an integer)")
    .transform(Number).optional().openapi({
      type: "string",
      description: "only the runs recorded with this import (its --rematch, or a rollback's)",
    }),
  limit: LimitQuery.optional(),
  cursor: CursorQuery.optional(),
});

/** Path parameter: a factor import id. */
export const ImportIdParam = z.object({
  id: z.string().regex(/^\d{1,15}$/, "expected an import id (an integer)").transform(Number)
    .openapi({ param: { name: "id", in: "path" }, type: "string", example: "3" }),
});

/** The most factor versions one import detail lists. */
export const MAX_LISTED_VERSIONS = 10_000;

/** Query of an import's detail: which of its versions to list. */
export const ImportDetailQuery = z.object({
  limit: integerQuery(1, MAX_LISTED_VERSIONS, "1000").optional().openapi({
    description: "list at most this many changed factors (default 1000)",
  }),
  offset: integerQuery(0, 1_000_000_000, "0").optional().openapi({
    description: "skip this many (next_offset of the previous page)",
  }),
});

/** A recorded factor import (spec/history.md §1). */
export const FactorImport = z.object({
  id: z.number().int(),
  year: z.number().int(),
  data_entry_types: z.array(z.string()),
  data_entry_type_ids: z.array(z.number().int()),
  module_type: z.string().nullable().openapi({ description: "the module of a whole-module file" }),
  module_type_id: z.number().int().nullable(),
  mode: z.enum(["merge", "replace", "rollback"]),
  source: z.string().openapi({ description: "the file name, or `rollback of N`" }),
  file_sha256: z.string().nullable(),
  actor: z.string(),
  job_id: z.number().int().nullable().openapi({ description: "the factor_ingest job, if any" }),
  rollback_of: z.number().int().nullable().openapi({ description: "the import it rolled back" }),
  rolled_back_by: z.array(z.number().int()).openapi({
    description: "the imports that rolled this one back",
  }),
  rows_read: z.number().int(),
  inserted: z.number().int(),
  updated: z.number().int(),
  deleted: z.number().int(),
  unchanged: z.number().int(),
  created_at: instant,
}).openapi("FactorImport");

/** A rematch run that followed an import. */
export const FollowingRun = z.object({
  id: z.number().int(),
  data_entry_type: z.string(),
  trigger: z.enum(TRIGGERS),
  import_id: z.number().int().nullable(),
  finished_at: instant,
  kg_before: z.number(),
  kg_after: z.number(),
}).openapi("FollowingRun");

/** A factor import in the history, with the rematch runs that followed it. */
export const FactorImportListed = FactorImport.extend({
  runs: z.array(FollowingRun).openapi({
    description: "the latest runs of its slices after it and before the next import of the " +
      "same slice (its --rematch, a recalc job it chained, a later rematch)",
  }),
  runs_count: z.number().int(),
}).openapi("FactorImportListed");

/** A page of the factor import history, newest first. */
export const FactorImportList = z.object({
  imports: z.array(FactorImportListed),
  next_cursor: z.string().nullable(),
}).openapi("FactorImportList");

const factorValues = z.record(z.string(), z.union([z.number(), z.string()])).nullable();

/** One factor an import changed: its old and new values. */
export const FactorVersion = z.object({
  factor_id: z.number().int(),
  data_entry_type: z.string(),
  data_entry_type_id: z.number().int(),
  year: z.number().int(),
  emission_type_id: z.number().int(),
  classification: z.record(z.string(), z.string().nullable()),
  change: z.enum(["inserted", "updated", "deleted"]),
  values_before: factorValues,
  values_after: factorValues,
  changed_keys: z.array(z.string()),
}).openapi("FactorVersion");

/** An import and the factors it changed (`factors diff --import N`). */
export const FactorImportDetail = z.object({
  import: FactorImport,
  changes: z.array(FactorVersion).openapi({ description: "in the order the import wrote them" }),
  changes_count: z.number().int().openapi({ description: "every change of the import" }),
  next_offset: z.number().int().nullable().openapi({
    description: "the offset of the next page of changes, null on the last one",
  }),
}).openapi("FactorImportDetail");

/** A recorded rematch run (spec/history.md §3). */
export const RematchRun = z.object({
  id: z.number().int(),
  data_entry_type: z.string(),
  data_entry_type_id: z.number().int(),
  year: z.number().int(),
  scope: z.string().openapi({ description: "none (the slice was current), targeted or full" }),
  trigger: z.enum(TRIGGERS),
  import_id: z.number().int().nullable(),
  job_id: z.number().int().nullable(),
  actor: z.string(),
  started_at: instant,
  finished_at: instant,
  kg_before: z.number().openapi({ description: "the slice's kg total before (rollups left out)" }),
  kg_after: z.number().openapi({ description: "the slice's kg total after (rollups left out)" }),
  result: z.record(z.string(), z.unknown()).openapi({
    description: "the rematch's result document without its detail lists",
  }),
  modules: z.array(z.object({
    module_id: z.number().int(),
    kg_before: z.number().openapi({
      description: "kg of the module's entries the run read (all of them in a full run, those " +
        "read in a targeted one), before",
    }),
    kg_after: z.number().openapi({ description: "the same entries' kg after" }),
    entries_changed: z.number().int(),
    frozen: z.boolean(),
    held_back: z.number().int(),
    held_back_kg: z.number(),
  })),
}).openapi("RematchRun");

/** A page of rematch runs, newest first. */
export const RematchRunList = z.object({
  runs: z.array(RematchRun),
  next_cursor: z.string().nullable(),
}).openapi("RematchRunList");
