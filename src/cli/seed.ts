// `seed`: reproducible demo data for every det (spec/interfaces.md §2).
import { z } from "zod";
import { defineCommand, EXIT, flag, UsageError } from "./command.ts";
import { formatTable } from "./table.ts";
import { checkSeedYear, seedDatabase, SeedError, type SeedSummary } from "../seed/seed.ts";

/** The validated arguments of `seed`. */
export interface SeedArgs {
  readonly units: number;
  readonly entries: number;
  readonly year: number;
  readonly randomSeed: number;
}

const USAGE = `Usage: deno task seed [--units N] [--entries N] [--year Y] [--random-seed S]
         [--json] [--database-url URL]

Loads the reference fixtures (locations, rooms, rates) and the factor fixtures of the year, then
writes generated entries for every data entry type, emissions computed. The same flags give the
same data. The units must not have entries for the year yet.

  --units N          units U0001..UN (default 5; at most 100000)
  --entries N        entries per data entry type and unit (default 20; at most 10000000)
  --year Y           report year, one the factor fixtures cover (default 2025)
  --random-seed S    seed of the generator (default 1)

Exit codes: 0 done, 3 done but some entries failed to compute, 1 failed, 2 bad usage.`;

const positiveInt = (name: string, min: number) =>
  flag.int(name).refine((n) => n >= min, `must be an integer ≥ ${min}`);

const schema = z.object({
  positionals: z.array(z.string()).max(0, "seed takes no arguments"),
  // Beyond these the generator's lists would not fit in memory (4294967296 units broke it).
  units: positiveInt("--units", 1).refine((n) => n <= 100_000, "at most 100000").default(5),
  entries: positiveInt("--entries", 0).refine((n) => n <= 10_000_000, "at most 10000000")
    .default(20),
  year: flag.year().default(2025),
  "random-seed": positiveInt("--random-seed", 0).default(1),
}).transform((flags): SeedArgs => ({
  units: flags.units,
  entries: flags.entries,
  year: flags.year,
  randomSeed: flags["random-seed"],
}));

/** `seed [--units N] [--entries N] [--year Y] [--random-seed S]` */
export const seedCommand = defineCommand({
  name: "seed",
  summary: "reproducible demo data for every det, emissions computed",
  usage: USAGE,
  options: {
    units: { type: "string" },
    entries: { type: "string" },
    year: { type: "string" },
    "random-seed": { type: "string" },
  },
  schema,
  async run(args, context) {
    // A year without fixtures is a usage error, before the database is opened.
    try {
      checkSeedYear(args.year);
    } catch (error) {
      if (error instanceof SeedError) throw new UsageError(`--year: ${error.message}`);
      throw error;
    }
    const db = await context.database();
    const started = performance.now();
    const showProgress = context.interactive && !context.json;
    const summary = await seedDatabase(db, {
      units: args.units,
      entriesPerDet: args.entries,
      year: args.year,
      randomSeed: args.randomSeed,
      onProgress: showProgress
        ? ({ written, total }) => {
          const line = `\rseeding: ${written} / ${total} entries`;
          Deno.stderr.writeSync(new TextEncoder().encode(line));
        }
        : undefined,
    });
    if (showProgress) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    const seconds = (performance.now() - started) / 1000;
    const failed = summary.dets.some((d) => d.rejected || d.computeErrors);
    return {
      exitCode: failed ? EXIT.partial : EXIT.ok,
      json: { database: db.description, seconds, ...summary },
      text: describeSeed(db.description, summary, seconds),
    };
  },
});

/** The human report: what was seeded where, then one line per det and a total. */
export function describeSeed(database: string, summary: SeedSummary, seconds: number): string {
  const rows: (string | number)[][] = summary.dets.map((d) => [
    `${d.dataEntryType} (${d.dataEntryTypeId})`,
    d.entries,
    d.emissionRows,
    d.kgCo2eq,
  ]);
  const problems = summary.dets.filter((d) => d.rejected || d.computeErrors || d.warnings);
  return [
    `seeded ${database}: year ${summary.year}, ${summary.units} units × ${summary.entriesPerDet} ` +
    `entries per det, random seed ${summary.randomSeed} (${seconds.toFixed(1)} s)`,
    `factors: ${summary.factorFiles.length} files, ` +
    `${summary.factorFiles.reduce((n, f) => n + f.inserted, 0)} inserted`,
    "",
    formatTable(
      ["det", "entries", "emission rows", { header: "kg CO2-eq", decimals: 1 }],
      rows,
      { total: "total" },
    ),
    ...(problems.length
      ? [
        "",
        ...problems.map((d) =>
          `${d.dataEntryType}: ${d.rejected} rejected, ${d.computeErrors} compute errors, ` +
          `${d.warnings} warnings`
        ),
        ...summary.problems.slice(0, 10).map((p) => `  ${p.dataEntryType}: ${p.message}`),
      ]
      : []),
  ].join("\n");
}
