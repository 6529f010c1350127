// Process emissions (50): JSON link on category / subcategory, typed by gas category.
import { nameTable } from "../text/names.ts";
import { entryObject, optionalText, refined, requiredNumber, requiredText } from "./_fields.ts";
import { LINKED, quantityTimesEf } from "./_formulas.ts";
import type { Classification, Handler } from "./types.ts";

const CATEGORY_TYPES: Readonly<Record<string, number>> = nameTable({
  ch4: 70100,
  co2: 70200,
  n2o: 70300,
  refrigerants: 70400,
  refrigerant: 70400,
});
const categoryType = (category: unknown) =>
  CATEGORY_TYPES[String(category ?? "").trim().toLowerCase()];

const processEmissions: Handler = {
  det: "process_emissions",
  link: "json",
  kindField: "category",
  subkindField: "subcategory",
  entrySchema: entryObject({
    category: refined(requiredText(), (c) => categoryType(c) !== undefined, {
      message: `expected one of ${Object.keys(CATEGORY_TYPES).join(", ")}`,
    }),
    subcategory: optionalText(),
    quantity: requiredNumber({ min: 0 }),
    note: optionalText(),
  }),
  factorColumns: {
    classification: ["category", "subcategory", "unit"],
    values: ["ef_kg_co2eq_per_unit"],
    required: ["category", "unit", "ef_kg_co2eq_per_unit"],
  },
  factorEmissionType: (c: Classification) => categoryType(c.category),
  reference: [],
  structuralValues: [],
  computations: (data) => [{
    emissionTypeId: categoryType(data.category),
    source: LINKED,
    formula: quantityTimesEf("quantity", "ef_kg_co2eq_per_unit"),
  }],
};

/** The process-emissions row. */
export const processEmissionHandlers: readonly Handler[] = [processEmissions];
