// Headcount: member (1) and student (2), FK link; one row per factor under food, waste and
// commuting, plus the headcount rollup.
import { emissionTypeByName, isInSubtree } from "../reference/emission_types.ts";
import type { DetName } from "../reference/enums.ts";
import { entryObject, optionalText, requiredNumber } from "./_fields.ts";
import { num, varNum } from "./_formulas.ts";
import type { Classification, Factor, FactorLookup, Handler } from "./types.ts";

/** The three roots a headcount entry is computed under. */
const HEADCOUNT_ROOTS = [10000, 20000, 30000] as const;

/**
 * The first existing node among category__class__subclass, category__class, category, when it
 * lies under one of the three roots: a factor of any other type (`buildings__rooms`, the
 * `headcount` rollup) would be stored and never used.
 */
export function headcountFactorType(c: Classification): number | undefined {
  const parts = [c.headcount_category, c.headcount_class, c.headcount_subclass]
    .map((p) => (p ?? "").trim().toLowerCase());
  for (let n = 3; n >= 1; n--) {
    const head = parts.slice(0, n);
    if (head.some((p) => p === "")) continue;
    const node = emissionTypeByName(head.join("__"));
    if (node) {
      return HEADCOUNT_ROOTS.some((root) => isInSubtree(node.id, root)) ? node.id : undefined;
    }
  }
  return undefined;
}

function headcount(
  det: DetName,
  fteMax: number | undefined,
  uniqueInModule?: readonly string[],
): Handler {
  return {
    det,
    uniqueInModule,
    link: "fk",
    entrySchema: entryObject({
      name: optionalText(),
      user_institutional_id: optionalText(),
      sius_code: optionalText(),
      fte: requiredNumber({ min: 0, max: fteMax }),
      note: optionalText(),
    }),
    factorColumns: {
      classification: ["headcount_category", "headcount_class", "headcount_subclass", "unit"],
      values: ["number_of_unit_per_fte", "ef_kg_co2eq_per_unit"],
      required: [
        "headcount_category",
        "headcount_class",
        "unit",
        "number_of_unit_per_fte",
        "ef_kg_co2eq_per_unit",
      ],
    },
    factorEmissionType: headcountFactorType,
    factorEmissionTypeExpected: "headcount_category, headcount_class and headcount_subclass " +
      "naming an emission type under food, waste or commuting",
    reference: [],
    // Factors are taken by emission type; their values feed the formula only.
    structuralValues: [],
    computations: () =>
      HEADCOUNT_ROOTS.map((root) => ({
        emissionTypeId: root,
        source: {
          kind: "query" as const,
          select: (_vars: Record<string, unknown>, set: FactorLookup) =>
            set.memo(`headcount:${root}`, (factors) =>
              factors.filter((f) =>
                isInSubtree(f.emissionTypeId, root)
              )
                .sort((a, b) => a.emissionTypeId - b.emissionTypeId || a.id - b.id)),
        },
        formula(vars: Record<string, unknown>, factor: Factor) {
          const fte = varNum(vars, "fte");
          const ef = num(factor.values, "ef_kg_co2eq_per_unit");
          if (fte === undefined || ef === undefined) return null;
          const units = fte * (num(factor.values, "number_of_unit_per_fte") ?? 1);
          return { kg: units * ef, additionalValue: units, meta: { fte } };
        },
      })),
    rollupEmissionTypeId: 40000,
  };
}

/** Member and student. */
export const headcountHandlers: readonly Handler[] = [
  headcount("member", 1, ["user_institutional_id"]),
  headcount("student", undefined),
];
