// Factor rows in the database: the set-based import of a factor CSV and the (det, year) set.
import type { Factor } from "../handlers/types.ts";
import type { CsvTable, RowError } from "../imports/csv.ts";
import {
  type FactorImportTarget,
  parseFactorTable,
  resolveFactorTarget,
} from "../imports/factor_csv.ts";
import type { DetName } from "../reference/enums.ts";
import type { Queryable } from "./connection.ts";
import { lockSlice } from "./locks.ts";

/** What {@linkcode importFactors} imports. */
export interface FactorImportInput {
  /** The file name, for messages. */
  readonly file: string;
  readonly table: CsvTable;
  /** The year of every factor of the file. */
  readonly year: number;
  readonly target: FactorImportTarget;
  /** `merge` keeps factors absent from the file; `replace` deletes them. @default "merge" */
  readonly mode?: "merge" | "replace";
  /** Any row error rejects the whole import ({@linkcode FactorImportRejected}). @default false */
  readonly strict?: boolean;
  /** The ingestion job, recorded as `last_seen_job_id` on every factor of the file. */
  readonly jobId?: number;
}

/** A (det, year) slice an import touched. */
export interface FactorImportSlice {
  readonly dataEntryType: DetName;
  readonly dataEntryTypeId: number;
  readonly year: number;
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
}

/** Thrown by a strict import with row errors: the caller's transaction must roll back. */
export class FactorImportRejected extends Error {
  override name = "FactorImportRejected";
  constructor(readonly file: string, readonly result: FactorImportResult) {
    const first = result.rowErrors[0];
    super(
      `${file}: rejected (strict): ${result.rowErrorsCount} row error${
        result.rowErrorsCount === 1 ? "" : "s"
      }, nothing written${
        first
          ? `; first: row ${first.row}${
            first.column ? `, column ${first.column}` : ""
          }: ${first.message}`
          : ""
      }`,
    );
  }
}

/**
 * Imports a factor CSV table inside the caller's transaction: validates it, locks the slices it
 * touches, then upserts by identity (ids kept), and in `replace` mode deletes the slices' factors
 * absent from the file. Throws a FileError for a file-level problem and
 * {@linkcode FactorImportRejected} for a strict import with row errors; both write nothing.
 *
 * @example
 * ```ts ignore
 * import { importFactors } from "./factors.ts";
 * import { readCsvFile } from "../imports/csv.ts";
 * const table = await readCsvFile("fixtures/factors/2025/train.csv");
 * const result = await db.sql.begin((tx) =>
 *   importFactors(tx, { file: "train.csv", table, year: 2025, target: { dataEntryTypeId: 21 } })
 * );
 * ```
 */
export async function importFactors(
  tx: Queryable,
  input: FactorImportInput,
): Promise<FactorImportResult> {
  const { file, table, year, target, mode = "merge", strict = false, jobId } = input;
  const parsed = parseFactorTable(file, table, target);
  const resolved = resolveFactorTarget(target);
  // A module file in merge mode touches only the dets it names; replace owns them all.
  const present = new Set(parsed.rows.map((r) => r.dataEntryTypeId));
  const sliceDets = resolved.routing && mode === "merge"
    ? resolved.dets.filter((d) => present.has(d.id))
    : resolved.dets;
  const summary = {
    rowsRead: parsed.rowsRead,
    rowErrors: parsed.rowErrors,
    rowErrorsCount: parsed.rowErrorsCount,
    slices: sliceDets.map((d) => ({ dataEntryType: d.name, dataEntryTypeId: d.id, year })),
  };
  if (strict && parsed.rowErrorsCount > 0) {
    throw new FactorImportRejected(file, {
      ...summary,
      inserted: 0,
      updated: 0,
      unchanged: 0,
      deleted: 0,
      keptStale: 0,
    });
  }
  for (const det of resolved.dets) await lockSlice(tx, det.id, year, { detName: det.name });

  const rows = parsed.rows;
  const jobParam = jobId ?? null;
  // One statement: the file is paired with the slices' factors by identity once (a full join),
  // and every write and count reads that pairing.
  const [counts] = await tx<
    { inserted: number; updated: number; unchanged: number; stale: number; deleted: number }[]
  >`
    with input as (
      select i.n, i.det, i.et, i.cls::jsonb as cls, i.vals::jsonb as vals
      from unnest(
        ${rows.map((r) => r.dataEntryTypeId)}::int[],
        ${rows.map((r) => r.emissionTypeId)}::int[],
        ${rows.map((r) => JSON.stringify(r.classification))}::text[],
        ${rows.map((r) => JSON.stringify(r.values))}::text[]
      ) with ordinality as i(det, et, cls, vals, n)
    ),
    existing as (
      select f.id, f.data_entry_type_id as det, f.emission_type_id as et, f.classification,
        f."values" as vals
      from factors f
      where f.year = ${year} and f.data_entry_type_id = any(${
    resolved.dets.map((d) => d.id)
  }::int[])
    ),
    paired as materialized (
      select i.n, i.det, i.et, i.cls, i.vals, e.id, e.det as existing_det, e.vals = i.vals as same
      from input i
      full join existing e
        on e.det = i.det and e.et = i.et and e.classification::text = i.cls::text
    ),
    rewritten as (
      update factors f
      set "values" = p.vals,
          updated_at = case when p.same then f.updated_at else now() end,
          last_seen_job_id = coalesce(${jobParam}::bigint, f.last_seen_job_id)
      from paired p
      where f.id = p.id and p.n is not null and (not p.same or ${jobParam}::bigint is not null)
    ),
    added as (
      insert into factors
        (data_entry_type_id, emission_type_id, year, classification, "values", last_seen_job_id)
      select p.det, p.et, ${year}, p.cls, p.vals, ${jobParam}::bigint
      from paired p
      where p.id is null
      order by p.n
      returning id
    ),
    stale as (
      select p.id from paired p
      where p.n is null and p.existing_det = any(${sliceDets.map((d) => d.id)}::int[])
    ),
    removed as (
      delete from factors f
      using stale s
      where f.id = s.id and ${mode === "replace"}::boolean
      returning f.id
    )
    select
      (select count(*) from added) as inserted,
      (select count(*) from paired where n is not null and not same) as updated,
      (select count(*) from paired where same) as unchanged,
      (select count(*) from stale) as stale,
      (select count(*) from removed) as deleted`;
  return {
    ...summary,
    inserted: counts.inserted,
    updated: counts.updated,
    unchanged: counts.unchanged,
    deleted: counts.deleted,
    keptStale: mode === "merge" ? counts.stale : 0,
  };
}

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
    }[]
  >`
    select id, data_entry_type_id, emission_type_id, year, classification, "values"
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
  }));
}
