// Factor imports and the versions they wrote (spec/history.md §1–2): `factors history`,
// `factors diff` and the documents behind `GET /v1/history/imports[/{id}]`.
import type { Queryable } from "../db/connection.ts";
import { getHandler } from "../handlers/mod.ts";
import type { Classification, FactorValues } from "../handlers/types.ts";
import { findModuleType, getDataEntryType } from "../reference/enums.ts";
import type { RematchRunInfo } from "../rematch/types.ts";

/** Thrown when an import id names no recorded import. */
export class ImportNotFoundError extends Error {
  override name = "ImportNotFoundError";
  constructor(readonly importId: number) {
    super(`there is no factor import ${importId} (factors history lists them)`);
  }
}

/** A rematch run that followed an import, as listed with it. */
export interface FollowingRun {
  readonly id: number;
  readonly dataEntryType: string;
  readonly trigger: RematchRunInfo["trigger"];
  readonly importId: number | null;
  readonly finishedAt: string;
  readonly kgBefore: number;
  readonly kgAfter: number;
}

/** One recorded factor import. */
export interface FactorImport {
  readonly id: number;
  readonly year: number;
  readonly dataEntryTypes: readonly string[];
  readonly dataEntryTypeIds: readonly number[];
  /** The module of a whole-module file, else null. */
  readonly moduleType: string | null;
  readonly moduleTypeId: number | null;
  readonly mode: "merge" | "replace" | "rollback";
  /** The file name, or `rollback of N`. */
  readonly source: string;
  readonly fileSha256: string | null;
  readonly actor: string;
  readonly jobId: number | null;
  /** The import this one rolled back. */
  readonly rollbackOf: number | null;
  /** The imports that rolled this one back, oldest first. */
  readonly rolledBackBy: readonly number[];
  readonly rowsRead: number;
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
  readonly unchanged: number;
  readonly createdAt: string;
}

/** An import with the rematch runs that followed it. */
export interface FactorImportListing extends FactorImport {
  /**
   * Runs of the import's slices after it and before the next import of the same slice (its own
   * `--rematch` run, a job it chained, a later `rematch`); the latest {@linkcode RUNS_LISTED}.
   */
  readonly runs: readonly FollowingRun[];
  readonly runsCount: number;
}

/** Runs listed per import in a history. */
export const RUNS_LISTED = 10;

/** Which imports {@linkcode listFactorImports} returns. */
export interface FactorImportFilter {
  /** Imports touching this det. */
  readonly dataEntryTypeId?: number;
  readonly year?: number;
  /** At most this many, newest first. @default 50 */
  readonly limit?: number;
  /** Only imports older than this one (ids below it): the next page after an import listed last. */
  readonly before?: number;
}

interface ImportRow {
  id: number;
  year: number;
  data_entry_type_ids: number[];
  module_type_id: number | null;
  mode: FactorImport["mode"];
  source: string;
  file_sha256: string | null;
  actor: string;
  job_id: number | null;
  rollback_of: number | null;
  rolled_back_by: number[] | null;
  rows_read: number;
  inserted: number;
  updated: number;
  deleted: number;
  unchanged: number;
  created_at: Date;
}

function toImport(r: ImportRow): FactorImport {
  return {
    id: r.id,
    year: r.year,
    dataEntryTypes: r.data_entry_type_ids.map((id) => getDataEntryType(id).name),
    dataEntryTypeIds: r.data_entry_type_ids,
    moduleType: r.module_type_id === null
      ? null
      : findModuleType(r.module_type_id)?.name ?? String(r.module_type_id),
    moduleTypeId: r.module_type_id,
    mode: r.mode,
    source: r.source,
    fileSha256: r.file_sha256,
    actor: r.actor,
    jobId: r.job_id,
    rollbackOf: r.rollback_of,
    rolledBackBy: r.rolled_back_by ?? [],
    rowsRead: r.rows_read,
    inserted: r.inserted,
    updated: r.updated,
    deleted: r.deleted,
    unchanged: r.unchanged,
    createdAt: r.created_at.toISOString(),
  };
}

