// What a rematch changes in each module's stats, accumulated entry by entry from the rows it
// replaces, so that the stats are updated by deltas instead of summed again from every row of
// every touched module.
import type { EmissionRow } from "../compute/emission_row.ts";
import { ROLLUP_EMISSION_TYPE_IDS } from "../reference/emission_types.ts";

/**
 * How one module's stats change (`carbon_report_modules.stats`, rollup rows excluded). The
 * entry count never changes: a rematch neither creates nor deletes entries.
 */
export interface ModuleStatsChange {
  readonly moduleId: number;
  readonly scope1: number;
  readonly scope2: number;
  readonly scope3: number;
  readonly total: number;
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
}

/**
 * Accumulates, per module, the stats change of entries whose rows a rematch rewrites: their old
 * rows out, their new rows in.
 *
 * @example
 * ```ts
 * import { ModuleStatsDeltas } from "./module_stats.ts";
 * const row = { emissionTypeId: 80200, primaryFactorId: 1, additionalValue: null, meta: {} };
 * const deltas = new ModuleStatsDeltas();
 * deltas.add(7, [{ ...row, kgCo2eq: 10, scope: 3 }], [{ ...row, kgCo2eq: 12.5, scope: 3 }]);
 * const [change] = deltas.changes();
 * console.assert(change.scope3 === 2.5 && change.total === 2.5 && !change.recompute);
 * ```
 */
export class ModuleStatsDeltas {
  readonly #modules = new Map<number, ModuleTally>();

  /** An entry of `moduleId` whose rows `oldRows` become `newRows`. */
  add(moduleId: number, oldRows: readonly EmissionRow[], newRows: readonly EmissionRow[]): void {
    let tally = this.#modules.get(moduleId);
    if (!tally) {
      tally = {
        scopes: [new CompensatedSum(), new CompensatedSum(), new CompensatedSum()],
        total: new CompensatedSum(),
        types: new Map(),
      };
      this.#modules.set(moduleId, tally);
    }
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
