// On a server, a rematch in a transaction of its own reads a whole slice, or a targeted one longer
// than a chunk, on a session beside it (in its snapshot), so that reads and writes run on two
// backends: the results are the same, a targeted read of one chunk or a no-op stays on the
// transaction, and a rematch that fails while reading leaves
// no session behind in a transaction. PGlite serves every connection from one session: server only,
// but for a reader that cannot connect, which any backend survives.
import assert from "node:assert/strict";
import postgres from "postgres";
import { dbTest, serverBackendExpected, useTestDatabase } from "../_harness.ts";
import type { Database, Sql } from "../../src/db/connection.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { createLogger } from "../../src/jobs/log.ts";
import { JobWorker } from "../../src/jobs/worker.ts";
import { queueRecalc, waitForPipelines } from "../server/_seed.ts";
import {
  createTestEntries,
  emissionRows,
  importFactorText,
  IT_HEADER,
} from "../integration/_slice.ts";

const testDb = useTestDatabase();
const serverOnly = { ignore: !serverBackendExpected() };

// Worked vector of spec/modules.md: 40 h × 100 W + 128 h × 10 W over 52 weeks = 274.56 kWh.
const KWH = 274.56;
const near = (a: number, b: number) => Math.abs(a - b) <= Math.abs(b) * 1e-9;
const itFactors = (laptopEf: number, desktopEf: number) =>
  `${IT_HEADER}\nLaptop,Standard,100,10,40,128,${laptopEf}\nDesktop,,100,10,40,128,${desktopEf}\n`;
const laptop = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };
const desktop = { name: "desktop", equipment_class: "Desktop" };

/** The database with its reader counting the sessions it hands out. */
function counting(db: Database): { db: Database; reserved: () => number } {
  let reserved = 0;
  const reader = new Proxy(db.readerSql!, {
    get(target, property, receiver) {
      // The reader's transactions: one per read beside.
      if (property !== "begin") return Reflect.get(target, property, receiver);
      return (...args: Parameters<Sql["begin"]>) => {
        reserved++;
        return (target.begin as (...a: Parameters<Sql["begin"]>) => unknown)(...args);
      };
    },
  }) as Sql;
  return { db: { ...db, readerSql: reader }, reserved: () => reserved };
}

