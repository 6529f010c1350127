// What each job type does: the same functions the CLI runs (factor import, entries import,
// reference import, rematch), in the job's one transaction. Reading the uploaded file happens
// before the transaction; the database work happens inside it.
import type { Queryable, Sql } from "../db/connection.ts";
import {
  EntriesImportRejected,
  everyLineBad,
  importPreparedEntries,
  prepareEntriesImport,
} from "../db/entries_import.ts";
import { FactorImportRejected, type FactorImportResult, importFactors } from "../db/factors.ts";
import { importReferenceInTransaction } from "../db/reference.ts";
import { listHandlers } from "../handlers/mod.ts";
import { decodeUtf8, parseCsv } from "../imports/csv.ts";
import { FileError, readImportFile } from "../imports/file.ts";
import { sha256Hex } from "../history/sha256.ts";
import { readReferenceFile } from "../imports/reference_csv.ts";
import { getDataEntryType } from "../reference/enums.ts";
import { rematchInTransaction } from "../rematch/run.ts";
import { createPgSliceStore } from "../rematch/pg_store.ts";
import type { RematchOptions, RematchResult } from "../rematch/types.ts";
import {
  type EntriesIngestInput,
  type FactorIngestInput,
  JOB_INPUTS,
  type JobInput,
  type JobRow,
  type JobType,
  type RecalcInput,
  type ReferenceIngestInput,
  type SliceKey,
} from "./types.ts";
import { materialiseUpload } from "./uploads.ts";

/** How a job's work ended when it did not throw. */
export interface WorkOutcome {
  readonly result: "SUCCESS" | "WARNING";
  /** One line for `status_message`. */
  readonly message: string;
  /** The full result document: the same JSON the CLI prints. */
  readonly document: unknown;
  /** Slices the work may have left needing a recalc (chaining decides). */
  readonly touched: readonly SliceKey[];
}

/** A job that failed with nothing written, and the document saying why. */
export class JobFailed extends Error {
  override name = "JobFailed";
  constructor(message: string, readonly document?: unknown) {
    super(message);
  }
}

/** What the work of a job may use besides its transaction. */
export interface WorkContext {
  /** Reads the uploaded file (before the transaction). */
  readonly sql: Sql;
  /**
   * Server only: reads a recalc's whole slice beside the job's transaction (see
   * `readSliceBeside`); a recalc is the first work of that transaction.
   */
  readonly readerSql?: Sql;
  /** A directory of the job's own for its local copy of the file (removed by the caller). */
  readonly workDir: string;
  /** Aborts the rematch at its next chunk. */
  readonly signal: AbortSignal;
  readonly onProgress: (done: number, total: number) => void;
  /** Entries per rematch chunk. @default the rematch's */
  readonly chunkSize?: number;
}

/** A job ready to run its database work. */
export interface PreparedWork {
  run(tx: Queryable): Promise<WorkOutcome>;
}

/**
 * Validates a job's input and reads its file; throws {@linkcode JobFailed} when either is bad.
 * The returned work runs inside the caller's transaction.
 */
export async function prepareWork(job: JobRow, context: WorkContext): Promise<PreparedWork> {
  const input = parseInput(job.job_type, job.meta?.input);
  // Messages name the file as it was uploaded, never the worker's local copy.
  const shown: Shown = (value) => hideDirectory(value, context.workDir);
  try {
    switch (input.type) {
      case "factor_ingest":
        return await prepareFactorIngest(job, input.value, context, shown);
      case "entries_ingest":
        return await prepareEntriesIngest(input.value, context, shown);
      case "reference_ingest":
        return await prepareReferenceIngest(input.value, context, shown);
      case "emission_recalc":
        return prepareRecalc(job, input.value, context);
    }
  } catch (error) {
    if (error instanceof FileError) {
      const message = shown(error.message) as string;
      throw new JobFailed(message, { error: { code: error.name, message } });
    }
    throw error;
  }
}

type ParsedInput = {
  [T in JobType]: { type: T; value: JobInput<T> };
}[JobType];

