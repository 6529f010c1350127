// `demo`: the whole story on a fresh embedded database: seed, change some factors, rematch, and
// show what moved.
import { join } from "node:path";
import { z } from "zod";
import { type Database, openDatabase } from "../db/connection.ts";
import { importFactors } from "../db/factors.ts";
import { getDataEntryType } from "../reference/enums.ts";
import { rematchInTransaction } from "../rematch/run.ts";
import type { RematchResult } from "../rematch/types.ts";
import { fixtureCsv, fixtureText } from "../seed/fixtures.ts";
import { seedDatabase } from "../seed/seed.ts";
import { defineCommand, EXIT, flag, onInterrupt, UsageError, userPath } from "./command.ts";
import { formatTable } from "./table.ts";
import { transaction } from "../db/transaction.ts";

const changesSchema = z.object({
  year: z.number().int(),
  changes: z.array(z.object({
    file: z.string(),
    det: z.string(),
    mode: z.enum(["merge", "replace"]),
    what: z.string(),
  })),
});

const USAGE =
  `Usage: deno task demo [--units N] [--entries N] [--random-seed S] [--data-dir DIR] [--json]

Creates a fresh embedded database (a temporary directory, removed afterwards, unless --data-dir
names a new one to keep),
seeds it, imports the changed factor files of fixtures/demo/ (values changed, factors withdrawn),
rematches each touched slice in the import's transaction, and prints a before/after table.
Needs no PostgreSQL server: DATABASE_URL is ignored.`;

/** The `demo` command. */
export const demoCommand = defineCommand({
  name: "demo",
  summary: "fresh embedded database: seed, change factors, rematch",
  usage: USAGE,
  options: {
    units: { type: "string" },
    entries: { type: "string" },
    "random-seed": { type: "string" },
    "data-dir": { type: "string" },
  },
  schema: z.object({
    units: flag.int("--units").pipe(z.number().min(1).max(1000)).default(3),
    entries: flag.int("--entries").pipe(z.number().min(1).max(10000)).default(20),
    "random-seed": flag.int("--random-seed").default(1),
    "data-dir": z.string().min(1, "expected a directory").transform(userPath).optional(),
    positionals: z.array(z.string()).max(0, "demo takes flags only"),
  }),
  async run(args, context) {
    const plan = changesSchema.parse(JSON.parse(fixtureText("demo/changes.json")));
    // Removed however the demo ends: returning, failing, or stopped by a signal. Made in the same
    // turn of the event loop as its cleanup is set (a signal's listener runs between turns).
    const tempDir = args["data-dir"]
      ? undefined
      : Deno.makeTempDirSync({ prefix: "rematch-demo-" });
    const forget = tempDir ? onInterrupt(() => removeNow(tempDir)) : () => {};
    const dataDir = args["data-dir"] ?? join(tempDir!, "db");
    if (args["data-dir"] && (await isNonEmptyDir(dataDir))) {
      throw new UsageError(`--data-dir: ${dataDir} is not empty: the demo needs a fresh database`);
    }
    let opened: Database | undefined;
    try {
      const db = await openDatabase({ databaseUrl: "", dataDir, embeddedOnly: "the demo" });
      opened = db;
      const log = (line: string) => context.json || console.error(line);
      log(`seeding ${args.units} units × ${args.entries} entries per det for ${plan.year} ...`);
      const seed = await seedDatabase(db, {
        units: args.units,
        entriesPerDet: args.entries,
        year: plan.year,
        randomSeed: args["random-seed"],
      });
      const steps: { what: string; file: string; mode: string; rematch: RematchResult }[] = [];
      for (const change of plan.changes) {
        const det = getDataEntryType(change.det);
        log(`importing ${change.file} (${change.mode}): ${change.what}`);
        const table = fixtureCsv(`demo/${change.file}`);
        const rematch = await transaction(db.sql, async (tx) => {
          await importFactors(tx, {
            file: change.file,
            table,
            year: plan.year,
            target: { dataEntryTypeId: det.id },
            mode: change.mode,
          });
          return await rematchInTransaction(tx, { dataEntryType: det.id, year: plan.year });
        });
        steps.push({ what: change.what, file: change.file, mode: change.mode, rematch });
      }
      const text = [
        `seeded ${seed.entriesGenerated} entries (+${seed.companionsCreated} companions), ` +
        `${seed.emissionsInserted} emission rows`,
        "",
        ...steps.map((s) => `${s.rematch.dataEntryType}: ${s.what} (${s.file}, ${s.mode})`),
        "",
        formatTable(
          [
            "det",
            "entries",
            { header: "kg before", decimals: 1 },
            { header: "kg after", decimals: 1 },
            // The total's change is that of the totals, not a sum of percentages.
            {
              header: "change %",
              decimals: 1,
              total: (rows) => change(sum(rows, 2), sum(rows, 3)),
            },
            "relinked",
            "dropped",
            { header: "unchanged", optional: true },
            "errors",
            "rows ins",
            "rows upd",
            "rows del",
          ],
          steps.map(({ rematch: r }) => [
            r.dataEntryType,
            r.entries,
            r.kgBefore,
            r.kgAfter,
            change(r.kgBefore, r.kgAfter),
            r.relinked,
            r.dropped,
            r.unchanged,
            r.errors,
            r.emissionsInserted,
            r.emissionsUpdated,
            r.emissionsDeleted,
          ]),
          { total: "total" },
        ),
      ].join("\n");
      return {
        exitCode: steps.some((s) => s.rematch.errors) ? EXIT.partial : EXIT.ok,
        json: { dataDir, seed, steps },
        text,
      };
    } finally {
      await opened?.close();
      forget();
      if (tempDir) await Deno.remove(tempDir, { recursive: true });
    }
  },
});

function change(before: number, after: number): number {
  return before ? ((after - before) / before) * 100 : 0;
}

function sum(rows: readonly (readonly unknown[])[], column: number): number {
  return rows.reduce((total: number, row) => total + (row[column] as number), 0);
}

async function isNonEmptyDir(path: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(path)) return true;
    return false;
  } catch {
    return false;
  }
}

// Removes a directory at once, trying again while files still being written into it make it
// not empty (the embedded database writes as it starts).
function removeNow(dir: string): void {
  for (let attempt = 1;; attempt++) {
    try {
      Deno.removeSync(dir, { recursive: true });
      return;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || attempt === 5) return;
    }
  }
}
