// Purchases: common (dets 60–66, one shared config, override-key-first link) and additional (67).
import type { DetName } from "../reference/enums.ts";
import { emissionTypeId } from "../reference/emission_types.ts";
import {
  entryObject,
  lowerEnumWithDefault,
  optionalNumber,
  optionalText,
  requiredNumber,
  requiredText,
  slug,
} from "./_fields.ts";
import { fixedType, LINKED, num, spendFormula, varNum } from "./_formulas.ts";
import type { Classification, Handler } from "./types.ts";

const PURCHASE_CURRENCIES = [
  "aud",
  "cad",
  "chf",
  "cny",
  "eur",
  "gbp",
  "jpy",
  "sek",
  "usd",
] as const;

const commonSchema = entryObject({
  name: optionalText(),
  total_spent_amount: requiredNumber({ min: 0 }),
  currency: lowerEnumWithDefault(PURCHASE_CURRENCIES, "chf"),
  purchase_institutional_code: requiredText(),
  purchase_additional_code: optionalText(),
  supplier: optionalText(),
  quantity: optionalNumber({ min: 0 }),
  note: optionalText(),
});

function purchaseCommon(det: DetName, typeId: number): Handler {
  return {
    det,
    link: "json",
    kindField: "purchase_institutional_code",
    kindFieldOverride: "purchase_additional_code",
    entrySchema: commonSchema,
    factorColumns: {
      classification: ["purchase_institutional_code", "purchase_additional_code", "currency"],
      values: ["ef_kg_co2eq_per_currency", "translation_key"],
      required: ["currency", "purchase_institutional_code", "ef_kg_co2eq_per_currency"],
      textValues: ["translation_key"],
    },
    factorEmissionType: fixedType(typeId),
    reference: ["rates"],
    structuralValues: [],
    computations: () => [{
      emissionTypeId: typeId,
      source: LINKED,
      formula: spendFormula("total_spent_amount"),
    }],
  };
}

/** ln2 has its own node; every other additional purchase shares the generic one. */
function additionalType(name: unknown): number {
  return slug(name) === "ln2"
    ? emissionTypeId("purchases__additional__ln2")
    : emissionTypeId("purchases__additional");
}

const additionalPurchases: Handler = {
  det: "additional_purchases",
  link: "json",
  kindField: "name",
  entrySchema: entryObject({
    name: requiredText(),
    unit: optionalText(),
    annual_consumption: requiredNumber({ min: 0 }),
    coef_to_kg: requiredNumber({ min: 0 }),
    note: optionalText(),
  }),
  factorColumns: {
    classification: ["name"],
    values: ["ef_kg_co2eq_per_kg"],
    required: ["name", "ef_kg_co2eq_per_kg"],
  },
  factorEmissionType: (c: Classification) => additionalType(c.name),
  reference: [],
  structuralValues: [],
  computations: (data) => [{
    emissionTypeId: additionalType(data.name),
    source: LINKED,
    formula(vars, factor) {
      const ef = num(factor.values, "ef_kg_co2eq_per_kg");
      const consumption = varNum(vars, "annual_consumption");
      const coef = varNum(vars, "coef_to_kg");
      if (ef === undefined || consumption === undefined || coef === undefined) return null;
      return {
        kg: consumption * coef * ef,
        meta: { annual_consumption: consumption, coef_to_kg: coef },
      };
    },
  }],
};

/** Purchase common (one config per det 60–66) and additional purchases. */
export const purchaseHandlers: readonly Handler[] = [
  purchaseCommon("scientific_equipment", 90200),
  purchaseCommon("it_equipment", 90300),
  purchaseCommon("consumable_accessories", 90400),
  purchaseCommon("biological_chemical_gaseous_product", 90500),
  purchaseCommon("services", 90600),
  purchaseCommon("vehicles", 90700),
  purchaseCommon("other_purchases", 90800),
  additionalPurchases,
];