function parseInput(type: JobType, raw: unknown): ParsedInput {
  const parsed = JOB_INPUTS[type].safeParse(raw);
  if (!parsed.success) {
    throw new JobFailed(
      `the job's input (meta.input) is not a valid ${type} input: ${
        parsed.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join(
          "; ",
        )
      }`,
    );
  }
  return { type, value: parsed.data } as ParsedInput;
}

/** Removes the job directory from every string of `value` (its local copy → the upload's name). */
function hideDirectory(value: unknown, dir: string): unknown {
  const text = JSON.stringify(value);
  if (text === undefined) return value;
  return JSON.parse(
    text,
    (_key, item) => typeof item === "string" ? item.replaceAll(`${dir}/`, "") : item,
  );
}

type Shown = (value: unknown) => unknown;

async function prepareFactorIngest(
  job: JobRow,
  input: FactorIngestInput,
  context: WorkContext,
  shown: Shown,
): Promise<PreparedWork> {
  const path = await materialiseUpload(context.sql, input.upload_id, context.workDir);
  const bytes = await readImportFile(path);
  const table = parseCsv(path, decodeUtf8(path, bytes));
  const fileSha256 = await sha256Hex(bytes);
  const target = input.data_entry_type_id === null
    ? { moduleTypeId: input.module_type_id }
    : { dataEntryTypeId: input.data_entry_type_id };
  return {
    async run(tx) {
      let result: FactorImportResult;
      try {
        result = await importFactors(tx, {
          file: input.file_name,
          table,
          year: input.year,
          target,
          mode: input.mode,
          strict: input.strict,
          allowEmpty: input.allow_empty,
          force: input.force,
          jobId: job.id,
          // The import's history names who asked for it and the file's bytes.
          actor: job.meta.actor ?? undefined,
          fileSha256,
          signal: context.signal,
        });
      } catch (error) {
        if (error instanceof FactorImportRejected) {
          throw new JobFailed(error.message, {
            error: { code: error.name, reason: error.reason, message: error.message },
            file: input.file_name,
            year: input.year,
            mode: input.mode,
            dryRun: false,
            ...error.result,
          });
        }
        if (error instanceof FileError) {
          // A file-level error found by the import itself (its required columns, say): the same
          // document as one found while the file was read.
          const message = shown(error.message) as string;
          throw new JobFailed(message, { error: { code: error.name, message } });
        }
        if (error instanceof RangeError) throw new JobFailed(error.message);
        throw error;
      }
      const document = shown({
        file: input.file_name,
        year: input.year,
        mode: input.mode,
        dryRun: false,
        ...result,
      });
      return {
        result: result.rowErrorsCount ? "WARNING" : "SUCCESS",
        message: `${input.file_name}: ${result.rowsRead} rows read, ${result.inserted} inserted, ` +
          `${result.updated} updated, ${result.unchanged} unchanged, ${result.deleted} deleted, ` +
          `${result.keptStale} kept stale` +
          (result.rowErrorsCount ? `, ${result.rowErrorsCount} row errors` : ""),
        document,
        touched: result.slices.map((c) => ({ dataEntryTypeId: c.dataEntryTypeId, year: c.year })),
      };
    },
  };
}

async function prepareEntriesIngest(
  input: EntriesIngestInput,
  context: WorkContext,
  shown: Shown,
): Promise<PreparedWork> {
  const path = await materialiseUpload(context.sql, input.upload_id, context.workDir);
  const prepared = await prepareEntriesImport({
    file: path,
    format: "csv",
    det: getDataEntryType(input.data_entry_type_id),
    strict: input.strict,
    year: input.year,
    signal: context.signal,
  });
  return {
    async run(tx) {
      try {
        const result = await importPreparedEntries(tx, prepared);
        if (everyLineBad(result)) {
          throw new JobFailed(
            `${input.file_name}: nothing written: every row is bad (${result.errorsCount} errors)`,
            shown(result),
          );
        }
        return {
          result: result.errorsCount ? "WARNING" : "SUCCESS",
          message:
            `${input.file_name}: ${result.linesRead} rows read, ${result.created} created, ` +
            `${result.updated} updated, ${result.unchanged} unchanged` +
            (result.errorsCount ? `, ${result.errorsCount} errors` : ""),
          document: shown(result),
          // Entries are computed as they are written: they leave no slice behind its factors.
          touched: [],
        };
      } catch (error) {
        if (error instanceof EntriesImportRejected) {
          throw new JobFailed(shown(error.message) as string, shown(error.result));
        }
        throw error;
      }
    },
  };
}

