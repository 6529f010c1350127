// `emissions export --det D --year Y`: every emission row of a (det, year) slice as CSV or JSON,
// streamed page by page (spec/interfaces.md §2).
import { stringify } from "csv-stringify/sync";
import { z } from "zod";
import { defineCommand, EXIT, flag, UsageError } from "./command.ts";
import type { Database, Queryable } from "../db/connection.ts";
import { type DataEntryType, findDataEntryType } from "../reference/enums.ts";

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

/** The validated arguments of `emissions export`. */
export interface EmissionsExportArgs {
  readonly det: DataEntryType;
  readonly year: number;
  readonly format: EmissionExportFormat;
  /** The file to write; standard output when absent. */
  readonly output?: string;
}

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
 * import { readEmissionPages } from "./emissions.ts";
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
 * page by page; returns the number of rows written.
 *
 * @example
 * ```ts ignore
 * import { exportEmissions } from "./emissions.ts";
 * const rows = await exportEmissions(db, { det: 20, year: 2025, format: "csv" }, Deno.stdout);
 * ```
 */
export async function exportEmissions(
  db: Pick<Database, "sql">,
  slice: { readonly det: number; readonly year: number; readonly format: EmissionExportFormat },
  sink: ExportSink,
  pageSize = 5000,
): Promise<number> {
  // One read-only snapshot for every page: rows committed meanwhile neither appear nor vanish.
  return await db.sql.begin("isolation level repeatable read read only", async (tx) => {
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

const USAGE = `Usage: deno task emissions export --det D --year Y [--format csv|json]
         [--output FILE] [--json] [--database-url URL]

Writes every emission row of one data entry type and year, ordered by entry id then emission
type: entry_id, module_id, unit_code, data_entry_type, emission_type_id, emission_type,
primary_factor_id, kg_co2eq, additional_value, scope.

  --det D          data entry type (name such as plane, or its id)
  --year Y         report year
  --format F       csv (with a header, default) or json (one array)
  --output FILE    write to FILE instead of standard output
  --json           print a JSON summary (needs --output: standard output carries the rows)

Exit codes: 0 done, 1 failed, 2 bad usage.`;

const schema = z.object({
  positionals: z.array(z.string()),
  det: z.string({ error: "is required (e.g. --det plane)" }),
  year: flag.year(),
  format: z.enum(["csv", "json"], { error: 'expected "csv" or "json"' }).default("csv"),
  output: z.string().min(1, "expected a file name").optional(),
}).transform((flags, ctx): EmissionsExportArgs => {
  if (flags.positionals.length !== 1 || flags.positionals[0] !== "export") {
    ctx.addIssue({
      code: "custom",
      path: ["positionals"],
      message: `expected "export" (got ${
        flags.positionals.length ? flags.positionals.map((p) => `"${p}"`).join(" ") : "nothing"
      })`,
    });
    return z.NEVER;
  }
  const det = findDataEntryType(flags.det);
  if (!det) {
    ctx.addIssue({
      code: "custom",
      path: ["det"],
      message:
        `unknown data entry type "${flags.det}" (expected a name such as it or plane, or its id)`,
    });
    return z.NEVER;
  }
  return { det, year: flags.year, format: flags.format, output: flags.output };
});

/** `emissions export --det D --year Y [--format csv|json] [--output FILE]` */
export const emissionsCommand = defineCommand({
  name: "emissions",
  usage: USAGE,
  options: {
    det: { type: "string" },
    year: { type: "string" },
    format: { type: "string" },
    output: { type: "string" },
  },
  schema,
  access: "read",
  async run(args, context) {
    if (context.json && !args.output) {
      // Standard output carries the rows; a second JSON document would corrupt them.
      throw new UsageError(
        "--json needs --output FILE (without it the rows go to standard output)",
      );
    }
    const db = await context.database();
    const slice = { det: args.det.id, year: args.year, format: args.format };
    let rows: number;
    if (args.output) {
      using file = await Deno.open(args.output, { write: true, create: true, truncate: true });
      rows = await exportEmissions(db, slice, file);
    } else {
      try {
        rows = await exportEmissions(db, slice, Deno.stdout);
      } catch (error) {
        // The reader stopped early (`... | head`): what it wanted was written.
        if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
        return { exitCode: EXIT.ok, json: null, text: "" };
      }
    }
    const summary = {
      dataEntryType: args.det.name,
      year: args.year,
      format: args.format,
      rows,
      output: args.output ?? null,
    };
    return {
      exitCode: EXIT.ok,
      json: summary,
      // With the rows on standard output nothing else is printed there.
      text: args.output
        ? `${rows} emission rows of ${args.det.name} ${args.year} written to ${args.output} (${args.format})`
        : "",
    };
  },
});
