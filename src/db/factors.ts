// Factor rows in the database: the set-based import of a factor CSV and the (det, year) set.
import type { Classification, Factor, FactorValues } from "../handlers/types.ts";
import {
  type CsvTable,
  describeRowError,
  MAX_LISTED_ROW_ERRORS,
  type RowError,
} from "../imports/csv.ts";
import {
  type FactorImportTarget,
  type ParsedFactorRow,
  parseFactorTable,
  resolveFactorTarget,
} from "../imports/factor_csv.ts";
import { getHandler } from "../handlers/mod.ts";
import type { DataEntryType, DetName } from "../reference/enums.ts";
import { yearProblem } from "../reference/years.ts";
import { currentActor } from "../history/actor.ts";
import { jsonbText, sameJson } from "../compute/emission_row.ts";
import { type Queryable, untilSent } from "./connection.ts";
import { lockSlice, type LockSliceOptions } from "./locks.ts";
import { chunksOf, numberArray, WritesInFlight } from "./writes.ts";
import { plural } from "../text/plural.ts";

/**
 * Why `allowEmpty` and `force` are refused outside `replace` at the edges (flags, dispatch): a
 * merge deletes nothing, so they would be ignored without a word.
 */
export const REPLACE_ONLY = "applies to mode replace only (a merge deletes nothing)";

/** What {@linkcode importFactors} imports. */
export interface FactorImportInput {
  /** The file name, for messages. */
  readonly file: string;
  readonly table: CsvTable;
  /** The year of every factor of the file (MIN_YEAR..MAX_YEAR of `src/reference/years.ts`). */
  readonly year: number;
  readonly target: FactorImportTarget;
  /** `merge` keeps factors absent from the file; `replace` deletes them. @default "merge" */
  readonly mode?: "merge" | "replace";
  /** Any row error rejects the whole import ({@linkcode FactorImportRejected}). @default false */
  readonly strict?: boolean;
  /** `replace`: accept a file without data rows, which empties the slices. @default false */
  readonly allowEmpty?: boolean;
  /** `replace`: accept deleting more than half of a slice's factors. @default false */
  readonly force?: boolean;
  /** The ingestion job, recorded as `last_seen_job_id` on every factor of the file. */
  readonly jobId?: number;
  /** Who imports, recorded on the import. @default currentActor() */
  readonly actor?: string;
  /** SHA-256 of the file's bytes (lowercase hex), recorded on the import. */
  readonly fileSha256?: string;
  /** Told when a slice the import locks is held by another transaction, before waiting. */
  readonly onLockWait?: LockSliceOptions["onWait"];
  /** Fail with a SliceBusyError instead of waiting for a slice another holds. @default false */
  readonly noWait?: boolean;
  /** Ends a wait for a slice another holds (a job's abort or its worker's stop). */
  readonly signal?: AbortSignal;
}

/** A (det, year) slice an import touched. */
export interface FactorImportSlice {
  readonly dataEntryType: DetName;
  readonly dataEntryTypeId: number;
  readonly year: number;
}

/** One factor identity in an import's listing. */
export interface FactorIdentity {
  /** The factor's id, when it exists in the database (updated, unchanged, deleted, kept). */
  readonly id?: number;
  /** The data row and file line of the file that holds it (inserted, updated, unchanged). */
  readonly row?: number;
  readonly line?: number;
  readonly emissionTypeId: number;
  readonly classification: Classification;
}

/** What an import does to one (det, year) slice: counts, and the identities behind them. */
export interface FactorSliceChanges extends FactorImportSlice {
  /** Factors of the slice before the import. */
  readonly before: number;
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  readonly keptStale: number;
  /** The first {@linkcode MAX_LISTED_ROW_ERRORS} identities of each count. */
  readonly listed: {
    readonly inserted: readonly FactorIdentity[];
    readonly updated: readonly FactorIdentity[];
    readonly unchanged: readonly FactorIdentity[];
    readonly deleted: readonly FactorIdentity[];
    readonly keptStale: readonly FactorIdentity[];
  };
}

