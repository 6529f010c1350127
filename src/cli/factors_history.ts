// `factors history` and `factors diff`: what each factor import changed (spec/history.md §2).
import { z } from "zod";
import type { FactorValues } from "../handlers/types.ts";
import {
  type FactorImport,
  type FactorImportListing,
  type FactorVersion,
  getFactorImport,
  ImportNotFoundError,
  listFactorImports,
} from "../history/imports.ts";
import { type DataEntryType, findDataEntryType, unknownDataEntryType } from "../reference/enums.ts";
import { defineCommand, EXIT, flag } from "./command.ts";
import { subcommandOnly } from "./group.ts";
import { formatTable } from "./table.ts";

/** `--det D`: a data entry type by name or id. */
export function detFlag() {
  return z.string({ error: "is required (e.g. --det it)" }).transform(
    (value, ctx): DataEntryType => {
      const det = findDataEntryType(value);
      if (!det) {
        ctx.addIssue({ code: "custom", message: unknownDataEntryType(value) });
        return z.NEVER;
      }
      return det;
    },
  );
}

/** `--limit N`: a count ≥ 1. */
export function limitFlag() {
  return flag.int("--limit").refine((n) => n >= 1, "expected a count of 1 or more");
}

/** `--import N`: an import id. */
export function importFlag() {
  return z.string({ error: "is required (e.g. --import 3; factors history lists them)" })
    .regex(/^\d+$/, "expected an import id (a positive integer; factors history lists them)")
    .transform(Number)
    .refine(Number.isSafeInteger, "expected an import id (factors history lists them): too large");
}

/** A time as the tables show it: ISO 8601 to the second, in UTC. */
export function shortTime(iso: string): string {
  return `${iso.slice(0, 19).replace("T", " ")}Z`;
}

const HISTORY_USAGE = `Usage: deno task factors history [--det D] [--year Y] [--limit N] [--json]

Lists the factor imports (CSV imports and rollbacks), newest first: when, by whom, what they
changed, and the rematch runs that followed each (its own --rematch, a job it chained, a later
rematch of the same slice before the next import).

  --det D      only imports touching this data entry type (name or id)
  --year Y     only imports of this year
  --limit N    at most N imports (default 50)
  --json       print one JSON document

Exit codes: 0 done, 1 failed, 2 bad usage.`;

/** `factors history [--det D] [--year Y]` */
export const factorsHistoryCommand = defineCommand({
  name: "factors history",
  summary: "the factor imports and rollbacks, newest first",
  usage: HISTORY_USAGE,
  options: {
    det: { type: "string" },
    year: { type: "string" },
    limit: { type: "string" },
  },
  schema: z.object({
    positionals: subcommandOnly("history"),
    det: detFlag().optional(),
    year: flag.year().optional(),
    limit: limitFlag().optional(),
  }),
  access: "read",
  async run(args, context) {
    const db = await context.database();
    const imports = await listFactorImports(db.sql, {
      dataEntryTypeId: args.det?.id,
      year: args.year,
      limit: args.limit,
    });
    return {
      exitCode: EXIT.ok,
      json: { imports },
      text: imports.length ? describeHistory(imports) : "no factor imports recorded",
    };
  },
});

function describeHistory(imports: readonly FactorImportListing[]): string {
  return formatTable(
    [
      { header: "import", identifier: true },
      { header: "when", optional: true },
      { header: "year", identifier: true },
      "types",
      "mode",
      "source",
      { header: "actor", optional: true },
      { header: "rows", optional: true },
      "ins",
      "upd",
      "del",
      { header: "same", optional: true },
      { header: "rematch runs after", optional: true },
    ],
    imports.map((i) => [
      i.id,
      shortTime(i.createdAt),
      i.year,
      targetOf(i),
      i.mode,
      i.source + (i.rolledBackBy.length ? ` (rolled back by ${i.rolledBackBy.join(", ")})` : ""),
      i.actor,
      i.rowsRead,
      i.inserted,
      i.updated,
      i.deleted,
      i.unchanged,
      describeRuns(i),
    ]),
  );
}

function targetOf(i: FactorImport): string {
  const types = i.dataEntryTypes.length > 3
    ? `${i.dataEntryTypes.length} types`
    : i.dataEntryTypes.join(",");
  return i.moduleType ? `${i.moduleType}: ${types}` : types;
}

