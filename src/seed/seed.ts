// The demo seed: reference and factor fixtures of one year, then generated entries for every det
// streamed through the bulk write path (createEntries), one transaction per batch.
import type { Database, Queryable } from "../db/connection.ts";
import type { NewEntry } from "../db/entries.ts";
import { importFactors } from "../db/factors.ts";
import { type UpsertCounts, upsertReference } from "../db/reference.ts";
import type { ReferenceKind } from "../handlers/types.ts";
import { type CsvTable, describeRowError } from "../imports/csv.ts";
import type { FactorImportTarget } from "../imports/factor_csv.ts";
import { parseReferenceText } from "../imports/reference_csv.ts";
import { ROLLUP_EMISSION_TYPE_IDS } from "../reference/emission_types.ts";
import {
  type DetName,
  findDataEntryType,
  listDataEntryTypes,
  MODULE_TYPES,
  type ModuleTypeName,
} from "../reference/enums.ts";
import {
  catalogFromTables,
  generatedEntryCount,
  generateEntries,
  SEED_DETS,
  type SeedDet,
  seedUnitCode,
} from "./generate.ts";
import { fixtureCsv, fixtureNames, fixtureText, fixtureYears } from "./fixtures.ts";
import { writeEntryBatches } from "./write.ts";
import { reportedKg } from "../rematch/module_stats.ts";
import { transaction } from "../db/transaction.ts";

const REFERENCE_KINDS: readonly ReferenceKind[] = ["locations", "rooms", "rates"];
/** Factor files that cover a whole module (routing column per row) rather than one det. */
const MODULE_FILES: Readonly<Record<string, ModuleTypeName>> = {
  equipment: "equipment",
  purchase_common: "purchase",
};

/** Options of {@linkcode seedDatabase}. */
export interface SeedOptions {
  /** Number of units. @default 5 */
  readonly units?: number;
  /** Entries per det and unit. @default 20 */
  readonly entriesPerDet?: number;
  /** Report year; its factor fixtures (`fixtures/factors/<year>/`) must exist. @default 2025 */
  readonly year?: number;
  /** PRNG seed. @default 1 */
  readonly randomSeed?: number;
  /** Dets to write entries for. @default every det but embodied energy (its entries are companions) */
  readonly dets?: readonly SeedDet[];
  /** Entries per createEntries call and transaction. @default 5000 */
  readonly batchSize?: number;
  /** Called after each batch is committed. */
  readonly onProgress?: (progress: SeedProgress) => void;
}

/** How far a seed is. */
export interface SeedProgress {
  /** Generated entries written so far (companions not counted). */
  readonly written: number;
  /** Generated entries in all. */
  readonly total: number;
}

/** What the seed wrote for one det. */
export interface SeedDetSummary {
  readonly dataEntryType: DetName;
  readonly dataEntryTypeId: number;
  /** Entries stored (for embodied energy: the companions of building entries). */
  readonly entries: number;
  /** Emission rows stored, rollup rows included. */
  readonly emissionRows: number;
  /** kg CO2-eq of the emission rows, rollup rows excluded. */
  readonly kgCo2eq: number;
  /** Generated entries rejected by validation (a generator bug if ever not 0). */
  readonly rejected: number;
  /** Stored entries whose compute failed. */
  readonly computeErrors: number;
  /** Stored entries computed with a warning (e.g. a trip outside every haul band). */
  readonly warnings: number;
}

/** A factor file the seed imported. */
export interface SeedFactorFile {
  readonly file: string;
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
}

/** What {@linkcode seedDatabase} did. */
export interface SeedSummary {
  readonly year: number;
  readonly units: number;
  readonly entriesPerDet: number;
  readonly randomSeed: number;
  readonly reference: Readonly<Record<ReferenceKind, UpsertCounts>>;
  readonly factorFiles: readonly SeedFactorFile[];
  /** Generated entries (companions not counted). */
  readonly entriesGenerated: number;
  readonly companionsCreated: number;
  readonly emissionsInserted: number;
  /** Per det, in det id order: every det with entries. */
  readonly dets: readonly SeedDetSummary[];
  /** The first problems met (rejections, compute errors, warnings), by det. */
  readonly problems: readonly { dataEntryType: DetName; message: string }[];
}

/** The seed cannot run (no fixtures for the year, already seeded, bad fixture). */
export class SeedError extends Error {
  override name = "SeedError";
}

const MAX_LISTED_PROBLEMS = 100;

/** The years that have a factor fixture folder, ascending. */
export function seedYears(): number[] {
  return fixtureYears();
}

/** Throws a {@linkcode SeedError} listing the available years when `year` has no fixtures. */
export function checkSeedYear(year: number): void {
  const years = seedYears();
  if (!years.includes(year)) {
    throw new SeedError(
      `no factor fixtures for year ${year}: available years are ${years.join(", ") || "none"}`,
    );
  }
}

