// Reproducible demo entries: a seeded PRNG walks a catalog of valid classification values (read
// from the fixture CSVs) and yields entries for every det, lazily. Pure: no I/O, no clock.
import type { NewEntry } from "../db/entries.ts";
import type { EntryData } from "../handlers/types.ts";
import type { CsvTable } from "../imports/csv.ts";
import { type DetName, getDataEntryType, listDataEntryTypes } from "../reference/enums.ts";

/**
 * A det the generator writes entries for: every det but embodied energy (32), whose entries are
 * the companions of building (30) entries.
 */
export type SeedDet = Exclude<DetName, "building_embodied_energy">;

/** An airport: its IATA code and country. */
export interface SeedAirport {
  readonly iataCode: string;
  readonly countryCode: string;
}

/** A railway station: its name and country. */
export interface SeedStation {
  readonly name: string;
  readonly countryCode: string;
}

/** A room whose (building, room type) has a building factor. */
export interface SeedRoom {
  readonly buildingName: string;
  readonly roomName: string;
  readonly roomType: string;
  readonly surfaceSquareMeter: number | null;
}

/** An equipment factor's kind and subkind. */
export interface SeedEquipmentKind {
  readonly equipmentClass: string;
  readonly subClass: string | null;
}

/** A purchase-common factor's codes, currency and description. */
export interface SeedPurchaseKind {
  readonly code: string;
  readonly additionalCode: string | null;
  readonly currency: string;
  readonly description: string;
}

/** An energy-combustion factor's fuel and its unit (kWh, l, kg, ...). */
export interface SeedFuel {
  readonly name: string;
  readonly unit: string;
}

/** A cloud factor's provider, service type and currency. */
export interface SeedCloudKind {
  readonly provider: string;
  readonly serviceType: string;
  readonly currency: string;
}

/** An AI factor's provider and usage type. */
export interface SeedAiKind {
  readonly provider: string;
  readonly usageType: string;
}

/** A process-emission factor's category and subcategory. */
export interface SeedProcessKind {
  readonly category: string;
  readonly subcategory: string | null;
}

/** Classification values that exist in the reference and factor fixtures of one year. */
export interface SeedCatalog {
  readonly airports: readonly SeedAirport[];
  readonly stations: readonly SeedStation[];
  readonly rooms: readonly SeedRoom[];
  /** Currencies with an exchange rate in the seed year. */
  readonly currencies: readonly string[];
  /** Equipment kinds by det (scientific, it, other). */
  readonly equipment: Readonly<Partial<Record<DetName, readonly SeedEquipmentKind[]>>>;
  /** Purchase-common kinds by det (60–66). */
  readonly purchases: Readonly<Partial<Record<DetName, readonly SeedPurchaseKind[]>>>;
  readonly fuels: readonly SeedFuel[];
  readonly clouds: readonly SeedCloudKind[];
  readonly aiServices: readonly SeedAiKind[];
  readonly processes: readonly SeedProcessKind[];
  readonly additionalPurchases: readonly string[];
}

/** The parsed fixture files a catalog is derived from. */
export interface SeedTables {
  /** `transport_mode,name,iata_code,country_code,...` */
  readonly locations: CsvTable;
  /** `building_name,room_name,room_type,room_surface_square_meter` */
  readonly rooms: CsvTable;
  /** `year,currency,eur_per_unit` */
  readonly rates: CsvTable;
  /** The year's factor files by file name without `.csv` (`plane`, `equipment`, ...). */
  readonly factors: Readonly<Record<string, CsvTable>>;
}

const cell = (row: { cells: Readonly<Record<string, string>> }, column: string): string =>
  row.cells[column] ?? "";
const orNull = (text: string): string | null => (text === "" ? null : text);

function rowsOf(tables: SeedTables, file: string): CsvTable["rows"] {
  return tables.factors[file]?.rows ?? [];
}

function routed<T>(
  rows: CsvTable["rows"],
  column: string,
  kind: (row: CsvTable["rows"][number]) => T,
): Partial<Record<DetName, T[]>> {
  const byDet: Partial<Record<DetName, T[]>> = {};
  for (const row of rows) {
    const det = cell(row, column) as DetName;
    (byDet[det] ??= []).push(kind(row));
  }
  return byDet;
}

