// The rematch of spec/rematch.md: read a (det, year) slice in id-ordered chunks, run the one
// compute path on each entry against the slice's factor set, and write only what changed.
import {
  computeEntry,
  type ComputeInputs,
  type EntryComputation,
  LINK_KEY,
} from "../compute/compute_entry.ts";
import { type EmissionRow, type IdentifiedRow, planRowUpdates } from "../compute/emission_row.ts";
import type { EntryEmissionRow } from "../db/emissions.ts";
import { getHandler } from "../handlers/mod.ts";
import { EntryComputeError, type EntryData, type Handler } from "../handlers/types.ts";
import { ROLLUP_EMISSION_TYPE_IDS } from "../reference/emission_types.ts";
import { getDataEntryType } from "../reference/enums.ts";
import type { RematchDiffEntry, RematchOptions, RematchResult, SliceStore } from "./types.ts";

/** Detail lists stop growing here; the counts never do. */
export const DETAIL_LIMIT = 1000;
const DEFAULT_CHUNK = 5000;

/** Sum of kg over non-rollup rows. */
export function leafKg(rows: readonly EmissionRow[]): number {
  let sum = 0;
  for (const r of rows) if (!ROLLUP_EMISSION_TYPE_IDS.has(r.emissionTypeId)) sum += r.kgCo2eq;
  return sum;
}

function linkOf(data: Record<string, unknown>): number | null {
  const id = data[LINK_KEY];
  return typeof id === "number" ? id : null;
}

function firstFactorId(rows: readonly EmissionRow[]): number | null {
  return rows.find((r) => r.primaryFactorId !== null)?.primaryFactorId ?? null;
}

/** What the rematch does with one entry, decided without I/O. */
interface EntryPlan {
  readonly computed: EntryComputation;
  readonly oldLink: number | null;
  readonly newLink: number | null;
  /** A JSON-link entry whose `primary_factor_id` changes. */
  readonly relink: boolean;
  /** In-place row updates, or null when the rows are replaced. */
  readonly inPlace: { id: number; row: EmissionRow }[] | null;
  readonly rowsChanged: boolean;
}

/** Computes one entry and compares it with its stored rows; throws for a per-entry failure. */
function planEntry(
  handler: Handler,
  data: EntryData,
  oldRows: readonly IdentifiedRow[],
  inputs: ComputeInputs,
): EntryPlan {
  const computed = computeEntry(handler, data, inputs);
  const oldLink = linkOf(data);
  const newLink = linkOf(computed.data);
  const inPlace = planRowUpdates(oldRows, computed.rows);
  return {
    computed,
    oldLink,
    newLink,
    relink: handler.link === "json" && oldLink !== newLink,
    inPlace,
    rowsChanged: inPlace === null || inPlace.length > 0,
  };
}

/** An entry's error as reported: its message, and its kind when it is not a compute error. */
function describeEntryError(error: unknown): string {
  if (error instanceof EntryComputeError) return error.message;
  if (error instanceof Error) return `unexpected ${error.name}: ${error.message}`;
  return `unexpected error: ${String(error)}`;
}

/**
 * Runs the rematch through a store that is already inside one transaction. Per-entry compute
 * errors are counted and leave the entry as it was; a store error propagates (the caller's
 * transaction then rolls back, so nothing of the rematch persists).
 */
