// The rematch's options, result and the store it reads and writes a slice through.
import type { ComputeInputs } from "../compute/compute_entry.ts";
import type { EmissionRow } from "../compute/emission_row.ts";
import type { EntryEmissionRow, StoredEmissionRow } from "../db/emissions.ts";
import type { SliceLockWait } from "../db/locks.ts";
import type { EntryData, Handler } from "../handlers/types.ts";
import type { ModuleStatsChange } from "./module_stats.ts";
import type {
  EntryMarks,
  FactorFingerprint,
  RematchScope,
  SliceComparison,
  SliceStateRecord,
} from "./state.ts";

/**
 * `carbonReportModuleIds` named modules that are not the slice's (no such module, or one of
 * another module type or year): nothing was read or written.
 */
export class ModulesNotInSliceError extends RangeError {
  override name = "ModulesNotInSliceError";
  constructor(
    readonly dataEntryType: string,
    readonly year: number,
    readonly notInSlice: readonly number[],
  ) {
    super(
      `${notInSlice.length === 1 ? "module" : "modules"} ${notInSlice.join(", ")} ${
        notInSlice.length === 1 ? "is not a carbon report module" : "are not carbon report modules"
      } of ${dataEntryType} ${year} (expected modules of its module type and year)`,
    );
  }
}

/** Options of a (det, year) rematch. */
export interface RematchOptions {
  /** The det, by name or id. */
  dataEntryType: string | number;
  /** The slice year (the report year). */
  year: number;
  /** Only these carbon report modules. @default every module of the slice */
  carbonReportModuleIds?: readonly number[];
  /** Compute and report without writing. @default false */
  dryRun?: boolean;
  /** With dryRun: list per-entry old → new kg and relinks. @default false */
  diff?: boolean;
  /** Fail at once when another transaction holds the slice. @default false */
  noWait?: boolean;
  /**
   * Skip updating carbon_report_modules.stats; those of the modules the rematch changed are
   * marked as not computed (recomputed in full by the next refresh). @default false
   */
  noStats?: boolean;
  /**
   * Read and recompute every entry of the slice, whatever its recorded state says (a current
   * slice is otherwise left alone, and value-only factor changes read only their users).
   * @default false
   */
  full?: boolean;
  /** Entries per chunk (read, compute, write). @default 1000 */
  chunkSize?: number;
  /** Called after each chunk with entries done and the slice total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Called when another transaction holds the slice, before waiting for it (not with
   * `noWait`); the function it returns, if any, is called once the lock is taken.
   */
  onLockWait?: (wait: SliceLockWait) => (() => void) | void;
  /** Aborts between chunks; the transaction then rolls back. */
  signal?: AbortSignal;
  /**
   * What started the rematch, recorded with its run when it commits (spec/history.md §3).
   * @default { trigger: "cli" } with the actor of `currentActor()`
   */
  run?: RematchRunInfo;
}

/** What started a rematch: recorded in `rematch_runs`. */
export interface RematchRunInfo {
  trigger: "cli" | "job" | "import" | "rollback";
  /** @default currentActor() */
  actor?: string;
  /** The factor import (or rollback) the rematch follows. */
  importId?: number;
  /** The job that ran it. */
  jobId?: number;
}

/** One entry of a `--diff` listing. */
export interface RematchDiffEntry {
  dataEntryId: number;
  kgBefore: number;
  kgAfter: number;
  factorIdBefore: number | null;
  factorIdAfter: number | null;
  /** In a frozen module: reported, never written. */
  frozen?: boolean;
}

/** What a rematch did to one carbon report module. */
export interface RematchModuleResult {
  moduleId: number;
  /** Non-rollup kg of the module's entries of the slice, before and after. */
  kgBefore: number;
  kgAfter: number;
  /** Entries whose rows or link were written. */
  entriesChanged: number;
  /** A frozen module: nothing written, `kgAfter` equals `kgBefore`. */
  frozen: boolean;
  /** Frozen module: entries whose rows or link would change if it were not frozen. */
  heldBack: number;
  /** Frozen module: the kg those entries would move (after − before). */
  heldBackKg: number;
}

