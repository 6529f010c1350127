// The per-module rematch matrix (plan 310-D, spec/rematch.md): one fixture folder per
// (module, det) row under fixtures/matrix/, run end to end through the real write paths —
// reference import, factor import, entry creation, a second factor import, the rematch.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { Database } from "../../src/db/connection.ts";
import { createEntries } from "../../src/db/entries.ts";
import { importFactors } from "../../src/db/factors.ts";
import { importReferenceFile } from "../../src/db/reference.ts";
import { getHandler } from "../../src/handlers/mod.ts";
import { readCsvFile } from "../../src/imports/csv.ts";
import type { ReferenceKind } from "../../src/handlers/types.ts";
import { type DataEntryType, getDataEntryType } from "../../src/reference/enums.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";

/** Where the matrix fixtures live. */
export const MATRIX_ROOT = join(import.meta.dirname!, "..", "..", "fixtures", "matrix");

const REFERENCE_KINDS: readonly ReferenceKind[] = ["locations", "rooms", "rates"];
/** The result counts every fixture states. */
const COUNTS = ["entries", "recalculated", "unchanged", "relinked", "dropped", "errors"] as const;

const count = z.number().int().min(0);
/** kg by emission type id (object keys are the ids). */
const kgByType = z.record(z.string().regex(/^\d+$/), z.number().min(0));

/** `expected.json` of a fixture folder. */
const Expected = z.object({
  det: z.string(),
  year: z.number().int(),
  v2Mode: z.enum(["merge", "replace"]),
  before: kgByType,
  after: kgByType,
  result: z.object({
    entries: count,
    recalculated: count,
    unchanged: count,
    relinked: count,
    dropped: count,
    errors: count,
  }),
  /** Emission rows of the slice without a factor right after the v2 import. */
  staleBefore: count.optional(),
});
type Expected = z.infer<typeof Expected>;

/** One line of `entries.jsonl`. */
const EntryLine = z.object({
  unit: z.string().min(1),
  year: z.number().int(),
  data_entry_type: z.union([z.string(), z.number()]),
  data: z.record(z.string(), z.unknown()),
});
type EntryLine = z.infer<typeof EntryLine>;

/** A loaded fixture folder. */
interface MatrixFixture {
  readonly name: string;
  readonly dir: string;
  readonly det: DataEntryType;
  readonly expected: Expected;
  readonly entries: readonly EntryLine[];
}

function describeIssues(file: string, error: z.ZodError): string {
  return `${file}: ${
    error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")
  }`;
}

/** Reads and validates a fixture folder; a malformed file fails naming the file and field. */
export async function loadMatrixFixture(name: string): Promise<MatrixFixture> {
  const dir = join(MATRIX_ROOT, name);
  const expectedFile = join(dir, "expected.json");
  const parsed = Expected.safeParse(JSON.parse(await Deno.readTextFile(expectedFile)));
  if (!parsed.success) throw new TypeError(describeIssues(expectedFile, parsed.error));
  const entriesFile = join(dir, "entries.jsonl");
  const lines = (await Deno.readTextFile(entriesFile)).split("\n");
  const entries = lines.flatMap((line, i) => {
    if (!line.trim()) return [];
    const entry = EntryLine.safeParse(JSON.parse(line));
    if (!entry.success) {
      throw new TypeError(describeIssues(`${entriesFile} line ${i + 1}`, entry.error));
    }
    return [entry.data];
  });
  const det = getDataEntryType(parsed.data.det);
  for (const entry of entries) {
    assert.equal(getDataEntryType(entry.data_entry_type).id, det.id, `${entriesFile}: det`);
    assert.equal(entry.year, parsed.data.year, `${entriesFile}: year`);
  }
  return { name, dir, det, expected: parsed.data, entries };
}

async function importFactorFile(
  db: Database,
  fixture: MatrixFixture,
  file: string,
  mode: "merge" | "replace",
): Promise<void> {
  const path = join(fixture.dir, file);
  const table = await readCsvFile(path);
  const result = await db.sql.begin((tx) =>
    importFactors(tx, {
      file: path,
      table,
      year: fixture.expected.year,
      target: { dataEntryTypeId: fixture.det.id },
      mode,
      strict: true,
    })
  );
  assert.equal(result.rowErrorsCount, 0, `${path}: row errors ${JSON.stringify(result.rowErrors)}`);
  assert.equal(result.rowsRead, table.rows.length, `${path}: rows read`);
}

/** kg summed per emission type over the slice's stored rows, rollup rows included. */
async function storedKgByType(db: Database, det: DataEntryType): Promise<Record<string, number>> {
  const rows = await db.sql<{ emission_type_id: number; kg: number }[]>`
    select e.emission_type_id, sum(e.kg_co2eq)::float8 as kg
    from data_entry_emissions e join data_entries d on d.id = e.data_entry_id
    where d.data_entry_type_id = ${det.id}
    group by e.emission_type_id order by e.emission_type_id`;
  return Object.fromEntries(rows.map((r) => [String(r.emission_type_id), r.kg]));
}

/** kg of the slice's non-rollup rows: what the result's kgBefore / kgAfter total. */
async function storedLeafKg(db: Database, det: DataEntryType): Promise<number> {
  const [row] = await db.sql<{ kg: number }[]>`
    select coalesce(sum(e.kg_co2eq), 0)::float8 as kg
    from data_entry_emissions e join data_entries d on d.id = e.data_entry_id
    where d.data_entry_type_id = ${det.id} and coalesce(e.meta->>'is_rollup', '') <> 'true'`;
  return row.kg;
}

