// The rematch of spec/rematch.md: read a (det, year) slice in id-ordered chunks, run the one
// compute path on each entry against the slice's factor set, and write only what changed.
import {
  computeEntry,
  type ComputeInputs,
  type EntryComputation,
  LINK_KEY,
} from "../compute/compute_entry.ts";
import {
  type EmissionRow,
  type IdentifiedRow,
  planRowUpdates,
  rowsDecidedByMeta,
  sameJson,
} from "../compute/emission_row.ts";
import type { EntryEmissionRow, StoredEmissionRow } from "../db/emissions.ts";
import { getHandler } from "../handlers/mod.ts";
import { EntryComputeError, type EntryData, type Handler } from "../handlers/types.ts";
import { ROLLUP_EMISSION_TYPE_IDS } from "../reference/emission_types.ts";
import { getDataEntryType } from "../reference/enums.ts";
import { MAX_YEAR, MIN_YEAR, yearProblem } from "../reference/years.ts";
import { ModuleStatsDeltas, movedSum, reportedKg } from "./module_stats.ts";
import {
  classifyFactorChanges,
  diffFactorIds,
  diffFactorSet,
  type EntryMarks,
  type FactorDifference,
  type SliceComparison,
} from "./state.ts";
import {
  ModulesNotInSliceError,
  type RematchDiffEntry,
  type RematchModuleResult,
  type RematchOptions,
  type RematchResult,
  type SliceChunk,
  type SliceEntry,
  type SliceStore,
} from "./types.ts";

/** Detail lists stop growing here; the counts never do. */
export const DETAIL_LIMIT = 1000;
// Small chunks keep a chunk's objects from outliving the young generation of the heap: bigger ones
// only add memory (the statements per chunk cost little next to the rows).
/** Entries per chunk when the caller names no size (`worker --chunk-size` says it). */
export const DEFAULT_CHUNK = 1000;

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

/** An entry's computation, or what it failed with. */
type Computed = { readonly computation: EntryComputation } | { readonly error: unknown };

/**
 * Computes every entry of a chunk before comparing any, so that the meta of exactly the stored
 * rows the comparison will look at is read at once, when the chunk came without it. A chunk that
 * came with every meta is not computed ahead (undefined): each entry is computed and compared in
 * turn, and its computation is garbage before the next one's.
 */
async function computeChunk(
  handler: Handler,
  chunk: SliceChunk,
  inputs: ComputeInputs,
): Promise<Map<number, Computed> | undefined> {
  if (hasEveryMeta(chunk)) return undefined;
  const computed = new Map<number, Computed>();
  const decided: StoredEmissionRow[] = [];
  for (const entry of chunk.entries) {
    try {
      const computation = computeEntry(handler, entry.data, inputs);
      computed.set(entry.id, { computation });
      const oldRows = chunk.stored.get(entry.id);
      if (oldRows) decided.push(...rowsDecidedByMeta(oldRows, computation.rows));
    } catch (error) {
      computed.set(entry.id, { error });
    }
  }
  await chunk.needMeta?.(decided);
  return computed;
}

function hasEveryMeta(chunk: SliceChunk): boolean {
  for (const rows of chunk.stored.values()) {
    for (const row of rows) if (row.metaText === undefined) return false;
  }
  return true;
}

/**
 * Computes one entry (unless given its computation) and compares it with its stored rows; throws
 * for a per-entry failure.
 */
