// `reports freeze|unfreeze`: hold a validated report's modules back from every rematch and
// entry write, or release them (spec/history.md §4).
import { z } from "zod";
import {
  freezeModules,
  type FreezeResult,
  type ReportModule,
  ReportNotFoundError,
  type ReportTarget,
  unfreezeModules,
} from "../history/freeze.ts";
import { findModuleType, listDataEntryTypes } from "../reference/enums.ts";
import { SliceBusyError } from "../db/locks.ts";
import { type CommandOutcome, defineCommand, EXIT, flag } from "./command.ts";
import { defineGroup, subcommandOnly } from "./group.ts";
import { shortTime } from "./factors_history.ts";
import { formatTable } from "./table.ts";
import { leftStale } from "../rematch/state.ts";
import { describeLeftStale } from "./status.ts";
import { transaction } from "../db/transaction.ts";

const TARGET_HELP = `  --unit U      the unit's code
  --year Y      the report year
  --module M    only this module (name such as equipment, or its id); default: every module
                of the unit's report`;

const FREEZE_USAGE =
  `Usage: deno task reports freeze --unit U --year Y [--module M] --reason R [--json]

Freezes the modules of a validated (published) report: no rematch writes their entries or
emissions (a rematch counts them as frozen and reports the kg they would move), and entry
writes into them are refused. A module already frozen keeps its freeze. Without --module the
whole report is frozen: the modules it has, and, created empty, those a later entry would add.

${TARGET_HELP}
  --reason R    why (e.g. "published 2026-03-01"); recorded with the actor and the time
  --json        print one JSON document

Exit codes: 0 done, 1 failed (no such unit, report or module), 2 bad usage.`;

const UNFREEZE_USAGE = `Usage: deno task reports unfreeze --unit U --year Y [--module M] [--json]

Unfreezes the modules of a report. Their emissions stay as they were until the next rematch of
their slices brings them up to date with the current factors: their entries are marked for it,
so status shows those slices stale and the command printed (or rematch --stale) updates them.

${TARGET_HELP}
  --json        print one JSON document

Exit codes: 0 done, 1 failed (no such unit, report or module), 2 bad usage.`;

const targetFields = {
  unit: z.string({ error: "is required (e.g. --unit U1)" }).trim().min(1, "expected a unit code"),
  year: flag.year(),
  module: z.string().transform((value, ctx) => {
    const module = findModuleType(value);
    if (!module) {
      ctx.addIssue({
        code: "custom",
        message: `unknown module "${value}" (expected a name such as equipment, or its id)`,
      });
      return z.NEVER;
    }
    return module;
  }).optional(),
};

const targetOptions = {
  unit: { type: "string" },
  year: { type: "string" },
  module: { type: "string" },
} as const;

function targetOf(args: {
  unit: string;
  year: number;
  module?: { id: number };
}): ReportTarget {
  return { unitCode: args.unit, year: args.year, moduleTypeId: args.module?.id };
}

/** `reports freeze --unit U --year Y [--module M] --reason R` */
export const reportsFreezeCommand = defineCommand({
  name: "reports freeze",
  summary: "hold a validated report back from rematches",
  usage: FREEZE_USAGE,
  options: { ...targetOptions, reason: { type: "string" } },
  schema: z.object({
    positionals: subcommandOnly("freeze"),
    ...targetFields,
    reason: z.string({ error: 'is required (e.g. --reason "published 2026-03-01")' }).trim()
      .min(1, "expected a reason"),
  }),
  async run(args, context) {
    const db = await context.database();
    return await reported(
      "freeze",
      () => transaction(db.sql, (tx) => freezeModules(tx, targetOf(args), { reason: args.reason })),
    );
  },
});

/** `reports unfreeze --unit U --year Y [--module M]` */
export const reportsUnfreezeCommand = defineCommand({
  name: "reports unfreeze",
  summary: "let rematches write a report again",
  usage: UNFREEZE_USAGE,
  options: targetOptions,
  schema: z.object({ positionals: subcommandOnly("unfreeze"), ...targetFields }),
  async run(args, context) {
    const db = await context.database();
    const outcome = await reported(
      "unfreeze",
      () => transaction(db.sql, (tx) => unfreezeModules(tx, targetOf(args))),
    );
    const unfrozen = (outcome.json as { changed?: ReportModule[] }).changed ?? [];
    if (outcome.exitCode !== EXIT.ok || unfrozen.length === 0) return outcome;
    // Their emissions may lag the factors: the slices they left stale, and what to run.
    const types = new Set(unfrozen.map((m) => m.moduleTypeId));
    const stale = await leftStale(db.sql, {
      year: args.year,
      dataEntryTypeIds: listDataEntryTypes().filter((d) => types.has(d.moduleTypeId)).map((d) =>
        d.id
      ),
    });
    return {
      ...outcome,
      json: { ...(outcome.json as object), leftStale: stale },
      text: [outcome.text, ...describeLeftStale(stale)].join("\n"),
    };
  },
});

async function reported(
  action: "freeze" | "unfreeze",
  body: () => Promise<FreezeResult>,
): Promise<CommandOutcome> {
  let result: FreezeResult;
  try {
    result = await body();
  } catch (error) {
    if (!(error instanceof ReportNotFoundError || error instanceof SliceBusyError)) throw error;
    return {
      exitCode: EXIT.failed,
      json: { error: { code: error.name, message: error.message } },
      text: `reports ${action}: ${error.message}`,
    };
  }
  const rows = [
    ...result.changed.map((m) => ({ m, state: action === "freeze" ? "frozen" : "unfrozen" })),
    ...result.unchanged.map((m) => ({
      m,
      state: action === "freeze" ? "already frozen" : "was not frozen",
    })),
  ].sort((a, b) => a.m.moduleTypeId - b.m.moduleTypeId);
  const lines = [
    formatTable(
      [
        "unit",
        { header: "year", identifier: true },
        "module",
        { header: "id", identifier: true },
        "state",
        { header: "frozen since", optional: true },
        { header: "by", optional: true },
        "reason",
      ],
      rows.map(({ m, state }) => [
        m.unitCode,
        m.year,
        m.moduleType,
        m.moduleId,
        state,
        m.frozenAt ? shortTime(m.frozenAt) : "",
        m.frozenBy ?? "",
        m.frozenReason ?? "",
      ]),
    ),
  ];
  return {
    exitCode: EXIT.ok,
    json: { action, changed: result.changed, unchanged: result.unchanged },
    text: lines.join("\n"),
  };
}

/** `reports freeze|unfreeze ...` */
export const reportsGroup = defineGroup({
  name: "reports",
  usage: `Usage: deno task reports <freeze|unfreeze> --unit U --year Y [--module M] ...

  freeze     hold a validated report's modules back from rematches and entry writes
  unfreeze   release them (the next rematch brings them up to date)

deno task reports <subcommand> --help shows its flags.`,
  subcommands: { freeze: reportsFreezeCommand, unfreeze: reportsUnfreezeCommand },
});
