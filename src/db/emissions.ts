// Set-based writes of emission rows: a handful of statements whatever the number of entries.
import { type EmissionRow, type RowUpdate, sharedJsonText } from "../compute/emission_row.ts";
import type { Queryable } from "./connection.ts";
import { numberArray } from "./writes.ts";

/** An emission row with the entry it belongs to. */
export interface EntryEmissionRow {
  readonly dataEntryId: number;
  readonly row: EmissionRow;
}

/**
 * A stored emission row as the rematch compares it. Rows read from the database carry their meta's
 * jsonb text (`metaText`) and parse `meta` only when it is asked for.
 */
export interface StoredEmissionRow extends EmissionRow {
  readonly id: number;
  readonly dataEntryId: number;
}

/**
 * A stored row's columns as read, meta as its jsonb text (null when the column is null, undefined
 * when it was not read).
 */
export interface StoredRowColumns {
  readonly id: number;
  readonly dataEntryId: number;
  readonly emissionTypeId: number;
  readonly primaryFactorId: number | null;
  readonly kgCo2eq: number;
  readonly additionalValue: number | null;
  readonly scope: number | null;
  readonly metaText: string | null | undefined;
}

/** A stored row's columns as a SELECT names them (meta as its jsonb text, null when not read). */
export interface StoredRowSelect {
  readonly emission_type_id: number;
  readonly primary_factor_id: number | null;
  readonly kg_co2eq: number;
  readonly additional_value: number | null;
  readonly scope: number | null;
  readonly meta: string | null;
}

/** A stored row from the columns a SELECT gave; without `withMeta`, its meta counts as not read. */
export function storedRowOf(
  id: number,
  dataEntryId: number,
  r: StoredRowSelect,
  withMeta: boolean,
): StoredEmissionRow {
  return new StoredRow({
    id,
    dataEntryId,
    emissionTypeId: r.emission_type_id,
    primaryFactorId: r.primary_factor_id,
    kgCo2eq: r.kg_co2eq,
    additionalValue: r.additional_value,
    scope: r.scope,
    metaText: withMeta ? r.meta : undefined,
  });
}

/**
 * A stored row from its columns. A null meta reads as `{}`. Most rows are only compared (by
 * their text) and never need their meta as an object: it is parsed on first use. A row read
 * without its meta throws when asked for it: whoever compares metas must read them first.
 */
export function storedEmissionRow(columns: StoredRowColumns): StoredEmissionRow {
  return new StoredRow(columns);
}

// A class rather than an object literal with a getter: no closure per row (a rematch makes one
// per stored row it reads).
class StoredRow implements StoredEmissionRow {
  readonly id: number;
  readonly dataEntryId: number;
  readonly emissionTypeId: number;
  readonly primaryFactorId: number | null;
  readonly kgCo2eq: number;
  readonly additionalValue: number | null;
  readonly scope: number | null;
  readonly metaText: string | undefined;
  #meta: Record<string, unknown> | undefined;

  constructor(columns: StoredRowColumns) {
    this.id = columns.id;
    this.dataEntryId = columns.dataEntryId;
    this.emissionTypeId = columns.emissionTypeId;
    this.primaryFactorId = columns.primaryFactorId;
    this.kgCo2eq = columns.kgCo2eq;
    this.additionalValue = columns.additionalValue;
    this.scope = columns.scope;
    this.metaText = columns.metaText === undefined ? undefined : columns.metaText ?? "{}";
  }

  get meta(): Record<string, unknown> {
    if (this.metaText === undefined) {
      throw new Error(`emission row ${this.id}: its meta was not read`);
    }
    return this.#meta ??= JSON.parse(this.metaText) as Record<string, unknown>;
  }
}

/** Deletes every emission row of these entries; returns how many went. */
export async function deleteEmissionsOf(
  tx: Queryable,
  entryIds: readonly number[],
): Promise<number> {
  if (entryIds.length === 0) return 0;
  const result = await tx`delete from data_entry_emissions where data_entry_id = any(${[
    ...entryIds,
  ]}::bigint[])`;
  return result.count;
}

/**
 * The metas of these rows as one JSON array: sent as a single text parameter and split by
 * `jsonb_array_elements`, the server parses each meta once and the client escapes nothing (a
 * `text[]` parameter would escape every quote of every meta twice).
 */
function metaArray(rows: readonly EmissionRow[]): string {
  return JSON.stringify(rows.map((r) => r.meta));
}

/**
 * Inserts rows with one INSERT ... SELECT from one `ROWS FROM` of the columns' arrays and the metas
 * (see {@linkcode updateEmissionsInPlace}; works on PGlite too).
 */
