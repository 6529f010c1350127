// The bench slice: the year's reference and factor fixtures, then N generated entries of one det
// spread over many units (one carbon report module each), emissions computed on write. Entries
// come from the demo seed's generator (src/seed/generate.ts); the equipment dets get generated
// classes on top of the fixtures so that a single factor covers about 1 % of the entries.
import type { Database } from "../db/connection.ts";
import { importFactors } from "../db/factors.ts";
import { parseCsv } from "../imports/csv.ts";
import { getDataEntryType, MODULE_TYPES } from "../reference/enums.ts";
import { catalogFromTables, generateEntries, SEED_DETS, type SeedDet } from "../seed/generate.ts";
import { fixtureCsv, fixtureText } from "../seed/fixtures.ts";
import { importSeedFixtures, readFactorFixtures } from "../seed/seed.ts";
import { writeEntryBatches } from "../seed/write.ts";

/** The report year of every bench slice (its factor fixtures must exist). */
export const BENCH_YEAR = 2025;
/** Entries per unit (= per carbon report module) until there are {@linkcode MAX_UNITS} units. */
const ENTRIES_PER_UNIT = 50;
/** 2,231 modules were touched by one module-year in the reference system: about this many. */
const MAX_UNITS = 2000;
/** Classes an equipment det has in the bench (fixture classes plus generated ones). */
export const EQUIPMENT_KINDS = 100;
const WRITE_BATCH = 5000;
const EQUIPMENT_DETS = new Set(["scientific", "it", "other"]);

/** True when the seed generator can write entries of this det. */
export function isBenchDet(name: string): name is SeedDet {
  return (SEED_DETS as readonly string[]).includes(name);
}

/** Units (carbon report modules) a slice of `entries` entries is spread over. */
export function unitsFor(entries: number): number {
  return Math.min(MAX_UNITS, Math.max(1, Math.ceil(entries / ENTRIES_PER_UNIT)));
}

/** What {@linkcode seedBenchSlice} wrote. */
export interface BenchSliceSummary {
  readonly entries: number;
  readonly units: number;
  readonly emissionRows: number;
  /** Entries stored whose compute failed or warned (a plane trip outside every band, ...). */
  readonly computeErrors: number;
  readonly warnings: number;
  /** Seconds spent writing the entries (fixtures excluded). */
  readonly entrySeconds: number;
}

/**
 * The fixture's equipment table plus generated classes for `det` up to {@linkcode EQUIPMENT_KINDS}
 * (plausible powers and hours, the fixture's emission factor), or undefined for other dets.
 */
export function benchEquipmentTable(det: string): string | undefined {
  if (!EQUIPMENT_DETS.has(det)) return undefined;
  const text = fixtureText(`factors/${BENCH_YEAR}/equipment.csv`).trimEnd();
  const existing = text.split("\n").filter((line) => line.startsWith(`${det},`)).length;
  const families = ["Workstation", "Display", "Storage", "Network", "Peripheral", "Compute node"];
  const lines: string[] = [];
  for (let i = existing; i < EQUIPMENT_KINDS; i++) {
    const family = families[i % families.length];
    const activeW = 20 + ((i * 37) % 480);
    const activeHours = [40, 60, 168][i % 3];
    lines.push(
      `${det},${family},Model ${String(i).padStart(3, "0")},${activeW},${1 + (i % 9)},` +
        `${activeHours},${168 - activeHours},0.2`,
    );
  }
  return `${text}\n${lines.join("\n")}\n`;
}

/**
 * Seeds a fresh database with one bench slice of `entries` entries of `det` (year
 * {@linkcode BENCH_YEAR}), written in batches through the product's bulk write path.
 */
export async function seedBenchSlice(
  db: Database,
  options: { readonly det: SeedDet; readonly entries: number; readonly randomSeed?: number },
): Promise<BenchSliceSummary> {
  const { det, entries } = options;
  const year = BENCH_YEAR;
  const factors = Object.fromEntries(readFactorFixtures(year));
  const equipmentText = benchEquipmentTable(det);
  await db.sql.begin(async (tx) => {
    await importSeedFixtures(tx, year);
    if (equipmentText) {
      factors.equipment = parseCsv("bench equipment classes", equipmentText);
      await importFactors(tx, {
        file: "bench equipment classes",
        table: factors.equipment,
        year,
        target: { moduleTypeId: MODULE_TYPES.equipment },
        strict: true,
      });
    }
  });
  const reference = (name: string) => fixtureCsv(`reference/${name}.csv`);
  const catalog = catalogFromTables(year, {
    locations: reference("locations"),
    rooms: reference("rooms"),
    rates: reference("rates"),
    factors,
  });
  const units = unitsFor(entries);
  const generated = generateEntries(catalog, {
    units,
    entriesPerDet: Math.ceil(entries / units),
    year,
    seed: options.randomSeed ?? 1,
    dets: [det],
  });

  const started = performance.now();
  let written = 0;
  let computeErrors = 0;
  let warnings = 0;
  const limited = function* () {
    for (const entry of generated) {
      if (written === entries) return;
      written++;
      yield entry;
    }
  };
  await writeEntryBatches(db, limited(), {
    batchSize: WRITE_BATCH,
    onBatch(_batch, result) {
      if (result.rejected.length) {
        throw new Error(`the generator wrote an invalid entry: ${result.rejected[0].message}`);
      }
      computeErrors += result.computeErrors.length;
      warnings += result.warnings.length;
    },
  });
  const entrySeconds = (performance.now() - started) / 1000;

  const [row] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from data_entry_emissions x
      join data_entries e on e.id = x.data_entry_id
    where e.data_entry_type_id = ${getDataEntryType(det).id}`;
  return { entries: written, units, emissionRows: row.n, computeErrors, warnings, entrySeconds };
}
