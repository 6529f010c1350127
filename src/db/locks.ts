// Transaction-scoped advisory locks on (det, year) slices, shared by rematch and factor imports.
import type { Queryable } from "./connection.ts";

// The first lock key namespaces the slice locks away from other advisory lock users.
const SLICE_LOCK_NAMESPACE = 310_000;

/** Thrown when `noWait` is set and another transaction holds the slice. */
export class SliceBusyError extends Error {
  override name = "SliceBusyError";
}

/**
 * Takes the (det, year) lock for the rest of the transaction. Lock several slices in ascending
 * det id order so two transactions never wait on each other crosswise.
 */
export async function lockSlice(
  tx: Queryable,
  dataEntryTypeId: number,
  year: number,
  options: { noWait?: boolean; detName?: string } = {},
): Promise<void> {
  const key1 = SLICE_LOCK_NAMESPACE + dataEntryTypeId;
  if (options.noWait) {
    const [row] = await tx<
      { ok: boolean }[]
    >`select pg_try_advisory_xact_lock(${key1}, ${year}) as ok`;
    if (!row.ok) {
      throw new SliceBusyError(
        `slice ${
          options.detName ?? dataEntryTypeId
        } ${year} is busy: another rematch or factor import holds it`,
      );
    }
    return;
  }
  await tx`select pg_advisory_xact_lock(${key1}, ${year})`;
}
