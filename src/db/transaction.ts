// A transaction whose BEGIN travels with its first statements. postgres.js's `sql.begin` waits for
// BEGIN's answer before its body runs: one round trip more than needed, which a no-op rematch (a
// lock, a comparison, the run's record) pays in a large share of its time.
import { isConnectionLost, type Queryable, type ReservedSql, type Sql } from "./connection.ts";

const open = new WeakSet<object>();

/**
 * Whether `q` runs its statements inside one transaction: a `sql.begin` transaction, or one that
 * {@linkcode inTransaction} holds open.
 *
 * @example
 * ```ts ignore
 * import { openDatabase } from "./connection.ts";
 * await using db = await openDatabase();
 * console.log(isTransaction(db.sql)); // false: each statement commits by itself
 * await db.sql.begin((tx) => console.log(isTransaction(tx))); // true
 * ```
 */
export function isTransaction(q: Queryable): boolean {
  return typeof (q as { savepoint?: unknown }).savepoint === "function" || open.has(q);
}

// What postgres.js 3.4.9 hands a statement's `onexecute` option (as `sql.begin` uses it): the
// connection, whose `onclose` the pool calls once when the connection is lost.
interface DriverConnection {
  onclose: ((error: unknown) => void) | null;
}

// A statement of postgres.js 3.4.9 not yet sent: the pool's or connection's `handler` sends it
// when it is first awaited (or executed); a query used as a fragment of another is never sent.
interface DriverQuery extends Promise<unknown> {
  handler: ((query: DriverQuery) => void) & { debug?: unknown };
}

function isDriverQuery(value: unknown): value is DriverQuery {
  return value instanceof Promise && typeof (value as { handler?: unknown }).handler === "function";
}

/**
 * Runs `body` in one transaction on a connection of the pool's own, as `sql.begin` does, but
 * with BEGIN sent ahead of the body's first statement rather than answered before it: one
 * connection runs its statements in the order sent, so they all run inside the transaction.
 * COMMIT follows when the body resolves, ROLLBACK when it throws (the body's error is thrown, or
 * the first refused statement's when the body saw only that the transaction had been aborted).
 * As with `sql.begin`, a connection lost meanwhile fails the call at once (a statement sent on it
 * afterwards would never be answered), and the server has rolled the transaction back. The
 * connection goes back to the pool once the transaction is over; a lost one stays with the pool's
 * closed ones (handed back, it would look open). The `tx` the body gets refuses every use once the
 * call has returned or thrown (a TypeError).
 *
 * @example
 * ```ts ignore
 * import { openDatabase } from "./connection.ts";
 * await using db = await openDatabase();
 * const [row] = await inTransaction(db.sql, (tx) => tx<{ n: number }[]>`select 1 as n`);
 * console.log(row.n); // 1
 * ```
 */
export async function inTransaction<T>(
  sql: Sql,
  body: (tx: ReservedSql) => Promise<T>,
): Promise<T> {
  const tx = await sql.reserve();
  let connection: DriverConnection | undefined;
  let closed = false;
  let onLost!: (error: unknown) => void;
  const lost = new Promise<never>((_, reject) => onLost = reject);
  lost.catch(() => {});
  // Until the transaction is over: whatever awaits it learns of a lost connection.
  const unlessLost = <V>(work: Promise<V>) => Promise.race([work, lost]);
  const end = async (statement: "commit" | "rollback") => {
    try {
      await unlessLost(tx.unsafe(statement));
    } catch (error) {
      // A COMMIT the server refused (a deferred constraint) ended the transaction all the same.
      if (!closed && !isConnectionLost(error)) release();
      throw error;
    }
    release();
  };
  const release = () => {
    if (connection) connection.onclose = null;
    tx.release();
  };

  // As in `sql.begin`, the first statement the server refused is the error told: the ones behind
  // it fail with "current transaction is aborted" (25P02), and a body with statements in flight
  // may see one of those first.
  let refused: { error: unknown } | undefined;
  const watched = <V>(value: V): V => {
    if (isDriverQuery(value)) {
      const send = value.handler;
      value.handler = Object.assign((query: DriverQuery) => {
        query.catch((error) => refused ??= { error });
        send(query);
      }, { debug: send.debug });
    }
    return value;
  };
  // The body's handle stops working when the transaction is over: a body still running after a
  // lost connection (or one that kept the handle) cannot send a statement on the connection once
  // the pool has connected it again for others.
  const session = Proxy.revocable(tx, {
    apply: (target, self, args) => watched(Reflect.apply(target, self, args)),
    get(target, key) {
      const value = Reflect.get(target, key);
      return key === "unsafe"
        ? (...args: Parameters<ReservedSql["unsafe"]>) => watched(tx.unsafe(...args))
        : value;
    },
  });
  open.add(session.proxy);
  try {
    const options = {
      onexecute(c: DriverConnection) {
        connection = c;
        c.onclose = (error) => {
          closed = true;
          onLost(error);
        };
        // The connection takes the statements behind BEGIN at once (pipelined).
        return true;
      },
    };
    // Its failure is the connection's, which fails the body's statements behind it as well.
    const begun = tx.unsafe("begin", [], options as never).execute();
    begun.catch(() => {});
    let value: T;
    try {
      value = await unlessLost(body(session.proxy));
      await begun;
    } catch (error) {
      // (A lost connection of the body's other sessions, such as the rematch's reader, is not
      // this one's: its transaction is rolled back here.)
      if (!closed) await end("rollback").catch(() => {});
      throw (error as { code?: unknown } | null)?.code === "25P02" && refused
        ? refused.error
        : error;
    }
    await end("commit");
    return value;
  } finally {
    open.delete(session.proxy);
    session.revoke();
  }
}
