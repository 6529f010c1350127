// Equipment (scientific 10, it 11, other 12): JSON link on equipment_class / sub_class.
import type { DetName } from "../reference/enums.ts";
import { entryObject, optionalNumber, optionalText, refined, requiredText } from "./_fields.ts";
import { fixedType, LINKED, num, varNum } from "./_formulas.ts";
import { type Computation, EntryComputeError, type Handler } from "./types.ts";

const HOURS = { min: 0, max: 168, int: true };
const HOURS_IN_WEEK = 168;

const entrySchema = refined(
  entryObject({
    name: requiredText(),
    equipment_class: requiredText(),
    sub_class: optionalText(),
    active_usage_hours_per_week: optionalNumber(HOURS),
    standby_usage_hours_per_week: optionalNumber(HOURS),
    equipment_id: optionalText(),
    note: optionalText(),
  }),
  (d) =>
    (d.active_usage_hours_per_week ?? 0) + (d.standby_usage_hours_per_week ?? 0) <= HOURS_IN_WEEK,
  {
    message: `active + standby hours per week must be ≤ ${HOURS_IN_WEEK}`,
    path: ["standby_usage_hours_per_week"],
  },
);

function equipment(det: DetName, emissionTypeId: number): Handler {
  const computations = equipmentComputations(emissionTypeId);
  return {
    det,
    link: "json",
    kindField: "equipment_class",
    subkindField: "sub_class",
    entrySchema,
    factorColumns: {
      classification: ["equipment_class", "sub_class"],
      values: [
        "active_power_w",
        "standby_power_w",
        "active_usage_hours_per_week",
        "standby_usage_hours_per_week",
        "ef_kg_co2eq_per_kwh",
      ],
      required: [
        "equipment_class",
        "active_power_w",
        "standby_power_w",
        "active_usage_hours_per_week",
        "standby_usage_hours_per_week",
        "ef_kg_co2eq_per_kwh",
      ],
      integers: { active_usage_hours_per_week: [0, 168], standby_usage_hours_per_week: [0, 168] },
      check: (v) =>
        (num(v, "active_usage_hours_per_week") ?? 0) +
              (num(v, "standby_usage_hours_per_week") ?? 0) >
            HOURS_IN_WEEK
          ? {
            column: "standby_usage_hours_per_week",
            message: `active + standby hours must be ≤ ${HOURS_IN_WEEK}`,
          }
          : undefined,
    },
    factorEmissionType: fixedType(emissionTypeId),
    reference: [],
    settings: ["weeks per year"],
    // Default hours feed the formula (and its 168-hour check) of the entries linked to the factor.
    structuralValues: [],
    computations: () => computations,
  };
}

// The same for every entry of a det: built once (no list and closure per entry).
function equipmentComputations(emissionTypeId: number): readonly Computation[] {
  return [{
    emissionTypeId,
    source: LINKED,
    formula(vars, factor, env) {
      // Hours missing on the entry fall back to the factor's defaults.
      const active = varNum(vars, "active_usage_hours_per_week") ??
        num(factor.values, "active_usage_hours_per_week");
      const standby = varNum(vars, "standby_usage_hours_per_week") ??
        num(factor.values, "standby_usage_hours_per_week");
      const activeW = num(factor.values, "active_power_w");
      const standbyW = num(factor.values, "standby_power_w");
      const ef = num(factor.values, "ef_kg_co2eq_per_kwh");
      if (
        active === undefined || standby === undefined || activeW === undefined ||
        standbyW === undefined || ef === undefined
      ) return null;
      if (active + standby > HOURS_IN_WEEK) {
        throw new EntryComputeError(
          `active + standby hours per week (${active + standby}) exceed ${HOURS_IN_WEEK}`,
        );
      }
      const annualKwh = (active * activeW + standby * standbyW) * env.weeksPerYear / 1000;
      return {
        kg: annualKwh * ef,
        meta: {
          active_usage_hours_per_week: active,
          standby_usage_hours_per_week: standby,
          weeks_per_year: env.weeksPerYear,
          annual_kwh: annualKwh,
        },
      };
    },
  }];
}

/** The three equipment rows. */
export const equipmentHandlers: readonly Handler[] = [
  equipment("scientific", 80100),
  equipment("it", 80200),
  equipment("other", 80300),
];