function planEntry(
  handler: Handler,
  data: EntryData,
  oldRows: readonly IdentifiedRow[],
  inputs: ComputeInputs,
  known?: Computed,
): EntryPlan {
  if (known && "error" in known) throw known.error;
  const computed = known?.computation ?? computeEntry(handler, data, inputs);
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
 * How the factors a rematch loaded differ from its slice's recorded snapshot. When their stamp,
 * read after they were loaded, is still the one the comparison read with its differences, nothing
 * wrote them in between: those differences are the loaded ones, and only their recorded rows are
 * read (a slice of 50,100 factors compared them all for 0.38 to 0.44 s). Else (a hand edit landed
 * mid-rematch, or a store without stamps) the whole snapshot is compared with what was loaded.
 */
async function loadedFactorDifferences(
  store: SliceStore,
  detId: number,
  year: number,
  comparison: SliceComparison,
  inputs: ComputeInputs,
): Promise<FactorDifference[]> {
  const stamp = comparison.factorStamp;
  const known = comparison.factorDifferences;
  if (stamp && known && store.factorStamp && (await store.factorStamp(detId, year)) === stamp) {
    const ids = known.map((d) => d.id);
    if (ids.length === 0) return [];
    return diffFactorIds(
      await store.recordedFactors(detId, year, ids),
      inputs.factors.factors,
      ids,
    );
  }
  return diffFactorSet(await store.recordedFactors(detId, year), inputs.factors.factors);
}

/** The scope a rematch runs with, decided from the slice state and the factors it loaded. */
interface ScopeDecision {
  readonly scope: "targeted" | "full";
  readonly reason: string;
  /** Targeted: the factors changed in value. */
  readonly factorIds: readonly number[];
  /** The loaded factors and the reference data are exactly as the slice state records them. */
  readonly inputsMatch: boolean;
}

// The SQL comparison chose the scope before anything was loaded; the differences of the factors
// loaded since (see loadedFactorDifferences) decide again here, so that what is computed, what is
// read and what is recorded agree even when a hand edit lands in between.
function decideScope(
  options: RematchOptions,
  comparison: SliceComparison,
  handler: Handler,
  differences: readonly FactorDifference[] | undefined,
): ScopeDecision {
  const changes = differences
    ? classifyFactorChanges(differences, handler.structuralValues)
    : undefined;
  const inputsMatch = comparison.inputsMatch && changes?.scope === "none";
  if (options.full) {
    return { scope: "full", reason: "full rematch asked for", factorIds: [], inputsMatch };
  }
  if (comparison.scope === "full" || !changes) {
    return { scope: "full", reason: comparison.reason, factorIds: [], inputsMatch };
  }
  if (changes.scope === "full") {
    return { scope: "full", reason: changes.reason, factorIds: [], inputsMatch };
  }
  return {
    scope: "targeted",
    reason: comparison.reason,
    factorIds: changes.valueChangedIds,
    inputsMatch,
  };
}

/**
 * Above this share of the slice's factors changed, a targeted rematch reads the whole slice and
 * keeps the entries it targets as they come, rather than listing them first: they are then most
 * of the slice, and a list of ids that long costs the server more to plan and probe than one
 * pass over the slice (measured: at 100,000 entries, every factor changed, 0.25 s of listing).
 */
const SCAN_ABOVE_FACTOR_SHARE = 0.5;

/** How a targeted rematch finds its entries: by their ids, or as the slice's cursor passes. */
type Target =
  | { readonly ids: readonly number[] }
  | {
    readonly keep: (entry: SliceEntry, rows: readonly StoredEmissionRow[] | undefined) => boolean;
  };

/**
 * The entries a targeted rematch reads (rule 17): those with a stored row or a JSON link naming
 * a changed factor, plus the pending ones. The two ways select the same entries; `keep` tests
 * each entry as the SQL of `targetCandidates` (`state.ts`) does.
 */
async function targetOf(
  store: SliceStore,
  detId: number,
  moduleIds: readonly number[],
  factorIds: readonly number[],
  inputs: ComputeInputs,
): Promise<Target> {
  const factors = inputs.factors.factors.length;
  if (
    !store.pendingEntryIds || factorIds.length === 0 ||
    factorIds.length <= SCAN_ABOVE_FACTOR_SHARE * factors
  ) {
    return { ids: await store.targetEntryIds(detId, moduleIds, factorIds) };
  }
  const pending = new Set(await store.pendingEntryIds(detId));
  const changed = new Set(factorIds);
  return {
    keep(entry, rows) {
      if (pending.has(entry.id)) return true;
      const link = linkOf(entry.data);
      if (link !== null && changed.has(link)) return true;
      return rows?.some((r) => r.primaryFactorId !== null && changed.has(r.primaryFactorId)) ??
        false;
    },
  };
}

/** The entries of a chunk that `keep` keeps (the rows of the others are never looked up). */
function keptOf(
  chunk: SliceChunk,
  keep: (entry: SliceEntry, rows: readonly StoredEmissionRow[] | undefined) => boolean,
): SliceChunk {
  const entries = chunk.entries.filter((e) => keep(e, chunk.stored.get(e.id)));
  return entries.length === chunk.entries.length ? chunk : { ...chunk, entries };
}

function emptyResult(
  det: { name: string; id: number },
  year: number,
  dryRun: boolean,
): RematchResult {
  return {
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
    upToDate: false,
    scope: "full",
    scopeReason: "",
    entriesRead: 0,
    frozen: 0,
    frozenKgDelta: 0,
    modules: [],
  };
}

/**
 * Runs the rematch through a store that is already inside one transaction. A current slice
 * returns at once (`upToDate`); factor changes of existing numeric non-structural values read
 * only the entries using those factors plus the pending ones (`targeted`); anything else, or
 * `full`, reads every entry. Per-entry compute errors are counted and leave the entry as it was
 * (marked pending, so the next rematch retries it); a store error propagates (the caller's
 * transaction then rolls back, so nothing of the rematch persists). A rematch of the whole slice
 * records its state; a module-restricted one (`carbonReportModuleIds`) does not, and marks the
 * entries it rewrites against unrecorded inputs, so the next whole-slice rematch reads them.
 */
export async function rematchSlice(
  store: SliceStore,
  options: RematchOptions,
): Promise<RematchResult> {
  const started = performance.now();
  const det = getDataEntryType(options.dataEntryType);
  const handler = getHandler(det);
  const { year } = options;
  // As everywhere (README: years are 1990..2100): a library caller's year is checked here too.
  const wrongYear = typeof year === "number"
    ? yearProblem(year)
    : `expected a year between ${MIN_YEAR} and ${MAX_YEAR} as a number, got ${
      JSON.stringify(year)
    }`;
  if (wrongYear) throw new RangeError(`year: ${wrongYear}`);
  const dryRun = options.dryRun ?? false;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  const restricted = options.carbonReportModuleIds !== undefined;
  const result = emptyResult(det, year, dryRun);
  // The slice's kg total as stored (of its given modules, when restricted): the recorded one when
  // it holds, else summed from the rows. Read before any write.
  const storedTotal = async (moduleIds?: readonly number[]) => {
    const recorded = comparison.recorded?.kgTotal;
    if (!restricted && typeof recorded === "number") return recorded;
    return await store.sliceKg(
      det.id,
      moduleIds ?? await store.moduleIds(det.moduleTypeId, year),
    );
  };

  // A rematch that waits on the lock itself, over the whole slice, has its comparison sent behind
  // the lock when the store can (one round trip less); one that tries the lock first, or is
  // restricted to modules it must list under the lock, takes the lock first.
  // A rematch with a signal (a job) tries the lock until it gets it or the signal fires.
  const waitsOnLock = !options.noWait && !options.onLockWait && !restricted && !options.signal;
  let comparison: SliceComparison;
  let onlyModules: number[] | undefined;
  if (waitsOnLock && store.lockAndCompareState) {
    comparison = await store.lockAndCompareState(handler, det.id, year);
  } else {
    await store.lockSlice(
      det.id,
      year,
      options.noWait ?? false,
      options.onLockWait,
      options.signal,
    );
    onlyModules = restricted
      ? await store.moduleIds(det.moduleTypeId, year, options.carbonReportModuleIds)
      : undefined;
    if (onlyModules) {
      // A module id that is not the slice's is a mistake, not an empty rematch to record.
      const notInSlice = [...new Set(options.carbonReportModuleIds)]
        .filter((id) => !onlyModules!.includes(id))
        .sort((a, b) => a - b);
      if (notInSlice.length) throw new ModulesNotInSliceError(det.name, year, notInSlice);
    }
    comparison = await store.compareState(handler, det.id, year, onlyModules);
  }
  if (comparison.scope === "none" && !options.full) {
    // Found current by a diff of its factors (their stamp had moved, or was never recorded): the
    // live stamp goes into the state, and the next comparison skips them while it holds.
    const stamp = comparison.factorStamp;
    if (!dryRun && stamp && comparison.recorded && comparison.recorded.factorStamp !== stamp) {
      await store.recordFactorStamp?.(det.id, year, stamp);
    }
    result.upToDate = true;
    result.scope = "none";
    result.scopeReason = comparison.reason;
    // Nothing read, nothing changed: the slice's total before and after. Summed (no total was
    // recorded, or a rematch of some modules since let it go), it is recorded for the next one.
    const total = await storedTotal(onlyModules);
    const recorded = comparison.recorded;
    if (!dryRun && !restricted && recorded && recorded.kgTotal !== total) {
      await store.recordKgTotal(det.id, year, total);
    }
    result.kgBefore = result.kgAfter = reportedKg(total);
    result.durationMs = Math.round(performance.now() - started);
    return result;
  }
  const inputs = await store.loadInputs(handler, det.id, year);
  const moduleIds = onlyModules ?? await store.moduleIds(det.moduleTypeId, year);
  const frozenModules = new Set(
    moduleIds.length ? (await store.frozenModuleIds?.(moduleIds)) ?? [] : [],
  );
  const differences = comparison.recorded
    ? await loadedFactorDifferences(store, det.id, year, comparison, inputs)
    : undefined;
  const decision = decideScope(options, comparison, handler, differences);
  result.scope = decision.scope;
  result.scopeReason = decision.reason;
  const target = decision.scope === "targeted"
    ? await targetOf(store, det.id, moduleIds, decision.factorIds, inputs)
    : undefined;
  const targetIds = target && "ids" in target ? target.ids : undefined;
  // A targeted rematch reads some entries only: its kg totals are the slice's, moved by what it
  // changed in those (a full one reads them all, and sums them as it goes).
  const totalBefore = decision.scope === "targeted" ? await storedTotal(moduleIds) : undefined;
  // The total is only for progress: counting a whole slice is a pass over its entries (90 ms at
  // 1,000,000), not spent when nobody watches.
  const total = targetIds?.length ??
    (moduleIds.length && options.onProgress ? await store.countEntries(det.id, moduleIds) : 0);
  const keep = target && "keep" in target ? target.keep : undefined;
  // Entries the cursor handed over (when `keep` filters them, more than `result.entries`).
  let scanned = 0;
  // Marks of entries computed now are dropped when the state vouches for them: always after a
  // whole-slice rematch (it records these inputs), else only when the inputs are as recorded,
  // the reference data as read too (a reference import may have committed since the comparison).
  const vouched = !restricted ||
    (decision.inputsMatch &&
      (!inputs.referenceDigests || sameJson(inputs.referenceDigests, comparison.referenceDigests)));
  const hadPending = comparison.pendingEntries > 0;

  const diff: RematchDiffEntry[] | undefined = dryRun && options.diff ? [] : undefined;
  const affected = new Set<number>();
  const statsDeltas = new ModuleStatsDeltas();
  const modules = new Map<number, RematchModuleResult>();
  const moduleOf = (moduleId: number) => {
    let tally = modules.get(moduleId);
    if (!tally) {
      tally = {
        moduleId,
        kgBefore: 0,
        kgAfter: 0,
        entriesChanged: 0,
        frozen: frozenModules.has(moduleId),
        heldBack: 0,
        heldBackKg: 0,
      };
      modules.set(moduleId, tally);
    }
    return tally;
  };
  // At most one chunk's writes in flight: they run on the server while the next chunk is
  // computed (the connection runs statements in order, so reads and writes never mix up).
  let writing: Promise<unknown> = Promise.resolve();

  const chunks = moduleIds.length ? store.readSlice(det.id, moduleIds, chunkSize, targetIds) : [];
  for await (const read of chunks) {
    options.signal?.throwIfAborted();
    scanned += read.entries.length;
    const chunk = keep ? keptOf(read, keep) : read;
    const { entries, stored } = chunk;
    const computations = await computeChunk(handler, chunk, inputs);

    const updates: { id: number; row: EmissionRow }[] = [];
    const replaceRowsOf: number[] = [];
    const rows: EntryEmissionRow[] = [];
    const relinks: { id: number; factorId: number | null }[] = [];
    const failed: { id: number; error: string }[] = [];
    const computedIds: number[] = [];
    const changedIds: number[] = [];
    const decided: StoredEmissionRow[] = [];
    for (const entry of entries) {
      result.entries++;
      const oldRows = stored.get(entry.id) ?? [];
      const oldKg = leafKg(oldRows);
      result.kgBefore += oldKg;
      const tally = moduleOf(entry.moduleId);
      tally.kgBefore += oldKg;
      if (tally.frozen) {
        holdFrozenEntry(handler, entry, oldRows, inputs, result, tally, diff, computations);
        continue;
      }
      let plan: EntryPlan;
      try {
        plan = planEntry(handler, entry.data, oldRows, inputs, computations?.get(entry.id));
      } catch (error) {
        // Per-entry isolation: whatever went wrong computing or comparing this entry, it keeps
        // its data and rows and the others go on. (Database errors happen outside this loop.)
        result.errors++;
        result.kgAfter += oldKg;
        tally.kgAfter += oldKg;
        const message = describeEntryError(error);
        failed.push({ id: entry.id, error: message });
        if (result.errorDetails.length < DETAIL_LIMIT) {
          result.errorDetails.push({ dataEntryId: entry.id, error: message });
        }
        continue;
      }
      const { computed, inPlace } = plan;
      computedIds.push(entry.id);
      result.recalculated++;
      if (computed.ambiguous) result.ambiguousMatches++;
      for (const warning of computed.warnings) {
        if (result.warnings.length < DETAIL_LIMIT) {
          result.warnings.push({ dataEntryId: entry.id, warning });
        }
      }
      // Computed here: the rows whose meta decided tell the reader whether to read meta along.
      if (!computations && oldRows.length) {
        decided.push(...rowsDecidedByMeta(oldRows, computed.rows));
      }
      const newKg = leafKg(computed.rows);
      result.kgAfter += newKg;
      tally.kgAfter += newKg;
      if (!plan.rowsChanged && !plan.relink) {
        result.unchanged++;
        continue;
      }
      changedIds.push(entry.id);
      affected.add(entry.moduleId);
      if (plan.rowsChanged) statsDeltas.add(entry.moduleId, oldRows, computed.rows);
      tally.entriesChanged++;
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
        kgBefore: reportedKg(oldKg),
        kgAfter: reportedKg(newKg),
        factorIdBefore: plan.oldLink ?? firstFactorId(oldRows),
        factorIdAfter: plan.newLink ?? firstFactorId(computed.rows),
      });
    }
    if (!computations) await chunk.needMeta?.(decided);
    if (!dryRun) {
      await writing;
      const write = updates.length || replaceRowsOf.length || relinks.length
        ? store.writeChunk({ updates, replaceRowsOf, rows, relinks })
        : undefined;
      const mark = markChunk(store, { failed, computedIds, changedIds, vouched, hadPending });
      writing = Promise.all([write, mark]);
      // A failed write is seen where it is awaited; until then it must not count as unhandled.
      writing.catch(() => {});
    }
    options.onProgress?.(scanned, total);
  }
  // A targeted rematch's total was an upper bound (ids outside the modules read are skipped).
  if (scanned !== total) options.onProgress?.(scanned, scanned);
  await writing;
  result.entriesRead = result.entries;
  if (totalBefore !== undefined) {
    result.kgAfter = movedSum(totalBefore, result.kgAfter - result.kgBefore);
    result.kgBefore = totalBefore;
  }

  result.affectedModuleIds = [...affected].sort((a, b) => a - b);
  if (!dryRun && result.affectedModuleIds.length) {
    // Skipped stats are stale: forgotten, so that no later rematch adds its changes to them.
    if (options.noStats) await store.forgetModuleStats?.(result.affectedModuleIds);
    // A forced full rematch is the repair of rows written around the project (README): the stats
    // of the modules it rewrote are summed again from their rows, not moved from a base that
    // such writes left wrong.
    else {
      await store.refreshModuleStats(
        result.affectedModuleIds,
        options.full ? undefined : statsDeltas.changes(),
      );
    }
  }
  if (diff) result.diff = diff;
  // Recorded as summed, reported without the residue of the order of the additions.
  const kgTotal = result.kgAfter;
  result.kgBefore = reportedKg(result.kgBefore);
  result.kgAfter = reportedKg(result.kgAfter);
  result.frozenKgDelta = reportedKg(result.frozenKgDelta);
  result.modules = [...modules.values()].sort((a, b) => a.moduleId - b.moduleId);
  for (const m of result.modules) {
    m.kgBefore = reportedKg(m.kgBefore);
    m.kgAfter = reportedKg(m.kgAfter);
    m.heldBackKg = reportedKg(m.heldBackKg);
  }
  result.durationMs = Math.round(performance.now() - started);
  if (!dryRun && !restricted) {
    await recordState(store, result, kgTotal, decision, comparison, inputs, differences);
  } else if (
    !dryRun && result.emissionsInserted + result.emissionsUpdated + result.emissionsDeleted > 0
  ) {
    await store.recordKgTotal(det.id, year, null);
  }
  return result;
}