/**
 * The imports touching a slice (or all), newest first, each with the rematch runs that followed
 * it (spec/history.md §2: `factors history`). A run follows the last import of its slice recorded
 * before the run's end: an import records itself and a run ends while each holds the slice's
 * lock, so the two times are in the order the two took the lock (a run's start may come before an
 * import it waited behind).
 *
 * @example
 * ```ts ignore
 * import { listFactorImports } from "./imports.ts";
 * for (const i of await listFactorImports(db.sql, { dataEntryTypeId: 11, year: 2025 })) {
 *   console.log(i.id, i.source, i.updated, i.runs.length);
 * }
 * ```
 */
export async function listFactorImports(
  sql: Queryable,
  filter: FactorImportFilter = {},
): Promise<FactorImportListing[]> {
  const det = filter.dataEntryTypeId ?? null;
  const year = filter.year ?? null;
  const before = filter.before ?? null;
  const rows = await sql<(ImportRow & { runs: RunJson[] | null; runs_count: number })[]>`
    select i.*,
      (select array_agg(b.id order by b.id) from factor_imports b where b.rollback_of = i.id)
        as rolled_back_by,
      r.runs, coalesce(r.runs_count, 0)::int as runs_count
    from factor_imports i
    left join lateral (
      select count(*) as runs_count,
        (jsonb_agg(jsonb_build_object('id', f.id, 'det', f.data_entry_type_id,
          'trigger', f.trigger, 'import_id', f.import_id, 'finished_at', f.finished_at,
          'kg_before', f.kg_before, 'kg_after', f.kg_after) order by f.id desc)
          filter (where f.n <= ${RUNS_LISTED})) as runs
      from (
        select r.*, row_number() over (order by r.id desc) as n
        from rematch_runs r
        where r.year = i.year and r.data_entry_type_id = any(i.data_entry_type_ids)
          and (r.import_id = i.id or (r.finished_at >= i.created_at and not exists (
            select 1 from factor_imports j
            where j.id > i.id and j.year = r.year
              and j.data_entry_type_ids @> array[r.data_entry_type_id]
              and j.created_at <= r.finished_at)))
      ) f
    ) r on true
    where (${det}::int is null or i.data_entry_type_ids @> array[${det}::int])
      and (${year}::int is null or i.year = ${year}::int)
      and (${before}::bigint is null or i.id < ${before}::bigint)
    order by i.id desc
    limit ${filter.limit ?? 50}`;
  return rows.map((r) => ({
    ...toImport(r),
    runs: (r.runs ?? []).map((run) => ({
      id: run.id,
      dataEntryType: getDataEntryType(run.det).name,
      trigger: run.trigger,
      importId: run.import_id,
      finishedAt: new Date(run.finished_at).toISOString(),
      kgBefore: run.kg_before,
      kgAfter: run.kg_after,
    })),
    runsCount: r.runs_count,
  }));
}

interface RunJson {
  id: number;
  det: number;
  trigger: RematchRunInfo["trigger"];
  import_id: number | null;
  finished_at: string;
  kg_before: number;
  kg_after: number;
}

/** One factor an import changed. */
export interface FactorVersion {
  readonly factorId: number;
  readonly dataEntryType: string;
  readonly dataEntryTypeId: number;
  readonly year: number;
  readonly emissionTypeId: number;
  readonly classification: Classification;
  readonly change: "inserted" | "updated" | "deleted";
  readonly valuesBefore: FactorValues | null;
  readonly valuesAfter: FactorValues | null;
  /** The value keys whose value differs (all keys for an insert or a delete), sorted. */
  readonly changedKeys: readonly string[];
}

/** An import and what it changed. */
export interface FactorImportDetail {
  readonly import: FactorImport;
  /** Versions in the order the import wrote them (`offset`, `limit` applied). */
  readonly changes: readonly FactorVersion[];
  /** Every version of the import, listed or not. */
  readonly changesCount: number;
}

/**
 * An import with each changed identity's old → new values (spec/history.md §2: `factors
 * diff`). Throws {@linkcode ImportNotFoundError} for an unknown id.
 *
 * @example
 * ```ts ignore
 * import { getFactorImport } from "./imports.ts";
 * const { import: recorded, changes } = await getFactorImport(db.sql, 3);
 * ```
 */
