// Opening a database: the embedded directory's OS lock (busy, waiting, stale lock files), the
// connect timeout against servers that close or never answer, floats that round-trip, and
// passwords kept out of every message.
import assert from "node:assert/strict";
import net from "node:net";
import { join } from "node:path";
import {
  connectSocket,
  type Database,
  DatabaseBusyError,
  lockFileOf,
  openDatabase,
  redactDatabaseUrl,
  redactSecrets,
} from "../../src/db/connection.ts";
import { SCHEMA_VERSION, schemaVersion } from "../../src/db/migrate.ts";
import {
  createTestDatabase,
  holdInTransaction,
  runCaptured,
  serverBackendExpected,
  untilSomeoneWaitsForALock,
} from "../_harness.ts";
import { runDeno } from "../_deno.ts";
import { createTestEntries, importFactorText, IT_HEADER } from "../integration/_slice.ts";
import { migrateCommand } from "../../src/cli/migrate.ts";
import { emissionsCommand } from "../../src/cli/emissions.ts";
import { rematchCommand } from "../../src/cli/rematch.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import {
  deadPid,
  fakeServer,
  gatedPort,
  rowsOf,
  runScript,
  seedPreciseSlice,
  within,
} from "./_connection.ts";

const quiet = { databaseUrl: "", announce: false } as const;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rematch-connection-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** What console.error printed while `fn` ran. */
async function capturingStderr<T>(fn: () => Promise<T>): Promise<{ value: T; err: string[] }> {
  const err: string[] = [];
  const { error } = console;
  console.error = (...parts: unknown[]) => err.push(parts.join(" "));
  try {
    return { value: await fn(), err };
  } finally {
    console.error = error;
  }
}

const dbOptions = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "embedded: a write survives close and the directory reopens at once",
  ...dbOptions,
  async fn() {
    await withTempDir(async (dir) => {
      const dataDir = join(dir, "db");
      const first = await openDatabase({ ...quiet, dataDir });
      assert.equal(first.kind, "embedded");
      assert.equal(await schemaVersion(first.sql), SCHEMA_VERSION);
      await first.sql`insert into units (code) values ('kept')`;
      await first.close();
      const second = await openDatabase({ ...quiet, dataDir, wait: false });
      try {
        const rows = await second.sql<{ code: string }[]>`select code from units`;
        assert.deepEqual(rows.map((r) => r.code), ["kept"]);
      } finally {
        await second.close();
      }
    });
  },
});

Deno.test({
  name: "embedded: a busy directory names the directory, its lock file and the holder; " +
    "--no-wait fails at once, the default waits with a message",
  ...dbOptions,
  async fn() {
    await withTempDir(async (dir) => {
      const dataDir = join(dir, "db");
      const first = await openDatabase({ ...quiet, dataDir });
      let firstClosed = false;
      try {
        const holder = JSON.parse(await Deno.readTextFile(lockFileOf(dataDir)));
        assert.equal(holder.pid, Deno.pid);
        assert.ok(!Number.isNaN(Date.parse(holder.since)), holder.since);
        await assert.rejects(
          () => openDatabase({ ...quiet, dataDir, wait: false }),
          (e) => {
            assert.ok(e instanceof DatabaseBusyError);
            assert.match(e.message, new RegExp(`embedded database ${dir}/db is in use`));
            assert.ok(e.message.includes(`lock file ${dir}/db.lock`), e.message);
            assert.ok(e.message.includes(`process ${Deno.pid} (${holder.command})`), e.message);
            assert.ok(e.message.includes(`since ${holder.since}`), e.message);
            assert.match(e.message, /--no-wait/);
            return true;
          },
        );
        // The default waits: the second opener gets the directory once the first closes.
        const waiting = capturingStderr(() =>
          openDatabase({ databaseUrl: "", dataDir, announce: true })
        );
        await new Promise((done) => setTimeout(done, 500));
        firstClosed = true;
        await first.close();
        const { value: second, err } = await waiting;
        try {
          assert.equal((await second.sql`select code from units`).length, 0);
        } finally {
          await second.close();
        }
        const waits = err.filter((line) => line.startsWith("waiting: "));
        assert.equal(waits.length, 1, err.join("\n"));
        assert.ok(waits[0].includes(`lock file ${dir}/db.lock`), waits[0]);
        assert.ok(waits[0].includes(`process ${Deno.pid}`), waits[0]);
      } finally {
        if (!firstClosed) await first.close();
      }
    });
  },
});

