// The shape of one handler row: everything the engine needs to know about a data entry type.
import type { z } from "zod";
import type { SettingName } from "../compute/settings.ts";
import type { DetName } from "../reference/enums.ts";

/** Factor lookup keys: trimmed strings, or null for a blank cell. */
export type Classification = Record<string, string | null>;

/** Factor numbers (and a few text values such as `energy_type`). */
export type FactorValues = Record<string, number | string>;

/** One factor row of a (det, year) set. */
export interface Factor {
  readonly id: number;
  readonly dataEntryTypeId: number;
  readonly emissionTypeId: number;
  readonly year: number | null;
  readonly classification: Classification;
  readonly values: FactorValues;
  /**
   * The import that last set `values` (null: set before imports were recorded); emission meta
   * names it in `factors_used`. Absent for factors that never came from the database.
   */
  readonly importId?: number | null;
}

/** An airport or railway station. */
export interface Location {
  readonly id: number;
  readonly transportMode: "plane" | "train";
  readonly name: string;
  readonly iataCode: string | null;
  readonly countryCode: string | null;
  readonly latitude: number;
  readonly longitude: number;
  readonly naturalKey: string;
}

/** A room of a building. */
export interface BuildingRoom {
  readonly buildingName: string;
  readonly roomName: string;
  readonly roomType: string | null;
  readonly surfaceSquareMeter: number | null;
}

/** Reference data a handler may read at compute time. */
export type ReferenceKind = "locations" | "rooms" | "rates";

/** Reference data read once per slice (or per entry on the write path). */
export interface ReferenceData {
  /** Locations by natural key (`plane:GVA`, `train:ch:geneva`). */
  readonly locations: ReadonlyMap<string, Location>;
  /** Rooms by `building_name` + "\u0000" + `room_name`. */
  readonly rooms: ReadonlyMap<string, BuildingRoom>;
  /** EUR per unit by `year:currency`. */
  readonly rates: ReadonlyMap<string, number>;
}

/** Entry data after validation: loose JSON, the schema's fields normalised. */
export type EntryData = Record<string, unknown>;

/** The formula's inputs: entry data, pre-compute output and the slice year. */
export type ComputeVars = EntryData & { readonly _year: number };

/** What a formula returns for one factor: the kg and what else the row records. */
export interface FormulaResult {
  readonly kg: number;
  readonly additionalValue?: number | null;
  /** ctx keys that fed the formula, stored in the row's meta. */
  readonly meta?: Record<string, unknown>;
}

/** The (det, year) factor set with memoised indexes; every lookup of a slice reads it. */
export interface FactorLookup {
  readonly year: number;
  readonly factors: readonly Factor[];
  byId(id: number): Factor | undefined;
  /** Factors (id order) whose classification[field] equals value (null matches null/absent). */
  where(field: string, value: string | null): readonly Factor[];
  /** A memoised derived index of this set, built once per key. */
  memo<T>(key: string, build: (factors: readonly Factor[]) => T): T;
}

/** Where a computation's factors come from. */
export type FactorSource =
  /** the entry's JSON link (`data.primary_factor_id`) */
  | { readonly kind: "link" }
  /** a Strategy B query over the (det, year) set */
  | {
    readonly kind: "query";
    readonly select: (vars: ComputeVars, set: FactorLookup) => readonly Factor[];
  };

/** What a formula may read besides the vars and its factor. */
export interface FormulaEnv {
  readonly year: number;
  readonly reference: ReferenceData;
  /** Weeks in a year for usage-hour formulas. @default 52 */
  readonly weeksPerYear: number;
}

/** One computation of an entry: an emission type, its factors and its formula. */
export interface Computation {
  readonly emissionTypeId: number;
  readonly source: FactorSource;
  /** kg for one factor, or null for "none" (no row). Throw EntryComputeError for a per-entry error. */
  readonly formula: (vars: ComputeVars, factor: Factor, env: FormulaEnv) => FormulaResult | null;
}