export async function getFactorImport(
  sql: Queryable,
  importId: number,
  page: { readonly limit?: number; readonly offset?: number } = {},
): Promise<FactorImportDetail> {
  const recorded = await findFactorImport(sql, importId);
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from factor_versions where import_id = ${importId}`;
  const rows = await sql<VersionRow[]>`
    select factor_id, data_entry_type_id, year, emission_type_id, classification, change,
      values_before, values_after
    from factor_versions where import_id = ${importId}
    order by id
    offset ${page.offset ?? 0}
    limit ${page.limit ?? null}`;
  return { import: recorded, changes: rows.map(toVersion), changesCount: n };
}

/** The import row alone; throws {@linkcode ImportNotFoundError}. */
export async function findFactorImport(sql: Queryable, importId: number): Promise<FactorImport> {
  const [row] = await sql<ImportRow[]>`
    select i.*,
      (select array_agg(b.id order by b.id) from factor_imports b where b.rollback_of = i.id)
        as rolled_back_by
    from factor_imports i where i.id = ${importId}`;
  if (!row) throw new ImportNotFoundError(importId);
  return toImport(row);
}

/**
 * The latest recorded import of each of a year's slices, by det id: what
 * `GET /v1/sync/recalculation-status` reports as a slice's last factor import. A slice no
 * recorded import touched (its factors predate the history, or it has none) is absent.
 *
 * @example
 * ```ts ignore
 * import { lastFactorImports } from "./imports.ts";
 * const last = await lastFactorImports(db.sql, 2025, [20, 21]);
 * console.log(last.get(20)?.source, last.get(20)?.actor);
 * ```
 */
export async function lastFactorImports(
  sql: Queryable,
  year: number,
  dataEntryTypeIds: readonly number[],
): Promise<Map<number, FactorImport>> {
  const rows = await sql<(ImportRow & { det: number })[]>`
    select distinct on (d.det) d.det, i.*,
      (select array_agg(b.id order by b.id) from factor_imports b where b.rollback_of = i.id)
        as rolled_back_by
    from factor_imports i
      cross join lateral unnest(i.data_entry_type_ids) as d(det)
    where i.year = ${year} and d.det = any(${[...dataEntryTypeIds]}::int[])
    order by d.det, i.id desc`;
  return new Map(rows.map((r) => [r.det, toImport(r)]));
}

interface VersionRow {
  factor_id: number;
  data_entry_type_id: number;
  year: number;
  emission_type_id: number;
  classification: Classification;
  change: FactorVersion["change"];
  values_before: FactorValues | null;
  values_after: FactorValues | null;
}

function toVersion(r: VersionRow): FactorVersion {
  return {
    factorId: r.factor_id,
    dataEntryType: getDataEntryType(r.data_entry_type_id).name,
    dataEntryTypeId: r.data_entry_type_id,
    year: r.year,
    emissionTypeId: r.emission_type_id,
    classification: inColumnOrder(r.data_entry_type_id, r.classification),
    change: r.change,
    valuesBefore: r.values_before,
    valuesAfter: r.values_after,
    changedKeys: changedKeys(r.values_before, r.values_after),
  };
}

/**
 * The keys whose value differs between two value sets (a key present on one side only counts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { changedKeys } from "./imports.ts";
 * assert.deepEqual(changedKeys({ ef: 0.2, w: 100 }, { ef: 0.25, w: 100, h: 40 }), ["ef", "h"]);
 * assert.deepEqual(changedKeys(null, { ef: 1 }), ["ef"]);
 * ```
 */
export function changedKeys(
  before: FactorValues | null,
  after: FactorValues | null,
): string[] {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  return [...keys].filter((k) => before?.[k] !== after?.[k]).sort();
}

/**
 * A stored classification (jsonb orders keys its own way) in its det's column order, so it
 * reads as the file did.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inColumnOrder } from "./imports.ts";
 * const stored = { sub_class: null, equipment_class: "Laptop" };
 * assert.deepEqual(Object.keys(inColumnOrder(11, stored)), ["equipment_class", "sub_class"]);
 * ```
 */
export function inColumnOrder(
  dataEntryTypeId: number,
  classification: Classification,
): Classification {
  const columns = getHandler(dataEntryTypeId).factorColumns.classification;
  const keys = [
    ...columns.filter((c) => c in classification),
    ...Object.keys(classification).filter((c) => !columns.includes(c)),
  ];
  return Object.fromEntries(keys.map((k) => [k, classification[k]]));
}
