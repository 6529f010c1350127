// The in-memory (det, year) factor set every lookup of a slice is answered from.
import type { Factor, FactorLookup } from "../handlers/types.ts";

/**
 * Builds the lookup over a (det, year) set. Factors are kept in id order; indexes are built on
 * first use and reused for every entry of the slice.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createFactorLookup } from "./factor_set.ts";
 * const train = (id: number, year: number, country_code: string) => ({
 *   id, dataEntryTypeId: 21, emissionTypeId: 50100, year, classification: { country_code }, values: {},
 * });
 * const set = createFactorLookup(2025, [train(7, 2025, "CH"), train(2, 2025, "CH"), train(3, 2024, "CH")]);
 * // Only the year's factors, in id order.
 * assert.deepEqual(set.where("country_code", "CH").map((f) => f.id), [2, 7]);
 * assert.equal(set.byId(3), undefined);
 * ```
 */
export function createFactorLookup(year: number, factors: readonly Factor[]): FactorLookup {
  const sorted = [...factors].filter((f) => f.year === year).sort((a, b) => a.id - b.id);
  const byId = new Map(sorted.map((f) => [f.id, f]));
  const memos = new Map<string, unknown>();
  const memo = <T>(key: string, build: (factors: readonly Factor[]) => T): T => {
    if (!memos.has(key)) memos.set(key, build(sorted));
    return memos.get(key) as T;
  };
  // By classification field, its factors grouped by value: asked for every entry, so kept apart
  // from the memos (no key to build per call).
  const byField = new Map<string, Map<string | null, Factor[]>>();
  return {
    year,
    factors: sorted,
    byId: (id) => byId.get(id),
    memo,
    where(field, value) {
      let index = byField.get(field);
      if (!index) {
        index = new Map();
        for (const f of sorted) {
          const key = f.classification[field] ?? null;
          const group = index.get(key);
          if (group) group.push(f);
          else index.set(key, [f]);
        }
        byField.set(field, index);
      }
      return index.get(value) ?? [];
    },
  };
}
