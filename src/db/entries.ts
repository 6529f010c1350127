// Writing data entries: create (or, by source key, update), update and delete. Each write takes
// the rematch's (det, year) slice locks before reading factors, computes through the one compute
// path and refreshes the stats of the modules it touched, all in the caller's transaction
// (spec/rematch.md §2 rules 12 and 15, §3).
import {
  computeEntry,
  type ComputeInputs,
  OVERRIDE_KEY,
  validateEntryData,
} from "../compute/compute_entry.ts";
import { type EmissionRow, sameJson, sameRow } from "../compute/emission_row.ts";
import { getHandler } from "../handlers/mod.ts";
import { EntryComputeError, type EntryData } from "../handlers/types.ts";
import { emissionTypeById } from "../reference/emission_types.ts";
import { type DataEntryType, getDataEntryType } from "../reference/enums.ts";
import { yearProblem } from "../reference/years.ts";
import { EMPTY_MODULE_STATS, ModuleStatsDeltas } from "../rematch/module_stats.ts";
import { forgetModuleStats, refreshModuleStats, updateModuleStats } from "../rematch/pg_store.ts";
import { entriesKg, noteWrittenEntries, shiftSliceKgTotals } from "../rematch/state.ts";
import { leafKg } from "../rematch/recalculate.ts";
import { FrozenModuleError, frozenModules } from "../history/freeze.ts";
import type { Queryable } from "./connection.ts";
import {
  deleteEmissionsOf,
  type EntryEmissionRow,
  insertEmissions,
  loadEmissionsOf,
} from "./emissions.ts";
import { lockSlice, type LockSliceOptions } from "./locks.ts";
import { loadSliceInputs } from "./slice.ts";
import { chunksOf, WritesInFlight } from "./writes.ts";
import { jsonStorageProblem, keyTextProblem } from "./storable.ts";
import { parseDecimal } from "../text/decimal.ts";

/** An entry to create (or, when its source key names an entry of its module, to update). */
export interface NewEntry {
  readonly unitCode: string;
  readonly year: number;
  readonly det: DataEntryType;
  readonly data: unknown;
  /**
   * Idempotency key, unique per carbon report module (trimmed; blank means none). When an entry of
   * the same module already has this key, that entry is updated (same id, recomputed, companion
   * kept in step) instead of a new one being created.
   */
  readonly sourceKey?: string;
}

/** A problem with one input entry, by its index in the input list. */
export interface EntryProblem {
  readonly index: number;
  readonly message: string;
  /** For a clash (a unique field or a source key): the stored entry holding the value. */
  readonly conflictingEntryId?: number;
}

/** What became of one input entry. */
export type EntryOutcome = "created" | "updated" | "unchanged";

/** What {@linkcode createEntries} did. */
export interface CreateEntriesResult {
  /** The entry id of each input by index (undefined for rejected inputs). */
  readonly ids: (number | undefined)[];
  /** What became of each input by index (undefined for rejected inputs). */
  readonly outcomes: (EntryOutcome | undefined)[];
  readonly created: number;
  /** Inputs whose source key named an entry that needed a write. */
  readonly updated: number;
  /** Inputs whose source key named an entry already exactly so (data and emission rows). */
  readonly unchanged: number;
  readonly companionsCreated: number;
  readonly companionsUpdated: number;
  readonly companionsDeleted: number;
  readonly emissionsInserted: number;
  /** Emission rows replaced by updates. */
  readonly emissionsDeleted: number;
  /** Indexes of the inputs now stored without any emission row (compute errors included). */
  readonly withoutEmissions: number[];
  /** Inputs rejected by validation or a clash: not stored. */
  readonly rejected: EntryProblem[];
  /** Stored entries whose compute failed (no emissions until fixed and rematched). */
  readonly computeErrors: EntryProblem[];
  /** Stored entries computed with a note (e.g. room not found). */
  readonly warnings: EntryProblem[];
  /** Carbon report modules written to; their stats are refreshed unless told otherwise. */
  readonly moduleIds: number[];
}

/** Options of the entry writes. */
export interface EntryWriteOptions {
  /**
   * Bring the stats of the modules written to up to date, in the same transaction (by what the
   * write changed). When false, their stats are marked as not computed: the next update sums
   * them again from their rows.
   * @default true
   */
  readonly refreshStats?: boolean;
  /**
   * With `refreshStats`, for {@linkcode createEntries} (the entries import's batches): collect
   * what the write changes in each module's stats here instead of writing them, for the caller to
   * write once ({@linkcode writeCollectedStats}) after several writes in one transaction, with
   * nothing else writing those modules' stats in between. Stats written batch by batch would lock
   * their modules' rows batch by batch, and a rematch of another det of those modules, which locks
   * them all at once in id order, could then wait for the import while the import waits for it.
   */
  readonly collectStats?: CollectedStats;
}

/** Module stats changes collected over several entry writes (see `collectStats`). */
export class CollectedStats {
  readonly deltas: ModuleStatsDeltas = new ModuleStatsDeltas();
  /** Modules to sum again from their rows (a companion deleted: its rows not read). */
  readonly resum: Set<number> = new Set();
}

