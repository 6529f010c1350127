// A transaction whose BEGIN travels with its first statements. postgres.js's `sql.begin` waits for
// BEGIN's answer before its body runs: one round trip more than needed, which a no-op rematch (a
// lock, a comparison, the run's record) pays in a large share of its time.
import {
  hasEnded,
  isConnectionLost,
  type Queryable,
  type ReservedSql,
  type Sql,
} from "./connection.ts";

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
// connection. The pool calls its `onclose` once when it is lost, and its `end` when the pool ends.
interface DriverConnection {
  onclose: ((error: unknown) => void) | null;
  end: () => Promise<void>;
  terminate: () => void;
}

// A statement of postgres.js 3.4.9 not yet sent: the pool's or connection's `handler` sends it
// when it is first awaited (or executed); a query used as a fragment of another is never sent.
interface DriverQuery extends Promise<unknown> {
  handler: ((query: DriverQuery) => void) & { debug?: unknown };
  reject: (error: unknown) => void;
}

function isDriverQuery(value: unknown): value is DriverQuery {
  return value instanceof Promise && typeof (value as { handler?: unknown }).handler === "function";
}

/** The error of a statement sent through a transaction's handle once the transaction is over. */
export class TransactionOverError extends Error {
  override name = "TransactionOverError";
}

/**
 * Runs `body` in one transaction on a connection of the pool's own, as `sql.begin` does, but
 * with BEGIN sent ahead of the body's first statement rather than answered before it: one
 * connection runs its statements in the order sent, so they all run inside the transaction.
 * COMMIT follows when the body resolves, ROLLBACK when it throws. As with `sql.begin`:
 * - the first statement the server refused is the error thrown (also when the body went on past
 *   it, or saw only that the transaction had been aborted), and nothing is committed;
 * - a connection lost while the body waits on something else fails the call at once (the server
 *   has rolled the transaction back);
 * - a pool ended meanwhile ends the connection once the transaction is over; one ended before
 *   refuses to start it (`CONNECTION_ENDED`).
 *
 * The connection goes back to the pool once the transaction is over; a lost one stays with the
 * pool's closed ones (handed back, it would look open). Statements sent through the body's handle
 * once the call is over, or once its connection was lost, are refused ({@linkcode
 * TransactionOverError}, or the loss): they would reach whoever has the connection next.
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
  if (hasEnded(sql)) {
    throw Object.assign(new Error("the database was closed: no transaction can start on it"), {
      code: "CONNECTION_ENDED",
    });
  }
  const tx = await sql.reserve();
  let connection: DriverConnection | undefined;
  let endConnection: (() => Promise<void>) | undefined;
  // Set when the connection is gone (its loss seen by the pool, or by one of its statements),
  // when the pool was told to end meanwhile, and once the call is over.
  let gone: { error: unknown } | undefined;
  let poolEnding = false;
  let over = false;
  let refused: { error: unknown } | undefined;
  let onLost!: (error: unknown) => void;
  const lost = new Promise<never>((_, reject) => onLost = reject);
  lost.catch(() => {});
  // Until the transaction is over: whatever awaits it learns of a lost connection.
  const unlessLost = <V>(work: Promise<V>) => Promise.race([work, lost]);

  // Every statement of the body passes here when it is sent: the first refused one is kept, and
  // none is sent once the connection is gone or the call is over. (Ours run first among the
  // reactions to a statement's failure: a body that answers a lost statement with another finds
  // it refused.)
  const watched = <V>(value: V): V => {
    if (isDriverQuery(value)) {
      const send = value.handler;
      value.handler = Object.assign((query: DriverQuery) => {
        if (gone || over) {
          query.reject(
            gone?.error ??
              new TransactionOverError("the transaction is over: a statement of it was not sent"),
          );
          return;
        }
        query.catch((error) => {
          refused ??= { error };
          if (isConnectionLost(error)) gone ??= { error };
        });
        send(query);
      }, { debug: send.debug });
    }
    return value;
  };
  const session = Proxy.revocable(tx, {
    apply: (target, self, args) => watched(Reflect.apply(target, self, args)),
    get(target, key) {
      const value = Reflect.get(target, key);
      return key === "unsafe"
        ? (...args: Parameters<ReservedSql["unsafe"]>) => watched(tx.unsafe(...args))
        : value;
    },
  });

  // The transaction is over: the connection goes back to the pool, or ends with the pool.
  const handBack = () => {
    if (connection && endConnection) connection.end = endConnection;
    if (connection) connection.onclose = null;
    if (poolEnding && connection) connection.terminate();
    else tx.release();
  };
  const end = async (statement: "commit" | "rollback") => {
    let command: string | undefined;
    try {
      command = (await unlessLost(tx.unsafe(statement))).command;
    } catch (error) {
      // A COMMIT the server refused (a deferred constraint) ended the transaction all the same.
      if (!gone && !isConnectionLost(error)) handBack();
      throw error;
    }
    handBack();
    // The server answers COMMIT with ROLLBACK when the transaction had been aborted.
    if (statement === "commit" && command !== "COMMIT") {
      throw refused?.error ??
        new Error(`the transaction was not committed: the server answered ${command}`);
    }
  };

  open.add(session.proxy);
  try {
    const options = {
      onexecute(c: DriverConnection) {
        connection = c;
        c.onclose = (error) => {
          gone ??= { error };
          onLost(error);
        };
        endConnection = c.end;
        c.end = () => {
          poolEnding = true;
          return endConnection!();
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
      // A statement refused, the body went on: the transaction was aborted all the same.
      if (refused) throw refused.error;
    } catch (error) {
      // (A lost connection of the body's other sessions, such as the rematch's reader, is not
      // this one's: its transaction is rolled back here.)
      if (!gone) await end("rollback").catch(() => {});
      throw (error as { code?: unknown } | null)?.code === "25P02" && refused
        ? refused.error
        : error;
    }
    await end("commit");
    return value;
  } finally {
    over = true;
    open.delete(session.proxy);
    session.revoke();
  }
}
