// `status [--year Y] [--det D] [--json]`: which slices need a rematch, and how much of each
// (spec/rematch.md rule 18).
import { z } from "zod";
import { defineCommand, EXIT, flag } from "./command.ts";
import { getDataEntryType } from "../reference/enums.ts";
import {
  type LeftStale,
  rematchCommandFor,
  type SliceStatus,
  sliceStatus,
} from "../rematch/state.ts";
import { formatTable } from "./table.ts";
import { type FrozenModuleBehind, frozenModulesBehind } from "../history/freeze.ts";

const USAGE = `Usage: deno task status [--year Y] [--det D] [--json] [--database-url URL]

Lists every (det, year) slice with entries: its entries, factors, kg (rollup rows excluded), its
last rematch (when, how and with how many errors) and its state:
  current                                  factors and reference data as the last rematch saw
                                           them, no entry left failing: a rematch reads nothing
  stale: targeted (N factors, about M entries)
                                           only factor values changed, or entries wait (failing,
                                           or written while the slice was stale): a rematch reads
                                           about M entries
  stale: full (why)                        a rematch reads the whole slice
  never rematched                          no rematch recorded the slice's state yet

  --year Y   only this year
  --det D    only this data entry type (name or id)
  --json     print one JSON document

Ends with the command that brings the stale slices up to date, then the frozen report modules
whose emissions differ from the current factors (reports freeze; computed, nothing written).
Exit codes: 0 done, 1 failed, 2 bad usage.`;

const schema = z.object({
  year: flag.year().optional(),
  det: flag.det().transform((d) => getDataEntryType(d)).optional(),
  positionals: z.array(z.string()).max(0, "status takes flags only"),
});

/** The `status` command. */
export const statusCommand = defineCommand({
  name: "status",
  summary: "which slices are current or stale, and what a rematch reads",
  usage: USAGE,
  options: { year: { type: "string" }, det: { type: "string" } },
  schema,
  // Status only reads: it never migrates a database.
  access: "read",
  async run(args, context) {
    const db = await context.database();
    const slices = await sliceStatus(db.sql, {
      year: args.year,
      dataEntryTypeId: args.det?.id,
      kg: true,
    });
    const stale = slices.filter((s) => s.state !== "current");
    const command = stale.length ? rematchCommandFor(stale) : null;
    // status only reads: a slice busy with a rematch, an import or an entry write is not waited for.
    const frozenNotCompared: { dataEntryType: string; year: number }[] = [];
    const frozenBehind = await frozenModulesBehind(db, {
      year: args.year,
      dataEntryTypeId: args.det?.id,
    }, (slice) => frozenNotCompared.push(slice));
    return {
      exitCode: EXIT.ok,
      json: {
        year: args.year ?? null,
        dataEntryType: args.det?.name ?? null,
        slices,
        stale: stale.length,
        command,
        frozenBehind,
        frozenNotCompared,
      },
      text: [
        describeStatus(slices, command),
        ...describeFrozenBehind(frozenBehind),
        ...frozenNotCompared.map((s) =>
          `frozen modules of ${s.dataEntryType} ${s.year} not compared: a rematch, an import ` +
          "or an entry write holds the slice now (run status again)"
        ),
      ].join("\n"),
    };
  },
});

/** The status table, then what to run. */
export function describeStatus(slices: readonly SliceStatus[], command: string | null): string {
  if (slices.length === 0) return "no slice has entries";
  const table = formatTable(
    [
      "det",
      { header: "year", identifier: true },
      "entries",
      { header: "factors", optional: true },
      { header: "kg", decimals: 0, optional: true },
      { header: "last rematch", optional: true },
      { header: "result", optional: true },
      { header: "state", whole: true },
    ],
    slices.map((s) => [
      s.dataEntryType,
      s.year,
      s.entries,
      s.factors,
      s.kg ?? 0,
      s.lastRematch ? s.lastRematch.at.slice(0, 16).replace("T", " ") + "Z" : "-",
      s.lastRematch ? describeRun(s.lastRematch) : "-",
      s.label,
    ]),
    slices.length > 1 ? { total: "total" } : {},
  );
  const stale = slices.filter((s) => s.state !== "current").length;
  const footer = command
    ? `${stale} of ${slices.length} slices need a rematch: ${command}`
    : slices.length === 1
    ? "the slice is current"
    : `all ${slices.length} slices are current`;
  return `${table}\n${footer}`;
}

/** Frozen modules whose emissions differ from the current factors (spec/history.md §4). */
export function describeFrozenBehind(modules: readonly FrozenModuleBehind[]): string[] {
  if (modules.length === 0) return [];
  return [
    "",
    "frozen modules behind the current factors (a rematch leaves them; reports unfreeze releases them):",
    formatTable(
      [
        "unit",
        { header: "year", identifier: true },
        "module",
        "det",
        "entries behind",
        "kg delta",
        { header: "frozen since", optional: true },
        "reason",
      ],
      modules.map((m) => [
        m.unitCode,
        m.year,
        m.moduleType,
        m.dataEntryType,
        m.entriesBehind,
        m.kgDelta,
        `${m.frozenAt!.slice(0, 16).replace("T", " ")}Z by ${m.frozenBy}`,
        m.frozenReason,
      ]),
    ),
  ];
}

function describeRun(run: NonNullable<SliceStatus["lastRematch"]>): string {
  const { summary } = run;
  const errors = `${summary.errors} error${summary.errors === 1 ? "" : "s"}`;
  return `${run.scope}: ${summary.entriesRead} read, ${errors}`;
}

/**
 * What an import without `--rematch` ends with: the slices it left stale and the command that
 * brings them up to date (nothing when every slice it touched is current).
 */
export function describeLeftStale(left: LeftStale): string[] {
  if (!left.command) return [];
  return [
    `left stale: ${left.slices.map((s) => `${s.dataEntryType} ${s.year} (${s.label})`).join("; ")}`,
    `bring them up to date: ${left.command}`,
  ];
}