// The pending marks of one chunk's entries: failures are marked; entries computed are vouched
// for, or (a module-restricted rematch against unrecorded inputs) marked when rewritten.
async function markChunk(
  store: SliceStore,
  chunk: {
    failed: { id: number; error: string }[];
    computedIds: number[];
    changedIds: number[];
    vouched: boolean;
    hadPending: boolean;
  },
): Promise<void> {
  const { failed, computedIds, changedIds, vouched, hadPending } = chunk;
  const marks: EntryMarks = vouched ? { failed, cleared: hadPending ? computedIds : [] } : {
    failed,
    unvouched: { reason: "rematched", ids: changedIds },
    noLongerFailing: hadPending ? computedIds : [],
  };
  const lists = [marks.failed, marks.cleared, marks.unvouched?.ids, marks.noLongerFailing];
  if (lists.some((list) => list?.length)) await store.markEntries(marks);
}

// The slice state of a whole-slice rematch: written in its transaction, after its writes.
async function recordState(
  store: SliceStore,
  result: RematchResult,
  kgTotal: number,
  decision: ScopeDecision,
  comparison: SliceComparison,
  inputs: ComputeInputs,
  differences: readonly FactorDifference[] | undefined,
): Promise<void> {
  const {
    errorDetails: _e,
    warnings: _w,
    diff: _d,
    affectedModuleIds: _a,
    modules: _m,
    ...summary
  } = result;
  await store.recordState({
    dataEntryTypeId: result.dataEntryTypeId,
    year: result.year,
    scope: decision.scope,
    referenceDigests: digestsToRecord(decision.scope, comparison.referenceDigests, inputs),
    factorStamp: comparison.factorStamp,
    factors: inputs.factors.factors,
    differences,
    summary,
    kgTotal,
  });
}

