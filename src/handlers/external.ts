// External services: clouds (40, by service type) and AI (41, by provider). JSON links.
import { nameTable } from "../text/names.ts";
import {
  entryObject,
  lowerEnum,
  lowerEnumWithDefault,
  optionalText,
  requiredNumber,
  requiredText,
  slug,
} from "./_fields.ts";
import { LINKED, num, spendFormula, varNum } from "./_formulas.ts";
import type { Classification, Handler } from "./types.ts";

const CLOUD_TYPES: Readonly<Record<string, number>> = nameTable({
  virtualisation: 110101,
  compute: 110102,
  storage: 110103,
});
const SERVICE_TYPES = ["virtualisation", "compute", "storage"] as const;

const externalClouds: Handler = {
  det: "external_clouds",
  link: "json",
  kindField: "provider",
  subkindField: "service_type",
  entrySchema: entryObject({
    provider: requiredText(),
    service_type: lowerEnum(SERVICE_TYPES),
    spent_amount: requiredNumber({ min: 0 }),
    currency: lowerEnumWithDefault(["chf", "eur", "usd"], "eur"),
    note: optionalText(),
  }),
  factorColumns: {
    classification: ["provider", "service_type", "currency"],
    values: ["ef_kg_co2eq_per_currency"],
    required: ["provider", "service_type", "currency", "ef_kg_co2eq_per_currency"],
    // Entries store it lower-cased and link by it: a factor written otherwise would never be used.
    // (The currency is the unit of the factor's value, converted through the rates: any case.)
    enums: { service_type: SERVICE_TYPES },
  },
  factorEmissionType: (c: Classification) =>
    CLOUD_TYPES[String(c.service_type ?? "").toLowerCase()],
  reference: ["rates"],
  structuralValues: [],
  computations: (data) => [{
    emissionTypeId: CLOUD_TYPES[String(data.service_type)],
    source: LINKED,
    formula: spendFormula("spent_amount"),
  }],
};

const AI_PROVIDER_TYPES: Readonly<Record<string, number>> = nameTable({
  google: 110201,
  mistral_ai: 110202,
  anthropic: 110203,
  openai: 110204,
  cohere: 110205,
});
const AI_OTHERS = 110206;
const aiType = (provider: unknown) => AI_PROVIDER_TYPES[slug(provider)] ?? AI_OTHERS;

/** Requests per user per day, by band. */
const REQUESTS_PER_DAY: Readonly<Record<string, number>> = nameTable({
  "1_5": 3,
  "5_20": 12.5,
  "20_100": 60,
  "gt_100": 100,
});
const WORK_DAYS_PER_WEEK = 5;
const WORK_WEEKS_PER_YEAR = 46;

const externalAi: Handler = {
  det: "external_ai",
  link: "json",
  kindField: "provider",
  subkindField: "usage_type",
  entrySchema: entryObject({
    provider: requiredText(),
    usage_type: requiredText(),
    requests_per_user_per_day: lowerEnum(["1_5", "5_20", "20_100", "gt_100"]),
    fte_count: requiredNumber({ min: 0.1 }),
    note: optionalText(),
  }),
  factorColumns: {
    classification: ["provider", "usage_type"],
    values: ["ef_kg_co2eq_per_request"],
    required: ["provider", "usage_type", "ef_kg_co2eq_per_request"],
  },
  factorEmissionType: (c: Classification) => aiType(c.provider),
  reference: [],
  structuralValues: [],
  computations: (data) => [{
    emissionTypeId: aiType(data.provider),
    source: LINKED,
    formula(vars, factor) {
      // The factor is in grams per request despite its name.
      const gramsPerRequest = num(factor.values, "ef_kg_co2eq_per_request");
      const fte = varNum(vars, "fte_count");
      const perDay = REQUESTS_PER_DAY[String(vars.requests_per_user_per_day)];
      if (gramsPerRequest === undefined || fte === undefined || perDay === undefined) return null;
      const requests = perDay * WORK_DAYS_PER_WEEK * WORK_WEEKS_PER_YEAR * fte;
      return {
        kg: requests * gramsPerRequest / 1000,
        meta: {
          fte_count: fte,
          requests_per_user_per_day: vars.requests_per_user_per_day,
          requests_per_day: perDay,
          requests_per_year: requests,
        },
      };
    },
  }],
};

/** External clouds and external AI. */
export const externalHandlers: readonly Handler[] = [externalClouds, externalAi];
