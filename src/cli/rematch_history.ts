// `rematch history`: the recorded rematch runs, newest first (spec/history.md §3).
import { z } from "zod";
import { listRematchRuns, type RematchRun } from "../history/runs.ts";
import { defineCommand, EXIT, flag } from "./command.ts";
import { detFlag, importFlag, limitFlag, shortTime } from "./factors_history.ts";
import { defineGroup, subcommandOnly } from "./group.ts";
import { rematchCommand } from "./rematch.ts";
import { formatTable } from "./table.ts";

const USAGE =
  `Usage: deno task rematch history [--det D] [--year Y] [--import N] [--limit N] [--json]

Lists the rematch runs that committed, newest first: what started each (cli, job, import,
rollback), the import it followed, who ran it, its counts and its kg before and after. The
JSON also has, per carbon report module, kg before and after and the entries changed.

  --det D      only runs of this data entry type (name or id)
  --year Y     only runs of this year
  --import N   only runs that an import (or rollback) N started
  --limit N    at most N runs (default 50)
  --json       print one JSON document

Exit codes: 0 done, 1 failed, 2 bad usage.`;

/** `rematch history [--det D] [--year Y]` */
export const rematchHistoryCommand = defineCommand({
  name: "rematch history",
  summary: "the rematch runs that committed, newest first",
  usage: USAGE,
  options: {
    det: { type: "string" },
    year: { type: "string" },
    import: { type: "string" },
    limit: { type: "string" },
  },
  schema: z.object({
    positionals: subcommandOnly("history"),
    det: detFlag().optional(),
    year: flag.year().optional(),
    import: importFlag().optional(),
    limit: limitFlag().optional(),
  }),
  access: "read",
  async run(args, context) {
    const db = await context.database();
    const runs = await listRematchRuns(db.sql, {
      dataEntryTypeId: args.det?.id,
      year: args.year,
      importId: args.import,
      limit: args.limit,
    });
    return {
      exitCode: EXIT.ok,
      json: { runs },
      text: runs.length ? describeRuns(runs) : "no rematch runs recorded",
    };
  },
});

function describeRuns(runs: readonly RematchRun[]): string {
  return formatTable(
    [
      { header: "run", identifier: true },
      { header: "finished", optional: true },
      "type",
      { header: "year", identifier: true },
      { header: "trigger", optional: true },
      "scope",
      { header: "import", identifier: true },
      { header: "actor", optional: true },
      "entries",
      "changed",
      "errors",
      { header: "frozen", optional: true },
      "kg before",
      "kg after",
      { header: "frozen kg delta", optional: true },
    ],
    runs.map((r) => [
      r.id,
      shortTime(r.finishedAt),
      r.dataEntryType,
      r.year,
      r.trigger,
      r.scope,
      r.importId ?? "",
      r.actor,
      r.result.entries,
      r.modules.reduce((n, m) => n + m.entries_changed, 0),
      r.result.errors,
      r.result.frozen,
      r.kgBefore,
      r.kgAfter,
      r.result.frozenKgDelta,
    ]),
  );
}

/** `rematch ...` with its `history` subcommand. */
export const rematchGroup = defineGroup({
  name: "rematch",
  usage: rematchCommand.usage,
  subcommands: { history: rematchHistoryCommand },
  fallback: rematchCommand,
});