/** What an import did (spec/factors-csv.md §2). */
export interface FactorImportResult {
  readonly rowsRead: number;
  readonly inserted: number;
  /** Existing identities whose values changed. */
  readonly updated: number;
  /** Existing identities whose values were already equal (not rewritten). */
  readonly unchanged: number;
  /** Factors of the slices absent from the file, deleted (`replace`). */
  readonly deleted: number;
  /** Factors of the slices absent from the file, kept (`merge`). */
  readonly keptStale: number;
  readonly rowErrors: readonly RowError[];
  readonly rowErrorsCount: number;
  /** The slices the import covers, in det id order: what a rematch must recompute. */
  readonly slices: readonly FactorImportSlice[];
  /** Per slice (same order): what the import did to it, with the identities. */
  readonly changes: readonly FactorSliceChanges[];
  /** The recorded import (`factor_imports.id`); absent when the import was refused. */
  readonly importId?: number;
}

/** Why an import was refused with nothing written. */
export type FactorImportRefusal =
  /** `strict` and a bad row. */
  | "strict"
  /** `replace` and a bad row: the file is not the whole set it claims to be. */
  | "replace-row-errors"
  /** `replace` with no data rows, without `allowEmpty`. */
  | "empty-replace"
  /** `replace` deleting more than half of a slice's factors, without `force`. */
  | "mass-delete";

/** Thrown when an import is refused: the caller's transaction must roll back. */
export class FactorImportRejected extends Error {
  override name = "FactorImportRejected";
  constructor(
    readonly file: string,
    readonly reason: FactorImportRefusal,
    readonly result: FactorImportResult,
    detail: string,
  ) {
    super(`${file}: rejected, nothing written: ${detail}`);
  }
}

/** Of a slice's factors, how many an import may delete without `force`: at most half. */
export function massDeletion(deleted: number, before: number): boolean {
  return deleted * 2 > before;
}

/**
 * Imports a factor CSV table inside the caller's transaction: validates it, locks the slices it
 * touches (in det id order), pairs the file with the slices' factors by identity, then upserts
 * (ids kept) and in `replace` mode deletes the slices' factors absent from the file. Throws a
 * FileError for a file-level problem, a RangeError for a year outside MIN_YEAR..MAX_YEAR and
 * {@linkcode FactorImportRejected} for a refused import; all of them write nothing. `replace`
 * is refused when a row has an error, when the file has no data rows (unless `allowEmpty`) and
 * when it would delete more than half of a slice's factors (unless `force`).
 *
 * @example
 * ```ts ignore
 * import { importFactors } from "./factors.ts";
 * import { readCsvFile } from "../imports/csv.ts";
 * import { transaction } from "./transaction.ts";
 * const table = await readCsvFile("fixtures/factors/2025/train.csv");
 * const result = await transaction(db.sql, (tx) =>
 *   importFactors(tx, { file: "train.csv", table, year: 2025, target: { dataEntryTypeId: 21 } })
 * );
 * ```
 */
