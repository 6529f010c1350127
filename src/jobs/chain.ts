// Chaining (spec/interfaces.md §3): an ingest that ends SUCCESS or WARNING queues one recalc per
// slice it left stale, in its own pipeline and transaction.
import type { Queryable } from "../db/connection.ts";
import type { SliceKey } from "./types.ts";

/**
 * Of the slices an ingest touched, those it left needing a recalc: the one place that decides
 * what the chain queues. Today a slice counts when the ingest changed what its compute reads
 * (factors inserted, updated or deleted; reference rows inserted or updated for a det that reads
 * them); entries imports compute on write and touch none. When the slice state of
 * spec/rematch.md rule 16 exists, this asks it which of them are not current.
 */
export function slicesToRecalculate(
  _tx: Queryable,
  touched: readonly SliceKey[],
): Promise<SliceKey[]> {
  const unique = new Map(touched.map((s) => [`${s.dataEntryTypeId}:${s.year}`, s]));
  return Promise.resolve(
    [...unique.values()].sort((a, b) => a.dataEntryTypeId - b.dataEntryTypeId || a.year - b.year),
  );
}
