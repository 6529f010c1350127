// Transactions that leave a lost connection alone. postgres.js 3.4.9 writes whatever is sent on a
// connection after it closed (a statement of the transaction, or the ROLLBACK `sql.begin` sends
// when the body fails) into a buffer it never sends: the pool's slot then opens no connection
// until eight or so attempts have filled that buffer past a kilobyte, each failing with
// CONNECT_TIMEOUT (80 s at the default connect timeout). A restart of the server during a rematch
// did that to the writing slot of `worker` and `serve`.
import postgres from "postgres";
import { setImmediate } from "node:timers";
import type { Sql } from "./connection.ts";

/** A transaction's client, as `sql.begin` hands it to its body. */
export type TransactionSql = postgres.TransactionSql<Record<string, never>>;

// A statement of postgres.js 3.4.9 not yet sent: its `handler` sends it when it is first awaited
// (or executed); a query used as a fragment of another is never sent.
interface DriverQuery extends Promise<unknown> {
  handler: ((query: DriverQuery) => void) & { debug?: unknown };
  reject: (error: unknown) => void;
}

/** The error of a statement sent through a transaction's client once the transaction is over. */
export class TransactionOverError extends Error {
  override name = "TransactionOverError";
}

function isDriverQuery(value: unknown): value is DriverQuery {
  return value instanceof Promise && typeof (value as { handler?: unknown }).handler === "function";
}

/**
 * Whether a statement's error says that its own connection is gone: the driver's (closed,
 * destroyed, a socket error) or a FATAL from the server, which closes the session after it. An
 * error the server reports in a session that goes on is not.
 */
export function isOwnConnectionLost(error: unknown): boolean {
  if (error instanceof postgres.PostgresError) {
    return error.severity === "FATAL" || error.severity === "PANIC";
  }
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" &&
    (code === "CONNECTION_CLOSED" || code === "CONNECTION_DESTROYED" ||
      /^E[A-Z]+$/.test(code));
}

/**
 * `sql.begin(fn)` (with `isolation`, e.g. `"isolation level repeatable read read only"`), except
 * that nothing more is sent on the transaction's connection once one of its statements has failed
 * for the loss of that connection: later statements fail with that error unsent, and no COMMIT or
 * ROLLBACK follows the body (the server has rolled the transaction back; the call fails with the
 * loss, as `sql.begin` fails when its connection closes). A statement sent through the client once
 * the body has settled is refused too ({@linkcode TransactionOverError}): with `sql.begin` it ran
 * after the COMMIT or ROLLBACK, outside any transaction.
 *
 * @example
 * ```ts ignore
 * import { openDatabase } from "./connection.ts";
 * await using db = await openDatabase();
 * const [row] = await transaction(db.sql, (tx) => tx<{ n: number }[]>`select 1 as n`);
 * console.log(row.n); // 1
 * ```
 */
export function transaction<T>(
  sql: Sql,
  fn: (tx: TransactionSql) => Promise<T>,
): Promise<T>;
export function transaction<T>(
  sql: Sql,
  isolation: string,
  fn: (tx: TransactionSql) => Promise<T>,
): Promise<T>;
export function transaction<T>(
  sql: Sql,
  isolationOrFn: string | ((tx: TransactionSql) => Promise<T>),
  maybeFn?: (tx: TransactionSql) => Promise<T>,
): Promise<T> {
  const isolation = typeof isolationOrFn === "string" ? isolationOrFn : "";
  const fn = typeof isolationOrFn === "string" ? maybeFn! : isolationOrFn;
  // The connection is gone: one of the body's statements failed for it, or `sql.begin`, which
  // watches the connection, failed the call while the body still ran.
  let gone: { error: unknown } | undefined;
  // The body has settled: its client sends nothing more.
  let over = false;
  // Whether the connection is gone has been decided (a close after that is no longer this call's).
  let decided = false;
  const call = sql.begin(isolation, async (tx) => {
    // Every statement of the body passes here as it is sent. (Ours is the first reaction to its
    // failure: a body that answers a lost statement with another finds that one refused.)
    const watched = <V>(value: V): V => {
      if (isDriverQuery(value)) {
        const send = value.handler;
        value.handler = Object.assign((query: DriverQuery) => {
          if (gone) return query.reject(gone.error);
          if (over) {
            return query.reject(
              new TransactionOverError("the transaction is over: a statement of it was not sent"),
            );
          }
          query.catch((error) => {
            if (isOwnConnectionLost(error)) gone ??= { error };
          });
          send(query);
        }, { debug: send.debug });
      }
      return value;
    };
    const guarded = new Proxy(tx, {
      apply: (target, self, args) => watched(Reflect.apply(target, self, args)),
      get(target, key) {
        const value = Reflect.get(target, key);
        return key === "unsafe"
          ? (...args: Parameters<TransactionSql["unsafe"]>) => watched(tx.unsafe(...args))
          : value;
      },
    });
    let value: T | undefined;
    let failure: { error: unknown } | undefined;
    try {
      value = await fn(guarded);
    } catch (error) {
      failure = { error };
    }
    // From here on, `sql.begin` sends COMMIT or ROLLBACK through a client of its own: a statement
    // sent through the body's would follow it and run outside the transaction.
    over = true;
    // A failure whose loss of the connection no statement told (its error not one the list above
    // knows): the driver's close handlers run within one turn of the event loop.
    if (failure && !gone) await new Promise((resolve) => setImmediate(resolve));
    decided = true;
    // `sql.begin` would send its COMMIT or ROLLBACK on the closed connection: the body does not
    // settle, and the driver's watch of the connection fails the call instead.
    if (gone) return await new Promise<never>(() => {});
    if (failure) throw failure.error;
    return value as T;
  }) as Promise<T>;
  call.catch((error) => {
    if (!decided) gone ??= { error };
  });
  return call;
}
