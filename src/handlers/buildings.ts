// Buildings: rooms (30, JSON link, five leaves + rollup), energy combustion (31, JSON link) and
// embodied energy (32, FK link, one row per factor).
import { nameTable } from "../text/names.ts";
import { emissionTypeByName, isInSubtree } from "../reference/emission_types.ts";
import { roomKey } from "../reference/natural_key.ts";
import { ROOM_TYPES } from "../reference/enums.ts";
import {
  entryObject,
  numberWithDefault,
  optionalLowerEnum,
  optionalNumber,
  optionalText,
  requiredNumber,
  requiredText,
  slug,
} from "./_fields.ts";
import { fixedType, LINKED, num, quantityTimesEf, varNum, whereOrFallback } from "./_formulas.ts";
import type { Classification, Factor, FactorLookup, Handler } from "./types.ts";

/** The five room leaves, in emission order, with the energy value each reads. */
const ROOM_ENERGIES = [
  { energy: "lighting", node: 60101, kwhKey: "lighting_kwh_per_square_meter" },
  { energy: "cooling", node: 60102, kwhKey: "cooling_kwh_per_square_meter" },
  { energy: "ventilation", node: 60103, kwhKey: "ventilation_kwh_per_square_meter" },
  { energy: "heating_elec", node: 60104, kwhKey: "heating_kwh_per_square_meter" },
  { energy: "heating_thermal", node: 60105, kwhKey: "heating_kwh_per_square_meter" },
] as const;

/** The room-specific leaf when the room type has one, else the generic node. */
function roomLeaf(energy: string, roomType: unknown): number {
  const specific = roomType
    ? emissionTypeByName(`buildings__rooms__${energy}__${roomType}`)
    : undefined;
  return specific?.id ?? emissionTypeByName(`buildings__rooms__${energy}`)!.id;
}

// Conversion per leaf, decided from the leaf's ancestry so generic and specific leaves agree.
function roomConversion(leaf: number, factor: Factor): number {
  const raw = num(factor.values, "conversion_factor");
  const conversion = raw === undefined || raw === 0 ? 1 : raw;
  const energyType = String(factor.values.energy_type ?? "").toLowerCase();
  if (isInSubtree(leaf, 60104)) return energyType === "electric" ? conversion : 0;
  if (isInSubtree(leaf, 60105)) return energyType === "thermal" ? conversion : 0;
  return 1;
}

const buildingRooms: Handler = {
  det: "building",
  link: "json",
  kindField: "building_name",
  subkindField: "room_type",
  entrySchema: entryObject({
    building_name: requiredText(),
    room_name: requiredText(),
    room_type: optionalLowerEnum(ROOM_TYPES),
    room_allocation_ratio: numberWithDefault(1, { min: 0, max: 1 }),
    room_surface_square_meter: optionalNumber({ min: 0 }),
    note: optionalText(),
  }),
  factorColumns: {
    classification: ["building_name", "room_type"],
    values: [
      "ef_kg_co2eq_per_kwh",
      "heating_kwh_per_square_meter",
      "cooling_kwh_per_square_meter",
      "ventilation_kwh_per_square_meter",
      "lighting_kwh_per_square_meter",
      "energy_type",
      "conversion_factor",
    ],
    // A blank room_type is the building's generic factor (entries without a room type).
    required: [
      "building_name",
      "ef_kg_co2eq_per_kwh",
      "heating_kwh_per_square_meter",
      "cooling_kwh_per_square_meter",
      "ventilation_kwh_per_square_meter",
      "lighting_kwh_per_square_meter",
      "energy_type",
    ],
    textValues: ["energy_type"],
    enums: { energy_type: ["electric", "thermal"], room_type: ROOM_TYPES },
  },
  factorEmissionType: fixedType(60100),
  reference: ["rooms"],
  // energy_type steers the heating leaves, but it is text: any change of it reads the slice.
  structuralValues: [],
  preCompute(data, reference) {
    const room = reference.rooms.get(roomKey(String(data.building_name), String(data.room_name)));
    if (!room || room.surfaceSquareMeter === null) {
      const which = `room "${data.room_name}" of building "${data.building_name}"`;
      return {
        none: true,
        warning: room
          ? `${which} has no surface (room_surface_square_meter is blank in the rooms data)`
          : `${which} not found`,
      };
    }
    return { vars: { room_surface_square_meter: room.surfaceSquareMeter } };
  },
  computations: (data) =>
    ROOM_ENERGIES.map(({ energy, kwhKey }) => {
      const leaf = roomLeaf(energy, data.room_type);
      return {
        emissionTypeId: leaf,
        source: LINKED,
        formula(vars: Record<string, unknown>, factor: Factor) {
          const surface = varNum(vars, "room_surface_square_meter");
          const ratio = varNum(vars, "room_allocation_ratio") ?? 1;
          const kwhPerM2 = num(factor.values, kwhKey);
          const ef = num(factor.values, "ef_kg_co2eq_per_kwh");
          if (surface === undefined || kwhPerM2 === undefined || ef === undefined) return null;
          const conversion = roomConversion(leaf, factor);
          return {
            kg: surface * kwhPerM2 * ratio * ef * conversion,
            meta: {
              room_surface_square_meter: surface,
              room_allocation_ratio: ratio,
              conversion,
            },
          };
        },
      };
    }),
  rollupEmissionTypeId: 60100,
  companion: {
    det: "building_embodied_energy",
    derive: (data) =>
      data.building_name && typeof data.room_surface_square_meter === "number"
        ? {
          building_name: data.building_name,
          room_surface_square_meter: data.room_surface_square_meter,
        }
        : null,
  },
};

