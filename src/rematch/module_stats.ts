// What a rematch or an entry write changes in each module's stats, accumulated entry by entry
// from the rows it replaces, so that the stats are updated by deltas instead of summed again from
// every row of every touched module.
import type { EmissionRow } from "../compute/emission_row.ts";
import { ROLLUP_EMISSION_TYPE_IDS } from "../reference/emission_types.ts";

/**
 * The stats of a module without entries, as a full sum of its rows gives them: what a module
 * starts with, so that the entries written to it can be added as deltas.
 */
export const EMPTY_MODULE_STATS = JSON.stringify({
  scope1: 0,
  scope2: 0,
  scope3: 0,
  total: 0,
  by_emission_type: {},
  entry_count: 0,
});

/** How one module's stats change (`carbon_report_modules.stats`, rollup rows excluded). */
export interface ModuleStatsChange {
  readonly moduleId: number;
  readonly scope1: number;
  readonly scope2: number;
  readonly scope3: number;
  readonly total: number;
  /** The change of its entry count (a rematch's is 0: it neither creates nor deletes entries). */
  readonly entries: number;
  /**
   * By emission type id: the change of its kg and of its number of rows in the module. A type
   * whose rows grew in number may be new to the stats; one whose rows did not must be there.
   */
  readonly byEmissionType: ReadonlyMap<number, { readonly kg: number; readonly rows: number }>;
  /**
   * Rows of some type left the module: the type may have no row left, and then no key in the
   * stats, which only a full recompute can tell.
   */
  readonly recompute: boolean;
}

/**
 * A sum that keeps the rounding error of each addition (Neumaier's variant of Kahan's
 * summation): adding and subtracting the kg of thousands of rows leaves the exact difference to
 * within one rounding, so stats updated by many rematches do not drift from a full recompute.
 */
export class CompensatedSum {
  #sum = 0;
  #error = 0;

  /** Adds `x`. */
  add(x: number): void {
    const sum = this.#sum + x;
    this.#error += Math.abs(this.#sum) >= Math.abs(x)
      ? (this.#sum - sum) + x
      : (x - sum) + this.#sum;
    this.#sum = sum;
  }

  /** The sum so far. */
  get value(): number {
    return this.#sum + this.#error;
  }
}

interface ModuleTally {
  readonly scopes: [CompensatedSum, CompensatedSum, CompensatedSum];
  readonly total: CompensatedSum;
  readonly types: Map<number, { kg: CompensatedSum; rows: number }>;
  entries: number;
}

/**
 * Accumulates, per module, the stats change of entries whose rows are rewritten (their old rows
 * out, their new rows in) and of entries created.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ModuleStatsDeltas } from "./module_stats.ts";
 * const row = { emissionTypeId: 80200, primaryFactorId: 1, additionalValue: null, meta: {} };
 * const deltas = new ModuleStatsDeltas();
 * deltas.add(7, [{ ...row, kgCo2eq: 10, scope: 3 }], [{ ...row, kgCo2eq: 12.5, scope: 3 }]);
 * const [change] = deltas.changes();
 * assert.deepEqual([change.scope3, change.total, change.entries, change.recompute], [2.5, 2.5, 0, false]);
 * deltas.add(7, [], [{ ...row, kgCo2eq: 4, scope: 3 }], 1); // a new entry
 * assert.deepEqual([deltas.changes()[0].total, deltas.changes()[0].entries], [6.5, 1]);
 * ```
 */
export class ModuleStatsDeltas {
  readonly #modules = new Map<number, ModuleTally>();

  /**
   * An entry of `moduleId` whose rows `oldRows` become `newRows`; `entries` is 1 for an entry
   * created (0 for one rewritten).
   */
  add(
    moduleId: number,
    oldRows: readonly EmissionRow[],
    newRows: readonly EmissionRow[],
    entries = 0,
  ): void {
    let tally = this.#modules.get(moduleId);
    if (!tally) {
      tally = {
        scopes: [new CompensatedSum(), new CompensatedSum(), new CompensatedSum()],
        total: new CompensatedSum(),
        types: new Map(),
        entries: 0,
      };
      this.#modules.set(moduleId, tally);
    }
    tally.entries += entries;
    for (const row of oldRows) count(tally, row, -1);
    for (const row of newRows) count(tally, row, 1);
  }

