// Entry points of the rematch against a database: one transaction per call, or inside a
// transaction the caller already holds (factor import with --rematch).
import type { Database, Queryable, Sql } from "../db/connection.ts";
import { recordRematchRun } from "../history/runs.ts";
import { createPgSliceStore } from "./pg_store.ts";
import { rematchSlice } from "./recalculate.ts";
import type { RematchOptions, RematchResult, SliceStore } from "./types.ts";
import { transaction } from "../db/transaction.ts";

/** Thrown to roll a dry run's transaction back after it computed everything. */
class DryRunRollback extends Error {
  constructor(readonly result: RematchResult) {
    super("dry run");
  }
}

/**
 * Recomputes the emissions of every entry of a (det, year) slice against the current factors,
 * in ONE transaction under the slice's advisory lock (spec/rematch.md).
 *
 * @example
 * ```ts ignore
 * import { openDatabase, recalculateForDataEntryType } from "../../mod.ts";
 * await using db = await openDatabase();
 * const result = await recalculateForDataEntryType(db, { dataEntryType: "plane", year: 2025 });
 * console.log(result.recalculated, result.kgAfter);
 * ```
 */
export async function recalculateForDataEntryType(
  db: Database | Sql,
  options: RematchOptions,
): Promise<RematchResult> {
  const sql = "sql" in db ? db.sql : db;
  // Its own transaction has written nothing before the rematch reads: on a server, a whole-slice
  // read may run beside it.
  const reader = "sql" in db ? db.readerSql : undefined;
  try {
    return await transaction(sql, async (tx) => {
      const result = await rematchInTransaction(tx, options, createPgSliceStore(tx, { reader }));
      // A dry run holds the lock and reads like a real one, then leaves nothing behind.
      if (options.dryRun) throw new DryRunRollback(result);
      return result;
    });
  } catch (error) {
    if (error instanceof DryRunRollback) return error.result;
    throw error;
  }
}

/**
 * The rematch inside a transaction the caller opened and will commit. Unless dry, its run is
 * recorded in the same transaction (`options.run`): a rematch that fails records nothing.
 * `store` is the transaction's slice store (the bench hands in one it times).
 */
export async function rematchInTransaction(
  tx: Queryable,
  options: RematchOptions,
  store: SliceStore = createPgSliceStore(tx),
): Promise<RematchResult> {
  const result = await rematchSlice(store, options);
  if (!result.dryRun) await recordRematchRun(tx, options, result);
  return result;
}