Deno.test({
  name: "embedded: a stale lock file (its process gone) never blocks, in either format",
  ...dbOptions,
  async fn() {
    await withTempDir(async (dir) => {
      const dataDir = join(dir, "db");
      await (await openDatabase({ ...quiet, dataDir })).close();
      const pid = await deadPid();
      for (const text of [String(pid), JSON.stringify({ pid, command: "old", since: "then" })]) {
        await Deno.writeTextFile(lockFileOf(dataDir), text);
        const db = await openDatabase({ ...quiet, dataDir, wait: false });
        assert.equal(JSON.parse(await Deno.readTextFile(lockFileOf(dataDir))).pid, Deno.pid);
        await db.close();
        // The file stays (it is never removed, so it can never be swapped under a holder).
        assert.ok((await Deno.stat(lockFileOf(dataDir))).isFile);
      }
    });
  },
});

function processState(pid: number): string {
  // /proc/<pid>/stat: "pid (comm) S ...": the state letter follows the command's parenthesis.
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
}

Deno.test({
  name: "embedded: a stale lock naming a live unrelated stopped process neither touches it " +
    "nor blocks",
  ignore: Deno.build.os !== "linux",
  ...dbOptions,
  async fn() {
    await withTempDir(async (dir) => {
      const dataDir = join(dir, "db");
      await (await openDatabase({ ...quiet, dataDir })).close();
      const sleeper = new Deno.Command("sleep", { args: ["120"] }).spawn();
      try {
        sleeper.kill("SIGSTOP");
        for (let i = 0; i < 50 && processState(sleeper.pid) !== "T"; i++) {
          await new Promise((done) => setTimeout(done, 20));
        }
        assert.equal(processState(sleeper.pid), "T");
        await Deno.writeTextFile(
          lockFileOf(dataDir),
          JSON.stringify({ pid: sleeper.pid, command: "sleep 120", since: "earlier" }),
        );
        const db = await openDatabase({ ...quiet, dataDir, wait: false });
        await db.close();
        await Deno.writeTextFile(lockFileOf(dataDir), String(sleeper.pid));
        await (await openDatabase({ ...quiet, dataDir, wait: false })).close();
        // A probe by signal (SIGCONT) would have resumed it.
        assert.equal(processState(sleeper.pid), "T");
      } finally {
        sleeper.kill("SIGKILL");
        await sleeper.status;
      }
    });
  },
});

