// Transaction-scoped advisory locks on (det, year) slices, shared by rematch and factor imports.
import type { Queryable } from "./connection.ts";

// The first lock key namespaces the slice locks away from other advisory lock users.
const SLICE_LOCK_NAMESPACE = 310_000;

/** Thrown when `noWait` is set and another transaction holds the slice. */
export class SliceBusyError extends Error {
  override name = "SliceBusyError";
}

/** A slice lock another transaction holds, told before waiting for it. */
export interface SliceLockWait {
  /** The slice, e.g. `plane 2025`. */
  readonly slice: string;
  /** When the wait began. */
  readonly since: Date;
  /** Who holds it, when the database says (e.g. `pid 4242 (rematch), in a transaction since 14:02:11`). */
  readonly holder?: string;
}

/** Options of {@linkcode lockSlice}. */
export interface LockSliceOptions {
  /** Fail at once with a {@linkcode SliceBusyError} instead of waiting. @default false */
  readonly noWait?: boolean;
  /** The det's name, for messages. @default its id */
  readonly detName?: string;
  /**
   * Told when the slice is held by another transaction, before waiting for it; the function it
   * returns, if any, is called once the lock is taken (or the wait fails).
   */
  readonly onWait?: (wait: SliceLockWait) => (() => void) | void;
  /**
   * Ends the wait: when it fires, the call throws the signal's reason (a job's abort or its
   * worker's stop, while another transaction holds the slice). Waiting that a signal can end
   * tries the lock again every 100 ms rather than queueing on the server.
   */
  readonly signal?: AbortSignal;
}

/**
 * Takes the (det, year) lock for the rest of the transaction. Lock several slices in ascending
 * det id order so two transactions never wait on each other crosswise.
 */
export async function lockSlice(
  tx: Queryable,
  dataEntryTypeId: number,
  year: number,
  options: LockSliceOptions = {},
): Promise<void> {
  const key1 = SLICE_LOCK_NAMESPACE + dataEntryTypeId;
  const slice = `${options.detName ?? dataEntryTypeId} ${year}`;

  // The keys as literals: a statement without parameters is sent without first asking the server
  // for their types, one round trip instead of two on a fresh connection.
  if (!Number.isSafeInteger(key1) || !Number.isSafeInteger(year)) {
    throw new TypeError(`slice lock keys must be integers, not ${key1} and ${year}`);
  }
  // A transaction-scoped lock taken outside a transaction is let go at once, and the statements
  // after it may run on other pooled connections: a write would go on unlocked and half done.
  if (typeof (tx as { savepoint?: unknown }).savepoint !== "function") {
    throw new TypeError(
      `slice ${slice}: its lock is held for a transaction; call this inside ` +
        "transaction(db.sql, (tx) => ...) or db.sql.begin((tx) => ...) and pass tx (not db.sql)",
    );
  }
  const keys = tx.unsafe(`${key1}, ${year}`);
  if (options.noWait || options.onWait) {
    const [row] = await tx<{ ok: boolean }[]>`select pg_try_advisory_xact_lock(${keys}) as ok`;
    if (row.ok) return;
    if (options.noWait) {
      throw new SliceBusyError(
        `slice ${slice} is busy: another rematch or factor import holds it`,
      );
    }
    const holder = await describeHolder(tx, key1, year);
    const done = options.onWait!({ slice, since: new Date(), holder });
    try {
      await waitForLock(tx, keys, options.signal);
    } finally {
      done?.();
    }
    return;
  }
  await waitForLock(tx, keys, options.signal);
}

/** How often a wait that a signal can end tries the lock again. */
const RETRY_MS = 100;

// Waits for the lock. With a signal, it tries the lock again every RETRY_MS instead of queueing on
// the server, and throws the signal's reason once it fires: nothing runs on the server that would
// need cancelling (a cancel request travels on a connection of its own, which can fail, and can
// reach the backend after the wait ended), and the transaction is left usable. Later waiters
// queued on the server may get the lock first. (Waiting on the server in windows of
// `lock_timeout` inside a savepoint would keep the queue's order, but a transaction that has used a
// savepoint cannot export its snapshot, which the rematch's second session reads the slice in.)
async function waitForLock(
  tx: Queryable,
  keys: ReturnType<Queryable["unsafe"]>,
  signal?: AbortSignal,
) {
  if (!signal) {
    await tx`select pg_advisory_xact_lock(${keys})`;
    return;
  }
  while (true) {
    signal.throwIfAborted();
    const [row] = await tx<{ ok: boolean }[]>`select pg_try_advisory_xact_lock(${keys}) as ok`;
    if (row.ok) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, RETRY_MS);
      signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        signal!.removeEventListener("abort", done);
        resolve();
      }
    });
  }
}

// The session holding the slice lock, as pg_locks and pg_stat_activity tell it (a two-key
// advisory lock shows its keys as classid and objid, objsubid 2; advisory locks are per
// database). Undefined when unknown.
async function describeHolder(
  tx: Queryable,
  key1: number,
  year: number,
): Promise<string | undefined> {
  try {
    const [row] = await tx<{ pid: number; app: string | null; since: Date | null }[]>`
      select a.pid, nullif(a.application_name, '') as app, a.xact_start as since
      from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.objsubid = 2
        and l.database = (select oid from pg_database where datname = current_database())
        and l.classid = ${key1}::int::oid and l.objid = ${year}::int::oid
      limit 1`;
    if (!row) return undefined;
    const app = row.app ? ` (${row.app})` : "";
    const since = row.since
      ? `, in a transaction since ${new Date(row.since).toTimeString().slice(0, 8)}`
      : "";
    return `pid ${row.pid}${app}${since}`;
  } catch {
    return undefined;
  }
}
