// The write floor of performance.md: writing as many emission rows as the slice has (same
// columns, meta of the same size) into a copy of data_entry_emissions with the same indexes:
// floor A without foreign keys, floor B with the two of the real table. A rematch that rewrites
// the slice cannot beat it. COPY FROM STDIN on a server; the embedded socket has no COPY, so
// there the floor is the multi-row INSERT ... SELECT FROM unnest the product uses.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Database } from "../db/connection.ts";

/** A: indexes only; B: plus the foreign keys to data_entries and factors. */
export type FloorVariant = "A" | "B";

/** How a floor was written. */
export type FloorMethod = "copy" | "insert-unnest";

/** The template of the rows a floor writes: the slice's entry ids and sample rows. */
interface FloorTemplate {
  /** The data_entry_id of every emission row of the slice, in row order. */
  readonly entryIds: Float64Array;
  readonly samples: readonly {
    emissionTypeId: number;
    primaryFactorId: number | null;
    kg: number;
    additionalValue: number | null;
    scope: number | null;
    meta: string | null;
  }[];
}

const SAMPLE_ROWS = 1000;
const LINES_PER_WRITE = 2000;
const INSERT_BATCH = 5000;

/** Reads what the floor rows are made of (not timed): entry ids of every row, sample rows. */
export async function readFloorTemplate(
  db: Database,
  dataEntryTypeId: number,
): Promise<FloorTemplate> {
  // Read through a cursor into a flat array: a million row objects would inflate the process
  // (and the floor's peak RSS) for nothing.
  const [{ n }] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from data_entry_emissions x
      join data_entries d on d.id = x.data_entry_id
    where d.data_entry_type_id = ${dataEntryTypeId}`;
  const entryIds = new Float64Array(n);
  let filled = 0;
  const cursor = db.sql<{ e: number }[]>`
    select x.data_entry_id as e from data_entry_emissions x
      join data_entries d on d.id = x.data_entry_id
    where d.data_entry_type_id = ${dataEntryTypeId} order by x.id`.cursor(10_000);
  for await (const rows of cursor) {
    for (const r of rows) if (filled < n) entryIds[filled++] = r.e;
  }
  const samples = await db.sql<
    {
      emissionTypeId: number;
      primaryFactorId: number | null;
      kg: number;
      additionalValue: number | null;
      scope: number | null;
      meta: string | null;
    }[]
  >`
    select x.emission_type_id as "emissionTypeId", x.primary_factor_id as "primaryFactorId",
      x.kg_co2eq as kg, x.additional_value as "additionalValue", x.scope, x.meta::text as meta
    from data_entry_emissions x join data_entries d on d.id = x.data_entry_id
    where d.data_entry_type_id = ${dataEntryTypeId} order by x.id limit ${SAMPLE_ROWS}`;
  return { entryIds: entryIds.subarray(0, filled), samples: samples.map((s) => ({ ...s })) };
}

/** The floor's table name for a variant. */
export function floorTable(variant: FloorVariant): string {
  return `bench_floor_${variant.toLowerCase()}`;
}

/** Creates the empty floor table (not timed). */
export async function createFloorTable(db: Database, variant: FloorVariant): Promise<void> {
  const table = floorTable(variant);
  await db.sql.unsafe(`drop table if exists ${table}`);
  await db.sql.unsafe(`create table ${table} (like data_entry_emissions including all)`);
  if (variant === "B") {
    await db.sql.unsafe(`alter table ${table}
      add foreign key (data_entry_id) references data_entries (id) on delete cascade,
      add foreign key (primary_factor_id) references factors (id) on delete set null`);
  }
}

/** Drops the floor table. */
export async function dropFloorTable(db: Database, variant: FloorVariant): Promise<void> {
  await db.sql.unsafe(`drop table if exists ${floorTable(variant)}`);
}

// COPY text format: `\N` is null; a backslash in a value is doubled (JSON has no raw tab or
// newline: it escapes them).
function copyCell(value: string | number | null): string {
  return value === null ? "\\N" : String(value).replaceAll("\\", "\\\\");
}

/** The COPY text in chunks of {@linkcode LINES_PER_WRITE} lines: an entry id and a sample's tail. */
function* copyLines(entryIds: Float64Array, tails: readonly string[]): Generator<string> {
  let chunk = "";
  for (let i = 0; i < entryIds.length; i++) {
    chunk += `${entryIds[i]}\t${tails[i % tails.length]}`;
    if ((i + 1) % LINES_PER_WRITE === 0) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk) yield chunk;
}

/**
 * Writes the floor rows into the floor table: one COPY (server) or INSERT ... unnest batches in
 * one transaction (embedded). Returns the rows written. This is what the bench times.
 */
export async function writeFloorRows(
  db: Database,
  variant: FloorVariant,
  template: FloorTemplate,
): Promise<{ rows: number; method: FloorMethod }> {
  const table = floorTable(variant);
  const { entryIds, samples } = template;
  if (entryIds.length === 0) {
    return { rows: 0, method: db.kind === "server" ? "copy" : "insert-unnest" };
  }
  if (db.kind === "server") {
    // Each line is an entry id plus a sample's prepared tail: building the text costs little
    // next to the server's work, as it should in a floor.
    const tails = samples.map((s) =>
      [s.emissionTypeId, s.primaryFactorId, s.kg, s.additionalValue, s.scope, s.meta]
        .map((v) => copyCell(v)).join("\t") + "\n"
    );
    const copy = await db.sql`
      copy ${db.sql(table)}
        (data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, additional_value, scope, meta)
      from stdin`.writable();
    await pipeline(Readable.from(copyLines(entryIds, tails)), copy);
    return { rows: entryIds.length, method: "copy" };
  }
  await db.sql.begin(async (tx) => {
    for (let start = 0; start < entryIds.length; start += INSERT_BATCH) {
      const end = Math.min(entryIds.length, start + INSERT_BATCH);
      const pick = <T>(f: (s: FloorTemplate["samples"][number]) => T) =>
        Array.from({ length: end - start }, (_, k) => f(samples[(start + k) % samples.length]));
      await tx`
        insert into ${tx(table)}
          (data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, additional_value, scope,
           meta, computed_at)
        select e, t, f, kg, a, s, m::jsonb, now()
        from unnest(
          ${Array.from(entryIds.subarray(start, end))}::bigint[],
          ${pick((s) => s.emissionTypeId)}::int[],
          ${pick((s) => s.primaryFactorId)}::bigint[],
          ${pick((s) => s.kg)}::float8[],
          ${pick((s) => s.additionalValue)}::float8[],
          ${pick((s) => s.scope)}::smallint[],
          ${pick((s) => s.meta)}::text[]
        ) as u(e, t, f, kg, a, s, m)`;
    }
  });
  return { rows: entryIds.length, method: "insert-unnest" };
}
