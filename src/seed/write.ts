// Writing many generated entries: batches through the one bulk write path (createEntries), the
// module stats refreshed once at the end rather than after every batch.
import type { Database } from "../db/connection.ts";
import {
  createEntries,
  type CreateEntriesResult,
  lockSlices,
  type NewEntry,
  slicesOf,
} from "../db/entries.ts";
import { refreshModuleStats } from "../rematch/pg_store.ts";

/** Options of {@linkcode writeEntryBatches}. */
export interface EntryBatchOptions {
  /** Entries per createEntries call and transaction. @default 5000 */
  readonly batchSize?: number;
  /** Called after each batch is committed, with the batch and what became of it. */
  readonly onBatch?: (batch: readonly NewEntry[], result: CreateEntriesResult) => void;
}

/**
 * Writes entries in batches, one transaction each (memory stays flat whatever the number), then
 * refreshes the stats of every module written to, once, under the slice locks. Until that last
 * step the modules' stats lag behind their entries.
 *
 * @example
 * ```ts ignore
 * import { writeEntryBatches } from "./write.ts";
 * const written = await writeEntryBatches(db, generateEntries(catalog, options));
 * ```
 */
export async function writeEntryBatches(
  db: Database,
  entries: Iterable<NewEntry>,
  options: EntryBatchOptions = {},
): Promise<number> {
  const batchSize = options.batchSize ?? 5000;
  const modules = new Set<number>();
  const slices = new Map<string, NewEntry>();
  let written = 0;
  const write = async (batch: NewEntry[]) => {
    const result = await db.sql.begin((tx) => createEntries(tx, batch, { refreshStats: false }));
    for (const id of result.moduleIds) modules.add(id);
    for (const entry of batch) slices.set(`${entry.det.id}:${entry.year}`, entry);
    written += batch.length;
    options.onBatch?.(batch, result);
  };
  let batch: NewEntry[] = [];
  for (const entry of entries) {
    batch.push(entry);
    if (batch.length === batchSize) {
      await write(batch);
      batch = [];
    }
  }
  if (batch.length) await write(batch);
  if (modules.size) {
    await db.sql.begin(async (tx) => {
      await lockSlices(tx, [...slices.values()].flatMap((e) => slicesOf(e.det, e.year)));
      await refreshModuleStats(tx, [...modules].sort((a, b) => a - b));
    });
  }
  return written;
}