/** Writes the stats changes collected over several entry writes, in one ordered pass. */
export async function writeCollectedStats(tx: Queryable, stats: CollectedStats): Promise<void> {
  await updateModuleStats(tx, stats.deltas.changes(), [...stats.resum].sort((a, b) => a - b));
}

/** A (det, year) slice an entry write touches. */
export interface SliceRef {
  readonly dataEntryTypeId: number;
  readonly year: number;
}

/**
 * Takes the rematch's transaction-scoped lock of every slice, in ascending det id (then year)
 * order, so that writers and rematches never wait on each other crosswise. Locks already held by
 * the transaction are taken again at no cost. `onWait` is told of a slice held elsewhere before
 * waiting for it.
 */
export async function lockSlices(
  tx: Queryable,
  slices: Iterable<SliceRef>,
  onWait?: LockSliceOptions["onWait"],
  signal?: AbortSignal,
): Promise<void> {
  const unique = new Map<string, SliceRef>();
  for (const s of slices) unique.set(`${s.dataEntryTypeId}:${s.year}`, s);
  const ordered = [...unique.values()].sort((a, b) =>
    a.dataEntryTypeId - b.dataEntryTypeId || a.year - b.year
  );
  for (const s of ordered) {
    await lockSlice(tx, s.dataEntryTypeId, s.year, {
      detName: getDataEntryType(s.dataEntryTypeId).name,
      onWait,
      signal,
    });
  }
}

/** The slices an entry of `det` touches: its own and its companion's. */
export function slicesOf(det: DataEntryType, year: number): SliceRef[] {
  const companion = getHandler(det).companion;
  const slices = [{ dataEntryTypeId: det.id, year }];
  if (companion) slices.push({ dataEntryTypeId: getDataEntryType(companion.det).id, year });
  return slices;
}

/**
 * Units, reports and modules created on demand, in the caller's transaction (its statements are
 * sent together); returns module ids by `unit\0year\0module`.
 */
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
  // Sent together, one round trip: the connection runs them in order, each seeing the last.
  const [, , , rows] = await Promise.all([
    tx`insert into units (code, name) select c, c from unnest(${codes}::text[]) as u(c)
    on conflict (code) do nothing`.execute(),
    tx`
    insert into carbon_reports (unit_id, year)
    select u.id, w.y from unnest(${unique.map((w) => w.unitCode)}::text[], ${
      unique.map((w) => w.year)
    }::int[])
      as w(c, y) join units u on u.code = w.c
    on conflict (unit_id, year) do nothing`.execute(),
    tx`
    insert into carbon_report_modules (carbon_report_id, module_type_id, stats, stats_computed_at)
    select r.id, w.m, ${EMPTY_MODULE_STATS}::text::jsonb, now() from unnest(${
      unique.map((w) => w.unitCode)
    }::text[], ${unique.map((w) => w.year)}::int[],
      ${unique.map((w) => w.moduleTypeId)}::int[]) as w(c, y, m)
      join units u on u.code = w.c join carbon_reports r on r.unit_id = u.id and r.year = w.y
    on conflict (carbon_report_id, module_type_id) do nothing`.execute(),
    tx<{ code: string; year: number; module_type_id: number; id: number }[]>`
    select u.code, r.year, m.module_type_id, m.id
    from unnest(${unique.map((w) => w.unitCode)}::text[], ${unique.map((w) => w.year)}::int[],
      ${unique.map((w) => w.moduleTypeId)}::int[]) as w(c, y, mt)
      join units u on u.code = w.c join carbon_reports r on r.unit_id = u.id and r.year = w.y
      join carbon_report_modules m on m.carbon_report_id = r.id and m.module_type_id = w.mt`
      .execute(),
  ]);
  for (const r of rows) result.set(key(r.code, r.year, r.module_type_id), r.id);
  return result;
}

async function allocateEntryIds(tx: Queryable, count: number): Promise<number[]> {
  if (count === 0) return [];
  // The sequence is looked up once, not once per id.
  const rows = await tx<{ id: number }[]>`
    with s as materialized (select pg_get_serial_sequence('data_entries', 'id')::regclass as seq)
    select nextval(s.seq) as id from s, generate_series(1, ${count})`;
  return rows.map((r) => r.id);
}

/**
 * New entries computed and sent per INSERT: the server writes one chunk while the next is
 * computed.
 */
const INSERT_CHUNK = 500;

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

// ---- validation -----------------------------------------------------------------------------

// The override is a number the schemas do not declare: a numeric text (a CSV cell) becomes the
// number, a blank or null one means no override (spec/domain.md §5).
function normaliseOverride(data: unknown): unknown {
  if (data === null || typeof data !== "object" || Array.isArray(data)) return data;
  const record = data as Record<string, unknown>;
  if (!(OVERRIDE_KEY in record)) return data;
  const value = record[OVERRIDE_KEY];
  const copy = { ...record };
  if (value === null || (typeof value === "string" && value.trim() === "")) {
    delete copy[OVERRIDE_KEY];
  } else if (typeof value === "string") {
    // Decimal text only, as every numeric field ("0x10" stays text, and is refused below).
    copy[OVERRIDE_KEY] = parseDecimal(value) ?? value;
  }
  return copy;
}

