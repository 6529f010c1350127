// Exporting the emission rows of a (det, year) slice as CSV or JSON, streamed page by page: the
// CLI `emissions export` and the HTTP API's GET /v1/emissions run this same code.
import { stringify } from "csv-stringify/sync";
import type { Database, Queryable } from "./connection.ts";
import { transaction } from "./transaction.ts";

/** The output formats of an export. */
export type EmissionExportFormat = "csv" | "json";

/** One exported emission row: the CSV columns and JSON keys, in this order. */
export interface EmissionExportRow {
  readonly entry_id: number;
  readonly module_id: number;
  readonly unit_code: string;
  readonly data_entry_type: string;
  readonly emission_type_id: number;
  readonly emission_type: string;
  readonly primary_factor_id: number | null;
  readonly kg_co2eq: number;
  readonly additional_value: number | null;
  readonly scope: number | null;
}

/** The CSV header. */
export const EMISSION_EXPORT_COLUMNS: readonly (keyof EmissionExportRow)[] = [
  "entry_id",
  "module_id",
  "unit_code",
  "data_entry_type",
  "emission_type_id",
  "emission_type",
  "primary_factor_id",
  "kg_co2eq",
  "additional_value",
  "scope",
];

/** Where export text goes: a file or standard output. */
export interface ExportSink {
  write(bytes: Uint8Array): Promise<number>;
}

/**
 * Reads the emission rows of a (det, year) slice in pages of `pageSize`, ordered by entry id,
 * emission type id, then row id, each page starting after the last key of the previous one
 * (keyset pagination: no page is held longer than it takes to write it). Run it in a
 * repeatable-read transaction for one snapshot across pages.
 *
 * @example
 * ```ts ignore
 * import { readEmissionPages } from "./emissions_export.ts";
 * for await (const page of readEmissionPages(db.sql, 20, 2025)) console.log(page.length);
 * ```
 */
export async function* readEmissionPages(
  tx: Queryable,
  dataEntryTypeId: number,
  year: number,
  pageSize = 5000,
): AsyncGenerator<EmissionExportRow[]> {
  let after = { entry: 0, type: 0, id: 0 };
  for (;;) {
    const rows = await readPage(tx, dataEntryTypeId, year, after, pageSize);
    if (rows.length === 0) return;
    const last = rows[rows.length - 1];
    after = { entry: last.entry_id, type: last.emission_type_id, id: last.id };
    yield rows.map(({ id: _id, ...row }) => row);
    if (rows.length < pageSize) return;
  }
}

async function readPage(
  tx: Queryable,
  det: number,
  year: number,
  start: { entry: number; type: number; id: number },
  limit: number,
): Promise<(EmissionExportRow & { id: number })[]> {
  return await tx<(EmissionExportRow & { id: number })[]>`
    select e.id as entry_id, e.carbon_report_module_id as module_id, u.code as unit_code,
      d.name as data_entry_type, x.emission_type_id, t.name as emission_type,
      x.primary_factor_id, x.kg_co2eq, x.additional_value, x.scope::int as scope, x.id
    from data_entries e
      join carbon_report_modules m on m.id = e.carbon_report_module_id
      join carbon_reports r on r.id = m.carbon_report_id
      join units u on u.id = r.unit_id
      join data_entry_types d on d.id = e.data_entry_type_id
      join data_entry_emissions x on x.data_entry_id = e.id
      join emission_types t on t.id = x.emission_type_id
    where e.data_entry_type_id = ${det} and r.year = ${year} and e.id >= ${start.entry}
      and (e.id, x.emission_type_id, x.id) > (${start.entry}, ${start.type}, ${start.id})
    order by e.id, x.emission_type_id, x.id
    limit ${limit}`;
}

async function writeAll(sink: ExportSink, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += await sink.write(bytes.subarray(offset));
}

/**
 * Writes every emission row of the slice to `sink` as CSV (with a header) or as one JSON array,
 * page by page (`pageSize` rows, a positive integer: a RangeError otherwise); returns the number
 * of rows written.
 *
 * @example
 * ```ts ignore
 * import { exportEmissions } from "./emissions_export.ts";
 * const rows = await exportEmissions(db, { det: 20, year: 2025, format: "csv" }, Deno.stdout);
 * ```
 */
export async function exportEmissions(
  db: Pick<Database, "sql">,
  slice: { readonly det: number; readonly year: number; readonly format: EmissionExportFormat },
  sink: ExportSink,
  pageSize = 5000,
): Promise<number> {
  // A page of 0 rows would read none and export an empty slice; a negative one fails in SQL.
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
    throw new RangeError(`pageSize: expected a positive integer, got ${pageSize}`);
  }
  // One read-only snapshot for every page: rows committed meanwhile neither appear nor vanish.
  return await transaction(db.sql, "isolation level repeatable read read only", async (tx) => {
    let rows = 0;
    if (slice.format === "json") await writeAll(sink, "[");
    for await (const page of readEmissionPages(tx, slice.det, slice.year, pageSize)) {
      const text = slice.format === "csv"
        ? stringify(page, { header: rows === 0, columns: [...EMISSION_EXPORT_COLUMNS] })
        : `${rows === 0 ? "\n" : ",\n"}${page.map((row) => JSON.stringify(row)).join(",\n")}`;
      await writeAll(sink, text);
      rows += page.length;
    }
    if (slice.format === "csv" && rows === 0) {
      await writeAll(sink, `${EMISSION_EXPORT_COLUMNS.join(",")}\n`);
    }
    if (slice.format === "json") await writeAll(sink, rows ? "\n]\n" : "]\n");
    return rows;
  }) as number;
}
