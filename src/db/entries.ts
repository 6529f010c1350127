// Writing data entries: create, update and delete, each computing the entry's emissions in the
// same transaction through the one compute path (spec/rematch.md §3).
import { computeEntry, type ComputeInputs, validateEntryData } from "../compute/compute_entry.ts";
import type { EmissionRow } from "../compute/emission_row.ts";
import { getHandler } from "../handlers/mod.ts";
import { EntryComputeError, type EntryData } from "../handlers/types.ts";
import { type DataEntryType, getDataEntryType } from "../reference/enums.ts";
import type { Queryable } from "./connection.ts";
import { deleteEmissionsOf, type EntryEmissionRow, insertEmissions } from "./emissions.ts";
import { loadSliceInputs } from "./slice.ts";

/** An entry to create. */
export interface NewEntry {
  readonly unitCode: string;
  readonly year: number;
  readonly det: DataEntryType;
  readonly data: unknown;
}

/** A problem with one input entry, by its index in the input list. */
export interface EntryProblem {
  readonly index: number;
  readonly message: string;
}

/** What {@linkcode createEntries} did. */
export interface CreateEntriesResult {
  /** Ids of the created entries by input index (undefined for rejected inputs). */
  readonly ids: (number | undefined)[];
  readonly created: number;
  readonly companionsCreated: number;
  readonly emissionsInserted: number;
  /** Inputs rejected by validation: not stored. */
  readonly rejected: EntryProblem[];
  /** Stored entries whose compute failed (no emissions until fixed and rematched). */
  readonly computeErrors: EntryProblem[];
  /** Stored entries computed with a note (e.g. room not found). */
  readonly warnings: EntryProblem[];
}

/** Units, reports and modules created on demand; returns module ids by `unit\0year\0module`. */
export async function ensureModules(
  tx: Queryable,
  wanted: readonly { unitCode: string; year: number; moduleTypeId: number }[],
): Promise<Map<string, number>> {
  const key = (u: string, y: number, m: number) => `${u}\u0000${y}\u0000${m}`;
  const unique = [
    ...new Map(wanted.map((w) => [key(w.unitCode, w.year, w.moduleTypeId), w])).values(),
  ];
  const result = new Map<string, number>();
  if (unique.length === 0) return result;
  const codes = [...new Set(unique.map((w) => w.unitCode))];
  await tx`insert into units (code, name) select c, c from unnest(${codes}::text[]) as u(c)
    on conflict (code) do nothing`;
  await tx`
    insert into carbon_reports (unit_id, year)
    select u.id, w.y from unnest(${unique.map((w) => w.unitCode)}::text[], ${
    unique.map((w) => w.year)
  }::int[])
      as w(c, y) join units u on u.code = w.c
    on conflict (unit_id, year) do nothing`;
  await tx`
    insert into carbon_report_modules (carbon_report_id, module_type_id)
    select r.id, w.m from unnest(${unique.map((w) => w.unitCode)}::text[], ${
    unique.map((w) => w.year)
  }::int[],
      ${unique.map((w) => w.moduleTypeId)}::int[]) as w(c, y, m)
      join units u on u.code = w.c join carbon_reports r on r.unit_id = u.id and r.year = w.y
    on conflict (carbon_report_id, module_type_id) do nothing`;
  const rows = await tx<{ code: string; year: number; module_type_id: number; id: number }[]>`
    select u.code, r.year, m.module_type_id, m.id
    from unnest(${unique.map((w) => w.unitCode)}::text[], ${unique.map((w) => w.year)}::int[],
      ${unique.map((w) => w.moduleTypeId)}::int[]) as w(c, y, mt)
      join units u on u.code = w.c join carbon_reports r on r.unit_id = u.id and r.year = w.y
      join carbon_report_modules m on m.carbon_report_id = r.id and m.module_type_id = w.mt`;
  for (const r of rows) result.set(key(r.code, r.year, r.module_type_id), r.id);
  return result;
}

// A jsonb parameter: postgres.js serialises it once (a pre-stringified value would be stored as a
// JSON string).
function jsonb(tx: Queryable, value: EntryData) {
  return tx.json(value as Parameters<Queryable["json"]>[0]);
}