/** Validates and normalises entry data for storage; throws EntryComputeError naming the field. */
function validateForStorage(det: DataEntryType, raw: unknown): EntryData {
  const data = validateEntryData(getHandler(det), normaliseOverride(raw));
  const override = data[OVERRIDE_KEY];
  if (override !== undefined && (typeof override !== "number" || !Number.isFinite(override))) {
    throw new EntryComputeError(
      `${OVERRIDE_KEY}: expected a finite decimal number of kg CO2-eq, got ${
        typeof override === "number" ? String(override) : JSON.stringify(override)
      }`,
    );
  }
  const problem = jsonStorageProblem(data);
  if (problem) throw new EntryComputeError(problem);
  return data;
}

/** Why an input's envelope cannot be stored, or undefined. */
function envelopeProblem(input: NewEntry): string | undefined {
  const year = yearProblem(input.year);
  if (year) return `year: ${year}`;
  if (input.unitCode.trim() === "") return "unit: must not be empty";
  const unit = keyTextProblem(input.unitCode);
  if (unit) return `unit: ${unit}`;
  const key = input.sourceKey?.trim();
  const keyProblem = key ? keyTextProblem(key) : undefined;
  return keyProblem && `source_key: ${keyProblem}`;
}

// ---- the shared write path ------------------------------------------------------------------

/** One entry to write: an input, a companion, or an existing entry being updated. */
interface Pending {
  /** Index of the input it comes from (a companion carries its parent's). */
  readonly index: number;
  id: number;
  readonly moduleId: number;
  readonly det: DataEntryType;
  readonly year: number;
  data: EntryData;
  readonly sourceKey?: string;
  /** The stored data when this is an update of an existing entry. */
  stored?: EntryData;
  readonly companionOf?: number;
  rows: readonly EmissionRow[];
}

/** A validated input ready to be placed: in a module, new or targeting an existing entry. */
interface Placed {
  readonly index: number;
  readonly det: DataEntryType;
  readonly year: number;
  readonly moduleId: number;
  readonly data: EntryData;
  readonly sourceKey?: string;
  /** The existing entry this input updates. */
  readonly target?: { id: number; data: EntryData };
}

interface WritePlan {
  readonly placed: Placed[];
  readonly rejected: EntryProblem[];
  readonly inputCount: number;
  /** Throw the first compute error instead of storing the entry without emissions. */
  readonly failOnComputeError: boolean;
  readonly refreshStats: boolean;
  readonly collectStats?: CollectedStats;
}

interface WriteOutcome extends CreateEntriesResult {
  readonly pending: readonly Pending[];
}

/** A placed input with its entry id (allocated for a new entry). */
type Identified = Placed & { readonly id: number };