Deno.test({
  name: "connect: a server that hangs up at once is tried a few times, then a clear error, exit 1",
  ...dbOptions,
  async fn() {
    const server = fakeServer("close");
    try {
      const url = `postgres://ops:Hunter2pw@127.0.0.1:${server.port}/carbon`;
      const run = await within(
        30,
        "migrate",
        runCaptured(migrateCommand, ["--database-url", url, "--connect-timeout", "1"]),
      );
      assert.equal(run.code, 1);
      assert.match(
        run.err,
        new RegExp(
          `migrate: cannot connect to postgres://ops@127\\.0\\.0\\.1:${server.port}/carbon`,
        ),
      );
      assert.match(run.err, /closed the connection before the session was ready \(3 attempts/);
      assert.doesNotMatch(run.err + run.out, /Hunter2pw/);
      // postgres.js alone reconnects hundreds of times a second, forever.
      assert.ok(server.accepted <= 3 * 2, `${server.accepted} connections`);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "connect: a server that never answers times out per attempt (--connect-timeout)",
  ...dbOptions,
  async fn() {
    const server = fakeServer("silent");
    try {
      const url = `postgres://ops@127.0.0.1:${server.port}/carbon`;
      const run = await within(
        30,
        "migrate",
        runCaptured(migrateCommand, ["--database-url", url, "--connect-timeout", "0.3", "--json"]),
      );
      assert.equal(run.code, 1);
      const { error } = JSON.parse(run.out);
      assert.equal(error.code, "DatabaseConnectError");
      assert.match(error.message, /no answer within 0\.3 s \(3 attempts of at most 0\.3 s/);
      assert.equal(server.accepted, 3);
    } finally {
      await server.stop();
    }
  },
});

Deno.test("connect: --connect-timeout is validated (exit 2)", async () => {
  for (const value of ["abc", "0", "1e3"]) {
    const run = await runCaptured(migrateCommand, ["--connect-timeout", value]);
    assert.equal(run.code, 2, value);
    assert.match(run.err, /--connect-timeout: expected a number of seconds/, value);
  }
});

Deno.test("redactSecrets: URL passwords, password= pairs and the bare password go", () => {
  const cases: [string, string][] = [
    ["postgres://ops:s3cret@db.example:5432/carbon", "postgres://ops:***@db.example:5432/carbon"],
    ["Invalid URL: 'postgres://ops:s3cret@db x/y'", "Invalid URL: 'postgres://ops:***@db x/y'"],
    ["postgresql://ops:p@ss@db/x and more", "postgresql://ops:***@db/x and more"],
    ["host=db password='a b' user=ops", "host=db password=*** user=ops"],
    [
      "postgres://db/x?sslmode=require&password=s3cret",
      "postgres://db/x?sslmode=require&password=***",
    ],
    ["PGPASSWORD=s3cret deno task migrate", "PGPASSWORD=*** deno task migrate"],
    ["postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/postgres"],
    ["ratio 3:4 at 10:30, mail ops@example.org", "ratio 3:4 at 10:30, mail ops@example.org"],
    // A port, then a path holding an `@` (a registry's scoped package): no password there.
    [
      "cannot load http://127.0.0.1:4873/@electric-sql/pglite",
      "cannot load http://127.0.0.1:4873/@electric-sql/pglite",
    ],
  ];
  for (const [text, expected] of cases) assert.equal(redactSecrets(text), expected, text);
  // The password of a URL that cannot be parsed, wherever its text shows up.
  const odd = "postgres://ops:we ird'pw@db/x";
  assert.equal(
    redactSecrets(`Invalid URL: '${odd}' (we ird'pw)`, [odd]),
    "Invalid URL: 'postgres://ops:***@db/x' (***)",
  );
  assert.equal(
    redactDatabaseUrl("postgres://ops:s3cret@db.example:5432/carbon"),
    "postgres://ops@db.example:5432/carbon",
  );
  assert.doesNotMatch(redactDatabaseUrl(odd), /ird/);
});

Deno.test({
  name: "redaction: an unparsable --database-url never prints its password (human and --json)",
  ...dbOptions,
  async fn() {
    const url = "postgres://ops:Sup3rSecret@db host:5432/carbon";
    const export_ = ["export", "--det", "it", "--year", "2025"];
    const runs = [
      await runCaptured(migrateCommand, ["--database-url", url]),
      await runCaptured(migrateCommand, ["--database-url", url, "--json"]),
      await runCaptured(emissionsCommand, [...export_, "--database-url", url]),
      await runCaptured(emissionsCommand, [
        ...export_,
        "--output",
        "/dev/null",
        "--database-url",
        url,
        "--json",
      ]),
    ];
    for (const [i, run] of runs.entries()) {
      assert.equal(run.code, 1, run.err);
      const message = i % 2 ? JSON.parse(run.out).error.message : run.err;
      assert.match(message, /postgres:\/\/ops:\*\*\*@db host/);
      assert.doesNotMatch(run.out + run.err, /Sup3rSecret/);
    }
  },
});

Deno.test({
  name: "redaction: DATABASE_URL and PGPASSWORD stay out of a command's output (subprocess)",
  ...dbOptions,
  async fn() {
    const run = (env: Record<string, string>, args: string[]) => runScript("migrate", args, env);
    const unparsable = await run({ DATABASE_URL: "postgres://ops:Sup3rSecret@db host/x" }, []);
    assert.equal(unparsable.code, 1);
    assert.match(unparsable.err, /ops:\*\*\*@db host/);
    const server = fakeServer("silent");
    try {
      const timedOut = await run({
        DATABASE_URL: `postgres://ops:Sup3rSecret@127.0.0.1:${server.port}/x?password=Sup3rSecret`,
        PGPASSWORD: "An0therSecret",
        REMATCH_CONNECT_TIMEOUT: "0.2",
      }, ["--json"]);
      assert.equal(timedOut.code, 1, timedOut.err);
      assert.match(JSON.parse(timedOut.out).error.message, /no answer within 0\.2 s/);
      assert.match(timedOut.err, /^database: postgres:\/\/ops@127\.0\.0\.1/m);
      for (const text of [unparsable.out, unparsable.err, timedOut.out, timedOut.err]) {
        assert.doesNotMatch(text, /Sup3rSecret|An0therSecret/);
      }
      const badTimeout = await run({
        DATABASE_URL: `postgres://ops@127.0.0.1:${server.port}/x`,
        REMATCH_CONNECT_TIMEOUT: "soon",
      }, []);
      assert.equal(badTimeout.code, 1);
      assert.match(badTimeout.err, /REMATCH_CONNECT_TIMEOUT: expected a number of seconds/);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "floats: a no-op rematch writes nothing on the embedded database set to " +
    "extra_float_digits = 0",
  ...dbOptions,
  async fn() {
    await withTempDir(async (dir) => {
      const dataDir = join(dir, "db");
      let db = await openDatabase({ ...quiet, dataDir });
      let ids: number[];
      let before;
      try {
        ids = await seedPreciseSlice(db);
        before = await rowsOf(db, ids);
        await db.sql`alter system set extra_float_digits = 0`;
      } finally {
        await db.close();
      }
      db = await openDatabase({ ...quiet, dataDir });
      try {
        const [setting] = await db.sql`show extra_float_digits`;
        assert.equal(setting.extra_float_digits, "3");
        const result = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
        assert.equal(result.unchanged, ids.length);
        assert.equal(result.emissionsUpdated, 0);
        assert.deepEqual(await rowsOf(db, ids), before);
      } finally {
        await db.close();
      }
    });
  },
});

/**
 * Runs `fn`, then returns each TCP socket connected meanwhile and whether it was set to send at
 * once (TCP_NODELAY).
 */
async function watchingSockets(fn: () => Promise<void>): Promise<boolean[]> {
  const proto = net.Socket.prototype;
  const { connect, setNoDelay } = proto;
  const connected: net.Socket[] = [];
  const sendingAtOnce = new Set<net.Socket>();
  proto.connect = function (this: net.Socket, ...args: unknown[]) {
    if (typeof args[0] !== "string") connected.push(this);
    return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
  };
  proto.setNoDelay = function (this: net.Socket, noDelay?: boolean) {
    if (noDelay !== false) sendingAtOnce.add(this);
    else sendingAtOnce.delete(this);
    return setNoDelay.call(this, noDelay);
  };
  try {
    await fn();
  } finally {
    proto.connect = connect;
    proto.setNoDelay = setNoDelay;
  }
  return connected.map((socket) => sendingAtOnce.has(socket));
}

Deno.test({
  name: "sockets: every connection to the database sends at once (TCP_NODELAY): the embedded " +
    "socket, and on a server both clients",
  ...dbOptions,
  async fn() {
    await withTempDir(async (dir) => {
      const dataDir = join(dir, "db");
      const sockets = await watchingSockets(async () => {
        const db = await openDatabase({ ...quiet, dataDir });
        try {
          await db.sql`select 1`;
        } finally {
          await db.close();
        }
      });
      assert.deepEqual(sockets, [true]);
    });
    if (!serverBackendExpected()) return;
    const test = await createTestDatabase();
    try {
      const sockets = await watchingSockets(async () => {
        const db = await openDatabase({ databaseUrl: test.url!, announce: false, access: "read" });
        try {
          await db.sql`select 1`;
          const reader = await db.readerSql!.reserve();
          await reader`select 1`;
          reader.release();
        } finally {
          await db.close();
        }
      });
      assert.deepEqual(sockets, [true, true]);
    } finally {
      await test.drop();
    }
  },
});

Deno.test({
  name: "sockets: a host that never answers the connection attempt is given up after the connect " +
    "timeout, naming it, and the next host of the URL is tried",
  ...dbOptions,
  async fn() {
    const unanswered = gatedPort();
    await unanswered.fill();
    const open = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const openPort = (open.addr as Deno.NetAddr).port;
    try {
      const opened: net.Socket[] = [];
      const socket = await within(
        5,
        "connecting past the unanswered host",
        connectSocket(
          { host: ["127.0.0.1", "127.0.0.1"], port: [unanswered.port, openPort] },
          opened,
          0.3,
        ),
      );
      assert.equal(socket.remotePort, openPort);
      assert.equal(opened.length, 2);
      assert.equal(opened[0].destroyed, true, "the attempt given up is closed");
      socket.destroy();
      await assert.rejects(
        within(
          5,
          "the unanswered host alone",
          connectSocket({ host: ["127.0.0.1"], port: [unanswered.port] }, [], 0.3),
        ),
        new RegExp(`^Error: 127\\.0\\.0\\.1:${unanswered.port}: no connection within 0\\.3 s$`),
      );
    } finally {
      open.close();
      unanswered.close();
    }
  },
});

Deno.test({
  name: "sockets: a rematch whose second session cannot connect gives it up after the connect " +
    "timeout and reads on its transaction",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    const test = await createTestDatabase();
    // The first connection (the session the rematch's transaction runs on) goes through to the
    // server; the reader's, opened once the slice is read, is never answered.
    const server = new URL(test.url!);
    const gate = gatedPort(1, Number(server.port || 5432));
    try {
      const ids = await seedPreciseSlice(test.db);
      const url = new URL(test.url!);
      url.hostname = "127.0.0.1";
      url.port = String(gate.port);
      const db = await openDatabase({
        databaseUrl: url.toString(),
        announce: false,
        access: "read",
        connectTimeout: 0.5,
      });
      try {
        await gate.fill();
        const result = await within(
          20,
          "the rematch",
          recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025, full: true }),
        );
        assert.equal(result.entries, ids.length);
        assert.equal(result.unchanged, ids.length);
      } finally {
        await db.close();
      }
    } finally {
      gate.close();
      await test.drop();
    }
  },
});

Deno.test({
  name: "a connection lost mid-transaction: the driver's stray write after the close does not " +
    "end a process that opened its database through the product",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    const test = await createTestDatabase();
    try {
      const script = new URL("./_driver_race.ts", import.meta.url).pathname;
      // Without the product the race is real: the process dies of it.
      const bare = await runDeno(["run", "-A", script, test.url!, "--bare"]);
      assert.notEqual(bare.code, 0, bare.out);
      assert.match(bare.err, /Cannot read properties of null \(reading 'write'\)/);
      const run = await runDeno(["run", "-A", script, test.url!]);
      assert.equal(run.code, 0, run.err);
      assert.equal(run.out, "transaction: CONNECTION_CLOSED\nalive\n");
      // Bundled, as dist/rematch.js carries the driver: the same.
      const dir = await Deno.makeTempDir({ prefix: "rematch-race-bundle-" });
      try {
        const bundled = join(dir, "race.js");
        const built = await runDeno([
          "bundle",
          "--quiet",
          "--platform",
          "deno",
          "--output",
          bundled,
          script,
        ]);
        assert.equal(built.code, 0, built.err);
        const inBundle = await runDeno(["run", "-A", bundled, test.url!], { cwd: dir });
        assert.equal(inBundle.code, 0, inBundle.err);
        assert.equal(inBundle.out, "transaction: CONNECTION_CLOSED\nalive\n");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    } finally {
      await test.drop();
    }
  },
});

// `n` laptops of an `it` slice whose factor has changed since they were computed; returns the kg
// sum of the rows as they are.
async function staleLaptops(db: Database, n: number) {
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
  const laptop = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };
  await createTestEntries(db, "it", 2025, Array.from({ length: n }, () => laptop));
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
  return await db.sql`select sum(kg_co2eq) as kg from data_entry_emissions`;
}

Deno.test({
  name: "a rematch whose second session's connection is lost fails at once, its transaction " +
    "rolled back, instead of waiting forever",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    const test = await createTestDatabase();
    const { db } = test;
    try {
      const before = await staleLaptops(db, 600);
      // The rematch stops halfway on a row held here; meanwhile its reader's session (in a
      // transaction, without writes) is ended from outside.
      const held = await holdInTransaction(
        db,
        (tx) => tx`select id from data_entry_emissions order by id offset 300 limit 1 for update`,
      );
      const rematch = recalculateForDataEntryType(db, {
        dataEntryType: "it",
        year: 2025,
        chunkSize: 50,
      });
      rematch.catch(() => {});
      await untilSomeoneWaitsForALock(db);
      const ended = await db.sql`
        select pg_terminate_backend(pid) as ended from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid()
          and xact_start is not null and backend_xid is null`;
      assert.deepEqual(ended.map((r) => r.ended), [true], "the reader was found and ended");
      await held.release();
      await assert.rejects(() => within(30, "the rematch", rematch), (error: Error) => {
        assert.doesNotMatch(error.message, /still running/);
        return true;
      });
      assert.deepEqual(await db.sql`select sum(kg_co2eq) as kg from data_entry_emissions`, before);
      const open = await db.sql`select pid from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null`;
      assert.deepEqual([...open], [], "no transaction left open");
    } finally {
      await test.drop();
    }
  },
});

Deno.test({
  name: "a command whose connection is lost says so, and that the server rolled back what it had " +
    "not committed",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    const test = await createTestDatabase();
    const { db } = test;
    try {
      const before = await staleLaptops(db, 10);
      // The rematch's UPDATE waits on a row held here; its session is ended meanwhile.
      const held = await holdInTransaction(
        db,
        (tx) => tx`select id from data_entry_emissions order by id limit 1 for update`,
      );
      const run = runCaptured(rematchCommand, [
        "--det",
        "it",
        "--year",
        "2025",
        "--database-url",
        test.url!,
      ]);
      await untilSomeoneWaitsForALock(db);
      const ended = await db.sql`
        select pg_terminate_backend(pid) as ended from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`;
      assert.deepEqual(ended.map((r) => r.ended), [true]);
      await held.release();
      const { code, err } = await within(30, "the rematch", run);
      assert.equal(code, 1, err);
      assert.match(
        err.split("\n").at(-1)!,
        /^rematch: the connection to the database was lost \(.+\): the server rolled back the transaction in progress; what the command committed before stays \(a commit under way when the connection went may have gone through\)$/,
      );
      assert.deepEqual(await db.sql`select sum(kg_co2eq) as kg from data_entry_emissions`, before);
    } finally {
      await test.drop();
    }
  },
});

