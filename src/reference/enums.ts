// Module types and data entry types (dets) of spec/domain.md §2. Ids are persisted: never renumber.
import { didYouMean } from "../text/did_you_mean.ts";

/** Module type ids by name. */
export const MODULE_TYPES = {
  headcount: 1,
  professional_travel: 2,
  buildings: 3,
  equipment: 4,
  purchase: 5,
  research_facilities: 6,
  external_cloud_and_ai: 7,
  process_emissions: 8,
} as const;

/** A module type name. */
export type ModuleTypeName = keyof typeof MODULE_TYPES;

/** Data entry type ids by name, with the module each belongs to. */
export const DATA_ENTRY_TYPES = {
  member: { id: 1, module: "headcount" },
  student: { id: 2, module: "headcount" },
  scientific: { id: 10, module: "equipment" },
  it: { id: 11, module: "equipment" },
  other: { id: 12, module: "equipment" },
  plane: { id: 20, module: "professional_travel" },
  train: { id: 21, module: "professional_travel" },
  building: { id: 30, module: "buildings" },
  energy_combustion: { id: 31, module: "buildings" },
  building_embodied_energy: { id: 32, module: "buildings" },
  external_clouds: { id: 40, module: "external_cloud_and_ai" },
  external_ai: { id: 41, module: "external_cloud_and_ai" },
  process_emissions: { id: 50, module: "process_emissions" },
  scientific_equipment: { id: 60, module: "purchase" },
  it_equipment: { id: 61, module: "purchase" },
  consumable_accessories: { id: 62, module: "purchase" },
  biological_chemical_gaseous_product: { id: 63, module: "purchase" },
  services: { id: 64, module: "purchase" },
  vehicles: { id: 65, module: "purchase" },
  other_purchases: { id: 66, module: "purchase" },
  additional_purchases: { id: 67, module: "purchase" },
} as const satisfies Record<string, { id: number; module: ModuleTypeName }>;

/** A data entry type name. */
export type DetName = keyof typeof DATA_ENTRY_TYPES;

/** A resolved data entry type. */
export interface DataEntryType {
  readonly id: number;
  readonly name: DetName;
  readonly moduleTypeId: number;
  readonly moduleName: ModuleTypeName;
}

const DETS: readonly DataEntryType[] = Object.entries(DATA_ENTRY_TYPES).map(([name, d]) => ({
  id: d.id,
  name: name as DetName,
  moduleTypeId: MODULE_TYPES[d.module],
  moduleName: d.module,
}));

/** Every data entry type, in id order. */
export function listDataEntryTypes(): readonly DataEntryType[] {
  return DETS;
}

/**
 * Finds a det by name (any case) or id (a number or a numeric string); undefined when unknown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findDataEntryType } from "./enums.ts";
 * assert.equal(findDataEntryType("20")?.name, "plane");
 * assert.equal(findDataEntryType(" plane ")?.id, 20);
 * assert.equal(findDataEntryType("Plane")?.id, 20);
 * assert.equal(findDataEntryType("laptop"), undefined);
 * ```
 */
export function findDataEntryType(nameOrId: string | number): DataEntryType | undefined {
  const text = String(nameOrId).trim();
  if (/^\d+$/.test(text)) return DETS.find((d) => d.id === Number(text));
  const name = text.toLowerCase();
  return DETS.find((d) => d.name === name);
}

/**
 * Why a det name or id is not one: the closest names when some are close, then every valid
 * name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unknownDataEntryType } from "./enums.ts";
 * assert.match(unknownDataEntryType("plnae"), /^unknown data entry type "plnae" \(did you mean plane\?\): expected one of member, student, .*, additional_purchases or an id$/);
 * ```
 */
export function unknownDataEntryType(nameOrId: string | number): string {
  const names = DETS.map((d) => d.name);
  return `unknown data entry type "${nameOrId}"${didYouMean(String(nameOrId).trim(), names)}: ` +
    `expected one of ${names.join(", ")} or an id`;
}

/** Like {@linkcode findDataEntryType}, but throws a RangeError listing the valid names. */
export function getDataEntryType(nameOrId: string | number): DataEntryType {
  const det = findDataEntryType(nameOrId);
  if (!det) throw new RangeError(unknownDataEntryType(nameOrId));
  return det;
}

/** Finds a module type by name (any case) or id; undefined when unknown. */
export function findModuleType(
  nameOrId: string | number,
): { id: number; name: ModuleTypeName } | undefined {
  const text = String(nameOrId).trim();
  const entry = Object.entries(MODULE_TYPES).find(([name, id]) =>
    /^\d+$/.test(text) ? id === Number(text) : name === text.toLowerCase()
  );
  return entry ? { id: entry[1], name: entry[0] as ModuleTypeName } : undefined;
}

/** Room types a building room (and a building entry) may have. */
export const ROOM_TYPES = [
  "office",
  "miscellaneous",
  "laboratories",
  "archives",
  "libraries",
  "auditoriums",
] as const;