/**
 * Derives the catalog of one year from its parsed fixture files: every kind the generator picks
 * has a factor (or a location, room or rate) in them, so the generated entries get emissions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCsv } from "../imports/csv.ts";
 * import { catalogFromTables } from "./generate.ts";
 * const catalog = catalogFromTables(2025, {
 *   locations: parseCsv("locations.csv", "transport_mode,name,iata_code,country_code\nplane,Geneva,GVA,CH\n"),
 *   rooms: parseCsv("rooms.csv", "building_name,room_name,room_type,room_surface_square_meter\n"),
 *   rates: parseCsv("rates.csv", "year,currency,eur_per_unit\n2025,eur,1\n2024,chf,1.05\n"),
 *   factors: {},
 * });
 * assert.deepEqual(catalog.airports, [{ iataCode: "GVA", countryCode: "CH" }]);
 * assert.deepEqual(catalog.currencies, ["eur"]);
 * ```
 */
export function catalogFromTables(year: number, tables: SeedTables): SeedCatalog {
  const locations = tables.locations.rows;
  const buildingKinds = new Set(
    rowsOf(tables, "building").map((r) =>
      `${cell(r, "building_name")}\u0000${cell(r, "room_type")}`
    ),
  );
  return {
    airports: locations
      .filter((r) => cell(r, "transport_mode") === "plane" && cell(r, "iata_code") !== "")
      .map((r) => ({ iataCode: cell(r, "iata_code"), countryCode: cell(r, "country_code") })),
    stations: locations
      .filter((r) => cell(r, "transport_mode") === "train")
      .map((r) => ({ name: cell(r, "name"), countryCode: cell(r, "country_code") })),
    rooms: tables.rooms.rows
      .filter((r) =>
        buildingKinds.has(`${cell(r, "building_name")}\u0000${cell(r, "room_type").toLowerCase()}`)
      )
      .map((r) => ({
        buildingName: cell(r, "building_name"),
        roomName: cell(r, "room_name"),
        roomType: cell(r, "room_type").toLowerCase(),
        surfaceSquareMeter: cell(r, "room_surface_square_meter") === ""
          ? null
          : Number(cell(r, "room_surface_square_meter")),
      })),
    currencies: tables.rates.rows
      .filter((r) => Number(cell(r, "year")) === year)
      .map((r) => cell(r, "currency").toLowerCase()),
    equipment: routed(rowsOf(tables, "equipment"), "equipment_category", (r) => ({
      equipmentClass: cell(r, "equipment_class"),
      subClass: orNull(cell(r, "sub_class")),
    })),
    purchases: routed(rowsOf(tables, "purchase_common"), "purchase_category", (r) => ({
      code: cell(r, "purchase_institutional_code"),
      additionalCode: orNull(cell(r, "purchase_additional_code")),
      currency: cell(r, "currency").toLowerCase(),
      description: cell(r, "purchase_institutional_description"),
    })),
    fuels: rowsOf(tables, "energy_combustion").map((r) => ({
      name: cell(r, "name"),
      unit: cell(r, "unit"),
    })),
    clouds: rowsOf(tables, "external_clouds").map((r) => ({
      provider: cell(r, "provider"),
      serviceType: cell(r, "service_type"),
      currency: cell(r, "currency").toLowerCase(),
    })),
    aiServices: rowsOf(tables, "external_ai").map((r) => ({
      provider: cell(r, "provider"),
      usageType: cell(r, "usage_type"),
    })),
    processes: rowsOf(tables, "process_emissions").map((r) => ({
      category: cell(r, "category"),
      subcategory: orNull(cell(r, "subcategory")),
    })),
    additionalPurchases: rowsOf(tables, "additional_purchases").map((r) => cell(r, "name")),
  };
}

// ---- the PRNG ---------------------------------------------------------------------------------

/** Murmur3's 32-bit finaliser: spreads nearby integers over the whole 32-bit range. */
function mix32(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A small seeded PRNG (mulberry32) with the draws the generator needs. Same seed, same sequence,
 * on every platform: only 32-bit integer arithmetic.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Random } from "./generate.ts";
 * const a = new Random(7), b = new Random(7);
 * assert.equal(a.next(), b.next());
 * assert.ok(new Random(1).int(1, 6) <= 6);
 * ```
 */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** One value by weight: `[[value, weight], ...]`. */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    const total = choices.reduce((sum, [, w]) => sum + w, 0);
    let x = this.next() * total;
    for (const [value, weight] of choices) {
      x -= weight;
      if (x < 0) return value;
    }
    return choices[choices.length - 1][0];
  }

  /** A log-uniform amount in [min, max] with `decimals` decimals: many small, few large. */
  amount(min: number, max: number, decimals = 2): number {
    const value = min * Math.pow(max / min, this.next());
    const scale = 10 ** decimals;
    return Math.round(value * scale) / scale;
  }

  /** A multiple of `step` in [min, max]. */
  step(min: number, max: number, step: number): number {
    const steps = Math.round((max - min) / step);
    return Math.round((min + this.int(0, steps) * step) * 1e6) / 1e6;
  }

  /** An ISO date (YYYY-MM-DD) in `year`. */
  date(year: number): string {
    const month = this.int(1, 12);
    const day = this.int(1, 28);
    return `${year}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
  }
}

