// inTransaction: BEGIN sent with the body's first statements, one transaction all the same; and
// what happens to the connection when the transaction ends, fails, or loses its connection.
import assert from "node:assert/strict";
import { type Database, isConnectionLost, openDatabase } from "../../src/db/connection.ts";
import { lockSlice } from "../../src/db/locks.ts";
import { inTransaction, isTransaction } from "../../src/db/transaction.ts";
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

Deno.test({
  name: "inTransaction: the body's statements are one transaction, committed when it resolves",
  ...dbOptions,
  async fn() {
    await withScratchTable(async (db) => {
      const value = await inTransaction(db.sql, async (tx) => {
        assert.ok(isTransaction(tx));
        // Its first statement already runs inside: the server gives both the same transaction.
        const [first] = await tx<{ id: string }[]>`select pg_current_xact_id()::text as id`;
        await tx`insert into scratch values (1), (2)`;
        const [second] = await tx<{ id: string }[]>`select pg_current_xact_id()::text as id`;
        assert.equal(second.id, first.id);
        // Not yet visible to another session (on the embedded database every connection waits
        // while one is in a transaction: they share one backend).
        if (db.kind === "server") assert.deepEqual(await scratch(db), []);
        // A slice lock, held for a transaction, is taken in one.
        await lockSlice(tx, 1, 2025);
        return "done";
      });
      assert.equal(value, "done");
      assert.deepEqual(await scratch(db), [1, 2]);
      assert.equal(isTransaction(db.sql), false);
    });
  },
});

Deno.test({
  name: "inTransaction: a body that throws leaves nothing, its error is thrown, the pool goes on",
  ...dbOptions,
  async fn() {
    await withScratchTable(async (db) => {
      // More failures than the pool has connections: each went back to it.
      for (let i = 0; i < 5; i++) {
        await assert.rejects(
          () =>
            within(
              10,
              `transaction ${i}`,
              inTransaction(db.sql, async (tx) => {
                await tx`insert into scratch values (${i})`;
                throw new RangeError(`body ${i}`);
              }),
            ),
          new RangeError(`body ${i}`),
        );
      }
      // A statement the server refuses: the same.
      await assert.rejects(
        () =>
          inTransaction(db.sql, async (tx) => {
            await tx`insert into scratch values (7)`;
            await tx`insert into scratch values (null)`;
          }),
        /null value in column "n"/,
      );
      assert.deepEqual(await scratch(db), []);
      await within(
        10,
        "the next transaction",
        inTransaction(db.sql, async (tx) => {
          await tx`insert into scratch values (3)`;
        }),
      );
      assert.deepEqual(await scratch(db), [3]);
    });
  },
});

Deno.test({
  name: "inTransaction: statements in flight behind a refused one: the refused one's error is told",
  ...dbOptions,
  async fn() {
    await withScratchTable(async (db) => {
      await assert.rejects(
        () =>
          inTransaction(db.sql, async (tx) => {
            // Sent, not awaited (as the rematch's writes are), then a statement that is awaited:
            // it is refused only because the transaction was aborted.
            tx`insert into scratch values (null)`.catch(() => {});
            tx.unsafe("insert into scratch values (1)").catch(() => {});
            await tx`select count(*) from scratch`;
          }),
        /null value in column "n"/,
      );
      // The same through tx.unsafe, and a fragment that is never sent changes nothing.
      await assert.rejects(
        () =>
          inTransaction(db.sql, async (tx) => {
            const two = tx.unsafe("2");
            tx.unsafe("insert into scratch values (1/0)").catch(() => {});
            await tx`select ${two}`;
          }),
        /division by zero/,
      );
      assert.deepEqual(await scratch(db), []);
    });
  },
});

Deno.test({
  name: "inTransaction: a COMMIT the server refuses is thrown, nothing stays, the pool goes on",
  ...dbOptions,
  async fn() {
    await withScratchTable(async (db) => {
      await db.sql`alter table scratch add unique (n) deferrable initially deferred`;
      for (let i = 0; i < 5; i++) {
        await assert.rejects(
          () =>
            within(
              10,
              `transaction ${i}`,
              inTransaction(db.sql, async (tx) => {
                await tx`insert into scratch values (${i}), (${i})`;
              }),
            ),
          /duplicate key value violates unique constraint/,
        );
      }
      assert.deepEqual(await scratch(db), []);
      await within(
        10,
        "the next transaction",
        inTransaction(db.sql, async (tx) => {
          await tx`insert into scratch values (9)`;
        }),
      );
      assert.deepEqual(await scratch(db), [9]);
    });
  },
});

Deno.test({
  name: "inTransaction: its handle refuses every use once the call is over",
  ...dbOptions,
  async fn() {
    await withScratchTable(async (db) => {
      let kept: ((n: number) => PromiseLike<unknown>) | undefined;
      await inTransaction(db.sql, async (tx) => {
        kept = (n) => tx`insert into scratch values (${n})`;
        await kept(1);
      });
      assert.throws(() => kept!(2), TypeError);
      assert.deepEqual(await scratch(db), [1]);
    });
  },
});

Deno.test({
  name: "inTransaction: a connection lost while the body waits elsewhere fails the call at once; " +
    "the body's later statement is refused and the pool's next query is answered",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    const test = await createTestDatabase();
    // One connection: the pool's next query goes through the one that was lost.
    const db = await openDatabase({ databaseUrl: test.url, announce: false, maxConnections: 1 });
    try {
      let late: unknown = "not tried";
      let resume!: () => void;
      const resumed = new Promise<void>((resolve) => resume = resolve);
      const call = inTransaction(db.sql, async (tx) => {
        await tx`select 1`;
        // Waits on something else (the rematch's reader, its compute) while the server ends this
        // connection; then goes on as if nothing happened.
        await resumed;
        late = await Promise.resolve().then(() => tx`select 2`).then(
          () => "answered",
          (error) => error,
        );
      });
      call.catch(() => {});
      const admin = test.db.sql;
      let ended: { ended: boolean }[] = [];
      for (let i = 0; i < 100 && ended.length === 0; i++) {
        ended = await admin<{ ended: boolean }[]>`
          select pg_terminate_backend(pid) as ended from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid()
            and state = 'idle in transaction'`;
        if (ended.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(ended.map((r) => r.ended), [true]);
      await assert.rejects(() => within(10, "the transaction", call), (error: unknown) => {
        assert.ok(isConnectionLost(error), String(error));
        return true;
      });
      resume();
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(late instanceof TypeError, `the body's late statement: ${late}`);
      const [row] = await within(10, "the next query", db.sql<{ n: number }[]>`select 3 as n`);
      assert.equal(row.n, 3);
      const again = await within(
        10,
        "the next transaction",
        inTransaction(db.sql, async (tx) => (await tx<{ n: number }[]>`select 4 as n`)[0].n),
      );
      assert.equal(again, 4);
    } finally {
      await db.close();
      await test.drop();
    }
  },
});
