// A (det, year) factor set now or as it was after an import, in the factor CSV format
// (spec/history.md §2: `factors export [--as-of IMPORT_ID|ISO-TIME]`).
import { stringify } from "csv-stringify/sync";
import type { Queryable } from "../db/connection.ts";
import { getHandler } from "../handlers/mod.ts";
import type { Classification, Factor, FactorValues } from "../handlers/types.ts";
import { resolveFactorTarget } from "../imports/factor_csv.ts";
import { getDataEntryType } from "../reference/enums.ts";
import { findFactorImport } from "./imports.ts";

/** An `asOf` import that did not touch the slice: its place among the slice's is no answer. */
export class ImportNotOfSliceError extends Error {
  override name = "ImportNotOfSliceError";
}

/** When to read the set: after an import, or at a time. */
export type AsOf = { readonly importId: number } | { readonly time: Date };

/** A factor set as it was (or is). */
export interface FactorSetSnapshot {
  readonly dataEntryType: string;
  readonly dataEntryTypeId: number;
  readonly year: number;
  /**
   * The last import of the slice the set reflects (null: before any recorded import), and the
   * time asked for; null when the set is the current one.
   */
  readonly asOf: { readonly importId: number | null; readonly time?: string } | null;
  /** In factor id order; `importId` is the import that had set each factor's values. */
  readonly factors: readonly Factor[];
}

/**
 * The factors of a (det, year) slice now, or right after import `asOf.importId` committed, or
 * at `asOf.time`: the current rows with every later version of the slice undone (a factor a
 * later import inserted is absent; one it updated or deleted has its values from before).
 * Throws ImportNotFoundError for an unknown import id, {@linkcode ImportNotOfSliceError} for an
 * import of other slices.
 *
 * @example
 * ```ts ignore
 * import { factorSetAsOf } from "./export.ts";
 * const then = await factorSetAsOf(db.sql, 11, 2025, { importId: 4 });
 * console.log(then.factors.length);
 * ```
 */
export async function factorSetAsOf(
  sql: Queryable,
  dataEntryType: string | number,
  year: number,
  asOf?: AsOf,
): Promise<FactorSetSnapshot> {
  const det = getDataEntryType(dataEntryType);
  let after: number | null = null;
  let described: FactorSetSnapshot["asOf"] = null;
  if (asOf && "importId" in asOf) {
    const recorded = await findFactorImport(sql, asOf.importId);
    if (recorded.year !== year || !recorded.dataEntryTypeIds.includes(det.id)) {
      const slices = recorded.dataEntryTypeIds.map((id) => getDataEntryType(id).name).join(", ");
      throw new ImportNotOfSliceError(
        `import ${asOf.importId} changed ${slices} ${recorded.year}, not ${det.name} ${year}: ` +
          `give one of ${det.name} ${year}'s imports (factors history --det ${det.name} ` +
          `--year ${year} lists them)`,
      );
    }
    after = asOf.importId;
    described = { importId: asOf.importId };
  } else if (asOf) {
    // Imports of one slice take its lock, so their ids follow their commit order. Times are
    // compared to the millisecond, the precision the histories print them with.
    const [row] = await sql<{ id: number | null }[]>`
      select max(id) as id from factor_imports
      where year = ${year} and data_entry_type_ids @> array[${det.id}::int]
        and date_trunc('milliseconds', created_at) <= ${asOf.time}`;
    after = row.id ?? 0;
    described = { importId: row.id, time: asOf.time.toISOString() };
  }
  const rows = await sql<
    {
      id: number;
      emission_type_id: number;
      classification: Classification;
      values: FactorValues;
      import_id: number | null;
    }[]
  >`
    with later as (
      select distinct on (v.factor_id) v.factor_id, v.change, v.emission_type_id,
        v.classification, v.values_before, v.import_id_before
      from factor_versions v
      where ${after}::bigint is not null and v.data_entry_type_id = ${det.id} and v.year = ${year}
        and v.import_id > ${after}::bigint
      order by v.factor_id, v.import_id, v.id
    )
    select f.id, f.emission_type_id, f.classification, f."values", f.import_id
    from factors f
    where f.data_entry_type_id = ${det.id} and f.year = ${year}
      and not exists (select 1 from later l where l.factor_id = f.id)
    union all
    select l.factor_id, l.emission_type_id, l.classification, l.values_before, l.import_id_before
    from later l where l.change <> 'inserted'
    order by 1`;
  return {
    dataEntryType: det.name,
    dataEntryTypeId: det.id,
    year,
    asOf: described,
    factors: rows.map((r) => ({
      id: r.id,
      dataEntryTypeId: det.id,
      emissionTypeId: r.emission_type_id,
      year,
      classification: r.classification,
      values: r.values,
      importId: r.import_id,
    })),
  };
}

/**
 * The columns of a det's factor file: the module's routing column (holding the det's own name,
 * which `factors import --det` accepts and `--module` routes), then the classification and
 * value columns of the det.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { factorFileColumns } from "./export.ts";
 * assert.deepEqual(factorFileColumns("train"), ["country_code", "ef_kg_co2eq_per_km"]);
 * assert.equal(factorFileColumns("it")[0], "equipment_category");
 * ```
 */
export function factorFileColumns(dataEntryType: string | number): string[] {
  const det = getDataEntryType(dataEntryType);
  const { classification, values } = getHandler(det).factorColumns;
  const routing = resolveFactorTarget({ dataEntryTypeId: det.id }).routing;
  return [...(routing ? [routing.column] : []), ...classification, ...values];
}

/** A factor as a row of its det's file: cells by column, null for a blank cell. */
export function factorFileRow(
  dataEntryType: string | number,
  factor: Pick<Factor, "classification" | "values">,
): Record<string, string | number | null> {
  const det = getDataEntryType(dataEntryType);
  const { classification, values } = getHandler(det).factorColumns;
  const routing = resolveFactorTarget({ dataEntryTypeId: det.id }).routing;
  const row: Record<string, string | number | null> = {};
  if (routing) row[routing.column] = det.name;
  for (const c of classification) row[c] = factor.classification[c] ?? null;
  for (const v of values) row[v] = factor.values[v] ?? null;
  return row;
}

/**
 * The set as a factor CSV (header first; numbers as JavaScript prints them, which the importer
 * reads back to the same number).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { factorSetCsv } from "./export.ts";
 * const csv = factorSetCsv("train", [
 *   { classification: { country_code: "CH" }, values: { ef_kg_co2eq_per_km: 0.00639 } },
 * ]);
 * assert.equal(csv, "country_code,ef_kg_co2eq_per_km\nCH,0.00639\n");
 * ```
 */
export function factorSetCsv(
  dataEntryType: string | number,
  factors: readonly Pick<Factor, "classification" | "values">[],
): string {
  const columns = factorFileColumns(dataEntryType);
  const rows = factors.map((f) => {
    const row = factorFileRow(dataEntryType, f);
    return columns.map((c) => (row[c] === null ? "" : String(row[c])));
  });
  return stringify([columns, ...rows]);
}
