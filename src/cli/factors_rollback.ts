// `factors rollback --import N`: put back every factor an import changed (spec/history.md §2).
import { z } from "zod";
import { ImportNotFoundError } from "../history/imports.ts";
import {
  type FactorState,
  type RollbackConflict,
  RollbackConflictError,
  type RollbackResult,
  runRollback,
} from "../history/rollback.ts";
import { SliceBusyError } from "../db/locks.ts";
import { type CommandOutcome, defineCommand, EXIT } from "./command.ts";
import { describeClassification, describeValues, importFlag } from "./factors_history.ts";
import { changedKeys } from "../history/imports.ts";
import { subcommandOnly } from "./group.ts";
import { describeRematches } from "./rematch.ts";
import { describeLeftStale } from "./status.ts";
import { formatTable } from "./table.ts";

const USAGE =
  `Usage: deno task factors rollback --import N [--rematch] [--dry-run] [--force] [--no-wait]
         [--json]

Puts every factor that import N changed back as it was before it: updated factors get their
old values, inserted ones are deleted, deleted ones come back with their old ids. The rollback
is itself recorded as an import (so it can be rolled back in turn).

  --import N   the import to undo (factors history lists them; factors diff shows what it did)
  --rematch    recompute the import's slices in the same transaction
  --dry-run    do it all (with --rematch too), report it, then roll everything back
  --force      roll back even where a later import changed the same factors since (their
               changes are overridden); without it such a rollback is refused
  --no-wait    fail at once (exit 1, nothing written) when another rematch or import holds
               one of the slices, instead of waiting for it
  --json       print one JSON document

Exit codes: 0 done, 3 done with per-entry rematch errors, 1 refused or failed (nothing
written), 2 bad usage.`;

/** Changes listed in the text output (the JSON lists up to 100). */
const LISTED_IN_TEXT = 20;

/** `factors rollback --import N [--rematch] [--dry-run] [--force]` */
export const factorsRollbackCommand = defineCommand({
  name: "factors rollback",
  summary: "put back what factor import N changed",
  usage: USAGE,
  options: {
    import: { type: "string" },
    rematch: { type: "boolean" },
    "dry-run": { type: "boolean" },
    force: { type: "boolean" },
    "no-wait": { type: "boolean" },
  },
  schema: z.object({
    positionals: subcommandOnly("rollback"),
    import: importFlag(),
    rematch: z.boolean().default(false),
    "dry-run": z.boolean().default(false),
    force: z.boolean().default(false),
    "no-wait": z.boolean().default(false),
  }),
  // A dry run writes only inside a transaction it rolls back: it never migrates a database.
  access: (args) => args["dry-run"] ? "read" : "write",
  async run(args, context): Promise<CommandOutcome> {
    const db = await context.database();
    try {
      const outcome = await runRollback(db, {
        importId: args.import,
        rematch: args.rematch,
        dryRun: args["dry-run"],
        force: args.force,
        noWait: args["no-wait"],
      });
      const { rollback, rematch, leftStale, dryRun } = outcome;
      const errors = (rematch ?? []).some((r) => r.errors > 0);
      return {
        exitCode: errors ? EXIT.partial : EXIT.ok,
        json: {
          dryRun,
          ...rollback,
          // A dry run's rollback import was rolled back with everything else: it has no id.
          importId: dryRun ? null : rollback.importId,
          rematch,
          leftStale,
        },
        text: [
          ...(dryRun ? ["dry run: nothing written; a real rollback would do this:"] : []),
          describeRollback(rollback, dryRun),
          ...(rematch ? ["", describeRematches(rematch)] : describeLeftStale(leftStale!)),
        ].join("\n"),
      };
    } catch (error) {
      if (error instanceof RollbackConflictError) {
        return {
          exitCode: EXIT.failed,
          json: {
            error: { code: error.name, message: error.message },
            conflicts: error.conflicts,
            conflictsCount: error.conflictsCount,
          },
          text: [
            `factors rollback: ${error.message}`,
            "",
            describeConflicts(error.conflicts, error.importId),
            ...(error.conflictsCount > error.conflicts.length
              ? [`... and ${error.conflictsCount - error.conflicts.length} more (see --json)`]
              : []),
          ].join("\n"),
        };
      }
      if (error instanceof ImportNotFoundError || error instanceof SliceBusyError) {
        return {
          exitCode: EXIT.failed,
          json: { error: { code: error.name, message: error.message } },
          text: `factors rollback: ${error.message}`,
        };
      }
      throw error;
    }
  },
});

function describeRollback(r: RollbackResult, dryRun: boolean): string {
  const slices = r.slices.map((s) => `${s.dataEntryType} ${s.year}`).join(", ");
  const lines = [
    `rollback of import ${r.rollbackOf} (${slices})${
      dryRun ? "" : `: recorded as import ${r.importId}`
    }`,
    `${r.factors} ${r.factors === 1 ? "factor" : "factors"} changed by import ${r.rollbackOf}; ` +
    `the rollback ${dryRun ? "would insert" : "inserted"} ${r.inserted}, ` +
    `${dryRun ? "update" : "updated"} ${r.updated}, ${dryRun ? "delete" : "deleted"} ${r.deleted}` +
    `, ${r.unchanged} already as before`,
  ];
  if (r.conflictsCount) {
    lines.push(
      `--force: ${r.conflictsCount} later changes overridden`,
      describeConflicts(r.conflicts.slice(0, LISTED_IN_TEXT), r.rollbackOf),
    );
  }
  if (r.changes.length) {
    lines.push(
      "",
      formatTable(
        [
          "change",
          { header: "factor", identifier: true },
          "type",
          "classification",
          { header: "values (now → restored)", whole: true },
        ],
        r.changes.slice(0, LISTED_IN_TEXT).map((c) => [
          c.change,
          (c.after ?? c.before)!.id,
          c.dataEntryType,
          describeClassification(c.classification),
          describeValues(
            c.before?.values ?? null,
            c.after?.values ?? null,
            changedKeys(c.before?.values ?? null, c.after?.values ?? null),
          ),
        ]),
      ),
    );
    const more = r.inserted + r.updated + r.deleted - Math.min(r.changes.length, LISTED_IN_TEXT);
    if (more > 0) lines.push(`... and ${more} more (see --json)`);
  }
  return lines.join("\n");
}

function describeConflicts(conflicts: readonly RollbackConflict[], importId: number): string {
  // Only what differs between the two states is shown.
  const state = (s: FactorState, keys: readonly string[]) =>
    s === null
      ? "(absent)"
      : [`factor ${s.id}`, ...keys.map((k) => `${k}=${s.values[k] ?? "(none)"}`)].join(" ");
  return formatTable(
    [
      "type",
      "classification",
      `left by import ${importId}`,
      "now",
      { header: "changed by", whole: true },
    ],
    conflicts.map((c) => {
      const keys = c.leftByImport && c.current
        ? changedKeys(c.leftByImport.values, c.current.values)
        : [];
      return [
        c.dataEntryType,
        describeClassification(c.classification),
        state(c.leftByImport, keys),
        state(c.current, keys),
        c.changedBy.length ? c.changedBy.join(", ") : "outside imports",
      ];
    }),
  );
}