  /** The change of every module an entry was added for, in module id order. */
  changes(): ModuleStatsChange[] {
    return [...this.#modules].sort(([a], [b]) => a - b).map(([moduleId, tally]) => {
      const byEmissionType = new Map<number, { kg: number; rows: number }>();
      let recompute = false;
      for (const [type, { kg, rows }] of tally.types) {
        byEmissionType.set(type, { kg: kg.value, rows });
        if (rows < 0) recompute = true;
      }
      return {
        moduleId,
        scope1: tally.scopes[0].value,
        scope2: tally.scopes[1].value,
        scope3: tally.scopes[2].value,
        total: tally.total.value,
        entries: tally.entries,
        byEmissionType,
        recompute,
      };
    });
  }
}

function count(tally: ModuleTally, row: EmissionRow, sign: 1 | -1): void {
  if (ROLLUP_EMISSION_TYPE_IDS.has(row.emissionTypeId)) return;
  const kg = sign * row.kgCo2eq;
  tally.total.add(kg);
  if (row.scope === 1 || row.scope === 2 || row.scope === 3) tally.scopes[row.scope - 1].add(kg);
  let type = tally.types.get(row.emissionTypeId);
  if (!type) {
    type = { kg: new CompensatedSum(), rows: 0 };
    tally.types.set(row.emissionTypeId, type);
  }
  type.kg.add(kg);
  type.rows += sign;
}

/**
 * A kg total as the project reports it: a sum of many rows' kg to 12 significant digits. Summed in
 * another order (a full rematch adds every row in entry order, a targeted one moves the recorded
 * total by what it changed, the server sums in storage order), the same rows give totals that
 * differ in their last bits (2378.4500000000003 against 2378.45): the rows are identical, and so
 * is what is reported. Totals are stored unrounded, so that moving them loses nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportedKg } from "./module_stats.ts";
 * assert.equal(reportedKg(2328.15 + (100.6 - 50.3)), 2378.45);
 * assert.equal(reportedKg(0.1 + 0.2), 0.3);
 * ```
 */
export function reportedKg(kg: number): number {
  return Number.isFinite(kg) && kg !== 0 ? Number(kg.toPrecision(12)) : kg;
}

/** Below this share of the larger of a sum and its change, a moved sum is 0 (see `movedSum`). */
export const MOVED_TO_ZERO = 1e-12;

/**
 * A stored sum moved by a change: what is left when the change takes away all there was is the
 * rounding of the two (324 − 324 gives 1.1e-13), and is 0, as a sum of the rows says.
 */
export function movedSum(before: number, by: number): number {
  const after = before + by;
  return Math.abs(after) <= MOVED_TO_ZERO * Math.max(Math.abs(before), Math.abs(by)) ? 0 : after;
}

/**
 * Stored stats (`carbon_report_modules.stats` as JSON text) with `change` added, as JSON text;
 * undefined when they cannot be a base: not an object with numbers for scope1, scope2, scope3,
 * total and entry_count and an object for by_emission_type, or without a type the change expects
 * (one whose rows did not grow). Other keys are kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addStatsChange, EMPTY_MODULE_STATS } from "./module_stats.ts";
 * const change = {
 *   moduleId: 1, scope1: 0, scope2: 5, scope3: 0, total: 5, entries: 1, recompute: false,
 *   byEmissionType: new Map([[80200, { kg: 5, rows: 1 }]]),
 * };
 * const next = JSON.parse(addStatsChange(EMPTY_MODULE_STATS, change)!);
 * assert.deepEqual([next.total, next.entry_count, next.by_emission_type], [5, 1, { 80200: 5 }]);
 * assert.equal(addStatsChange(null, change), undefined);
 * ```
 */
export function addStatsChange(
  stored: string | null,
  change: ModuleStatsChange,
): string | undefined {
  if (stored === null) return undefined;
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  const stats: unknown = JSON.parse(stored);
  if (!isObject(stats) || !isObject(stats.by_emission_type)) return undefined;
  const types = stats.by_emission_type;
  const keys = ["scope1", "scope2", "scope3", "total", "entry_count"] as const;
  if (keys.some((k) => typeof stats[k] !== "number")) return undefined;
  const byType: Record<string, unknown> = { ...types };
  for (const [type, { kg, rows }] of change.byEmissionType) {
    const before = byType[type];
    if (before === undefined && rows <= 0) return undefined;
    if (before !== undefined && typeof before !== "number") return undefined;
    byType[type] = movedSum(before ?? 0, kg);
  }
  const number = (k: (typeof keys)[number]) => stats[k] as number;
  return JSON.stringify({
    ...stats,
    scope1: movedSum(number("scope1"), change.scope1),
    scope2: movedSum(number("scope2"), change.scope2),
    scope3: movedSum(number("scope3"), change.scope3),
    total: movedSum(number("total"), change.total),
    entry_count: number("entry_count") + change.entries,
    by_emission_type: byType,
  });
}