async function prepareReferenceIngest(
  input: ReferenceIngestInput,
  context: WorkContext,
  shown: Shown,
): Promise<PreparedWork> {
  const path = await materialiseUpload(context.sql, input.upload_id, context.workDir);
  const parsed = await readReferenceFile(input.kind, path);
  return {
    async run(tx) {
      const result = await importReferenceInTransaction(tx, input.file_name, parsed, {
        strict: input.strict,
      });
      if (!result.written) {
        throw new JobFailed(
          `${input.file_name}: rejected, nothing written: ${result.rowErrorsCount} row errors ` +
            "with strict",
          shown(result),
        );
      }
      const years = input.kind === "rates"
        ? [...new Set(parsed.rows.map((r) => (r as { year: number }).year))]
        : undefined;
      return {
        result: result.rowErrorsCount ? "WARNING" : "SUCCESS",
        message: `${input.file_name}: ${result.rowsRead} rows read, ${result.inserted} inserted, ` +
          `${result.updated} updated, ${result.unchanged} unchanged` +
          (result.rowErrorsCount ? `, ${result.rowErrorsCount} row errors` : ""),
        document: shown(result),
        touched: await slicesReading(tx, input.kind, years),
      };
    },
  };
}

/** The (det, year) slices with entries whose handler reads this reference kind. */
async function slicesReading(
  tx: Queryable,
  kind: "locations" | "rooms" | "rates",
  years: readonly number[] | undefined,
): Promise<SliceKey[]> {
  const dets = listHandlers().filter((h) => h.reference.includes(kind)).map((h) =>
    getDataEntryType(h.det).id
  );
  if (dets.length === 0) return [];
  const rows = await tx<{ det: number; year: number }[]>`
    select distinct e.data_entry_type_id as det, r.year
    from data_entries e
      join carbon_report_modules m on m.id = e.carbon_report_module_id
      join carbon_reports r on r.id = m.carbon_report_id
    where e.data_entry_type_id = any(${dets}::int[])
      and (${years === undefined} or r.year = any(${years ?? []}::int[]))
    order by 1, 2`;
  return rows.map((r) => ({ dataEntryTypeId: r.det, year: r.year }));
}

function prepareRecalc(
  job: JobRow,
  input: RecalcInput,
  context: WorkContext,
): PreparedWork {
  const det = getDataEntryType(input.data_entry_type_id);
  const options: RematchOptions = {
    dataEntryType: det.id,
    year: input.year,
    signal: context.signal,
    onProgress: context.onProgress,
    chunkSize: context.chunkSize,
    full: input.full,
    run: { trigger: "job", jobId: job.id, actor: job.meta.actor ?? undefined },
  };
  return {
    async run(tx) {
      const result: RematchResult = await rematchInTransaction(
        tx,
        options,
        createPgSliceStore(tx, { reader: context.readerSql }),
      );
      return {
        result: result.errors ? "WARNING" : "SUCCESS",
        message: `${det.name} ${input.year}: ${result.entries} entries, ${result.recalculated} ` +
          `recalculated, ${result.unchanged} unchanged, ${result.dropped} dropped, ` +
          `${result.errors} errors; kg ${round(result.kgBefore)} → ${round(result.kgAfter)}`,
        document: result,
        touched: [],
      };
    },
  };
}

function round(kg: number): string {
  return (Math.round(kg * 1000) / 1000).toString();
}