/** What a rematch did (or, dry, would do). */
export interface RematchResult {
  dataEntryType: string;
  dataEntryTypeId: number;
  year: number;
  dryRun: boolean;
  entries: number;
  recalculated: number;
  unchanged: number;
  relinked: number;
  dropped: number;
  errors: number;
  errorDetails: { dataEntryId: number; error: string }[];
  warnings: { dataEntryId: number; warning: string }[];
  emissionsInserted: number;
  emissionsUpdated: number;
  emissionsDeleted: number;
  ambiguousMatches: number;
  affectedModuleIds: number[];
  kgBefore: number;
  kgAfter: number;
  durationMs: number;
  diff?: RematchDiffEntry[];
  /** The slice was current: nothing was read beyond its fingerprints, nothing written. */
  upToDate: boolean;
  /**
   * What the rematch read: `none` (current), `targeted` (the entries using factors changed in
   * value, plus the entries pending) or `full` (every entry). In a targeted rematch `entries`,
   * `kgBefore` and `kgAfter` count the entries it read; the rest of the slice is unchanged.
   */
  scope: RematchScope;
  /** Why that scope (`--full`, `never rematched`, `factor 12 deleted`, `3 factors changed in value`, ...). */
  scopeReason: string;
  /** Entries read from the database (0 when up to date). */
  entriesRead: number;
  /** Entries of frozen modules: computed, never written (spec/history.md §4). */
  frozen: number;
  /** The kg the frozen entries would move if they were not frozen (after − before). */
  frozenKgDelta: number;
  /** Per module that has entries in the slice, in module id order. */
  modules: RematchModuleResult[];
}

/** An entry as the rematch reads it. */
export interface SliceEntry {
  readonly id: number;
  readonly moduleId: number;
  readonly data: EntryData;
}

/** Entries of the slice read together with their stored rows. */
export interface SliceChunk {
  readonly entries: readonly SliceEntry[];
  /** Stored rows by entry id, in row id order (entries without rows are absent). */
  readonly stored: ReadonlyMap<number, readonly StoredEmissionRow[]>;
  /**
   * Called once per chunk with the stored rows whose meta the comparison will look at: reads the
   * meta of those that came without it (the map then holds rows that have it). A store that
   * always reads meta along need not have it.
   */
  needMeta?(rows: readonly StoredEmissionRow[]): Promise<void>;
}

/** One chunk's writes. */
export interface ChunkWrite {
  /** Stored rows rewritten in place (same entry, same emission type): they keep their ids. */
  readonly updates: readonly { id: number; row: EmissionRow }[];
  /** Entries whose rows are replaced (their shape changed). */
  readonly replaceRowsOf: readonly number[];
  /** Their new rows. */
  readonly rows: readonly EntryEmissionRow[];
  /** JSON-link entries whose `data.primary_factor_id` changes. */
  readonly relinks: readonly { id: number; factorId: number | null }[];
}