async function rowsWithoutFactor(db: Database, det: DataEntryType): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`
    select count(*)::int as n
    from data_entry_emissions e join data_entries d on d.id = e.data_entry_id
    where d.data_entry_type_id = ${det.id} and e.primary_factor_id is null`;
  return row.n;
}

interface StoredEntry {
  id: number;
  data: Record<string, unknown>;
  emission_ids: number[];
  factor_ids: (number | null)[];
}

async function storedEntries(db: Database, det: DataEntryType): Promise<StoredEntry[]> {
  const rows = await db.sql<StoredEntry[]>`
    select d.id, d.data,
      coalesce(array_agg(e.id order by e.id) filter (where e.id is not null), '{}') as emission_ids,
      coalesce(array_agg(e.primary_factor_id order by e.id) filter (where e.id is not null), '{}')
        as factor_ids
    from data_entries d left join data_entry_emissions e on e.data_entry_id = d.id
    where d.data_entry_type_id = ${det.id}
    group by d.id order by d.id`;
  return rows.map((r) => ({
    id: Number(r.id),
    data: r.data,
    emission_ids: r.emission_ids.map(Number),
    factor_ids: r.factor_ids.map((f) => f === null ? null : Number(f)),
  }));
}

function closeTo(actual: number, expected: number): boolean {
  return Math.abs(actual - expected) <= 1e-9 * Math.max(Math.abs(expected), 1e-3);
}

/** Same emission types, each kg within 1e-9 relative of the expected one. */
function assertKgByType(
  actual: Record<string, number>,
  expected: Record<string, number>,
  what: string,
): void {
  const message = `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), message);
  for (const [type, kg] of Object.entries(expected)) {
    assert.ok(closeTo(actual[type], kg), `${message} (emission type ${type})`);
  }
}

/**
 * Runs one matrix row: reference data and factors_v1 in, entries created (initial compute),
 * `before` checked; factors_v2 in (`v2Mode`), stale rows checked; the rematch run; its counts,
 * `after`, the kg totals, the entries' identity and their JSON links checked.
 */
export async function runMatrixFixture(db: Database, name: string): Promise<void> {
  const fixture = await loadMatrixFixture(name);
  const { det, expected } = fixture;
  const handler = getHandler(det);

  for (const kind of REFERENCE_KINDS) {
    const path = join(fixture.dir, `${kind}.csv`);
    if (!existsSync(path)) continue;
    const result = await importReferenceFile(db, kind, path, { strict: true });
    assert.equal(
      result.rowErrorsCount,
      0,
      `${path}: row errors ${JSON.stringify(result.rowErrors)}`,
    );
  }
  await importFactorFile(db, fixture, "factors_v1.csv", "merge");

  const created = await db.sql.begin((tx) =>
    createEntries(
      tx,
      fixture.entries.map((e) => ({
        unitCode: e.unit,
        year: e.year,
        det: getDataEntryType(e.data_entry_type),
        data: e.data,
      })),
    )
  );
  assert.deepEqual(created.rejected, [], `${name}: entries rejected`);
  assert.deepEqual(created.computeErrors, [], `${name}: initial compute errors`);
  assert.equal(created.created, fixture.entries.length);
  const entryIds = created.ids.map((id) => id!);
  assertKgByType(await storedKgByType(db, det), expected.before, `${name} before`);
  const leafKgBefore = await storedLeafKg(db, det);

  await importFactorFile(db, fixture, "factors_v2.csv", expected.v2Mode);
  if (expected.staleBefore !== undefined) {
    assert.equal(
      await rowsWithoutFactor(db, det),
      expected.staleBefore,
      `${name}: rows without a factor after the v2 import`,
    );
  }
  const entriesBefore = await storedEntries(db, det);

  const result = await recalculateForDataEntryType(db, {
    dataEntryType: det.name,
    year: expected.year,
  });
  const counts = Object.fromEntries(COUNTS.map((c) => [c, result[c]]));
  assert.deepEqual(counts, expected.result, `${name}: rematch counts`);
  assertKgByType(await storedKgByType(db, det), expected.after, `${name} after`);
  assert.ok(
    closeTo(result.kgBefore, leafKgBefore),
    `${name}: kgBefore ${result.kgBefore}, stored ${leafKgBefore}`,
  );
  const leafKgAfter = await storedLeafKg(db, det);
  assert.ok(
    closeTo(result.kgAfter, leafKgAfter),
    `${name}: kgAfter ${result.kgAfter}, stored ${leafKgAfter}`,
  );
  assert.equal(await rowsWithoutFactor(db, det), 0, `${name}: rows without a factor remain`);

  // No entry is recreated; entries the rematch left alone keep their emission rows as stored.
  const entriesAfter = await storedEntries(db, det);
  assert.deepEqual(entriesAfter.map((e) => e.id), [...entryIds].sort((a, b) => a - b));
  const kept = entriesAfter.filter((after, i) =>
    after.emission_ids.join() === entriesBefore[i].emission_ids.join()
  );
  assert.ok(
    kept.length >= result.unchanged,
    `${name}: ${result.unchanged} unchanged entries, but only ${kept.length} kept their rows`,
  );

  if (handler.link === "json") {
    // The JSON link and the rows agree: a dropped entry stays, with its link cleared.
    for (const entry of entriesAfter) {
      const link = entry.data.primary_factor_id;
      if (entry.emission_ids.length === 0) {
        assert.equal(link, null, `${name}: entry ${entry.id} has no rows but still links ${link}`);
      } else {
        assert.equal(typeof link, "number", `${name}: entry ${entry.id} has rows but no link`);
        for (const factorId of entry.factor_ids) {
          assert.equal(factorId, link, `${name}: entry ${entry.id} rows vs data.primary_factor_id`);
        }
      }
    }
  }
}
