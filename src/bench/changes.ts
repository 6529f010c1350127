// The factor changes the bench times the rematch against, and the read-only facts it checks the
// rematch's results with. Changes are plain SQL on the factors table, as an operator's upload
// would leave it: the emission factor values (`ef_*`) are scaled, nothing that steers a lookup.
import type { Queryable } from "../db/connection.ts";
import { ROLLUP_EMISSION_TYPE_IDS } from "../reference/emission_types.ts";

/** Every change multiplies the factor's `ef_*` values by this. */
export const CHANGE_FACTOR = 1.1;

/**
 * Multiplies every numeric `ef_*` value of the (det, year) factors, or only of `factorId`, by
 * {@linkcode CHANGE_FACTOR}; returns how many factors changed.
 */
export async function scaleEmissionFactors(
  sql: Queryable,
  dataEntryTypeId: number,
  year: number,
  factorId?: number,
): Promise<number> {
  const result = await sql`
    update factors f set
      "values" = f."values" || (
        select jsonb_object_agg(e.key, (e.value::text::numeric * ${CHANGE_FACTOR}::numeric))
        from jsonb_each(f."values") as e
        where e.key like 'ef\\_%' and jsonb_typeof(e.value) = 'number'),
      updated_at = now()
    where f.data_entry_type_id = ${dataEntryTypeId} and f.year = ${year}
      and (${factorId ?? null}::bigint is null or f.id = ${factorId ?? null}::bigint)
      and exists (
        select 1 from jsonb_each(f."values") as e
        where e.key like 'ef\\_%' and jsonb_typeof(e.value) = 'number')`;
  return result.count;
}

/** A factor and the number of the slice's entries whose emission rows name it. */
export interface FactorCoverage {
  readonly factorId: number;
  readonly entries: number;
}

/** Per factor of the det, the entries whose (non-rollup) emission rows name it; most used first. */
export async function factorCoverage(
  sql: Queryable,
  dataEntryTypeId: number,
): Promise<FactorCoverage[]> {
  const rows = await sql<{ id: number; n: number }[]>`
    select x.primary_factor_id as id, count(distinct x.data_entry_id)::int as n
    from data_entry_emissions x join data_entries e on e.id = x.data_entry_id
    where e.data_entry_type_id = ${dataEntryTypeId} and x.primary_factor_id is not null
      and x.emission_type_id <> all(${[...ROLLUP_EMISSION_TYPE_IDS]}::int[])
    group by 1 order by 2 desc, 1`;
  return rows.map((r) => ({ factorId: r.id, entries: r.n }));
}

/**
 * The factor whose coverage is closest to `share` of `total` entries, leaving out the factors of
 * `exclude` (undefined: no factor).
 */
export function closestCoverage(
  coverage: readonly FactorCoverage[],
  total: number,
  share: number,
  exclude: ReadonlySet<number> = new Set(),
): FactorCoverage | undefined {
  let best: FactorCoverage | undefined;
  for (const c of coverage) {
    if (exclude.has(c.factorId)) continue;
    if (!best || Math.abs(c.entries - share * total) < Math.abs(best.entries - share * total)) {
      best = c;
    }
  }
  return best;
}

/** What the emission rows of a det look like: enough to tell whether anything was written. */
export interface EmissionSnapshot {
  /** Rows, rollups included. */
  readonly rows: number;
  /** Entries with at least one row. */
  readonly entriesWithRows: number;
  /** kg of the non-rollup rows. */
  readonly kg: number;
  /** Sum of the row ids and the latest `computed_at`: both move when any row is rewritten. */
  readonly idSum: number;
  readonly lastComputedAt: string | null;
}

/** The {@linkcode EmissionSnapshot} of a det's rows (the bench database holds one year). */
export async function emissionSnapshot(
  sql: Queryable,
  dataEntryTypeId: number,
): Promise<EmissionSnapshot> {
  const [row] = await sql<
    { rows: number; entries: number; kg: number; id_sum: number; last: string | null }[]
  >`
    select count(*)::int as rows, count(distinct x.data_entry_id)::int as entries,
      coalesce(sum(x.kg_co2eq) filter (
        where x.emission_type_id <> all(${[...ROLLUP_EMISSION_TYPE_IDS]}::int[])), 0)::float8 as kg,
      coalesce(sum(x.id), 0)::float8 as id_sum, max(x.computed_at)::text as last
    from data_entry_emissions x join data_entries e on e.id = x.data_entry_id
    where e.data_entry_type_id = ${dataEntryTypeId}`;
  return {
    rows: row.rows,
    entriesWithRows: row.entries,
    kg: row.kg,
    idSum: row.id_sum,
    lastComputedAt: row.last,
  };
}