export async function importFactors(
  tx: Queryable,
  input: FactorImportInput,
): Promise<FactorImportResult> {
  const { file, table, year, target, mode = "merge", strict = false, jobId } = input;
  const badYear = yearProblem(year);
  if (badYear) throw new RangeError(`${file}: year: ${badYear}`);
  const parsed = parseFactorTable(file, table, target);
  const resolved = resolveFactorTarget(target);
  // A module file in merge mode touches only the dets it names; replace owns them all.
  const present = new Set(parsed.rows.map((r) => r.dataEntryTypeId));
  const sliceDets = resolved.routing?.wholeModule && mode === "merge"
    ? resolved.dets.filter((d) => present.has(d.id))
    : resolved.dets;
  const summary = {
    rowsRead: parsed.rowsRead,
    rowErrors: parsed.rowErrors,
    rowErrorsCount: parsed.rowErrorsCount,
    slices: sliceDets.map((d) => ({ dataEntryType: d.name, dataEntryTypeId: d.id, year })),
  };
  const rowErrorsRefusal = strict ? "strict" : mode === "replace" ? "replace-row-errors" : null;
  if (rowErrorsRefusal && parsed.rowErrorsCount > 0) {
    const first = parsed.rowErrors[0];
    throw new FactorImportRejected(
      file,
      rowErrorsRefusal,
      { ...summary, ...NO_CHANGES },
      `${plural(parsed.rowErrorsCount, "row error")} ${
        rowErrorsRefusal === "strict"
          ? "with --strict"
          : "in a replace import (the file must be the whole set: fix every row)"
      }; first: ${describeRowError(first)}`,
    );
  }
  for (const det of resolved.dets) {
    await lockSlice(tx, det.id, year, {
      detName: det.name,
      onWait: input.onLockWait,
      noWait: input.noWait,
      signal: input.signal,
    });
  }

  const plan = await planImport(tx, parsed.rows, year, sliceDets);
  const changes = sliceDets.map((det) => describeSlice(det, year, plan, mode));
  const result: FactorImportResult = {
    ...summary,
    inserted: plan.inserted.length,
    updated: plan.updated.length,
    unchanged: plan.unchanged.length,
    deleted: mode === "replace" ? plan.absent.length : 0,
    keptStale: mode === "merge" ? plan.absent.length : 0,
    changes,
  };
  if (mode === "replace") refuseUnsafeReplace(file, input, result);
  // Recorded even when nothing changed: the history shows every upload, and what it did.
  const importId = await recordFactorImport(tx, {
    year,
    dataEntryTypeIds: sliceDets.map((d) => d.id),
    moduleTypeId: "moduleTypeId" in target ? target.moduleTypeId : null,
    mode,
    source: file,
    fileSha256: input.fileSha256 ?? null,
    actor: input.actor ?? currentActor(),
    jobId: jobId ?? null,
    rollbackOf: null,
    rowsRead: result.rowsRead,
    inserted: result.inserted,
    updated: result.updated,
    deleted: result.deleted,
    unchanged: result.unchanged,
  });
  await writePlan(tx, plan, year, mode, jobId ?? null, importId);
  return { ...result, importId };
}

const NO_CHANGES = {
  inserted: 0,
  updated: 0,
  unchanged: 0,
  deleted: 0,
  keptStale: 0,
  changes: [],
} as const;

function refuseUnsafeReplace(
  file: string,
  input: FactorImportInput,
  result: FactorImportResult,
): void {
  const slices = result.changes.map((c) => `${c.dataEntryType} ${c.year}`).join(", ");
  if (result.rowsRead === 0) {
    if (input.allowEmpty) return;
    throw new FactorImportRejected(
      file,
      "empty-replace",
      result,
      `the file has no data rows, and a replace import of it would delete all ${
        plural(result.deleted, "factor")
      } of ${slices} (give --allow-empty to empty them on purpose)`,
    );
  }
  if (input.force) return;
  const massive = result.changes.filter((c) => massDeletion(c.deleted, c.before));
  if (massive.length === 0) return;
  throw new FactorImportRejected(
    file,
    "mass-delete",
    result,
    `this replace import would delete more than half of the factors of ${
      plural(massive.length, "slice")
    } (give --force to delete them): ${massive.map(describeDeletion).join("; ")}`,
  );
}

/**
 * `it 2025: 3 of 4 factors (equipment_class: Desktop, Laptop)`: the kinds are the values of the
 * det's first classification column among the deleted factors listed.
 */
function describeDeletion(changes: FactorSliceChanges): string {
  const [column] = getHandler(changes.dataEntryTypeId).factorColumns.classification;
  const kinds = [
    ...new Set(changes.listed.deleted.map((d) => d.classification[column] ?? "(blank)")),
  ].sort();
  const shown = kinds.slice(0, 10).join(", ") + (kinds.length > 10 ? ", ..." : "");
  return `${changes.dataEntryType} ${changes.year}: ${changes.deleted} of ${
    plural(changes.before, "factor")
  } (${column}: ${shown})`;
}

