// A rematch that finds its slice locked by another transaction says so (which slice, since when,
// who holds it) before waiting, and says when it got the lock. Needs two sessions: a server.
import assert from "node:assert/strict";
import {
  dbTest,
  onDatabase,
  runCaptured,
  serverBackendExpected,
  useTestDatabase,
} from "../_harness.ts";
import type { CommandSpec } from "../../src/cli/command.ts";
import { lockSlice, type SliceLockWait } from "../../src/db/locks.ts";
import type { Database, Queryable } from "../../src/db/connection.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { rematchCommand } from "../../src/cli/rematch.ts";
import { factorsCommand } from "../../src/cli/factors.ts";
import { factorsRollbackCommand } from "../../src/cli/factors_rollback.ts";
import { entriesCommand } from "../../src/cli/entries.ts";
import { join } from "node:path";
import { createTestEntries, importFactorText, IT_HEADER } from "./_slice.ts";

const testDb = useTestDatabase();
const laptop = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };

// Holds the (it, 2025) slice lock in a transaction of its own until released, after running
// `then` in it (its writes are committed on release); says its pid.
async function holdSlice(db: Database, then?: (tx: Queryable) => Promise<unknown>) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: (pid: number) => void;
  const isLocked = new Promise<number>((resolve) => (locked = resolve));
  const done = db.sql.begin(async (tx) => {
    await lockSlice(tx, 11, 2025);
    await then?.(tx);
    const [{ pid }] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
    locked(pid);
    await released;
  });
  const pid = await isLocked;
  return { pid, release: async () => (release(), await done) };
}

// Runs a command while the slice is held for 300 ms, then let go; returns its outcome and the
// holder's pid.
async function runWhileHeld<T>(db: Database, command: CommandSpec<T>, argv: string[]) {
  const holder = await holdSlice(db);
  const run = runCaptured(onDatabase(command, db), argv);
  try {
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await holder.release();
  }
  return { ...(await run), pid: holder.pid };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), "timed out");
}

dbTest(
  testDb,
  "a rematch waiting for its slice lock is told which slice, since when and who holds it",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    await createTestEntries(db, "it", 2025, [laptop]);
    // A free slice: nothing to wait for, nothing said.
    const free: SliceLockWait[] = [];
    await recalculateForDataEntryType(db, {
      dataEntryType: "it",
      year: 2025,
      onLockWait: (wait) => void free.push(wait),
    });
    assert.deepEqual(free, []);

    const holder = await holdSlice(db);
    const waits: SliceLockWait[] = [];
    let taken = false;
    const started = Date.now();
    const rematch = recalculateForDataEntryType(db, {
      dataEntryType: "it",
      year: 2025,
      full: true,
      onLockWait: (wait) => {
        waits.push(wait);
        return () => (taken = true);
      },
    });
    try {
      await until(() => waits.length === 1);
      assert.equal(waits[0].slice, "it 2025");
      assert.ok(Math.abs(waits[0].since.getTime() - started) < 10_000);
      assert.match(
        waits[0].holder ?? "",
        new RegExp(`^pid ${holder.pid} \\(.+\\), in a transaction since \\d\\d:\\d\\d:\\d\\d$`),
      );
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(taken, false, "still waiting while the lock is held");
    } finally {
      await holder.release();
    }
    const result = await rematch;
    assert.equal(taken, true);
    assert.equal(result.entries, 1);
  },
  { ignore: !serverBackendExpected() },
);

// A rematch that had to wait for its slice compares the slice as the holder left it (rule 12: its
// comparison reads under the lock), whether it waited on the lock itself or after a try. Waiting on
// the lock itself, it sends the comparison behind the lock in one round trip
// (`lockAndCompareState`): this test catches the comparison running before the lock is taken.
for (const told of [false, true]) {
  dbTest(
    testDb,
    `a rematch that waited for its slice compares with what the holder committed (${
      told ? "told of the wait" : "waiting on the lock"
    })`,
    async (db) => {
      await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
      await createTestEntries(db, "it", 2025, [laptop]);
      const first = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
      const again = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
      assert.equal(again.upToDate, true, "current before the holder's change");

      // The holder takes the lock, doubles the factor, and commits only once released.
      const holder = await holdSlice(
        db,
        (tx) =>
          tx`update factors set "values" = jsonb_set("values", '{ef_kg_co2eq_per_kwh}', '0.2')
            where data_entry_type_id = 11 and year = 2025`,
      );
      const waits: SliceLockWait[] = [];
      const rematch = recalculateForDataEntryType(db, {
        dataEntryType: "it",
        year: 2025,
        ...(told ? { onLockWait: (wait: SliceLockWait) => void waits.push(wait) } : {}),
      });
      await new Promise((r) => setTimeout(r, 200));
      await holder.release();
      const result = await rematch;
      assert.equal(waits.length, told ? 1 : 0);
      assert.equal(result.upToDate, false, "the holder's change is seen");
      assert.equal(result.scope, "targeted");
      assert.equal(result.recalculated, 1);
      assert.ok(Math.abs(result.kgAfter - 2 * first.kgAfter) < 1e-9 * first.kgAfter);
    },
    { ignore: !serverBackendExpected() },
  );
}