// ---- one row per det --------------------------------------------------------------------------

/** Where an entry sits: what its generator may use besides the PRNG and the catalog. */
interface EntrySlot {
  readonly unitCode: string;
  readonly year: number;
  /** 0-based position of the entry among its unit's entries of this det. */
  readonly index: number;
}

/** How to write entries of one det: what the catalog must hold, and one entry's data. */
interface DetGenerator {
  /** The catalog values this det draws from (none: the det cannot be generated). */
  readonly needs?: {
    readonly values: (catalog: SeedCatalog) => readonly unknown[];
    /** The fixtures the values come from, for the error when there are none. */
    readonly source: string;
  };
  readonly data: (random: Random, catalog: SeedCatalog, slot: EntrySlot) => EntryData;
}

const SUPPLIERS = ["Fisher Scientific", "Dell", "Sigma-Aldrich", "Migros", "Digitec", "Thermo"];
const CLOUD_CURRENCIES = ["chf", "eur", "usd"];
/** Plausible yearly quantity ranges by fuel unit. */
const FUEL_QUANTITIES: Readonly<Record<string, readonly [number, number]>> = {
  kwh: [1_000, 200_000],
  l: [100, 20_000],
  kg: [100, 50_000],
};
/** Plausible yearly kg by gas: refrigerant leaks are small, CO2 releases larger. */
const PROCESS_QUANTITIES: Readonly<Record<string, readonly [number, number]>> = {
  co2: [10, 5_000],
  ch4: [1, 200],
  n2o: [0.1, 50],
  refrigerants: [0.1, 15],
  refrigerant: [0.1, 15],
};

/** Requests per user per day, by how common each band is. */
const REQUEST_BANDS = [["1_5", 35], ["5_20", 40], ["20_100", 20], ["gt_100", 5]] as const;

function withOptional(data: EntryData, key: string, value: unknown): EntryData {
  return value === null || value === undefined ? data : { ...data, [key]: value };
}

function headcount(fte: (random: Random) => number, label: string): DetGenerator {
  return {
    data(random, _catalog, slot) {
      const serial = String(slot.index + 1).padStart(5, "0");
      return {
        name: `${label} ${slot.index + 1}`,
        user_institutional_id: `${slot.unitCode}-${label[0]}${serial}`,
        fte: fte(random),
      };
    },
  };
}

function equipment(det: DetName): DetGenerator {
  return {
    needs: { values: (catalog) => catalog.equipment[det] ?? [], source: "equipment.csv" },
    data(random, catalog, slot) {
      const kind = random.pick(catalog.equipment[det]!);
      let data: EntryData = {
        name: [kind.equipmentClass, kind.subClass].filter(Boolean).join(" "),
        equipment_class: kind.equipmentClass,
        equipment_id: `${slot.unitCode}-${det}-${slot.index + 1}`,
      };
      data = withOptional(data, "sub_class", kind.subClass);
      // Half the entries give their own hours; the others fall back to the factor's defaults.
      if (random.chance(0.5)) {
        const active = random.int(0, 80);
        data = {
          ...data,
          active_usage_hours_per_week: active,
          standby_usage_hours_per_week: random.int(0, 168 - active),
        };
      }
      return data;
    },
  };
}

function purchase(det: DetName): DetGenerator {
  return {
    needs: {
      values: (catalog) => (catalog.currencies.length ? catalog.purchases[det] ?? [] : []),
      source: "purchase_common.csv (and rates.csv for the year)",
    },
    data(random, catalog, slot) {
      const kind = random.pick(catalog.purchases[det]!);
      const data: EntryData = {
        name: kind.description || `Purchase ${slot.index + 1}`,
        total_spent_amount: random.amount(20, 150_000),
        // Mostly in the factor's own currency; the rest exercise the exchange rates.
        currency: random.chance(0.7) ? kind.currency : random.pick(catalog.currencies),
        purchase_institutional_code: kind.code,
        supplier: random.pick(SUPPLIERS),
      };
      return withOptional(data, "purchase_additional_code", kind.additionalCode);
    },
  };
}