/** The file paired with the slices' factors by identity. */
interface ImportPlan {
  readonly inserted: readonly ParsedFactorRow[];
  readonly updated: readonly { id: number; row: ParsedFactorRow }[];
  readonly unchanged: readonly { id: number; row: ParsedFactorRow }[];
  /** Factors of the slices absent from the file: kept stale (merge) or deleted (replace). */
  readonly absent: readonly StoredIdentity[];
  /** Factors per det before the import. */
  readonly before: ReadonlyMap<number, number>;
}

interface StoredIdentity {
  readonly id: number;
  readonly dataEntryTypeId: number;
  readonly emissionTypeId: number;
  readonly classification: Classification;
}

// One read of the slices' factors, paired with the file by identity: the index's own key,
// `classification::text`, against the same text rendered for each file row (jsonbText). The
// slices are locked, so nothing changes between this read and the writes.
async function planImport(
  tx: Queryable,
  rows: readonly ParsedFactorRow[],
  year: number,
  dets: readonly DataEntryType[],
): Promise<ImportPlan> {
  const stored = await tx<
    { id: number; det: number; et: number; cls: string; vals: FactorValues }[]
  >`
    select f.id, f.data_entry_type_id as det, f.emission_type_id as et,
      f.classification::text as cls, f."values" as vals
    from factors f
    where f.year = ${year} and f.data_entry_type_id = any(${dets.map((d) => d.id)}::int[])
    order by f.id`;
  const byIdentity = new Map<string, (typeof stored)[number]>();
  const before = new Map<number, number>(dets.map((d) => [d.id, 0]));
  for (const factor of stored) {
    byIdentity.set(identityKey(factor.det, factor.et, factor.cls), factor);
    before.set(factor.det, (before.get(factor.det) ?? 0) + 1);
  }
  const inserted: ParsedFactorRow[] = [];
  const updated: { id: number; row: ParsedFactorRow }[] = [];
  const unchanged: { id: number; row: ParsedFactorRow }[] = [];
  for (const row of rows) {
    // Once every stored factor is paired (or when there is none), the rest is new: no identity
    // text to render (a fresh import of 50,000 rows spent about 0.19 s rendering them).
    if (byIdentity.size === 0) {
      inserted.push(row);
      continue;
    }
    const identity = identityKey(
      row.dataEntryTypeId,
      row.emissionTypeId,
      jsonbText(row.classification),
    );
    const factor = byIdentity.get(identity);
    if (!factor) {
      inserted.push(row);
      continue;
    }
    byIdentity.delete(identity);
    // The same keys, each the same number or text: stored numbers are the decimals
    // `JSON.stringify` wrote, read back as the same doubles.
    (sameJson(factor.vals, row.values) ? unchanged : updated).push({ id: factor.id, row });
  }
  // What is left was not in the file, in id order.
  const absent: StoredIdentity[] = [...byIdentity.values()].map((f) => ({
    id: f.id,
    dataEntryTypeId: f.det,
    emissionTypeId: f.et,
    classification: JSON.parse(f.cls),
  }));
  return { inserted, updated, unchanged, absent, before };
}

/** A factor's identity as the unique index keys it: det, emission type, classification text. */
function identityKey(det: number, emissionTypeId: number, classificationText: string): string {
  return `${det}\u0000${emissionTypeId}\u0000${classificationText}`;
}