/** Sessions of this database left inside a transaction (none should be, between statements). */
async function inTransaction(db: Database): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where datname = current_database() and state like 'idle in transaction%'`;
  return row.n;
}

dbTest(
  testDb,
  "a whole-slice read and a long targeted one run beside the transaction; short ones stay on it",
  async (plain) => {
    const { db, reserved } = counting(plain);
    const rematch = (extra: Record<string, unknown> = {}) =>
      recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025, ...extra });
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.3));
    const [laptopId, desktopId, otherLaptopId] = await createTestEntries(db, "it", 2025, [
      laptop,
      desktop,
      laptop,
    ]);

    const first = await rematch();
    assert.deepEqual([first.scope, first.entriesRead, reserved()], ["full", 3, 1]);
    const kg = async (id: number) => (await emissionRows(db.sql, [id]))[0].kg_co2eq;
    assert.ok(near(await kg(laptopId), KWH * 0.1));
    assert.ok(near(await kg(desktopId), KWH * 0.3));

    const noop = await rematch();
    assert.deepEqual([noop.scope, reserved()], ["none", 1]);

    // One factor of two: the rematch reads its two entries by id, within one chunk.
    await importFactorText(db, "it", 2025, itFactors(0.2, 0.3));
    const targeted = await rematch();
    assert.deepEqual([targeted.scope, targeted.entriesRead, reserved()], ["targeted", 2, 1]);
    assert.ok(near(await kg(laptopId), KWH * 0.2));

    // The same, longer than a chunk: beside, where its reads overlap the writes.
    await importFactorText(db, "it", 2025, itFactors(0.4, 0.3));
    const longer = await rematch({ chunkSize: 1 });
    assert.deepEqual([longer.scope, longer.entriesRead, reserved()], ["targeted", 2, 2]);
    assert.ok(near(await kg(laptopId), KWH * 0.4));
    assert.ok(near(await kg(otherLaptopId), KWH * 0.4));
    assert.ok(near(await kg(desktopId), KWH * 0.3));

    // A slice it read beside and found right, in the same snapshot as the transaction's reads.
    const forced = await rematch({ full: true });
    assert.deepEqual([forced.scope, forced.entriesRead, forced.unchanged, reserved()], [
      "full",
      3,
      3,
      3,
    ]);
    assert.equal(await inTransaction(db), 0);
  },
  serverOnly,
);

dbTest(
  testDb,
  "a rematch that fails while reading beside rolls back both sessions and leaves none open",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.3));
    const ids = await createTestEntries(db, "it", 2025, [laptop, desktop, laptop, desktop]);
    await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    const rows = await emissionRows(db.sql, ids);
    await importFactorText(db, "it", 2025, itFactors(0.5, 0.5));
    const abort = new AbortController();
    await assert.rejects(
      recalculateForDataEntryType(db, {
        dataEntryType: "it",
        year: 2025,
        full: true,
        chunkSize: 1,
        signal: abort.signal,
        // After the first entry: the reader's cursor is open, its next FETCH on its way.
        onProgress: (done) => done >= 1 && abort.abort(),
      }),
    );
    assert.deepEqual(await emissionRows(db.sql, ids), rows);
    assert.equal(await inTransaction(db), 0);
    // The reader's session went back to its pool: the next rematch reads beside again.
    const again = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    assert.deepEqual([again.scope, again.entriesRead, again.errors], ["targeted", 4, 0]);
    assert.ok(near((await emissionRows(db.sql, [ids[0]]))[0].kg_co2eq, KWH * 0.5));
  },
  serverOnly,
);

dbTest(
  testDb,
  "a reader that cannot give a session: the transaction reads the whole slice itself",
  async (db) => {
    // Nothing listens on port 1: the reader's connection is refused at once.
    const refused = postgres("postgres://nobody@127.0.0.1:1/none", {
      max: 1,
      connect_timeout: 5,
      onnotice: () => {},
    }) as unknown as Sql;
    try {
      const withBadReader: Database = { ...db, readerSql: refused };
      await importFactorText(db, "it", 2025, itFactors(0.1, 0.3));
      const [laptopId, desktopId] = await createTestEntries(db, "it", 2025, [laptop, desktop]);
      const result = await recalculateForDataEntryType(withBadReader, {
        dataEntryType: "it",
        year: 2025,
      });
      assert.deepEqual([result.scope, result.entriesRead, result.errors], ["full", 2, 0]);
      assert.ok(near((await emissionRows(db.sql, [laptopId]))[0].kg_co2eq, KWH * 0.1));
      assert.ok(near((await emissionRows(db.sql, [desktopId]))[0].kg_co2eq, KWH * 0.3));
    } finally {
      await refused.end({ timeout: 0 });
    }
  },
);

dbTest(
  testDb,
  "a worker's recalc of a whole slice reads it beside its job's transaction",
  async (plain) => {
    const { db, reserved } = counting(plain);
    await importFactorText(db, "it", 2025, itFactors(0.1, 0.3));
    const [laptopId] = await createTestEntries(db, "it", 2025, [laptop, desktop]);
    // Never rematched: the recalc reads the whole slice.
    const { pipelineId } = await queueRecalc(db, "it", 2025);
    const worker = new JobWorker(db, { pollIntervalMs: 100, log: createLogger("json", () => {}) });
    await worker.start();
    try {
      const statuses = await waitForPipelines(db, [pipelineId]);
      assert.deepEqual([...statuses.values()], ["SUCCESS"]);
    } finally {
      await worker.stop();
    }
    assert.equal(reserved(), 1);
    assert.ok(near((await emissionRows(db.sql, [laptopId]))[0].kg_co2eq, KWH * 0.1));
    assert.equal(await inTransaction(db), 0);
  },
  serverOnly,
);
