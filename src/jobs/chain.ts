// Chaining (spec/interfaces.md §3): an ingest that ends SUCCESS or WARNING queues one recalc per
// slice it left stale, in its own pipeline and transaction.
import type { Queryable } from "../db/connection.ts";
import { sliceStatus } from "../rematch/state.ts";
import type { SliceKey } from "./types.ts";

/**
 * Of the slices an ingest touched, those it left needing a recalc: the one place that decides
 * what the chain queues. It asks the slice state (spec/rematch.md rules 16-18), inside the
 * ingest's transaction, which of them are not current; slices without entries need nothing.
 */
export async function slicesToRecalculate(
  tx: Queryable,
  touched: readonly SliceKey[],
): Promise<SliceKey[]> {
  const wanted = new Set(touched.map((s) => `${s.dataEntryTypeId}:${s.year}`));
  const stale: SliceKey[] = [];
  for (const year of [...new Set(touched.map((s) => s.year))].sort((a, b) => a - b)) {
    for (const slice of await sliceStatus(tx, { year })) {
      if (slice.state === "current") continue;
      if (!wanted.has(`${slice.dataEntryTypeId}:${slice.year}`)) continue;
      stale.push({ dataEntryTypeId: slice.dataEntryTypeId, year: slice.year });
    }
  }
  return stale;
}