function describeSlice(
  det: DataEntryType,
  year: number,
  plan: ImportPlan,
  mode: "merge" | "replace",
): FactorSliceChanges {
  const ofDet = <T>(items: readonly T[], detOf: (item: T) => number) =>
    items.filter((item) => detOf(item) === det.id);
  const fromFile = (row: ParsedFactorRow, id?: number): FactorIdentity => ({
    ...(id === undefined ? {} : { id }),
    row: row.row,
    line: row.line,
    emissionTypeId: row.emissionTypeId,
    classification: row.classification,
  });
  // Each list is counted whole, and only its first identities are built for the listing.
  const cap = <T>(items: readonly T[]) => items.slice(0, MAX_LISTED_ROW_ERRORS);
  const inserted = ofDet(plan.inserted, (r) => r.dataEntryTypeId);
  const updated = ofDet(plan.updated, (u) => u.row.dataEntryTypeId);
  const unchanged = ofDet(plan.unchanged, (u) => u.row.dataEntryTypeId);
  // Stored classifications come back in jsonb key order: list them in the det's column order.
  const columns = getHandler(det).factorColumns.classification;
  const absent = ofDet(plan.absent, (a) => a.dataEntryTypeId);
  const absentListed = cap(absent).map((a): FactorIdentity => ({
    id: a.id,
    emissionTypeId: a.emissionTypeId,
    classification: Object.fromEntries(
      [
        ...columns.filter((c) => c in a.classification),
        ...Object.keys(a.classification).filter((c) => !columns.includes(c)),
      ].map((c) => [c, a.classification[c]]),
    ),
  }));
  // What is absent from the file is deleted (replace) or kept stale (merge).
  const gone = { count: absent.length, listed: absentListed };
  const none = { count: 0, listed: [] };
  const [deleted, keptStale] = mode === "replace" ? [gone, none] : [none, gone];
  return {
    dataEntryType: det.name,
    dataEntryTypeId: det.id,
    year,
    before: plan.before.get(det.id) ?? 0,
    inserted: inserted.length,
    updated: updated.length,
    unchanged: unchanged.length,
    deleted: deleted.count,
    keptStale: keptStale.count,
    listed: {
      inserted: cap(inserted).map((r) => fromFile(r)),
      updated: cap(updated).map((u) => fromFile(u.row, u.id)),
      unchanged: cap(unchanged).map((u) => fromFile(u.row, u.id)),
      deleted: deleted.listed,
      keptStale: keptStale.listed,
    },
  };
}

async function writePlan(
  tx: Queryable,
  plan: ImportPlan,
  year: number,
  mode: "merge" | "replace",
  jobId: number | null,
  importId: number,
): Promise<void> {
  await writeFactorChanges(tx, importId, {
    updates: plan.updated.map((u) => ({ id: u.id, values: u.row.values, importId })),
    inserts: plan.inserted.map((r) => ({
      dataEntryTypeId: r.dataEntryTypeId,
      emissionTypeId: r.emissionTypeId,
      year,
      classification: r.classification,
      values: r.values,
      importId,
    })),
    deletes: mode === "replace" ? plan.absent.map((a) => a.id) : [],
  }, jobId);
  if (jobId !== null && plan.unchanged.length) {
    await tx`
      update factors set last_seen_job_id = ${jobId}::bigint
      where id = any(${plan.unchanged.map((u) => u.id)}::bigint[])`;
  }
}

/** What a `factor_imports` row records. */
export interface FactorImportRecord {
  readonly year: number;
  readonly dataEntryTypeIds: readonly number[];
  readonly moduleTypeId: number | null;
  readonly mode: "merge" | "replace" | "rollback";
  /** The file name, or `rollback of N`. */
  readonly source: string;
  readonly fileSha256: string | null;
  readonly actor: string;
  readonly jobId: number | null;
  /** The import a rollback undoes. */
  readonly rollbackOf: number | null;
  readonly rowsRead: number;
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
  readonly unchanged: number;
}

/**
 * Records an import (spec/history.md §1) and returns its id. Call it after the import's slices
 * are locked: the ids of one slice's imports then follow their commit order.
 */
export async function recordFactorImport(
  tx: Queryable,
  record: FactorImportRecord,
): Promise<number> {
  const [row] = await tx<{ id: number }[]>`
    insert into factor_imports (year, data_entry_type_ids, module_type_id, mode, source,
      file_sha256, actor, job_id, rollback_of, rows_read, inserted, updated, deleted, unchanged)
    values (${record.year}, ${[...record.dataEntryTypeIds]}::int[], ${record.moduleTypeId},
      ${record.mode}, ${record.source}, ${record.fileSha256}, ${record.actor}, ${record.jobId},
      ${record.rollbackOf}, ${record.rowsRead}, ${record.inserted}, ${record.updated},
      ${record.deleted}, ${record.unchanged})
    returning id`;
  return row.id;
}