const GENERATORS: { readonly [K in SeedDet]: DetGenerator } = {
  member: headcount((r) => (r.chance(0.6) ? 1 : r.step(0.1, 0.9, 0.1)), "Member"),
  student: headcount((r) => r.step(0.5, 40, 0.5), "Students"),
  scientific: equipment("scientific"),
  it: equipment("it"),
  other: equipment("other"),
  plane: {
    needs: {
      values: (catalog) => catalog.airports.length > 1 ? catalog.airports : [],
      source: "locations.csv (two airports or more)",
    },
    data(random, catalog, slot) {
      // Most trips start at home (a Swiss airport when there is one).
      const home = catalog.airports.filter((a) => a.countryCode === "CH");
      const origin = home.length && random.chance(0.6)
        ? random.pick(home)
        : random.pick(catalog.airports);
      const destinations = catalog.airports.filter((a) => a.iataCode !== origin.iataCode);
      return {
        origin_iata: origin.iataCode,
        destination_iata: random.pick(destinations).iataCode,
        cabin_class: random.weighted([["economy", 75], ["business", 20], ["first", 5]]),
        number_of_trips: random.weighted([[1, 70], [2, 22], [3, 6], [4, 2]]),
        user_institutional_id: `${slot.unitCode}-M${String(random.int(1, 50)).padStart(5, "0")}`,
        departure_date: random.date(slot.year),
      };
    },
  },
  train: {
    needs: {
      values: (catalog) => catalog.stations.length > 1 ? catalog.stations : [],
      source: "locations.csv (two stations or more)",
    },
    data(random, catalog, slot) {
      const home = catalog.stations.filter((s) => s.countryCode === "CH");
      const origin = home.length && random.chance(0.7)
        ? random.pick(home)
        : random.pick(catalog.stations);
      const destination = random.pick(catalog.stations.filter((s) => s !== origin));
      return {
        origin_name: origin.name,
        origin_country_code: origin.countryCode,
        destination_name: destination.name,
        destination_country_code: destination.countryCode,
        cabin_class: random.weighted([["second", 80], ["first", 20]]),
        number_of_trips: random.weighted([[1, 75], [2, 20], [3, 5]]),
        departure_date: random.date(slot.year),
      };
    },
  },
  building: {
    needs: {
      values: (catalog) => catalog.rooms,
      source: "rooms.csv and building.csv (rooms whose building and room type have a factor)",
    },
    data(random, catalog, slot) {
      const room = random.pick(catalog.rooms);
      const data: EntryData = {
        building_name: room.buildingName,
        room_name: room.roomName,
        room_type: room.roomType,
        room_allocation_ratio: random.chance(0.6) ? 1 : random.step(0.1, 0.9, 0.05),
      };
      // Every other entry states its surface, which gives it an embodied-energy companion (32).
      return room.surfaceSquareMeter !== null && slot.index % 2 === 0
        ? { ...data, room_surface_square_meter: room.surfaceSquareMeter }
        : data;
    },
  },
  energy_combustion: {
    needs: { values: (catalog) => catalog.fuels, source: "energy_combustion.csv" },
    data(random, catalog) {
      const fuel = random.pick(catalog.fuels);
      const [min, max] = FUEL_QUANTITIES[fuel.unit.toLowerCase()] ?? [10, 10_000];
      return { name: fuel.name, quantity: random.amount(min, max) };
    },
  },
  external_clouds: {
    needs: { values: (catalog) => catalog.clouds, source: "external_clouds.csv" },
    data(random, catalog) {
      const kind = random.pick(catalog.clouds);
      const others = CLOUD_CURRENCIES.filter((c) => catalog.currencies.includes(c));
      const currency = others.length && random.chance(0.2) ? random.pick(others) : kind.currency;
      return {
        provider: kind.provider,
        service_type: kind.serviceType,
        spent_amount: random.amount(10, 60_000),
        currency,
      };
    },
  },
  external_ai: {
    needs: { values: (catalog) => catalog.aiServices, source: "external_ai.csv" },
    data(random, catalog) {
      const kind = random.pick(catalog.aiServices);
      return {
        provider: kind.provider,
        usage_type: kind.usageType,
        requests_per_user_per_day: random.weighted(REQUEST_BANDS),
        fte_count: random.step(0.1, 25, 0.1),
      };
    },
  },
  process_emissions: {
    needs: { values: (catalog) => catalog.processes, source: "process_emissions.csv" },
    data(random, catalog) {
      const kind = random.pick(catalog.processes);
      const [min, max] = PROCESS_QUANTITIES[kind.category.toLowerCase()] ?? [0.1, 100];
      return withOptional(
        { category: kind.category, quantity: random.amount(min, max) },
        "subcategory",
        kind.subcategory,
      );
    },
  },
  scientific_equipment: purchase("scientific_equipment"),
  it_equipment: purchase("it_equipment"),
  consumable_accessories: purchase("consumable_accessories"),
  biological_chemical_gaseous_product: purchase("biological_chemical_gaseous_product"),
  services: purchase("services"),
  vehicles: purchase("vehicles"),
  other_purchases: purchase("other_purchases"),
  additional_purchases: {
    needs: { values: (catalog) => catalog.additionalPurchases, source: "additional_purchases.csv" },
    data(random, catalog) {
      const liquid = random.chance(0.4);
      return {
        name: random.pick(catalog.additionalPurchases),
        unit: liquid ? "l" : "kg",
        annual_consumption: random.amount(1, 20_000),
        coef_to_kg: liquid ? random.step(0.5, 1.5, 0.05) : 1,
      };
    },
  },
};