Deno.test({
  name: "sockets: a database unreachable for more connection attempts than the pool has " +
    "connections is used again once it is back (no query waits for good)",
  ignore: !serverBackendExpected(),
  ...dbOptions,
  async fn() {
    const test = await createTestDatabase();
    const target = Number(new URL(test.url!).port || 5432);
    // A proxy that can be switched off (connections refused) and on again, on one port.
    let listener: Deno.TcpListener | undefined;
    const links: Deno.Conn[] = [];
    const start = (port: number) => {
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      const current = listener;
      (async () => {
        for await (const conn of current) {
          const upstream = await Deno.connect({ hostname: "127.0.0.1", port: target });
          links.push(conn, upstream);
          conn.readable.pipeTo(upstream.writable).catch(() => {});
          upstream.readable.pipeTo(conn.writable).catch(() => {});
        }
      })().catch(() => {});
      return (current.addr as Deno.NetAddr).port;
    };
    const stop = () => {
      listener?.close();
      for (const conn of links.splice(0)) {
        try {
          conn.close();
        } catch {
          // closed by its other end already
        }
      }
    };
    const port = start(0);
    const url = new URL(test.url!);
    url.hostname = "127.0.0.1";
    url.port = String(port);
    const db = await openDatabase({
      databaseUrl: url.toString(),
      announce: false,
      maxConnections: 2,
      connectTimeout: 2,
    });
    try {
      assert.deepEqual([...await db.sql`select 1 as x`], [{ x: 1 }]);
      stop();
      for (let i = 0; i < 5; i++) {
        await assert.rejects(() => within(10, "a query while it is down", db.sql`select 1`));
      }
      start(port);
      const back = await within(20, "a query once it is back", db.sql`select 2 as x`);
      assert.deepEqual([...back], [{ x: 2 }]);
    } finally {
      await db.close();
      stop();
      await test.drop();
    }
  },
});

