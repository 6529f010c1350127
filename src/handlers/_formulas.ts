// Shared pieces of handler rows: the link source, fixed types and currency conversion.
import {
  type Classification,
  type Computation,
  EntryComputeError,
  type Factor,
  type FactorLookup,
  type FactorSource,
  type FactorValues,
  type FormulaEnv,
} from "./types.ts";
import { rateKey } from "../reference/natural_key.ts";

/** The factor comes from the entry's JSON link. */
export const LINKED: FactorSource = { kind: "link" };

/** A resolver that gives every factor row of a det the same emission type. */
export const fixedType = (id: number) => (_c: Classification): number => id;

/** A numeric factor value, or undefined when absent or not a number. */
export function num(values: FactorValues, key: string): number | undefined {
  const v = values[key];
  return typeof v === "number" ? v : undefined;
}

/** A numeric entry var, or undefined. */
export function varNum(vars: Record<string, unknown>, key: string): number | undefined {
  const v = vars[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** EUR per unit of a currency for the slice year; a missing rate is a per-entry error. */
export function eurPerUnit(env: FormulaEnv, currency: string): number {
  const code = currency.trim().toLowerCase();
  if (code === "eur") return 1;
  const rate = env.reference.rates.get(rateKey(env.year, code));
  if (rate === undefined) {
    throw new EntryComputeError(`no exchange rate for currency "${code}" in ${env.year}`);
  }
  return rate;
}

/** A spend converted to kg, with every number the conversion used. */
export interface SpendKg {
  readonly kg: number;
  /** The amount in EUR: amount × eurPerUnit. */
  readonly amountEur: number;
  /** EUR per unit of the entry's currency. */
  readonly eurPerUnit: number;
  /** EUR per unit of the factor's currency. */
  readonly factorEurPerUnit: number;
}

/**
 * kg for an amount spent in `entryCurrency` with an ef per unit of the factor's currency:
 * amount × eur(entry) × ef / eur(factor).
 */
export function spendKg(
  amount: number,
  entryCurrency: string,
  ef: number,
  factorCurrency: string,
  env: FormulaEnv,
): SpendKg {
  const rate = eurPerUnit(env, entryCurrency);
  const factorRate = eurPerUnit(env, factorCurrency);
  const amountEur = amount * rate;
  return {
    kg: amountEur * ef / factorRate,
    amountEur,
    eurPerUnit: rate,
    factorEurPerUnit: factorRate,
  };
}

/**
 * The formula kg = vars[quantityKey] × values[efKey]; none when either is missing. The row's
 * meta records the quantity under its own key.
 */
export function quantityTimesEf(quantityKey: string, efKey: string): Computation["formula"] {
  return (vars, factor) => {
    const ef = num(factor.values, efKey);
    const quantity = varNum(vars, quantityKey);
    if (ef === undefined || quantity === undefined) return null;
    return { kg: quantity * ef, meta: { [quantityKey]: quantity } };
  };
}

/**
 * The spend formula: vars[amountKey] in the entry's `currency`, an ef per unit of the factor's
 * currency (classification `currency`, default eur). The row's meta records the amount and its
 * currency, the amount in EUR and both rates used, so the kg can be checked from the row alone.
 */
export function spendFormula(amountKey: string): Computation["formula"] {
  return (vars, factor, env) => {
    const ef = num(factor.values, "ef_kg_co2eq_per_currency");
    const amount = varNum(vars, amountKey);
    if (ef === undefined || amount === undefined) return null;
    const currency = String(vars.currency);
    const factorCurrency = factor.classification.currency ?? "eur";
    const spend = spendKg(amount, currency, ef, factorCurrency, env);
    return {
      kg: spend.kg,
      meta: {
        [amountKey]: amount,
        currency,
        eur_per_unit: spend.eurPerUnit,
        amount_eur: spend.amountEur,
        factor_currency: factorCurrency,
        factor_eur_per_unit: spend.factorEurPerUnit,
      },
    };
  };
}

/**
 * Factors whose classification[field] is `value`, or — when there are none — those whose
 * field is `fallback` (one fallback level: `default` buildings, `RoW` countries).
 */
export function whereOrFallback(
  set: FactorLookup,
  field: string,
  value: unknown,
  fallback: string,
): readonly Factor[] {
  const own = set.where(field, String(value));
  return own.length ? own : set.where(field, fallback);
}
