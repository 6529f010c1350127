// An in-memory SliceStore: the rematch workflow tested without a database.
import { createFactorLookup } from "../../src/compute/factor_set.ts";
import type { StoredEmissionRow } from "../../src/db/emissions.ts";
import type { Factor, ReferenceData } from "../../src/handlers/types.ts";
import { leafKg } from "../../src/rematch/recalculate.ts";
import type { ChunkWrite, SliceEntry, SliceStore } from "../../src/rematch/types.ts";
import { reference as emptyReference } from "./_compute_fixtures.ts";

export interface MemoryStore extends SliceStore {
  entries: SliceEntry[];
  emissions: Map<number, StoredEmissionRow[]>;
  calls: { loadInputs: number; writes: ChunkWrite[]; stats: number[][]; locks: number };
  /** Makes the next writeChunk throw (a database error). */
  failWrites?: Error;
}

export function memoryStore(
  factors: Factor[],
  entries: SliceEntry[],
  options: { reference?: ReferenceData; year?: number } = {},
): MemoryStore {
  let nextRowId = 1;
  const store: MemoryStore = {
    entries,
    emissions: new Map(),
    calls: { loadInputs: 0, writes: [], stats: [], locks: 0 },
    lockSlice() {
      store.calls.locks++;
      return Promise.resolve();
    },
    loadInputs(_handler, _det, year) {
      store.calls.loadInputs++;
      return Promise.resolve({
        year,
        factors: createFactorLookup(year, factors),
        reference: options.reference ?? emptyReference(),
      });
    },
    moduleIds() {
      return Promise.resolve([...new Set(store.entries.map((e) => e.moduleId))]);
    },
    countEntries() {
      return Promise.resolve(store.entries.length);
    },
    sliceKg() {
      let kg = 0;
      for (const e of store.entries) kg += leafKg(store.emissions.get(e.id) ?? []);
      return Promise.resolve(kg);
    },
    async *readSlice(_det, _modules, chunkSize, entryIds) {
      // Like the cursor: the slice as it was when the read began, in id order.
      const wanted = entryIds && new Set(entryIds);
      const sorted = store.entries.filter((e) => !wanted || wanted.has(e.id))
        .sort((a, b) => a.id - b.id);
      for (let i = 0; i < sorted.length; i += chunkSize) {
        const entries = sorted.slice(i, i + chunkSize);
        const stored = new Map<number, StoredEmissionRow[]>();
        for (const e of entries) {
          const rows = store.emissions.get(e.id);
          if (rows) stored.set(e.id, [...rows]);
        }
        await Promise.resolve();
        yield { entries, stored };
      }
    },
    // No recorded state: every rematch reads the whole slice and records nothing.
    compareState() {
      return Promise.resolve({
        scope: "full",
        reason: "never rematched",
        valueChangedIds: [],
        referenceDigests: {},
        inputsMatch: false,
        pendingEntries: 0,
        failingEntries: 0,
      });
    },
    recordedFactors: () => Promise.resolve(new Map()),
    targetEntryIds: () => Promise.resolve([]),
    markEntries: () => Promise.resolve(),
    recordState: () => Promise.resolve(),
    recordKgTotal: () => Promise.resolve(),
    writeChunk(write) {
      if (store.failWrites) return Promise.reject(store.failWrites);
      store.calls.writes.push(write);
      for (const { id, factorId } of write.relinks) {
        const entry = store.entries.find((e) => e.id === id)!;
        store.entries[store.entries.indexOf(entry)] = {
          ...entry,
          data: { ...entry.data, primary_factor_id: factorId },
        };
      }
      for (const { id, row } of write.updates) {
        for (const [entryId, list] of store.emissions) {
          const index = list.findIndex((r) => r.id === id);
          if (index >= 0) list[index] = { ...row, id, dataEntryId: entryId };
        }
      }
      let deleted = 0;
      for (const id of write.replaceRowsOf) {
        deleted += store.emissions.get(id)?.length ?? 0;
        store.emissions.delete(id);
      }
      for (const { dataEntryId, row } of write.rows) {
        const list = store.emissions.get(dataEntryId) ?? [];
        list.push({ ...row, id: nextRowId++, dataEntryId });
        store.emissions.set(dataEntryId, list);
      }
      return Promise.resolve({
        updated: write.updates.length,
        deleted,
        inserted: write.rows.length,
      });
    },
    refreshModuleStats(ids) {
      store.calls.stats.push([...ids]);
      return Promise.resolve();
    },
  };
  return store;
}