/**
 * The reference digests a rematch records: those of the data its entries were computed with. A
 * reference import takes no slice lock, so it may commit between the comparison and the reading
 * of the inputs: a full rematch computed every entry with what it read, and records that; a
 * targeted one left the entries it did not read as they were, computed with the data compared,
 * so its slice holds both: it records digests that match nothing, and the next comparison asks
 * for a full rematch (whatever the data is by then, even back as before).
 */
export function digestsToRecord(
  scope: "targeted" | "full",
  compared: Readonly<Record<string, string>>,
  inputs: Pick<ComputeInputs, "referenceDigests">,
): Record<string, string> {
  const used = inputs.referenceDigests;
  if (!used) return { ...compared };
  if (scope === "full" || sameJson(used, compared)) return { ...used };
  return Object.fromEntries(
    Object.entries(used).map(([kind, digest]) => [
      kind,
      digest === compared[kind] ? digest : "changed while a targeted rematch ran",
    ]),
  );
}

/**
 * An entry of a frozen module (spec/history.md §4): computed to report what freezing holds
 * back, never written, and not marked (a freeze is not staleness; unfreezing marks the module's
 * entries for the next rematch). Its kg stays as stored; a compute failure only means it would
 * not move.
 */
function holdFrozenEntry(
  handler: Handler,
  entry: SliceEntry,
  oldRows: readonly IdentifiedRow[],
  inputs: ComputeInputs,
  result: RematchResult,
  tally: RematchModuleResult,
  diff: RematchDiffEntry[] | undefined,
  computations: ReadonlyMap<number, Computed> | undefined,
): void {
  const oldKg = leafKg(oldRows);
  result.frozen++;
  result.kgAfter += oldKg;
  tally.kgAfter += oldKg;
  let plan: EntryPlan;
  try {
    plan = planEntry(handler, entry.data, oldRows, inputs, computations?.get(entry.id));
  } catch {
    return;
  }
  if (!plan.rowsChanged && !plan.relink) return;
  const newKg = leafKg(plan.computed.rows);
  result.frozenKgDelta += newKg - oldKg;
  tally.heldBack++;
  tally.heldBackKg += newKg - oldKg;
  diff?.push({
    dataEntryId: entry.id,
    kgBefore: reportedKg(oldKg),
    kgAfter: reportedKg(newKg),
    factorIdBefore: plan.oldLink ?? firstFactorId(oldRows),
    factorIdAfter: plan.newLink ?? firstFactorId(plan.computed.rows),
    frozen: true,
  });
}