/** Rejects inputs whose unique field value is held by another entry of their module. */
async function checkUniqueFields(
  tx: Queryable,
  placed: Identified[],
  rejected: EntryProblem[],
): Promise<Identified[]> {
  const checks = new Map<string, { det: DataEntryType; field: string }>();
  for (const p of placed) {
    for (const field of getHandler(p.det).uniqueInModule ?? []) {
      checks.set(`${p.det.id}:${field}`, { det: p.det, field });
    }
  }
  if (checks.size === 0) return placed;
  const valueOf = (data: EntryData | undefined, field: string) => {
    const value = data?.[field];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const refused = new Set<number>();
  for (const { det, field } of checks.values()) {
    const mine = placed.filter((p) => p.det.id === det.id);
    const values = [...new Set(mine.flatMap((p) => valueOf(p.data, field) ?? []))];
    if (values.length === 0) continue;
    const updating = mine.flatMap((p) => (p.target ? [p.target.id] : []));
    // Who holds each (module, value) now: stored entries, then each input in order (an update
    // first gives up its stored value), as if the inputs were written one by one.
    const holder = new Map<string, number>();
    const key = (moduleId: number, value: string) => `${moduleId}\u0000${value}`;
    const stored = await tx<{ id: number; module_id: number; value: string }[]>`
      select id, carbon_report_module_id as module_id, data->>${field} as value from data_entries
      where data_entry_type_id = ${det.id}
        and carbon_report_module_id = any(${[...new Set(mine.map((p) => p.moduleId))]}::bigint[])
        and data->>${field} = any(${values}::text[]) and id <> all(${updating}::bigint[])`;
    for (const r of stored) holder.set(key(r.module_id, r.value), r.id);
    for (const p of mine) {
      const old = valueOf(p.target?.data, field);
      if (old !== undefined) holder.set(key(p.moduleId, old), p.id);
    }
    for (const p of mine) {
      const value = valueOf(p.data, field);
      if (value === undefined) {
        const old = valueOf(p.target?.data, field);
        if (old !== undefined) holder.delete(key(p.moduleId, old));
        continue;
      }
      const held = holder.get(key(p.moduleId, value));
      if (held !== undefined && held !== p.id) {
        refused.add(p.index);
        rejected.push({
          index: p.index,
          message: `${field}: ${
            JSON.stringify(value)
          } is already used in this module by entry ${held} (it must be unique per module)`,
          conflictingEntryId: held,
        });
        continue;
      }
      const old = valueOf(p.target?.data, field);
      if (old !== undefined && old !== value) holder.delete(key(p.moduleId, old));
      holder.set(key(p.moduleId, value), p.id);
    }
  }
  return placed.filter((p) => !refused.has(p.index));
}

/** Entries of `det` in these modules pointing back to one of these parents, by parent id. */
async function loadCompanions(
  tx: Queryable,
  det: DataEntryType,
  moduleIds: readonly number[],
  parentIds: readonly number[],
): Promise<Map<number, { id: number; data: EntryData }[]>> {
  const byParent = new Map<number, { id: number; data: EntryData }[]>();
  if (parentIds.length === 0) return byParent;
  const rows = await tx<{ id: number; parent: string; data: EntryData }[]>`
    select id, data->>'data_entry_id' as parent, data from data_entries
    where data_entry_type_id = ${det.id}
      and carbon_report_module_id = any(${[...new Set(moduleIds)]}::bigint[])
      and data->>'data_entry_id' = any(${parentIds.map(String)}::text[])
    order by id`;
  for (const r of rows) {
    const parent = Number(r.parent);
    byParent.set(parent, [...(byParent.get(parent) ?? []), { id: r.id, data: r.data }]);
  }
  return byParent;
}

function sameRows(stored: readonly EmissionRow[], computed: readonly EmissionRow[]): boolean {
  if (stored.length !== computed.length) return false;
  const left = [...stored];
  return computed.every((row) => {
    const at = left.findIndex((old) => sameRow(old, row));
    if (at < 0) return false;
    left.splice(at, 1);
    return true;
  });
}

/** The `det:year` keys of the slices of these entries that have a recorded state. */
async function slicesWithState(
  tx: Queryable,
  entries: readonly { det: DataEntryType; year: number }[],
): Promise<Set<string>> {
  const slices = [...new Map(entries.map((e) => [`${e.det.id}:${e.year}`, e])).values()];
  if (slices.length === 0) return new Set();
  const rows = await tx<{ det: number; year: number }[]>`
    select s.data_entry_type_id as det, s.year from slice_states s
      join unnest(${slices.map((e) => e.det.id)}::int[], ${slices.map((e) => e.year)}::int[])
        as w(det, year) on s.data_entry_type_id = w.det and s.year = w.year`;
  return new Set(rows.map((r) => `${r.det}:${r.year}`));
}

/**
 * No foreign key checks an emission row's type (migration 0008): a type the code's tree does not
 * know is a handler's bug, refused before its rows are sent (the write fails).
 */
function refuseUnknownEmissionTypes(rows: readonly EntryEmissionRow[]): void {
  const unknown = rows.find(({ row }) => emissionTypeById(row.emissionTypeId) === undefined);
  if (unknown) {
    throw new RangeError(
      `entry ${unknown.dataEntryId}: emission type ${unknown.row.emissionTypeId} is not in the ` +
        "emission type tree (src/reference/emission_type_nodes.ts)",
    );
  }
}

/**
 * The write path shared by create and update: unique fields, companions, compute, the writes
 * (only of what changed) and the module stats. The caller has validated the inputs, taken the
 * slice locks and placed each input in its module.
 */
async function writePlaced(tx: Queryable, plan: WritePlan): Promise<WriteOutcome> {
  const rejected = [...plan.rejected];
  // New entries get their ids first so that a clash can name the entry it clashes with.
  const freshIds = await allocateEntryIds(tx, plan.placed.filter((p) => !p.target).length);
  let nextFresh = 0;
  const placed = await checkUniqueFields(
    tx,
    plan.placed.map((p) => ({ ...p, id: p.target?.id ?? freshIds[nextFresh++] })),
    rejected,
  );
  const pending: Pending[] = placed.map((p) => ({
    index: p.index,
    id: p.id,
    moduleId: p.moduleId,
    det: p.det,
    year: p.year,
    data: p.data,
    sourceKey: p.sourceKey,
    stored: p.target?.data,
    rows: [],
  }));

  // Companions: derived from the parent's validated data; an updated parent's existing companion
  // is updated (extra ones deleted), created when missing, deleted when no longer derived.
  const companionDeletes: { id: number; moduleId: number; detId: number; year: number }[] = [];
  const newCompanions: Omit<Pending, "id">[] = [];
  const updatedCompanions: Pending[] = [];
  const byCompanionDet = new Map<number, Pending[]>();
  for (const parent of pending) {
    const companion = getHandler(parent.det).companion;
    if (!companion) continue;
    const det = getDataEntryType(companion.det);
    byCompanionDet.set(det.id, [...(byCompanionDet.get(det.id) ?? []), parent]);
  }
  for (const [detId, parents] of byCompanionDet) {
    const det = getDataEntryType(detId);
    const updatedParents = parents.filter((p) => p.stored);
    const existing = await loadCompanions(
      tx,
      det,
      updatedParents.map((p) => p.moduleId),
      updatedParents.map((p) => p.id),
    );
    for (const parent of parents) {
      const derived = getHandler(parent.det).companion!.derive(parent.data);
      const [current, ...extra] = existing.get(parent.id) ?? [];
      const gone = { moduleId: parent.moduleId, detId: det.id, year: parent.year };
      companionDeletes.push(...extra.map((c) => ({ ...gone, id: c.id })));
      const base = {
        index: parent.index,
        moduleId: parent.moduleId,
        det,
        year: parent.year,
        companionOf: parent.id,
        rows: [],
      };
      if (!derived) {
        if (current) companionDeletes.push({ ...gone, id: current.id });
      } else if (current) {
        const data = { ...derived, data_entry_id: parent.id };
        updatedCompanions.push({ ...base, id: current.id, data, stored: current.data });
      } else {
        newCompanions.push({ ...base, data: { ...derived, data_entry_id: parent.id } });
      }
    }
  }
  const companionIds = await allocateEntryIds(tx, newCompanions.length);
  pending.push(
    ...newCompanions.map((c, i) => ({ ...c, id: companionIds[i] })),
    ...updatedCompanions,
  );

  const inputsFor = sliceInputCache(tx);
  const computeErrors: EntryProblem[] = [];
  const warnings: EntryProblem[] = [];
  const failedIds = new Map<number, string>();
  // Every slice's inputs are read before any write is sent: a read queued behind the writes in
  // flight would stall the compute.
  for (const entry of pending) await inputsFor(entry.det, entry.year);
  const compute = async (entry: Pending) => {
    try {
      const computed = computeEntry(
        getHandler(entry.det),
        entry.data,
        await inputsFor(entry.det, entry.year),
      );
      entry.data = computed.data;
      entry.rows = computed.rows;
      for (const warning of computed.warnings) {
        warnings.push({ index: entry.index, message: warning });
      }
    } catch (error) {
      if (!(error instanceof EntryComputeError) || plan.failOnComputeError) throw error;
      computeErrors.push({ index: entry.index, message: error.message });
      failedIds.set(entry.id, error.message);
    }
  };

  // Updates first: what they change decides what is written, and they are written before any
  // insert.
  const updates = pending.filter((p) => p.stored);
  for (const entry of updates) await compute(entry);
  const storedRows = await loadEmissionsOf(tx, updates.map((p) => p.id));
  const unchangedIds = new Set(
    updates.filter((p) =>
      sameJson(p.stored, p.data) && sameRows(storedRows.get(p.id) ?? [], p.rows)
    ).map((p) => p.id),
  );
  const changed = updates.filter((p) => !unchangedIds.has(p.id));

  // Updates before inserts, and updated unique values cleared first: an input may take a value
  // that an earlier input of the same call gave up, and the unique indexes check row by row.
  const uniqueFields = [
    ...new Set(changed.flatMap((p) => getHandler(p.det).uniqueInModule ?? [])),
  ];
  if (uniqueFields.length) {
    await tx`update data_entries set data = data - ${uniqueFields}::text[]
      where id = any(${changed.map((p) => p.id)}::bigint[])`;
  }
  // The writes are sent without waiting (the connection runs them in order) and awaited together
  // at the end: the server writes one chunk while the next is computed.
  const writes = new WritesInFlight();
  const emissionRowsOf = (entries: readonly Pending[]) => {
    const rows = entries.flatMap((p) => p.rows.map((row) => ({ dataEntryId: p.id, row })));
    refuseUnknownEmissionTypes(rows);
    return rows;
  };
  if (changed.length) {
    // The data go as one JSON array, split by position on the server: nothing to escape per
    // entry.
    writes.add(tx`
      update data_entries e set data = u.d, updated_at = now()
      from rows from (
        unnest(${changed.map((p) => p.id)}::bigint[]),
        jsonb_array_elements(${JSON.stringify(changed.map((p) => p.data))}::text::jsonb)
      ) as u(i, d)
      where e.id = u.i`.execute());
  }
  // What the deleted companions' rows weigh, read before they go (their slices' totals drop by it).
  const companionsKg = companionDeletes.length > 0 &&
    writes.add(entriesKg(tx, companionDeletes.map((c) => c.id)));
  const companionsGone = companionDeletes.length > 0 &&
    writes.add(
      tx`delete from data_entries where id = any(${companionDeletes.map((c) => c.id)}::bigint[])`
        .execute(),
    );
  const deleting = writes.add(deleteEmissionsOf(tx, changed.map((p) => p.id)));
  const insertedCounts = [writes.add(insertEmissions(tx, emissionRowsOf(changed)))];

  // New entries a chunk at a time: each chunk's inserts go while the next chunk is computed.
  const inserts = pending.filter((p) => !p.stored);
  for (const chunk of chunksOf(inserts, INSERT_CHUNK)) {
    for (const entry of chunk) await compute(entry);
    writes.add(tx`
      insert into data_entries (id, carbon_report_module_id, data_entry_type_id, data, source_key)
      select u.i, u.m, u.t, u.d, u.k
      from rows from (
        unnest(${chunk.map((p) => p.id)}::bigint[]),
        unnest(${chunk.map((p) => p.moduleId)}::bigint[]),
        unnest(${chunk.map((p) => p.det.id)}::int[]),
        jsonb_array_elements(${JSON.stringify(chunk.map((p) => p.data))}::text::jsonb),
        unnest(${chunk.map((p) => p.sourceKey ?? null)}::text[])
      ) with ordinality as u(i, m, t, d, k, n)
      order by u.n`.execute());
    insertedCounts.push(writes.add(insertEmissions(tx, emissionRowsOf(chunk))));
  }
  await writes.all();
  const emissionsDeleted = await deleting;
  const emissionsInserted = (await Promise.all(insertedCounts)).reduce((a, b) => a + b, 0);
  const companionsDeleted = companionsGone ? (await companionsGone).count : 0;
  // A failed entry, or one computed while its slice is stale, is left for the next rematch. A
  // new entry of a slice without a recorded state is vouched for and has no mark to clear: the
  // comparison of that slice's inputs is skipped.
  const recorded = await slicesWithState(tx, pending);
  // The slices' recorded kg totals move by what was written: each rewritten entry's rows as they
  // are now against as they were, each new entry's rows, less the deleted companions' rows.
  const shifts = [
    ...changed.map((p) => ({
      dataEntryTypeId: p.det.id,
      year: p.year,
      kg: leafKg(p.rows) - leafKg(storedRows.get(p.id) ?? []),
    })),
    ...inserts.map((p) => ({ dataEntryTypeId: p.det.id, year: p.year, kg: leafKg(p.rows) })),
  ];
  if (companionsKg) {
    const kgs = await companionsKg;
    for (const c of companionDeletes) {
      shifts.push({ dataEntryTypeId: c.detId, year: c.year, kg: -(kgs.get(c.id) ?? 0) });
    }
  }
  await shiftSliceKgTotals(tx, shifts);
  const noted = pending.filter((p) =>
    p.stored || failedIds.has(p.id) || recorded.has(`${p.det.id}:${p.year}`)
  );
  const usedDigests = new Map<string, Readonly<Record<string, string>> | undefined>();
  for (const p of noted) {
    const key = `${p.det.id}:${p.year}`;
    if (!usedDigests.has(key)) {
      usedDigests.set(key, (await inputsFor(p.det, p.year)).referenceDigests);
    }
  }
  await noteWrittenEntries(
    tx,
    noted.map((p) => ({
      id: p.id,
      det: p.det,
      year: p.year,
      error: failedIds.get(p.id),
      fresh: !p.stored,
      referenceDigests: usedDigests.get(`${p.det.id}:${p.year}`),
    })),
  );

  const moduleIds = [
    ...new Set([...inserts, ...changed, ...companionDeletes].map((p) => p.moduleId)),
  ].sort((a, b) => a - b);
  if (plan.refreshStats) {
    // By what changed: the rows each rewritten entry had and has, and each new entry with its
    // rows. A module that lost a companion (rows not read) is summed again.
    const stats = plan.collectStats ?? new CollectedStats();
    for (const p of changed) stats.deltas.add(p.moduleId, storedRows.get(p.id) ?? [], p.rows);
    for (const p of inserts) stats.deltas.add(p.moduleId, [], p.rows, 1);
    for (const c of companionDeletes) stats.resum.add(c.moduleId);
    if (!plan.collectStats) await writeCollectedStats(tx, stats);
  } else {
    await forgetModuleStats(tx, moduleIds);
  }

  const ids: (number | undefined)[] = Array.from({ length: plan.inputCount }, () => undefined);
  const outcomes: (EntryOutcome | undefined)[] = ids.map(() => undefined);
  const withoutEmissions: number[] = [];
  const parents = pending.filter((p) => p.companionOf === undefined);
  for (const p of parents) {
    ids[p.index] = p.id;
    outcomes[p.index] = !p.stored ? "created" : unchangedIds.has(p.id) ? "unchanged" : "updated";
    if (p.rows.length === 0) withoutEmissions.push(p.index);
  }
  const companions = pending.filter((p) => p.companionOf !== undefined);
  const count = (list: readonly Pending[], test: (p: Pending) => boolean) =>
    list.filter(test).length;
  return {
    ids,
    outcomes,
    created: count(parents, (p) => !p.stored),
    updated: count(parents, (p) => Boolean(p.stored) && !unchangedIds.has(p.id)),
    unchanged: count(parents, (p) => unchangedIds.has(p.id)),
    companionsCreated: count(companions, (p) => !p.stored),
    companionsUpdated: count(companions, (p) => Boolean(p.stored) && !unchangedIds.has(p.id)),
    companionsDeleted,
    emissionsInserted,
    emissionsDeleted,
    withoutEmissions: withoutEmissions.sort((a, b) => a - b),
    rejected: rejected.sort((a, b) => a.index - b.index),
    // By input (updates are computed before new entries); one input's in the order found.
    computeErrors: computeErrors.sort((a, b) => a.index - b.index),
    warnings: warnings.sort((a, b) => a.index - b.index),
    moduleIds,
    pending,
  };
}

// ---- the public writes ----------------------------------------------------------------------

/**
 * Creates entries in bulk (a few statements per call, not per entry): validates and normalises
 * each (year, unit, source key, schema, what jsonb can store), takes the slice locks, creates
 * units/reports/modules on demand, resolves JSON links, computes and stores emission rows,
 * creates companion entries and refreshes module stats. An input whose source key names an entry
 * of its module updates that entry instead (or leaves it untouched when it is already so).
 * Invalid inputs are rejected and listed; entries whose compute fails are stored without
 * emissions and listed.
 *
 * @example
 * ```ts ignore
 * import { createEntries } from "./entries.ts";
 * import { getDataEntryType } from "../reference/enums.ts";
 * import { transaction } from "./transaction.ts";
 * const result = await transaction(db.sql, (tx) =>
 *   createEntries(tx, [{
 *     unitCode: "U1", year: 2025, det: getDataEntryType("it"), sourceKey: "laptop-17",
 *     data: { name: "laptop", equipment_class: "Laptop" },
 *   }])
 * );
 * ```
 */
export async function createEntries(
  tx: Queryable,
  inputs: readonly NewEntry[],
  options: EntryWriteOptions = {},
): Promise<CreateEntriesResult> {
  const rejected: EntryProblem[] = [];
  const valid: { index: number; input: NewEntry; data: EntryData; sourceKey?: string }[] = [];
  inputs.forEach((given, index) => {
    // A unit code is trimmed as the imports trim it: "U1 " is unit U1, not a unit of its own.
    const unitCode = given.unitCode.trim();
    const input = unitCode === given.unitCode ? given : { ...given, unitCode };
    const problem = envelopeProblem(input);
    if (problem) return rejected.push({ index, message: problem });
    try {
      const sourceKey = input.sourceKey?.trim() || undefined;
      valid.push({ index, input, data: validateForStorage(input.det, input.data), sourceKey });
    } catch (error) {
      if (!(error instanceof EntryComputeError)) throw error;
      rejected.push({ index, message: error.message });
    }
  });

  await lockSlices(tx, valid.flatMap((v) => slicesOf(v.input.det, v.input.year)));
  const modules = await ensureModules(
    tx,
    valid.map(({ input }) => ({
      unitCode: input.unitCode,
      year: input.year,
      moduleTypeId: input.det.moduleTypeId,
    })),
  );
  const placed = await placeByKey(
    tx,
    valid.map((v) => ({
      index: v.index,
      det: v.input.det,
      year: v.input.year,
      moduleId: modules.get(
        `${v.input.unitCode}\u0000${v.input.year}\u0000${v.input.det.moduleTypeId}`,
      )!,
      data: v.data,
      sourceKey: v.sourceKey,
    })),
    rejected,
  );
  const { pending: _, ...result } = await writePlaced(tx, {
    placed: await refuseFrozen(tx, placed, rejected),
    rejected,
    inputCount: inputs.length,
    failOnComputeError: false,
    refreshStats: options.refreshStats ?? true,
    collectStats: options.collectStats,
  });
  return result;
}

/**
 * Inputs placed in frozen modules are rejected (spec/history.md §4), naming the freeze and how
 * to lift it; the others go on.
 */
async function refuseFrozen<T extends { index: number; moduleId: number }>(
  tx: Queryable,
  placed: readonly T[],
  rejected: EntryProblem[],
): Promise<T[]> {
  const frozen = await frozenModules(tx, placed.map((p) => p.moduleId));
  if (frozen.length === 0) return [...placed];
  const byId = new Map(frozen.map((m) => [m.moduleId, m]));
  return placed.filter((p) => {
    const module = byId.get(p.moduleId);
    if (module) rejected.push({ index: p.index, message: new FrozenModuleError(module).message });
    return !module;
  });
}

/** Throws FrozenModuleError when the module is frozen. */
async function refuseFrozenModule(tx: Queryable, moduleId: number): Promise<void> {
  const [frozen] = await frozenModules(tx, [moduleId]);
  if (frozen) throw new FrozenModuleError(frozen);
}

/** Points each keyed input at the entry of its module holding that key, if any. */
async function placeByKey(
  tx: Queryable,
  placed: Placed[],
  rejected: EntryProblem[],
): Promise<Placed[]> {
  const keyed = placed.filter((p) => p.sourceKey !== undefined);
  if (keyed.length === 0) return placed;
  const key = (moduleId: number, sourceKey: string) => `${moduleId}\u0000${sourceKey}`;
  const rows = await tx<
    { id: number; module_id: number; det: number; key: string; data: EntryData }[]
  >`
    select e.id, e.carbon_report_module_id as module_id, e.data_entry_type_id as det,
      e.source_key as key, e.data
    from data_entries e join unnest(${keyed.map((p) => p.moduleId)}::bigint[],
      ${keyed.map((p) => p.sourceKey!)}::text[]) as k(m, s)
      on e.carbon_report_module_id = k.m and e.source_key = k.s`;
  const existing = new Map(rows.map((r) => [key(r.module_id, r.key), r]));
  const firstUse = new Map<string, number>();
  const result: Placed[] = [];
  for (const p of placed) {
    if (p.sourceKey === undefined) {
      result.push(p);
      continue;
    }
    const k = key(p.moduleId, p.sourceKey);
    const earlier = firstUse.get(k);
    if (earlier !== undefined) {
      rejected.push({
        index: p.index,
        message: `source_key: ${
          JSON.stringify(p.sourceKey)
        } is also the key of input ${earlier} of this write (one entry per key and module)`,
      });
      continue;
    }
    firstUse.set(k, p.index);
    const found = existing.get(k);
    if (found && found.det !== p.det.id) {
      rejected.push({
        index: p.index,
        message: `source_key: ${JSON.stringify(p.sourceKey)} already names entry ${found.id}, a ${
          getDataEntryType(found.det).name
        } entry of this module (this one is ${p.det.name})`,
        conflictingEntryId: found.id,
      });
      continue;
    }
    result.push(found ? { ...p, target: { id: found.id, data: found.data } } : p);
  }
  return result;
}

interface StoredEntry {
  id: number;
  moduleId: number;
  det: DataEntryType;
  year: number;
  data: EntryData;
  sourceKey: string | null;
}

async function loadEntry(tx: Queryable, id: number): Promise<StoredEntry> {
  // Refused before the query: PostgreSQL's own error for `1.5` or NaN aborts the transaction.
  if (!Number.isSafeInteger(id)) {
    throw new RangeError(`data entry ${id} does not exist (an entry id is an integer)`);
  }
  const [row] = await tx<
    {
      id: number;
      module_id: number;
      det: number;
      year: number;
      data: EntryData;
      source_key: string | null;
    }[]
  >`
    select e.id, e.carbon_report_module_id as module_id, e.data_entry_type_id as det, r.year,
      e.data, e.source_key
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
    sourceKey: row.source_key,
  };
}

// An entry's det and year never change: they are read before the lock, its data after it.
async function loadLockedEntry(tx: Queryable, id: number): Promise<StoredEntry> {
  const first = await loadEntry(tx, id);
  await lockSlices(tx, slicesOf(first.det, first.year));
  return await loadEntry(tx, id);
}

/**
 * Replaces an entry's data and recomputes its emissions under its slice lock; keeps its companion
 * in step and refreshes its module's stats. A validation error, a clash of a unique field or a
 * compute error throws EntryComputeError and writes nothing (call inside a transaction so the
 * companion's write rolls back too). A frozen module throws FrozenModuleError.
 */
export async function updateEntry(
  tx: Queryable,
  id: number,
  data: unknown,
  options: EntryWriteOptions = {},
): Promise<{ data: EntryData; rows: readonly EmissionRow[]; warnings: readonly string[] }> {
  const entry = await loadLockedEntry(tx, id);
  await refuseFrozenModule(tx, entry.moduleId);
  const validated = validateForStorage(entry.det, data);
  const rejected: EntryProblem[] = [];
  const outcome = await writePlaced(tx, {
    placed: [{
      index: 0,
      det: entry.det,
      year: entry.year,
      moduleId: entry.moduleId,
      data: validated,
      sourceKey: entry.sourceKey ?? undefined,
      target: { id: entry.id, data: entry.data },
    }],
    rejected,
    inputCount: 1,
    failOnComputeError: true,
    refreshStats: options.refreshStats ?? true,
  });
  if (outcome.rejected.length) throw new EntryComputeError(outcome.rejected[0].message);
  const self = outcome.pending.find((p) => p.id === id)!;
  return {
    data: self.data,
    rows: self.rows,
    warnings: outcome.warnings.map((w) => w.message),
  };
}

/**
 * Deletes an entry (its emissions cascade) and its companion, under their slice locks. A frozen
 * module throws FrozenModuleError.
 */
export async function deleteEntry(
  tx: Queryable,
  id: number,
  options: EntryWriteOptions = {},
): Promise<void> {
  const entry = await loadLockedEntry(tx, id);
  await refuseFrozenModule(tx, entry.moduleId);
  const companion = getHandler(entry.det).companion;
  // The entries that go, by det, with what their rows take off their slices' totals.
  const gone: { id: number; detId: number }[] = [{ id, detId: entry.det.id }];
  if (companion) {
    const det = getDataEntryType(companion.det);
    const existing = await loadCompanions(tx, det, [entry.moduleId], [entry.id]);
    gone.push(...(existing.get(entry.id) ?? []).map((c) => ({ id: c.id, detId: det.id })));
  }
  const kgs = await entriesKg(tx, gone.map((g) => g.id));
  const companions = gone.slice(1).map((g) => g.id);
  if (companions.length) await tx`delete from data_entries where id = any(${companions}::bigint[])`;
  await tx`delete from data_entries where id = ${id}`;
  await shiftSliceKgTotals(
    tx,
    gone.map((g) => ({ dataEntryTypeId: g.detId, year: entry.year, kg: -(kgs.get(g.id) ?? 0) })),
  );
  if (options.refreshStats ?? true) await refreshModuleStats(tx, [entry.moduleId]);
  else await forgetModuleStats(tx, [entry.moduleId]);
}