/** Every det the generator writes, in det id order. */
export const SEED_DETS: readonly SeedDet[] = listDataEntryTypes()
  .map((d) => d.name)
  .filter((name): name is SeedDet => name in GENERATORS);

// ---- the stream -------------------------------------------------------------------------------

/** A generated entry: a {@linkcode NewEntry} whose data is a plain object. */
export type GeneratedEntry = NewEntry & { readonly data: EntryData };

/** What to generate. */
export interface GenerateOptions {
  /** Number of units (`U0001`, `U0002`, ...). */
  readonly units: number;
  /** Entries per det and unit. */
  readonly entriesPerDet: number;
  /** The report year of every entry. */
  readonly year: number;
  /** The PRNG seed (`--random-seed`). */
  readonly seed: number;
  /** Dets to generate. @default SEED_DETS */
  readonly dets?: readonly SeedDet[];
}

/** The code of the unit at 0-based `index`. */
export function seedUnitCode(index: number): string {
  return `U${String(index + 1).padStart(4, "0")}`;
}

/** Number of entries {@linkcode generateEntries} yields for these options. */
export function generatedEntryCount(options: GenerateOptions): number {
  return options.units * options.entriesPerDet * (options.dets ?? SEED_DETS).length;
}

/**
 * Yields demo entries lazily, unit by unit and det by det. Each (unit, det) pair draws from its
 * own PRNG stream derived from the seed, so the same options give the same entries, and a run
 * with more entries or units starts with the entries of a smaller one. Throws a RangeError up
 * front when the catalog has no values for a requested det.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateEntries, type SeedCatalog } from "./generate.ts";
 * const catalog: SeedCatalog = {
 *   airports: [], stations: [], rooms: [], currencies: ["eur"], equipment: {}, purchases: {},
 *   fuels: [{ name: "Natural gas", unit: "kWh" }], clouds: [], aiServices: [], processes: [], additionalPurchases: [],
 * };
 * const entries = [...generateEntries(catalog, {
 *   units: 2, entriesPerDet: 3, year: 2025, seed: 1, dets: ["energy_combustion"],
 * })];
 * assert.equal(entries.length, 6);
 * assert.equal(entries[0].unitCode, "U0001");
 * assert.equal(entries[0].data.name, "Natural gas");
 * ```
 */
export function generateEntries(
  catalog: SeedCatalog,
  options: GenerateOptions,
): Generator<GeneratedEntry> {
  const dets = options.dets ?? SEED_DETS;
  for (const name of dets) {
    const generator = GENERATORS[name];
    if (!generator) throw new RangeError(`the seed cannot generate ${name} entries`);
    if (generator.needs && generator.needs.values(catalog).length === 0) {
      throw new RangeError(
        `cannot generate ${name} entries: no usable values in ${generator.needs.source}`,
      );
    }
  }
  return streamEntries(catalog, options, dets);
}

function* streamEntries(
  catalog: SeedCatalog,
  options: GenerateOptions,
  dets: readonly SeedDet[],
): Generator<GeneratedEntry> {
  for (let unit = 0; unit < options.units; unit++) {
    const unitCode = seedUnitCode(unit);
    for (const name of dets) {
      const det = getDataEntryType(name);
      const random = new Random(
        mix32(mix32(mix32(options.seed) ^ Math.imul(unit + 1, 0x9e3779b1)) ^ det.id),
      );
      for (let index = 0; index < options.entriesPerDet; index++) {
        const data = GENERATORS[name].data(random, catalog, {
          unitCode,
          year: options.year,
          index,
        });
        yield { unitCode, year: options.year, det, data };
      }
    }
  }
}