function describeRuns(i: FactorImportListing): string {
  if (i.runsCount === 0) return "none";
  const listed = i.runs.map((r) =>
    `${r.id} ${r.trigger}${i.dataEntryTypes.length > 1 ? ` ${r.dataEntryType}` : ""}`
  ).join(", ");
  return i.runsCount > i.runs.length ? `${listed}, ... (${i.runsCount} runs)` : listed;
}

const DIFF_USAGE = `Usage: deno task factors diff --import N [--limit N] [--json]

Shows what factor import N changed: each inserted, updated and deleted factor identity with its
old → new values (unchanged factors are not listed).

  --import N   the import id (factors history lists them)
  --limit N    list at most N factors (default: 50 as text, all with --json)
  --json       print one JSON document

Exit codes: 0 done, 1 failed (no such import), 2 bad usage.`;

/** Factors a text diff lists without --limit. */
const DIFF_TEXT_LIMIT = 50;

/** `factors diff --import N` */
export const factorsDiffCommand = defineCommand({
  name: "factors diff",
  summary: "what factor import N changed, old → new",
  usage: DIFF_USAGE,
  options: {
    import: { type: "string" },
    limit: { type: "string" },
  },
  schema: z.object({
    positionals: subcommandOnly("diff"),
    import: importFlag(),
    limit: limitFlag().optional(),
  }),
  access: "read",
  async run(args, context) {
    const db = await context.database();
    const limit = args.limit ?? (context.json ? undefined : DIFF_TEXT_LIMIT);
    try {
      const detail = await getFactorImport(db.sql, args.import, { limit });
      const { import: recorded, changes, changesCount } = detail;
      const lines = [describeImportLine(recorded)];
      if (changes.length) lines.push("", describeVersions(changes));
      if (changesCount > changes.length) {
        lines.push(`... and ${changesCount - changes.length} more (--limit N, or --json)`);
      }
      return { exitCode: EXIT.ok, json: detail, text: lines.join("\n") };
    } catch (error) {
      if (!(error instanceof ImportNotFoundError)) throw error;
      return {
        exitCode: EXIT.failed,
        json: { error: { code: error.name, message: error.message } },
        text: `factors diff: ${error.message}`,
      };
    }
  },
});

/** `import 3: it.csv (it 2025, replace) by alice at ...: 1 inserted, ...` */
export function describeImportLine(i: FactorImport): string {
  return `import ${i.id}: ${i.source} (${targetOf(i)} ${i.year}, ${i.mode}) by ${i.actor} at ${
    shortTime(i.createdAt)
  }: ${i.rowsRead} rows, ${i.inserted} inserted, ${i.updated} updated, ${i.deleted} deleted, ` +
    `${i.unchanged} unchanged` +
    (i.rolledBackBy.length ? `; rolled back by import ${i.rolledBackBy.join(", ")}` : "");
}

function describeVersions(changes: readonly FactorVersion[]): string {
  return formatTable(
    [
      "change",
      { header: "factor", identifier: true },
      "type",
      "classification",
      { header: "values (old → new)", whole: true },
    ],
    changes.map((v) => [
      v.change,
      v.factorId,
      v.dataEntryType,
      describeClassification(v.classification),
      describeValues(v.valuesBefore, v.valuesAfter, v.changedKeys),
    ]),
  );
}

/** `equipment_class=Laptop sub_class=(blank)` */
export function describeClassification(classification: Record<string, string | null>): string {
  return Object.entries(classification)
    .map(([column, value]) => `${column}=${value === null ? "(blank)" : value}`)
    .join(" ");
}

/** Changed keys as `key old → new`; an insert or delete shows its values on one side. */
export function describeValues(
  before: FactorValues | null,
  after: FactorValues | null,
  keys: readonly string[],
): string {
  const show = (v: number | string | undefined) => (v === undefined ? "(none)" : String(v));
  if (before === null) return keys.map((k) => `${k}=${show(after?.[k])}`).join(" ");
  if (after === null) return keys.map((k) => `${k}=${show(before[k])}`).join(" ");
  return keys.map((k) => `${k} ${show(before[k])} → ${show(after[k])}`).join("; ");
}
