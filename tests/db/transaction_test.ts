// transaction(): sql.begin that sends nothing more on a connection it lost, and nothing once over.
import assert from "node:assert/strict";
import type net from "node:net";
import postgres from "postgres";
import {
  connectSocket,
  type Database,
  isConnectionLost,
  openDatabase,
  type Sql,
} from "../../src/db/connection.ts";
import { lockSlice } from "../../src/db/locks.ts";
import { transaction, TransactionOverError } from "../../src/db/transaction.ts";
import { createTestDatabase, serverBackendExpected } from "../_harness.ts";
import { within } from "./_connection.ts";

const dbOptions = { sanitizeOps: false, sanitizeResources: false };

async function withScratchTable(fn: (db: Database) => Promise<void>): Promise<void> {
  const test = await createTestDatabase();
  try {
    await test.db.sql`create table scratch (n int not null)`;
    await fn(test.db);
  } finally {
    await test.drop();
  }
}

const scratch = async (db: Database) =>
  (await db.sql<{ n: number }[]>`select n from scratch order by n`).map((r) => r.n);

/** A promise and the means to settle it from outside. */
function gate<T = void>() {
  let open!: (value: T) => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** What a late statement came to: "not tried" until the body sent it and it settled. */
async function outcomeOf(read: () => unknown): Promise<unknown> {
  for (let i = 0; i < 500 && read() === "not tried"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return read();
}

async function failsWithLoss(call: Promise<unknown>, seconds: number): Promise<void> {
  await assert.rejects(() => within(seconds, "the transaction", call), (error: unknown) => {
    assert.ok(isConnectionLost(error), String(error));
    return true;
  });
}

/**
 * The pool's slot connects again at once. postgres.js 3.4.9 hands the next query of a slot whose
 * session was ended mid-statement the server's notice kept from before (a plain query shows the
 * same): it may fail so, at once. The one after is answered. (A slot left unable to connect fails
 * both with CONNECT_TIMEOUT.)
 */
async function assertSlotAnswers(sql: Sql): Promise<void> {
  const next = () => within(4, "the pool's next query", sql<{ n: number }[]>`select 3 as n`);
  const first = await next().then((rows) => rows[0].n, (error) => error);
  if (first !== 3) assert.equal((first as { code?: string }).code, "57P01", String(first));
  assert.equal((await next())[0].n, 3);
}

Deno.test({
  name: "transaction: commits what the body did, rolls back when it throws, takes an isolation",
  ...dbOptions,
  async fn() {
    await withScratchTable(async (db) => {
      assert.equal(
        await transaction(db.sql, async (tx) => {
          await tx`insert into scratch values (1)`;
          await tx.unsafe("insert into scratch values (2)");
          // A slice lock is held for a transaction: this is one.
          await lockSlice(tx, 1, 2025);
          return "done";
        }),
        "done",
      );
      await assert.rejects(
        () =>
          transaction(db.sql, async (tx) => {
            await tx`insert into scratch values (3)`;
            throw new RangeError("the body's");
          }),
        new RangeError("the body's"),
      );
      assert.deepEqual(await scratch(db), [1, 2]);
      const [level] = await transaction(
        db.sql,
        "isolation level repeatable read",
        (tx) => tx<{ transaction_isolation: string }[]>`show transaction_isolation`,
      );
      assert.equal(level.transaction_isolation, "repeatable read");
    });
  },
});

Deno.test({
  name: "transaction: a statement sent through it once it is over is refused and runs nowhere " +
    "(sql.begin's ran by itself, outside any transaction)",
  ...dbOptions,
  async fn() {
    await withScratchTable(async (db) => {
      // Made, not sent (a statement is sent when first awaited); wrapped so that it is not awaited.
      const { late } = await transaction(db.sql, async (tx) => {
        await tx`insert into scratch values (1)`;
        return { late: tx`insert into scratch values (2)` };
      });
      await assert.rejects(async () => await late, TransactionOverError);
      // The same after a body that failed, its transaction rolled back.
      let orphan: PromiseLike<unknown> | undefined;
      await assert.rejects(() =>
        transaction(db.sql, (tx) => {
          orphan = tx`insert into scratch values (3)`;
          return Promise.reject(new Error("failed"));
        })
      );
      await assert.rejects(async () => await orphan, TransactionOverError);
      assert.deepEqual(await scratch(db), [1]);
    });
  },
});

Deno.test({
  name:
    "transaction: a statement sent while its ROLLBACK waits behind a slow one is refused, and " +
    "runs nowhere",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    await withScratchTable(async (db) => {
      let late: unknown = "not tried";
      const lateDone = gate();
      await assert.rejects(() =>
        transaction(db.sql, (tx) => {
          // In flight when the body fails: the ROLLBACK goes behind it.
          tx`select pg_sleep(0.3)`.catch(() => {});
          setTimeout(() => {
            tx`insert into scratch values (10)`.then(() => "sent", (error) => error)
              .then((outcome) => late = outcome).finally(lateDone.open);
          }, 100);
          return Promise.reject(new Error("failed"));
        })
      );
      await within(5, "the late statement", lateDone.promise);
      assert.ok(late instanceof TransactionOverError, `the late statement: ${late}`);
      assert.deepEqual(await scratch(db), []);
    });
  },
});

// The server ends the transaction's session (as pg_terminate_backend or a restart does) while
// `waitFor` is what it runs; connected with a short connect timeout, a slot that cannot connect
// again shows within seconds.
async function withLostTransaction(
  waitFor: string,
  fn: (db: Database, end: () => Promise<void>) => Promise<void>,
): Promise<void> {
  const test = await createTestDatabase();
  const db = await openDatabase({
    databaseUrl: test.url,
    announce: false,
    maxConnections: 1,
    connectTimeout: 2,
  });
  const end = async () => {
    let ended: { ended: boolean }[] = [];
    for (let i = 0; i < 200 && ended.length === 0; i++) {
      ended = await test.db.sql<{ ended: boolean }[]>`
        select pg_terminate_backend(pid) as ended from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid()
          and state = ${waitFor === "idle" ? "idle in transaction" : "active"}
          and (${waitFor} = 'idle' or query like ${`%${waitFor}%`})`;
      if (ended.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(ended.map((r) => r.ended), [true], "the transaction's session was ended");
  };
  try {
    await fn(db, end);
    await assertSlotAnswers(db.sql);
  } finally {
    await db.close();
    await test.drop();
  }
}

Deno.test({
  name: "transaction: its session ended mid-statement, the call fails with the loss and the " +
    "pool's slot connects again at once (no ROLLBACK left behind on the closed connection)",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    await withLostTransaction("pg_sleep(10)", async (db, end) => {
      const call = transaction(db.sql, async (tx) => {
        await tx`select pg_sleep(10)`;
      });
      call.catch(() => {});
      await end();
      await failsWithLoss(call, 5);
    });
  },
});

Deno.test({
  name: "transaction: a body that answers its lost statement with another, then returns, finds " +
    "that one refused; no COMMIT left behind; the slot connects again at once",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    await withLostTransaction("pg_sleep(11)", async (db, end) => {
      let late: unknown = "not tried";
      const call = transaction(db.sql, async (tx) => {
        try {
          await tx`select pg_sleep(11)`;
        } catch {
          late = await within(3, "the late statement", tx`select 2`).then(() => "sent", (e) => e);
        }
        return "returned";
      });
      call.catch(() => {});
      await end();
      await failsWithLoss(call, 10);
      const outcome = await outcomeOf(() => late);
      assert.ok(isConnectionLost(outcome), `the late statement: ${outcome}`);
    });
  },
});

Deno.test({
  name: "transaction: its session ended while the body waits on something else: the call fails " +
    "at once, the body's next statement is refused, the slot connects again at once",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    await withLostTransaction("idle", async (db, end) => {
      const resumed = gate();
      const waits = gate();
      let late: unknown = "not tried";
      const call = transaction(db.sql, async (tx) => {
        await tx`select 1`;
        waits.open();
        await resumed.promise;
        late = await within(3, "the late statement", tx`select 2`).then(() => "sent", (e) => e);
      });
      call.catch(() => {});
      // Idle in its transaction from BEGIN on: ended only once the body waits.
      await waits.promise;
      await end();
      await failsWithLoss(call, 10);
      resumed.open();
      const outcome = await outcomeOf(() => late);
      assert.ok(isConnectionLost(outcome), `the late statement: ${outcome}`);
    });
  },
});