/** The factor fixtures of `year` by file stem (`plane`, `equipment`, ...); a SeedError without. */
export function readFactorFixtures(year: number): Map<string, CsvTable> {
  checkSeedYear(year);
  const tables = new Map<string, CsvTable>();
  for (const name of fixtureNames(`factors/${year}`)) {
    if (name.endsWith(".csv")) {
      tables.set(name.slice(0, -".csv".length), fixtureCsv(`factors/${year}/${name}`));
    }
  }
  return tables;
}

function factorTarget(stem: string): FactorImportTarget {
  const module = MODULE_FILES[stem];
  if (module) return { moduleTypeId: MODULE_TYPES[module] };
  const det = findDataEntryType(stem);
  if (!det) {
    throw new SeedError(
      `fixture ${stem}.csv names no data entry type (nor is it ${
        Object.keys(MODULE_FILES).map((f) => `${f}.csv`).join(" or ")
      })`,
    );
  }
  return { dataEntryTypeId: det.id };
}

/** What {@linkcode importSeedFixtures} wrote. */
export type SeedFixturesResult = Pick<SeedSummary, "reference" | "factorFiles">;

/**
 * Imports the reference fixtures and every factor fixture of `year` inside the caller's
 * transaction (the first half of {@linkcode seedDatabase}, for tests and demos that write their
 * own entries). Throws a {@linkcode SeedError} for a year without fixtures.
 *
 * @example
 * ```ts ignore
 * import { importSeedFixtures } from "./seed.ts";
 * import { transaction } from "../db/transaction.ts";
 * await transaction(db.sql, (tx) => importSeedFixtures(tx, 2025));
 * ```
 */
export async function importSeedFixtures(
  tx: Queryable,
  year: number,
): Promise<SeedFixturesResult> {
  return await importFixtures(tx, year, readFactorFixtures(year));
}

async function importFixtures(
  tx: Queryable,
  year: number,
  factorTables: ReadonlyMap<string, CsvTable>,
): Promise<SeedFixturesResult> {
  const reference = {} as Record<ReferenceKind, UpsertCounts>;
  for (const kind of REFERENCE_KINDS) {
    const path = `fixtures/reference/${kind}.csv`;
    const parsed = parseReferenceText(kind, path, fixtureText(`reference/${kind}.csv`));
    if (parsed.rowErrorsCount) {
      const first = parsed.rowErrors[0];
      throw new SeedError(`${path}: ${describeRowError(first)}`);
    }
    reference[kind] = await upsertReference(tx, kind, parsed.rows);
  }
  const factorFiles: SeedFactorFile[] = [];
  for (const [stem, table] of factorTables) {
    const file = `fixtures/factors/${year}/${stem}.csv`;
    const result = await importFactors(tx, {
      file,
      table,
      year,
      target: factorTarget(stem),
      strict: true,
    });
    factorFiles.push({
      file,
      inserted: result.inserted,
      updated: result.updated,
      unchanged: result.unchanged,
    });
  }
  return { reference, factorFiles };
}

async function refuseReseed(db: Database, unitCodes: readonly string[], year: number) {
  const [row] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from data_entries e
      join carbon_report_modules m on m.id = e.carbon_report_module_id
      join carbon_reports r on r.id = m.carbon_report_id
      join units u on u.id = r.unit_id
    where r.year = ${year} and u.code = any(${unitCodes as string[]}::text[])`;
  if (row.n > 0) {
    throw new SeedError(
      `units ${unitCodes[0]}..${unitCodes.at(-1)} already have ${row.n} entries for ${year} ` +
        "(a seed stopped part-way keeps the batches it committed): seed an empty database (the " +
        "embedded one: another REMATCH_DATA_DIR, or its directory removed; a server: a new " +
        "database) or another year, so the data stays reproducible",
    );
  }
}

interface DetCounts {
  rejected: number;
  computeErrors: number;
  warnings: number;
}

function requireInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${value}`);
  }
}

/** Entries, emission rows and kg per det of the seeded units' year: one aggregate read. */
async function countSeeded(db: Database, unitCodes: readonly string[], year: number) {
  const rollups = [...ROLLUP_EMISSION_TYPE_IDS];
  return await db.sql<{ det: number; entries: number; rows: number; kg: number }[]>`
    with seeded as (
      select e.id, e.data_entry_type_id as det from data_entries e
        join carbon_report_modules m on m.id = e.carbon_report_module_id
        join carbon_reports r on r.id = m.carbon_report_id
        join units u on u.id = r.unit_id
      where r.year = ${year} and u.code = any(${unitCodes as string[]}::text[])
    ),
    entries as (select det, count(*)::int as n from seeded group by det),
    emissions as (
      select s.det, count(*)::int as n,
        coalesce(sum(x.kg_co2eq) filter (where x.emission_type_id <> all(${rollups}::int[])), 0)
          as kg
      from seeded s join data_entry_emissions x on x.data_entry_id = s.id
      group by s.det
    )
    select e.det, e.n as entries, coalesce(x.n, 0) as rows, coalesce(x.kg, 0)::float8 as kg
    from entries e left join emissions x on x.det = e.det
    order by e.det`;
}