dbTest(
  testDb,
  "rematch CLI off a terminal: one line on stderr says what it waits for",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    await createTestEntries(db, "it", 2025, [laptop]);
    const { code, err, pid } = await runWhileHeld(db, rematchCommand, [
      "--det",
      "it",
      "--year",
      "2025",
    ]);
    assert.equal(code, 0, err);
    assert.match(
      err,
      new RegExp(
        `^rematch: waiting for the slice lock of it 2025 since \\d\\d:\\d\\d:\\d\\d ` +
          `\\(held by pid ${pid} \\(.+\\), in a transaction since \\d\\d:\\d\\d:\\d\\d\\)$`,
        "m",
      ),
    );
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "factor and entry imports off a terminal say which slice they wait for, then do their work",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const dir = await Deno.makeTempDir({ prefix: "rematch-lock-wait-" });
    try {
      const factors = join(dir, "it.csv");
      await Deno.writeTextFile(factors, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
      const entries = join(dir, "it.jsonl");
      await Deno.writeTextFile(
        entries,
        JSON.stringify({ unit: "U1", year: 2025, data_entry_type: "it", data: laptop }) + "\n",
      );
      // One at a time: each captures the console while it runs.
      const commands: [string, typeof factorsCommand | typeof entriesCommand, string[]][] = [
        ["factors import", factorsCommand, ["import", factors, "--year", "2025", "--det", "it"]],
        ["entries import", entriesCommand, ["import", entries]],
      ];
      for (const [name, command, argv] of commands) {
        // deno-lint-ignore no-explicit-any
        const { code, err, pid } = await runWhileHeld(db, command as any, argv);
        assert.equal(code, 0, err);
        assert.match(
          err,
          new RegExp(
            `^${name}: waiting for the slice lock of it 2025 since \\d\\d:\\d\\d:\\d\\d ` +
              `\\(held by pid ${pid} `,
            "m",
          ),
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "factors import and rollback with --no-wait fail at once on a held slice, writing nothing",
  async (db) => {
    const first = await importFactorText(
      db,
      "it",
      2025,
      `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`,
    );
    const efs = async () =>
      (await db.sql<{ ef: number }[]>`
        select (values->>'ef_kg_co2eq_per_kwh')::float8 as ef from factors
        where data_entry_type_id = 11 and year = 2025`).map((r) => r.ef);
    const imports = async () => (await db.sql`select id from factor_imports`).length;
    const dir = await Deno.makeTempDir({ prefix: "rematch-no-wait-" });
    const holder = await holdSlice(db);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const file = join(dir, "it.csv");
      await Deno.writeTextFile(file, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
      const before = await imports();
      const runs: [CommandSpec<unknown>, string[], RegExp][] = [
        [
          factorsCommand as CommandSpec<unknown>,
          ["import", file, "--year", "2025", "--det", "it", "--no-wait"],
          /: slice it 2025 is busy: another rematch or factor import holds it; nothing written/,
        ],
        [
          factorsRollbackCommand as CommandSpec<unknown>,
          ["rollback", "--import", String(first.importId), "--no-wait", "--force"],
          /^factors rollback: slice it 2025 is busy/,
        ],
      ];
      // Were a command to wait after all, the holder lets go after 5 s and the command succeeds.
      timer = setTimeout(() => holder.release(), 5000);
      for (const [command, argv, message] of runs) {
        const run = await runCaptured(onDatabase(command, db), argv);
        assert.equal(run.code, 1, run.err + run.out);
        assert.match(run.out, message);
      }
      assert.deepEqual(await efs(), [0.1]);
      assert.equal(await imports(), before, "no import recorded");
    } finally {
      clearTimeout(timer);
      await holder.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "a wait a signal can end takes the lock once it is free and leaves the transaction as it was",
  async (db) => {
    const holder = await holdSlice(db);
    const controller = new AbortController();
    const taking = db.sql.begin(async (tx) => {
      await tx`set local lock_timeout = '7s'`;
      await lockSlice(tx, 11, 2025, { signal: controller.signal });
      const [{ timeout }] = await tx<{ timeout: string }[]>`
        select current_setting('lock_timeout') as timeout`;
      return timeout;
    });
    // Held a while: the wait goes on until the lock is free.
    await new Promise((r) => setTimeout(r, 1500));
    await holder.release();
    assert.equal(await taking, "7s", "the lock is taken and the caller's lock_timeout is back");
    // An aborted wait throws the signal's reason and the transaction can still roll back cleanly.
    const again = await holdSlice(db);
    try {
      const stop = new AbortController();
      const waiting = db.sql.begin(async (tx) => {
        await lockSlice(tx, 11, 2025, { signal: stop.signal });
      });
      setTimeout(() => stop.abort(new Error("stopped")), 200);
      await assert.rejects(waiting, /stopped/);
    } finally {
      await again.release();
    }
  },
  { ignore: !serverBackendExpected() },
);
