// Writing many generated entries: batches through the one bulk write path (createEntries), each
// moving the stats of its modules by what it wrote.
import type { Database } from "../db/connection.ts";
import { createEntries, type CreateEntriesResult, type NewEntry } from "../db/entries.ts";
import { transaction } from "../db/transaction.ts";

/** Options of {@linkcode writeEntryBatches}. */
export interface EntryBatchOptions {
  /** Entries per createEntries call and transaction. @default 5000 */
  readonly batchSize?: number;
  /** Called after each batch is committed, with the batch and what became of it. */
  readonly onBatch?: (batch: readonly NewEntry[], result: CreateEntriesResult) => void;
}

/**
 * Writes entries in batches, one transaction each (memory stays flat whatever the number); each
 * batch brings the stats of its modules up to date.
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
  let written = 0;
  const write = async (batch: NewEntry[]) => {
    const result = await transaction(db.sql, (tx) => createEntries(tx, batch));
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
  return written;
}
