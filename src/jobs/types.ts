// The job model of spec/interfaces.md §3: job types, states, results, what a job row holds and
// the input each job type carries in `meta.input` (validated when a worker reads it).
import { z } from "zod";

/** The kinds of work a job does. */
export const JOB_TYPES = [
  "factor_ingest",
  "entries_ingest",
  "reference_ingest",
  "emission_recalc",
] as const;
/** A job type. */
export type JobType = typeof JOB_TYPES[number];

/** Where a job is in its life. */
export const JOB_STATES = ["NOT_STARTED", "RUNNING", "FINISHED"] as const;
/** A job state. */
export type JobState = typeof JOB_STATES[number];

/** How a finished job ended: WARNING is done with row or entry errors. */
export const JOB_RESULTS = ["SUCCESS", "WARNING", "ERROR"] as const;
/** A job result. */
export type JobResult = typeof JOB_RESULTS[number];

/** A pipeline's status. */
export const PIPELINE_STATUSES = ["RUNNING", "SUCCESS", "PARTIAL", "FAILED"] as const;
/** A pipeline status. */
export type PipelineStatus = typeof PIPELINE_STATUSES[number];

/** The reference kinds a reference_ingest imports. */
export const REFERENCE_KINDS = ["locations", "rooms", "rates"] as const;

const uploadedFile = {
  /** The upload (table `uploads`) the job reads. */
  upload_id: z.uuid(),
  /** The name the file was uploaded with (messages and results say it). */
  file_name: z.string().min(1),
};

/** meta.input of a factor_ingest. */
export const FactorIngestInput = z.object({
  ...uploadedFile,
  year: z.number().int(),
  /** One det, or a whole module routed by its routing column. */
  data_entry_type_id: z.number().int().nullable(),
  module_type_id: z.number().int(),
  mode: z.enum(["merge", "replace"]),
  strict: z.boolean(),
  allow_empty: z.boolean(),
  force: z.boolean(),
});
/** meta.input of a factor_ingest. */
export type FactorIngestInput = z.infer<typeof FactorIngestInput>;

/** meta.input of an entries_ingest (a CSV of one det). */
export const EntriesIngestInput = z.object({
  ...uploadedFile,
  data_entry_type_id: z.number().int(),
  strict: z.boolean(),
  /** The dispatch's year: every row must be of it. */
  year: z.number().int().optional(),
});
/** meta.input of an entries_ingest. */
export type EntriesIngestInput = z.infer<typeof EntriesIngestInput>;

/** meta.input of a reference_ingest. */
export const ReferenceIngestInput = z.object({
  ...uploadedFile,
  kind: z.enum(REFERENCE_KINDS),
  strict: z.boolean(),
});
/** meta.input of a reference_ingest. */
export type ReferenceIngestInput = z.infer<typeof ReferenceIngestInput>;

/** meta.input of an emission_recalc. */
export const RecalcInput = z.object({
  data_entry_type_id: z.number().int(),
  year: z.number().int(),
  /** Recompute the whole slice even when it could be targeted. */
  full: z.boolean(),
});
/** meta.input of an emission_recalc. */
export type RecalcInput = z.infer<typeof RecalcInput>;

/** The input schema of each job type. */
export const JOB_INPUTS = {
  factor_ingest: FactorIngestInput,
  entries_ingest: EntriesIngestInput,
  reference_ingest: ReferenceIngestInput,
  emission_recalc: RecalcInput,
} as const;

/** The input of a job of type `T`. */
export type JobInput<T extends JobType = JobType> = z.infer<typeof JOB_INPUTS[T]>;

/** Progress of a running job: entries (or rows) done of a total. */
export interface JobProgress {
  readonly done: number;
  readonly total: number;
}

/** A recalc a finished ingest created or joined. */
export interface ChainedRecalc {
  readonly job_id: number;
  readonly pipeline_id: string;
  readonly data_entry_type: string;
  readonly data_entry_type_id: number;
  readonly year: number;
  /** True when a recalc of the slice was already waiting (in this or another pipeline). */
  readonly shared: boolean;
}

/** What `data_ingestion_jobs.meta` holds. */
export interface JobMeta {
  /** The job's input (the uploaded file, its options, the slice). */
  readonly input: Record<string, unknown>;
  /** Who asked for it. */
  readonly actor?: string | null;
  /** The full result document, the same JSON the CLI prints. */
  readonly result?: unknown;
  readonly progress?: JobProgress;
  /** The recalcs an ingest chained. */
  readonly chained?: readonly ChainedRecalc[];
}

/** A row of `data_ingestion_jobs`. */
export interface JobRow {
  readonly id: number;
  readonly pipeline_id: string;
  readonly job_type: JobType;
  readonly module_type_id: number | null;
  readonly data_entry_type_id: number | null;
  readonly year: number | null;
  readonly state: JobState;
  readonly result: JobResult | null;
  readonly status_message: string | null;
  readonly meta: JobMeta;
  readonly is_current: boolean;
  readonly locked_by: string | null;
  readonly locked_at: Date | null;
  readonly started_at: Date | null;
  readonly finished_at: Date | null;
  readonly attempts: number;
  readonly max_attempts: number;
  readonly run_after: Date | null;
  readonly created_at: Date;
}

/** A job a worker holds: its row as claimed. `attempts` with `locked_by` is the claim token. */
export type ClaimedJob = JobRow & { readonly locked_by: string };

/** A job to create. */
export interface NewJob<T extends JobType = JobType> {
  readonly jobType: T;
  readonly moduleTypeId: number | null;
  readonly dataEntryTypeId: number | null;
  readonly year: number | null;
  readonly input: JobInput<T>;
}

/** A (det, year) slice. */
export interface SliceKey {
  readonly dataEntryTypeId: number;
  readonly year: number;
}