/** A factor to insert: a new identity (no id), or a deleted factor coming back (its old id). */
export interface FactorInsert {
  readonly id?: number;
  readonly dataEntryTypeId: number;
  readonly emissionTypeId: number;
  readonly year: number;
  readonly classification: Classification;
  readonly values: FactorValues;
  /** What `factors.import_id` becomes. */
  readonly importId: number | null;
  /**
   * What `factors.last_seen_job_id` becomes for a factor that comes back under its `id` (a
   * rollback: the one it had when it was deleted); else the import's job.
   */
  readonly lastSeenJobId?: number | null;
}

/** The writes of one import; each is recorded as a `factor_versions` row of `importId`. */
export interface FactorChanges {
  readonly inserts: readonly FactorInsert[];
  /** New values of existing factors, and what `factors.import_id` becomes. */
  readonly updates: readonly { id: number; values: FactorValues; importId: number | null }[];
  /** Ids of factors to delete. */
  readonly deletes: readonly number[];
}

/**
 * Writes factor changes and their version rows: the deletes and the factors that come back with
 * their old ids in one statement each, the updates and the new factors in statements of
 * {@linkcode WRITE_CHUNK} rows. Each version reads the row as it was in the statement that
 * changes it, so `values_before` and `import_id_before` are exact. Inserts without an id get new
 * ids in list order.
 */