/** Where the rematch reads and writes a slice: PostgreSQL in the product, memory in unit tests. */
export interface SliceStore {
  lockSlice(
    dataEntryTypeId: number,
    year: number,
    noWait: boolean,
    onWait?: RematchOptions["onLockWait"],
    signal?: AbortSignal,
  ): Promise<void>;
  loadInputs(handler: Handler, dataEntryTypeId: number, year: number): Promise<ComputeInputs>;
  moduleIds(moduleTypeId: number, year: number, only?: readonly number[]): Promise<number[]>;
  countEntries(dataEntryTypeId: number, moduleIds: readonly number[]): Promise<number>;
  /** The kg total (rollup rows excluded) of the slice's entries in `moduleIds`, as stored. */
  sliceKg(dataEntryTypeId: number, moduleIds: readonly number[]): Promise<number>;
  /**
   * The slice's entries in id order with their stored rows, in chunks of about `chunkSize`
   * entries (only `entryIds` of them, when given). A store may read the next chunk ahead while
   * the caller works on this one.
   */
  readSlice(
    dataEntryTypeId: number,
    moduleIds: readonly number[],
    chunkSize: number,
    entryIds?: readonly number[],
  ): AsyncIterable<SliceChunk>;
  /** The slice (or, with `moduleIds`, those modules of it) compared with its recorded state. */
  compareState(
    handler: Handler,
    dataEntryTypeId: number,
    year: number,
    moduleIds?: readonly number[],
  ): Promise<SliceComparison>;
  /**
   * Takes the slice lock, waiting for it as `lockSlice` does, then compares the whole slice with
   * its recorded state as `compareState` does, under the lock. A store whose statements run in the
   * order they are sent can send the comparison behind the lock without waiting for the lock's
   * answer first: one round trip instead of two.
   */
  lockAndCompareState?(
    handler: Handler,
    dataEntryTypeId: number,
    year: number,
  ): Promise<SliceComparison>;
  /** The factor snapshot of the slice's recorded state (empty when none), or its rows of `ids`. */
  recordedFactors(
    dataEntryTypeId: number,
    year: number,
    ids?: readonly number[],
  ): Promise<ReadonlyMap<number, FactorFingerprint>>;
  /**
   * The live stamp of the slice's factors (null: it never had any); a store without stamps has
   * none to give, and the rematch then compares the whole recorded snapshot.
   */
  factorStamp?(dataEntryTypeId: number, year: number): Promise<string | null>;
  /**
   * Ids of the entries using these factors (row or JSON link) plus the pending ones. They may
   * include entries outside `moduleIds`: `readSlice` reads only the slice's.
   */
  targetEntryIds(
    dataEntryTypeId: number,
    moduleIds: readonly number[],
    factorIds: readonly number[],
  ): Promise<number[]>;
  /**
   * Ids of this det's entries marked pending (any year or module). A store without it has
   * targeted rematches read their entries by id only.
   */
  pendingEntryIds?(dataEntryTypeId: number): Promise<number[]>;
  /** Updates the pending marks of entries. */
  markEntries(marks: EntryMarks): Promise<void>;
  /** Records the slice's state after a rematch of the whole slice. */
  recordState(record: SliceStateRecord): Promise<void>;
  /**
   * Sets the recorded kg total of a slice that has a state: the sum a current slice's rematch
   * found, or null when a rematch of some of its modules changed rows (the next rematch that
   * needs it sums the slice).
   */
  recordKgTotal(dataEntryTypeId: number, year: number, kg: number | null): Promise<void>;
  /** Records the live factor stamp of a slice whose factors were found as recorded. */
  recordFactorStamp?(detId: number, year: number, stamp: string): Promise<void>;
  /**
   * Writes one chunk. The rematch does not wait for a write before computing the next chunk (it
   * waits before the next write and at the end), so a store may let it run behind.
   */
  writeChunk(write: ChunkWrite): Promise<{ updated: number; deleted: number; inserted: number }>;
  /**
   * Brings the stats of these modules (none frozen) up to date after the rematch's writes: by
   * `changes`, what the rematch changed in each (a module without one is unchanged), where the
   * stored stats allow; else, or without `changes`, recomputed from the module's rows.
   */
  refreshModuleStats(
    moduleIds: readonly number[],
    changes?: readonly ModuleStatsChange[],
  ): Promise<void>;
  /**
   * Marks the stats of these modules as not computed (a rematch skipped them): the next
   * refresh recomputes them in full instead of adding changes to them.
   */
  forgetModuleStats?(moduleIds: readonly number[]): Promise<void>;
  /** Of these modules, the frozen ones (none when the store has no frozen modules). */
  frozenModuleIds?(moduleIds: readonly number[]): Promise<number[]>;
}

/** Non-rollup kg of rows (totals exclude rollup rows). */
export type RowsKg = (rows: readonly EmissionRow[]) => number;