Deno.test({
  name: "transaction: a body that fails for another reason as its session ends, no statement in " +
    "flight: no ROLLBACK left behind on the closed connection; the slot connects again at once",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    const test = await createTestDatabase();
    // A client of its own, to be told of its socket's close before the driver is (as a rematch's
    // reader, ended in the same instant, can fail its body first).
    const opened: net.Socket[] = [];
    const sql = postgres(test.url!, {
      max: 1,
      connect_timeout: 2,
      onnotice: () => {},
      socket: (target: never) => connectSocket(target, opened),
    } as never) as unknown as Sql;
    try {
      const elsewhere = gate();
      const waits = gate();
      const call = transaction(sql, async (tx) => {
        await tx`select 1`;
        waits.open();
        await elsewhere.promise;
      });
      call.catch(() => {});
      await waits.promise;
      assert.equal(opened.length, 1);
      opened[0].prependListener(
        "close",
        () => elsewhere.fail(new Error("the reader's session ended")),
      );
      const [{ pid }] = await test.db.sql<{ pid: number }[]>`
        select pid from pg_stat_activity
        where datname = current_database() and state = 'idle in transaction'`;
      await test.db.sql`select pg_terminate_backend(${pid})`;
      await assert.rejects(() => within(10, "the transaction", call));
      await assertSlotAnswers(sql);
    } finally {
      await sql.end({ timeout: 1 });
      await test.drop();
    }
  },
});