export async function writeFactorChanges(
  tx: Queryable,
  importId: number,
  changes: FactorChanges,
  jobId: number | null = null,
): Promise<void> {
  const { inserts, updates, deletes } = changes;
  if (deletes.length) {
    // Each deleted factor runs the foreign key's lookup of its emission rows, whose plan (many
    // rows per factor) is priced above `jit_above_cost`: compiled once per factor, a rollback
    // deleting 50,000 factors took 57 s (the statement 0.2 s of 3.7 s without JIT). A setting of
    // the transaction, not of the session: a pooler such as PgBouncer refuses unknown startup
    // parameters.
    await tx`set local jit = off`;
    await tx`
      with gone as (delete from factors where id = any(${[...deletes]}::bigint[]) returning *)
      insert into factor_versions (import_id, factor_id, data_entry_type_id, year,
        emission_type_id, classification, change, values_before, values_after, import_id_before,
        last_seen_job_id_before)
      select ${importId}, g.id, g.data_entry_type_id, g.year, g.emission_type_id, g.classification,
        'deleted', g."values", null, g.import_id, g.last_seen_job_id
      from gone g order by g.id`;
  }
  // Sent without waiting, a chunk at a time (the connection runs them in order): the server
  // writes one chunk while the next is built, and each sorts its rows in memory.
  const writes = new WritesInFlight();
  const send = async (write: Promise<unknown>) => {
    writes.add(write);
    await untilSent();
  };
  for (const chunk of chunksOf(updates, WRITE_CHUNK)) {
    // Every sub-statement sees the rows as they were before the update.
    await send(tx`
      with u as (
        select * from rows from (
          unnest(${numberArray(chunk.map((u) => u.id))}::text::bigint[]),
          jsonb_array_elements(${JSON.stringify(chunk.map((u) => u.values))}::text::jsonb),
          unnest(${numberArray(chunk.map((u) => u.importId))}::text::bigint[])
        ) with ordinality as u(id, vals, import_id, n)
      ),
      versions as (
        insert into factor_versions (import_id, factor_id, data_entry_type_id, year,
          emission_type_id, classification, change, values_before, values_after, import_id_before)
        select ${importId}, f.id, f.data_entry_type_id, f.year, f.emission_type_id,
          f.classification, 'updated', f."values", u.vals, f.import_id
        from factors f join u on u.id = f.id
        order by u.n
      )
      update factors f
      set "values" = u.vals, import_id = u.import_id, updated_at = now(),
        last_seen_job_id = coalesce(${jobId}::bigint, f.last_seen_job_id)
      from u
      where f.id = u.id`.execute());
  }
  // New factors get their ids in list order: each chunk's rows are inserted in order, and the
  // chunks run one after the other.
  for (const chunk of chunksOf(inserts.filter((i) => i.id === undefined), WRITE_CHUNK)) {
    await send(tx`
      with added as (
        insert into factors (data_entry_type_id, emission_type_id, year, classification, "values",
          last_seen_job_id, import_id)
        select i.det, i.et, i.year, i.cls, i.vals, ${jobId}::bigint, i.import_id
        from rows from (
          unnest(${numberArray(chunk.map((r) => r.dataEntryTypeId))}::text::int[]),
          unnest(${numberArray(chunk.map((r) => r.emissionTypeId))}::text::int[]),
          unnest(${numberArray(chunk.map((r) => r.year))}::text::int[]),
          unnest(${numberArray(chunk.map((r) => r.importId))}::text::bigint[]),
          jsonb_array_elements(${JSON.stringify(chunk.map((r) => r.classification))}::text::jsonb),
          jsonb_array_elements(${JSON.stringify(chunk.map((r) => r.values))}::text::jsonb)
        ) with ordinality as i(det, et, year, import_id, cls, vals, n)
        order by i.n
        returning id, data_entry_type_id, year, emission_type_id, classification, "values"
      )
      insert into factor_versions (import_id, factor_id, data_entry_type_id, year,
        emission_type_id, classification, change, values_before, values_after, import_id_before)
      select ${importId}, a.id, a.data_entry_type_id, a.year, a.emission_type_id, a.classification,
        'inserted', null, a."values", null
      from added a order by a.id`.execute());
  }
  await writes.all();
  const back = inserts.filter((i) => i.id !== undefined);
  if (back.length) {
    await tx`
      with added as (
        insert into factors (id, data_entry_type_id, emission_type_id, year, classification,
          "values", last_seen_job_id, import_id)
        select i.id, i.det, i.et, i.year, i.cls::jsonb, i.vals::jsonb,
          case when i.restored = 1 then i.last_seen else ${jobId}::bigint end, i.import_id
        from unnest(
          ${back.map((r) => r.id!)}::bigint[],
          ${back.map((r) => r.dataEntryTypeId)}::int[],
          ${back.map((r) => r.emissionTypeId)}::int[],
          ${back.map((r) => r.year)}::int[],
          ${back.map((r) => JSON.stringify(r.classification))}::text[],
          ${back.map((r) => JSON.stringify(r.values))}::text[],
          ${back.map((r) => r.importId)}::bigint[],
          ${back.map((r) => r.lastSeenJobId === undefined ? 0 : 1)}::int[],
          ${back.map((r) => r.lastSeenJobId ?? null)}::bigint[]
        ) as i(id, det, et, year, cls, vals, import_id, restored, last_seen)
        returning id, data_entry_type_id, year, emission_type_id, classification, "values"
      )
      insert into factor_versions (import_id, factor_id, data_entry_type_id, year,
        emission_type_id, classification, change, values_before, values_after, import_id_before)
      select ${importId}, a.id, a.data_entry_type_id, a.year, a.emission_type_id, a.classification,
        'inserted', null, a."values", null
      from added a order by a.id`;
  }
}

/** Rows per statement of a factor write: its sorts stay in memory, and 50,000 rows go in five. */
const WRITE_CHUNK = 10_000;

/**
 * The factors of a (det, year) slice, in id order. Year-strict: factors without a year never
 * belong to a year's set.
 *
 * @example
 * ```ts ignore
 * import { loadFactorSet } from "./factors.ts";
 * const factors = await loadFactorSet(db.sql, 11, 2025);
 * ```
 */
export async function loadFactorSet(
  sql: Queryable,
  dataEntryTypeId: number,
  year: number,
): Promise<Factor[]> {
  const rows = await sql<
    {
      id: number;
      data_entry_type_id: number;
      emission_type_id: number;
      year: number;
      classification: Factor["classification"];
      values: Factor["values"];
      import_id: number | null;
    }[]
  >`
    select id, data_entry_type_id, emission_type_id, year, classification, "values", import_id
    from factors
    where data_entry_type_id = ${dataEntryTypeId} and year = ${year}
    order by id`;
  return rows.map((r) => ({
    id: r.id,
    dataEntryTypeId: r.data_entry_type_id,
    emissionTypeId: r.emission_type_id,
    year: r.year,
    classification: r.classification,
    values: r.values,
    importId: r.import_id,
  }));
}