Deno.test("serve and worker refuse at start a setting their jobs read that is wrong", async () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    [
      "worker",
      { REMATCH_WEEKS_PER_YEAR: "0" },
      /^worker: REMATCH_WEEKS_PER_YEAR: expected a number of weeks above 0 and at most 53, got "0"$/m,
    ],
    [
      "serve",
      { REMATCH_MAX_FILE_SIZE: "lots" },
      /^serve: REMATCH_MAX_FILE_SIZE="lots": expected a size such as 512MiB or 1GiB$/m,
    ],
  ];
  for (const [script, env, message] of cases) {
    // No database is reached: the setting is checked first.
    const run = await runScript(
      script,
      ["--database-url", "postgres://nobody@127.0.0.1:1/none"],
      env,
    );
    assert.equal(run.code, 1, `${script}: ${run.err}`);
    assert.match(run.err, message);
  }
});

Deno.test({
  name: "embedded: an empty REMATCH_DATA_DIR is unset: ./.rematch/db, never the working directory",
  ...dbOptions,
  async fn() {
    await withTempDir(async (dir) => {
      // `status` only reads: it creates nothing, wherever it looks.
      const config = new URL("../../deno.json", import.meta.url).pathname;
      const script = new URL("../../scripts/status.ts", import.meta.url).pathname;
      const run = await runDeno(["run", "-A", "--config", config, script, "--no-wait"], {
        cwd: dir,
        env: { DATABASE_URL: "", REMATCH_DATA_DIR: "" },
      });
      assert.equal(run.code, 1, run.err);
      assert.equal(run.err.split("\n")[0], "database: embedded: ./.rematch/db");
      assert.match(run.err, /the embedded database \.\/\.rematch\/db does not exist/);
      assert.deepEqual([...Deno.readDirSync(dir)], []);
    });
  },
});