const COMBUSTION_TYPES: Readonly<Record<string, number>> = nameTable({
  natural_gas: 60201,
  heating_oil: 60202,
  biomethane: 60203,
  pellets: 60204,
  forest_chips: 60205,
  wood_logs: 60206,
});
const combustionType = (name: unknown) => COMBUSTION_TYPES[slug(name)] ?? 60200;

const energyCombustion: Handler = {
  det: "energy_combustion",
  link: "json",
  kindField: "name",
  entrySchema: entryObject({
    name: requiredText(),
    quantity: requiredNumber({ min: 0 }),
    note: optionalText(),
  }),
  factorColumns: {
    classification: ["name", "unit"],
    values: ["ef_kg_co2eq_per_unit"],
    required: ["name", "unit", "ef_kg_co2eq_per_unit"],
  },
  factorEmissionType: (c: Classification) => combustionType(c.name),
  reference: [],
  structuralValues: [],
  computations: (data) => [{
    emissionTypeId: combustionType(data.name),
    source: LINKED,
    formula: quantityTimesEf("quantity", "ef_kg_co2eq_per_unit"),
  }],
};

/** The building name whose factors stand in for a building without its own. */
export const DEFAULT_BUILDING = "default";

function embodiedFactors(vars: Record<string, unknown>, set: FactorLookup): readonly Factor[] {
  return whereOrFallback(set, "building_name", vars.building_name, DEFAULT_BUILDING);
}

const embodiedEnergy: Handler = {
  det: "building_embodied_energy",
  link: "fk",
  entrySchema: entryObject({
    building_name: requiredText(),
    room_surface_square_meter: requiredNumber({ min: 0 }),
    data_entry_id: optionalNumber({ min: 1, int: true }),
    note: optionalText(),
  }),
  factorColumns: {
    classification: ["building_name", "category"],
    values: ["ef_kgco2eq_per_m2"],
    required: ["building_name", "category", "ef_kgco2eq_per_m2"],
  },
  factorEmissionType: fixedType(60300),
  reference: [],
  // The `default` building fallback is chosen by classification only.
  structuralValues: [],
  computations: () => [{
    emissionTypeId: 60300,
    source: { kind: "query", select: embodiedFactors },
    formula(vars, factor) {
      const ef = num(factor.values, "ef_kgco2eq_per_m2");
      const surface = varNum(vars, "room_surface_square_meter");
      if (ef === undefined || surface === undefined) return null;
      return {
        kg: surface * ef,
        meta: { room_surface_square_meter: surface, category: factor.classification.category },
      };
    },
  }],
};

/** Building rooms, energy combustion and embodied energy. */
export const buildingHandlers: readonly Handler[] = [
  buildingRooms,
  energyCombustion,
  embodiedEnergy,
];