async function allocateEntryIds(tx: Queryable, count: number): Promise<number[]> {
  if (count === 0) return [];
  const rows = await tx<{ id: number }[]>`
    select nextval(pg_get_serial_sequence('data_entries', 'id')) as id from generate_series(1, ${count})`;
  return rows.map((r) => r.id);
}

interface PendingEntry {
  index: number;
  id: number;
  moduleId: number;
  det: DataEntryType;
  year: number;
  data: EntryData;
  companionOf?: number;
}

/** Slice inputs cached per (det, year) for one write. */
function sliceInputCache(tx: Queryable) {
  const cache = new Map<string, Promise<ComputeInputs>>();
  return (det: DataEntryType, year: number) => {
    const key = `${det.id}:${year}`;
    let inputs = cache.get(key);
    if (!inputs) {
      inputs = loadSliceInputs(tx, getHandler(det), det.id, year);
      cache.set(key, inputs);
    }
    return inputs;
  };
}

/**
 * Creates entries in bulk (a few statements per call, not per entry): validates and
 * normalises each, creates units/reports/modules on demand, resolves JSON links, computes and
 * stores emission rows, and creates companion entries. Invalid inputs are rejected and listed.
 */
export async function createEntries(
  tx: Queryable,
  inputs: readonly NewEntry[],
): Promise<CreateEntriesResult> {
  const rejected: EntryProblem[] = [];
  const valid: { index: number; input: NewEntry; data: EntryData }[] = [];
  inputs.forEach((input, index) => {
    try {
      valid.push({ index, input, data: validateEntryData(getHandler(input.det), input.data) });
    } catch (error) {
      rejected.push({ index, message: (error as Error).message });
    }
  });

  const companions = valid.flatMap((v) => {
    const companion = getHandler(v.input.det).companion;
    const data = companion?.derive(v.data);
    return companion && data ? [{ ...v, det: getDataEntryType(companion.det), data }] : [];
  });
  const modules = await ensureModules(
    tx,
    [...valid.map((v) => v.input), ...companions.map((c) => ({ ...c.input, det: c.det }))].map((
      e,
    ) => ({
      unitCode: e.unitCode,
      year: e.year,
      moduleTypeId: e.det.moduleTypeId,
    })),
  );
  const moduleOf = (e: { unitCode: string; year: number }, det: DataEntryType) =>
    modules.get(`${e.unitCode}\u0000${e.year}\u0000${det.moduleTypeId}`)!;

  const ids = await allocateEntryIds(tx, valid.length + companions.length);
  const pending: PendingEntry[] = valid.map((v, i) => ({
    index: v.index,
    id: ids[i],
    moduleId: moduleOf(v.input, v.input.det),
    det: v.input.det,
    year: v.input.year,
    data: v.data,
  }));
  const parentId = new Map(pending.map((p) => [p.index, p.id]));
  companions.forEach((c, i) => {
    const id = ids[valid.length + i];
    pending.push({
      index: c.index,
      id,
      moduleId: moduleOf(c.input, c.det),
      det: c.det,
      year: c.input.year,
      data: { ...c.data, data_entry_id: parentId.get(c.index) },
      companionOf: parentId.get(c.index),
    });
  });

  const inputsFor = sliceInputCache(tx);
  const computeErrors: EntryProblem[] = [];
  const warnings: EntryProblem[] = [];
  const emissionRows: EntryEmissionRow[] = [];
  for (const entry of pending) {
    try {
      const computed = computeEntry(
        getHandler(entry.det),
        entry.data,
        await inputsFor(entry.det, entry.year),
      );
      entry.data = computed.data;
      for (const row of computed.rows) emissionRows.push({ dataEntryId: entry.id, row });
      for (const warning of computed.warnings) {
        warnings.push({ index: entry.index, message: warning });
      }
    } catch (error) {
      if (!(error instanceof EntryComputeError)) throw error;
      computeErrors.push({ index: entry.index, message: error.message });
    }
  }

  if (pending.length) {
    await tx`
      insert into data_entries (id, carbon_report_module_id, data_entry_type_id, data)
      select i, m, d, j::jsonb from unnest(
        ${pending.map((p) => p.id)}::bigint[],
        ${pending.map((p) => p.moduleId)}::bigint[],
        ${pending.map((p) => p.det.id)}::int[],
        ${pending.map((p) => JSON.stringify(p.data))}::text[]
      ) as u(i, m, d, j)`;
  }
  const emissionsInserted = await insertEmissions(tx, emissionRows);
  const idsByIndex: (number | undefined)[] = inputs.map(() => undefined);
  for (const p of pending) if (p.companionOf === undefined) idsByIndex[p.index] = p.id;
  return {
    ids: idsByIndex,
    created: valid.length,
    companionsCreated: companions.length,
    emissionsInserted,
    rejected,
    computeErrors,
    warnings,
  };
}