/**
 * Seeds a database with reproducible demo data: the reference fixtures (locations, rooms,
 * rates) and every factor fixture of the year in one transaction, then `units × entriesPerDet`
 * generated entries per det through the bulk write path, `batchSize` per transaction (module
 * stats refreshed once at the end), so memory stays flat whatever the size. Refuses ({@linkcode SeedError}) a year without factor
 * fixtures and units that already have entries for the year.
 *
 * @example
 * ```ts ignore
 * import { openDatabase } from "../db/connection.ts";
 * import { seedDatabase } from "./seed.ts";
 * await using db = await openDatabase();
 * const summary = await seedDatabase(db, { units: 2, entriesPerDet: 3 });
 * console.table(summary.dets);
 * ```
 */
export async function seedDatabase(db: Database, options: SeedOptions = {}): Promise<SeedSummary> {
  const {
    units = 5,
    entriesPerDet = 20,
    year = 2025,
    randomSeed = 1,
    dets = SEED_DETS,
    batchSize = 5000,
    onProgress,
  } = options;
  requireInteger("units", units, 1);
  requireInteger("entriesPerDet", entriesPerDet, 0);
  requireInteger("batchSize", batchSize, 1);
  const factorTables = readFactorFixtures(year);
  const readFixture = (name: string) => fixtureCsv(`reference/${name}`);
  const catalog = catalogFromTables(year, {
    locations: readFixture("locations.csv"),
    rooms: readFixture("rooms.csv"),
    rates: readFixture("rates.csv"),
    factors: Object.fromEntries(factorTables),
  });
  const generateOptions = { units, entriesPerDet, year, seed: randomSeed, dets };
  // Fails here, before anything is written, when the fixtures cannot feed a det.
  const entries = generateEntries(catalog, generateOptions);
  const total = generatedEntryCount(generateOptions);
  const unitCodes = Array.from({ length: units }, (_, i) => seedUnitCode(i));
  await refuseReseed(db, unitCodes, year);

  const imported = await transaction(db.sql, (tx) => importFixtures(tx, year, factorTables));

  const counts = new Map<number, DetCounts>();
  const problems: { dataEntryType: DetName; message: string }[] = [];
  const note = (entry: NewEntry, kind: keyof DetCounts, message: string) => {
    let c = counts.get(entry.det.id);
    if (!c) counts.set(entry.det.id, c = { rejected: 0, computeErrors: 0, warnings: 0 });
    c[kind]++;
    if (problems.length < MAX_LISTED_PROBLEMS) {
      problems.push({ dataEntryType: entry.det.name, message: `${entry.unitCode}: ${message}` });
    }
  };
  let written = 0;
  let companionsCreated = 0;
  let emissionsInserted = 0;
  await writeEntryBatches(db, entries, {
    batchSize,
    onBatch(batch, result) {
      for (const p of result.rejected) note(batch[p.index], "rejected", p.message);
      for (const p of result.computeErrors) note(batch[p.index], "computeErrors", p.message);
      for (const p of result.warnings) note(batch[p.index], "warnings", p.message);
      companionsCreated += result.companionsCreated;
      emissionsInserted += result.emissionsInserted;
      written += batch.length;
      onProgress?.({ written, total });
    },
  });

  const stored = new Map((await countSeeded(db, unitCodes, year)).map((r) => [r.det, r]));
  const perDet = listDataEntryTypes()
    .filter((d) => stored.has(d.id) || counts.has(d.id))
    .map((d): SeedDetSummary => {
      const s = stored.get(d.id);
      const c = counts.get(d.id);
      return {
        dataEntryType: d.name,
        dataEntryTypeId: d.id,
        entries: s?.entries ?? 0,
        emissionRows: s?.rows ?? 0,
        kgCo2eq: reportedKg(s?.kg ?? 0),
        rejected: c?.rejected ?? 0,
        computeErrors: c?.computeErrors ?? 0,
        warnings: c?.warnings ?? 0,
      };
    });
  return {
    year,
    units,
    entriesPerDet,
    randomSeed,
    ...imported,
    entriesGenerated: written,
    companionsCreated,
    emissionsInserted,
    dets: perDet,
    problems,
  };
}
