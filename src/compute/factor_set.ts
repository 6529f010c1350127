// The in-memory (det, year) factor set every lookup of a slice is answered from.
import type { Factor, FactorLookup } from "../handlers/types.ts";

/**
 * Builds the lookup over a (det, year) set. Factors are kept in id order; indexes are built on
 * first use and reused for every entry of the slice.
 *
 * @example
 * ```ts
 * import { createFactorLookup } from "./factor_set.ts";
 * const set = createFactorLookup(2025, [
 *   { id: 2, dataEntryTypeId: 21, emissionTypeId: 50100, year: 2025, classification: { country_code: "CH" }, values: {} },
 * ]);
 * console.assert(set.where("country_code", "CH")[0].id === 2);
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
  return {
    year,
    factors: sorted,
    byId: (id) => byId.get(id),
    memo,
    where(field, value) {
      const index = memo(`where:${field}`, (all) => {
        const groups = new Map<string | null, Factor[]>();
        for (const f of all) {
          const key = f.classification[field] ?? null;
          const group = groups.get(key);
          if (group) group.push(f);
          else groups.set(key, [f]);
        }
        return groups;
      });
      return index.get(value) ?? [];
    },
  };
}