interface StoredEntry {
  id: number;
  moduleId: number;
  det: DataEntryType;
  year: number;
  data: EntryData;
}

async function loadEntry(tx: Queryable, id: number): Promise<StoredEntry> {
  const [row] = await tx<
    { id: number; module_id: number; det: number; year: number; data: EntryData }[]
  >`
    select e.id, e.carbon_report_module_id as module_id, e.data_entry_type_id as det, r.year, e.data
    from data_entries e join carbon_report_modules m on m.id = e.carbon_report_module_id
      join carbon_reports r on r.id = m.carbon_report_id
    where e.id = ${id}`;
  if (!row) throw new RangeError(`data entry ${id} does not exist`);
  return {
    id: row.id,
    moduleId: row.module_id,
    det: getDataEntryType(row.det),
    year: row.year,
    data: row.data,
  };
}

async function companionIds(
  tx: Queryable,
  parent: StoredEntry,
  det: DataEntryType,
): Promise<number[]> {
  const rows = await tx<{ id: number }[]>`
    select id from data_entries
    where carbon_report_module_id = ${parent.moduleId} and data_entry_type_id = ${det.id}
      and data->>'data_entry_id' = ${String(parent.id)}
    order by id`;
  return rows.map((r) => r.id);
}

/** Validates and computes `data` for an existing entry; throws before writing on any error. */
async function storeComputed(
  tx: Queryable,
  id: number,
  det: DataEntryType,
  year: number,
  data: unknown,
): Promise<{ data: EntryData; rows: readonly EmissionRow[]; warnings: readonly string[] }> {
  const computed = computeEntry(
    getHandler(det),
    data,
    await loadSliceInputs(tx, getHandler(det), det.id, year),
  );
  await tx`update data_entries set data = ${jsonb(tx, computed.data)}, updated_at = now()
    where id = ${id}`;
  await deleteEmissionsOf(tx, [id]);
  await insertEmissions(tx, computed.rows.map((row) => ({ dataEntryId: id, row })));
  return computed;
}

/**
 * Replaces an entry's data and recomputes its emissions; keeps its companion in step. A
 * validation or compute error throws EntryComputeError and writes nothing (call inside a
 * transaction so the companion's write rolls back too).
 */
export async function updateEntry(
  tx: Queryable,
  id: number,
  data: unknown,
): Promise<{ data: EntryData; rows: readonly EmissionRow[]; warnings: readonly string[] }> {
  const entry = await loadEntry(tx, id);
  const result = await storeComputed(tx, id, entry.det, entry.year, data);
  const companion = getHandler(entry.det).companion;
  if (companion) {
    const det = getDataEntryType(companion.det);
    const existing = await companionIds(tx, entry, det);
    const derived = companion.derive(result.data);
    if (!derived) {
      if (existing.length) await tx`delete from data_entries where id = any(${existing}::bigint[])`;
    } else if (existing.length) {
      await storeComputed(tx, existing[0], det, entry.year, { ...derived, data_entry_id: id });
    } else {
      const [companionId] = await allocateEntryIds(tx, 1);
      const companionData = { ...derived, data_entry_id: id };
      await tx`insert into data_entries (id, carbon_report_module_id, data_entry_type_id, data)
        values (${companionId}, ${entry.moduleId}, ${det.id}, ${jsonb(tx, companionData)})`;
      await storeComputed(tx, companionId, det, entry.year, companionData);
    }
  }
  return result;
}

/** Deletes an entry (its emissions cascade) and its companion. */
export async function deleteEntry(tx: Queryable, id: number): Promise<void> {
  const entry = await loadEntry(tx, id);
  const companion = getHandler(entry.det).companion;
  if (companion) {
    const existing = await companionIds(tx, entry, getDataEntryType(companion.det));
    if (existing.length) await tx`delete from data_entries where id = any(${existing}::bigint[])`;
  }
  await tx`delete from data_entries where id = ${id}`;
}