/** Pre-compute outcome: extra vars, or none (no rows) with an optional warning. */
export type PreComputeResult =
  | { readonly vars: Record<string, unknown> }
  | { readonly none: true; readonly warning?: string };

/** A factor CSV's columns for one det (spec/factors-csv.md §1). */
export interface FactorColumns {
  /** Classification columns (C), in file-independent order. */
  readonly classification: readonly string[];
  /** Value columns (V). */
  readonly values: readonly string[];
  /** Columns that must be present in the header and non-blank in each row. */
  readonly required: readonly string[];
  /** V columns kept as text (all other V columns must be finite numbers ≥ 0). */
  readonly textValues?: readonly string[];
  /** Allowed values of enumerated columns. */
  readonly enums?: Readonly<Record<string, readonly string[]>>;
  /**
   * Checks of single classification cells: a message when the value is one no entry can look up
   * (entries normalise what they look up by; a factor written otherwise would never be used).
   */
  readonly cellChecks?: Readonly<Record<string, (cell: string) => string | undefined>>;
  /** Columns that must hold integers, with their inclusive range. */
  readonly integers?: Readonly<Record<string, readonly [number, number]>>;
  /** A row-level check across columns; returns a message or undefined. */
  readonly check?: (values: FactorValues) => { column: string; message: string } | undefined;
}

/** How an entry links to its factor. */
export type LinkKind = "json" | "fk";

/** One row of the handler table. */
export interface Handler {
  /** The det this row serves. */
  readonly det: DetName;
  /** JSON link (factor id stored on the entry) or FK link (derived at compute time). */
  readonly link: LinkKind;
  /** Rule L kind field (JSON link only). */
  readonly kindField?: string;
  /** Rule L subkind field. */
  readonly subkindField?: string;
  /** The override-key-first rule's code field (purchase common only). */
  readonly kindFieldOverride?: string;
  /** Validates and normalises entry data; unknown keys are kept. */
  readonly entrySchema: z.ZodType<EntryData>;
  /** The factor CSV's columns. */
  readonly factorColumns: FactorColumns;
  /** The emission type of a factor row, or undefined when it cannot be resolved. */
  readonly factorEmissionType: (classification: Classification) => number | undefined;
  /** What a factor row must hold for its emission type to resolve, for the import's error. */
  readonly factorEmissionTypeExpected?: string;
  /** Reference data the pre-compute or formula reads. */
  readonly reference: readonly ReferenceKind[];
  /** Settings the formulas read (recorded with the slice state: a change makes it stale). */
  readonly settings?: readonly SettingName[];
  /**
   * Value fields that steer a lookup rather than only feed a formula (read by `preCompute` or a
   * `select`, e.g. plane haul bands): a change of one makes the rematch read the whole slice,
   * where a change of any other numeric value reads only the entries using that factor.
   */
  readonly structuralValues: readonly string[];
  /** Derives vars from reference data and the factor set before the computations run. */
  readonly preCompute?: (
    data: EntryData,
    reference: ReferenceData,
    set: FactorLookup,
  ) => PreComputeResult;
  /** The entry's computations, in emission order; the first one types an override row. */
  readonly computations: (data: EntryData) => readonly Computation[];
  /**
   * Text fields whose non-blank values are unique among this det's entries of one module
   * (enforced at write and by a unique index of the migrations).
   */
  readonly uniqueInModule?: readonly string[];
  /** Rollup type added when more than one leaf row is produced. */
  readonly rollupEmissionTypeId?: number;
  /**
   * An entry of another det kept in step with this one (same module): created or updated when
   * `derive` returns data, deleted when it returns null or this entry is deleted. The companion's
   * `data_entry_id` points back to this entry.
   */
  readonly companion?: {
    readonly det: DetName;
    readonly derive: (data: EntryData) => EntryData | null;
  };
}

/** A per-entry compute failure: the entry keeps its data and old rows. */
export class EntryComputeError extends Error {
  override name = "EntryComputeError";
}
