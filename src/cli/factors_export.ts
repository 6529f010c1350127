// `factors export`: a factor set now or as it was, in the import format (spec/history.md §2).
import { z } from "zod";
import {
  type AsOf,
  factorFileColumns,
  factorFileRow,
  factorSetAsOf,
  factorSetCsv,
  type FactorSetSnapshot,
  ImportNotOfSliceError,
} from "../history/export.ts";
import { ImportNotFoundError } from "../history/imports.ts";
import { checkOutputFile, defineCommand, EXIT, flag, userPath } from "./command.ts";
import { detFlag } from "./factors_history.ts";
import { subcommandOnly } from "./group.ts";

const USAGE = `Usage: deno task factors export --det D --year Y [--as-of IMPORT_ID|ISO-TIME]
         [--format csv|json] [--output FILE] [--json]

Writes the factors of one data entry type and year in the factor CSV format, so that
\`factors import FILE --det D --year Y --mode replace\` puts exactly this set back. Types of the
equipment and purchase modules carry their routing column (equipment_category,
purchase_category) holding the type's own name, so the file also fits --module imports.

  --det D          data entry type (name or id)
  --year Y         the factors' year
  --as-of X        the set right after import X (an id from factors history), or at a time
                   (ISO 8601, e.g. 2026-03-01T12:00:00Z): later imports are undone
  --format F       csv (default) or json (one document: columns and rows)
  --output FILE    write to FILE instead of standard output
  --json           the JSON document (with --output: a summary of what was written)

Exit codes: 0 done, 1 failed (e.g. no such import), 2 bad usage.`;

const asOfFlag = z.string().transform((value, ctx): AsOf => {
  if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) {
    return { importId: Number(value) };
  }
  const time = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}:?\d{2})?$/.test(value)
    ? new Date(value)
    : undefined;
  if (!time || Number.isNaN(time.getTime())) {
    ctx.addIssue({
      code: "custom",
      message:
        `expected an import id (e.g. 12) or an ISO 8601 time (e.g. 2026-03-01T12:00:00Z), got "${value}"`,
    });
    return z.NEVER;
  }
  return { time };
});

/** The JSON form of an export: the file's columns and rows (blank cells as null). */
export function exportDocument(snapshot: FactorSetSnapshot) {
  return {
    dataEntryType: snapshot.dataEntryType,
    year: snapshot.year,
    asOf: snapshot.asOf,
    count: snapshot.factors.length,
    columns: factorFileColumns(snapshot.dataEntryTypeId),
    rows: snapshot.factors.map((f) => factorFileRow(snapshot.dataEntryTypeId, f)),
  };
}

/** `factors export --det D --year Y [--as-of X] [--format csv|json] [--output FILE]` */
export const factorsExportCommand = defineCommand({
  name: "factors export",
  summary: "a det's factors of a year, now or as they were, as a CSV",
  usage: USAGE,
  options: {
    det: { type: "string" },
    year: { type: "string" },
    "as-of": { type: "string" },
    format: { type: "string" },
    output: { type: "string" },
  },
  schema: z.object({
    positionals: subcommandOnly("export"),
    det: detFlag(),
    year: flag.year(),
    "as-of": asOfFlag.optional(),
    format: z.enum(["csv", "json"], { error: 'expected "csv" or "json"' }).default("csv"),
    output: z.string().min(1, "expected a file name").transform(userPath).optional(),
  }),
  access: "read",
  async run(args, context) {
    if (args.output) await checkOutputFile(args.output, context.json);
    const db = await context.database();
    let snapshot: FactorSetSnapshot;
    try {
      snapshot = await factorSetAsOf(db.sql, args.det.id, args.year, args["as-of"]);
    } catch (error) {
      if (!(error instanceof ImportNotFoundError || error instanceof ImportNotOfSliceError)) {
        throw error;
      }
      // A bare year reads as an import id: say how a time is written.
      const message = error instanceof ImportNotFoundError && /^\d{4}$/.test(String(error.importId))
        ? `${error.message}; for a time, write it in full (e.g. ${error.importId}-01-01)`
        : error.message;
      return {
        exitCode: EXIT.failed,
        json: { error: { code: error.name, message } },
        text: `factors export: ${message}`,
        // Standard output carries the factor set: an error there would land in `> file.csv`.
        stderr: true,
      };
    }
    const format = context.json && !args.output ? "json" : args.format;
    const body = format === "csv"
      ? factorSetCsv(snapshot.dataEntryTypeId, snapshot.factors)
      : `${JSON.stringify(exportDocument(snapshot), null, 2)}\n`;
    if (args.output) {
      await Deno.writeTextFile(args.output, body);
      const summary = {
        dataEntryType: snapshot.dataEntryType,
        year: snapshot.year,
        asOf: snapshot.asOf,
        format,
        factors: snapshot.factors.length,
        output: args.output,
      };
      return {
        exitCode: EXIT.ok,
        json: summary,
        text: `${snapshot.factors.length} factors of ${snapshot.dataEntryType} ${snapshot.year}${
          describeAsOf(snapshot)
        } written to ${args.output} (${format})`,
      };
    }
    // Standard output carries the set itself; console.log adds the final newline back.
    return { exitCode: EXIT.ok, json: exportDocument(snapshot), text: body.replace(/\n$/, "") };
  },
});

function describeAsOf(snapshot: FactorSetSnapshot): string {
  if (!snapshot.asOf) return "";
  const { importId, time } = snapshot.asOf;
  const after = importId === null ? "before any import" : `after import ${importId}`;
  return time ? ` as of ${time} (${after})` : ` as of import ${importId}`;
}