export async function insertEmissions(
  tx: Queryable,
  rows: readonly EntryEmissionRow[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const result = await tx`
    insert into data_entry_emissions
      (data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, additional_value, scope, meta, computed_at)
    select u.e, u.t, u.f, u.kg, u.a, u.s, u.m, now()
    from rows from (
      unnest(${rows.map((r) => r.dataEntryId)}::bigint[]),
      unnest(${rows.map((r) => r.row.emissionTypeId)}::int[]),
      unnest(${rows.map((r) => r.row.primaryFactorId)}::bigint[]),
      unnest(${rows.map((r) => r.row.kgCo2eq)}::float8[]),
      unnest(${rows.map((r) => r.row.additionalValue)}::float8[]),
      unnest(${rows.map((r) => r.row.scope)}::smallint[]),
      jsonb_array_elements(${metaArray(rows.map((r) => r.row))}::text::jsonb)
    ) with ordinality as u(e, t, f, kg, a, s, m, n)
    order by u.n`;
  return result.count;
}

/** The stored rows of these entries, grouped by entry id. */
export async function loadEmissionsOf(
  tx: Queryable,
  entryIds: readonly number[],
): Promise<Map<number, StoredEmissionRow[]>> {
  const byEntry = new Map<number, StoredEmissionRow[]>();
  if (entryIds.length === 0) return byEntry;
  const rows = await tx<(StoredRowSelect & { id: number; data_entry_id: number })[]>`
    select id, data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, additional_value, scope,
      meta::text as meta
    from data_entry_emissions where data_entry_id = any(${[...entryIds]}::bigint[])
    order by id`;
  for (const r of rows) {
    const stored = storedRowOf(r.id, r.data_entry_id, r, true);
    const list = byEntry.get(r.data_entry_id);
    if (list) list.push(stored);
    else byEntry.set(r.data_entry_id, [stored]);
  }
  return byEntry;
}

/**
 * The metas of rows to rewrite, split so that the server parses a shared `factors_used` list (see
 * `sharedJson`) once per statement rather than once per row: `rest` holds each meta without its
 * shared list, `parts` the distinct lists, `partOf` each row's list (1-based, null: none).
 */
function splitMetas(rows: readonly EmissionRow[]): {
  rest: string;
  parts: string;
  partOf: (number | null)[];
} {
  const index = new Map<unknown, number>();
  const parts: unknown[] = [];
  const partOf: (number | null)[] = [];
  const rest: unknown[] = [];
  for (const { meta } of rows) {
    const list = meta.factors_used;
    if (sharedJsonText(list) === undefined) {
      partOf.push(null);
      rest.push(meta);
      continue;
    }
    let n = index.get(list);
    if (n === undefined) index.set(list, n = parts.push(list));
    partOf.push(n);
    rest.push({ ...meta, factors_used: undefined });
  }
  return { rest: JSON.stringify(rest), parts: JSON.stringify(parts), partOf };
}

/**
 * Rewrites stored rows in place by id, in one UPDATE ... FROM ROWS FROM (two when some rows also
 * change factor, additional value or scope): they keep their ids, and their emission type (rows
 * are only paired within a type). Indexed columns that keep their value leave the update HOT when
 * the page has room (migration 0007 leaves room). A meta's shared `factors_used` list is parsed
 * once and put back with `jsonb_set` (cheaper than parsing it for every row).
 */
export async function updateEmissionsInPlace(
  tx: Queryable,
  updates: readonly RowUpdate[],
): Promise<number> {
  const short = updates.filter((u) => u.kgAndMetaOnly);
  const full = short.length === updates.length ? [] : updates.filter((u) => !u.kgAndMetaOnly);
  // One `ROWS FROM` steps through the columns' arrays, each row's own part of its meta (m) and the
  // number of the shared list it names (p) together, so nothing is joined by position (joined
  // `with ordinality`, the server spent 15 % more CPU on a full change of 100,000 plane entries).
  const update = (
    set: ReturnType<Queryable>,
    columns: ReturnType<Queryable>,
    names: string,
    list: readonly RowUpdate[],
  ) => {
    const { rest, parts, partOf } = splitMetas(list.map((u) => u.row));
    return tx`
      update data_entry_emissions x set ${set},
        meta = case when u.p is null then u.m else jsonb_set(u.m, '{factors_used}', p.m) end,
        computed_at = now()
      from rows from (${columns},
          jsonb_array_elements(${rest}::text::jsonb),
          unnest(${numberArray(partOf)}::text::int[])
        ) as u(${tx.unsafe(names)}, m, p)
        left join jsonb_array_elements(${parts}::text::jsonb) with ordinality as p(m, n)
          on p.n = u.p
      where x.id = u.id`;
  };
  const [a, b] = await Promise.all([
    short.length && update(
      tx`kg_co2eq = u.kg`,
      tx`unnest(${numberArray(short.map((u) => u.id))}::text::bigint[]),
        unnest(${numberArray(short.map((u) => u.row.kgCo2eq))}::text::float8[])`,
      "id, kg",
      short,
    ),
    full.length && update(
      tx`primary_factor_id = u.f, kg_co2eq = u.kg, additional_value = u.a, scope = u.s`,
      tx`unnest(${numberArray(full.map((u) => u.id))}::text::bigint[]),
        unnest(${numberArray(full.map((u) => u.row.primaryFactorId))}::text::bigint[]),
        unnest(${numberArray(full.map((u) => u.row.kgCo2eq))}::text::float8[]),
        unnest(${numberArray(full.map((u) => u.row.additionalValue))}::text::float8[]),
        unnest(${numberArray(full.map((u) => u.row.scope))}::text::smallint[])`,
      "id, f, kg, a, s",
      full,
    ),
  ]);
  return (a ? a.count : 0) + (b ? b.count : 0);
}