export async function rematchSlice(
  store: SliceStore,
  options: RematchOptions,
): Promise<RematchResult> {
  const started = performance.now();
  const det = getDataEntryType(options.dataEntryType);
  const handler = getHandler(det);
  const { year } = options;
  const dryRun = options.dryRun ?? false;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;

  await store.lockSlice(det.id, year, options.noWait ?? false);
  const inputs = await store.loadInputs(handler, det.id, year);
  const moduleIds = await store.moduleIds(det.moduleTypeId, year, options.carbonReportModuleIds);
  const total = moduleIds.length ? await store.countEntries(det.id, moduleIds) : 0;

  const result: RematchResult = {
    dataEntryType: det.name,
    dataEntryTypeId: det.id,
    year,
    dryRun,
    entries: 0,
    recalculated: 0,
    unchanged: 0,
    relinked: 0,
    dropped: 0,
    errors: 0,
    errorDetails: [],
    warnings: [],
    emissionsInserted: 0,
    emissionsUpdated: 0,
    emissionsDeleted: 0,
    ambiguousMatches: 0,
    affectedModuleIds: [],
    kgBefore: 0,
    kgAfter: 0,
    durationMs: 0,
  };
  const diff: RematchDiffEntry[] | undefined = dryRun && options.diff ? [] : undefined;
  const affected = new Set<number>();
  let afterId = 0;

  while (moduleIds.length) {
    options.signal?.throwIfAborted();
    const entries = await store.readEntries(det.id, moduleIds, afterId, chunkSize);
    if (entries.length === 0) break;
    afterId = entries[entries.length - 1].id;
    const stored = await store.readEmissions(entries.map((e) => e.id));

    const updates: { id: number; row: EmissionRow }[] = [];
    const replaceRowsOf: number[] = [];
    const rows: EntryEmissionRow[] = [];
    const relinks: { id: number; factorId: number | null }[] = [];
    for (const entry of entries) {
      result.entries++;
      const oldRows = stored.get(entry.id) ?? [];
      const oldKg = leafKg(oldRows);
      result.kgBefore += oldKg;
      let plan: EntryPlan;
      try {
        plan = planEntry(handler, entry.data, oldRows, inputs);
      } catch (error) {
        // Per-entry isolation: whatever went wrong computing or comparing this entry, it keeps
        // its data and rows and the others go on. (Database errors happen outside this loop.)
        result.errors++;
        result.kgAfter += oldKg;
        if (result.errorDetails.length < DETAIL_LIMIT) {
          result.errorDetails.push({ dataEntryId: entry.id, error: describeEntryError(error) });
        }
        continue;
      }
      const { computed, inPlace } = plan;
      result.recalculated++;
      if (computed.ambiguous) result.ambiguousMatches++;
      for (const warning of computed.warnings) {
        if (result.warnings.length < DETAIL_LIMIT) {
          result.warnings.push({ dataEntryId: entry.id, warning });
        }
      }
      const newKg = leafKg(computed.rows);
      result.kgAfter += newKg;
      if (!plan.rowsChanged && !plan.relink) {
        result.unchanged++;
        continue;
      }
      affected.add(entry.moduleId);
      if (plan.relink) {
        relinks.push({ id: entry.id, factorId: plan.newLink });
        if (plan.newLink !== null) result.relinked++;
      }
      if (inPlace) {
        updates.push(...inPlace);
        result.emissionsUpdated += inPlace.length;
      } else {
        replaceRowsOf.push(entry.id);
        for (const row of computed.rows) rows.push({ dataEntryId: entry.id, row });
        result.emissionsInserted += computed.rows.length;
        result.emissionsDeleted += oldRows.length;
        if (oldRows.length > 0 && computed.rows.length === 0) result.dropped++;
      }
      diff?.push({
        dataEntryId: entry.id,
        kgBefore: oldKg,
        kgAfter: newKg,
        factorIdBefore: plan.oldLink ?? firstFactorId(oldRows),
        factorIdAfter: plan.newLink ?? firstFactorId(computed.rows),
      });
    }
    if (!dryRun && (updates.length || replaceRowsOf.length || relinks.length)) {
      await store.writeChunk({ updates, replaceRowsOf, rows, relinks });
    }
    options.onProgress?.(result.entries, total);
  }

  result.affectedModuleIds = [...affected].sort((a, b) => a - b);
  if (!dryRun && !options.noStats && result.affectedModuleIds.length) {
    await store.refreshModuleStats(result.affectedModuleIds);
  }
  if (diff) result.diff = diff;
  result.durationMs = Math.round(performance.now() - started);
  return result;
}
