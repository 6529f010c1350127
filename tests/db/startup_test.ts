// What a command does to a PostgreSQL server before its own work: no row or advisory lock when
// the schema is current, floats that round-trip whatever the database's default, readers that
// refuse a schema they cannot use, and a clean end on SIGTERM/SIGINT mid-transaction.
import assert from "node:assert/strict";
import postgres from "postgres";
import { dbTest, runCaptured, serverBackendExpected, useTestDatabase } from "../_harness.ts";
import { openDatabase, type Queryable } from "../../src/db/connection.ts";
import { MIGRATION_FILES, MIGRATION_LOCK_KEY, SCHEMA_VERSION } from "../../src/db/migrate.ts";
import { createEntries } from "../../src/db/entries.ts";
import { fileURLToPath } from "node:url";
import { emissionsCommand } from "../../src/cli/emissions.ts";
import { factorsCommand } from "../../src/cli/factors.ts";
import { migrateCommand } from "../../src/cli/migrate.ts";
import { rematchCommand } from "../../src/cli/rematch.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { createTestEntries, importFactorText, IT_HEADER } from "../integration/_slice.ts";
import { rowsOf, seedPreciseSlice, within } from "./_connection.ts";

const testDb = useTestDatabase();
const serverOnly = { ignore: !serverBackendExpected() };

function testUrl(): string {
  const { url } = testDb.current;
  if (!url) throw new Error("this test needs the server backend");
  return url;
}

function client(url: string) {
  return postgres(url, { max: 1, onnotice: () => {} });
}

function databaseName(url: string): string {
  return new URL(url).pathname.slice(1);
}

const laptop = {
  name: "laptop",
  equipment_class: "Laptop",
  sub_class: "Standard",
  active_usage_hours_per_week: 40,
  standby_usage_hours_per_week: 100,
};
const IT_FACTOR = `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`;

dbTest(
  testDb,
  "startup takes no lock: with FK share locks on every reference row and the migration lock " +
    "held by an open transaction, commands on another det start and finish",
  async (db) => {
    const url = testUrl();
    await importFactorText(db, "it", 2025, IT_FACTOR);
    const name = databaseName(url);
    // Any lock wait of the commands below fails within 1 s instead of hanging the test.
    await db.sql.unsafe(`alter database ${name} set lock_timeout = '1s'`);
    const writer = await openDatabase({ databaseUrl: url, announce: false });
    let release = () => {};
    const released = new Promise<void>((done) => release = done);
    let holding = () => {};
    const held = new Promise<void>((done) => holding = done);
    const transaction = writer.sql.begin(async (tx) => {
      // An entries import not yet committed: its rows hold FK share locks on the reference rows
      // they name; the selects take the same lock on every other reference row.
      const created = await createEntries(tx, [
        { unitCode: "U1", year: 2025, det: getDataEntryType("it"), data: laptop },
      ]);
      assert.deepEqual(created.rejected, []);
      await tx`select 1 from module_types for key share`;
      await tx`select 1 from data_entry_types for key share`;
      await tx`select 1 from emission_types for key share`;
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      holding();
      await released;
      throw new Error("rolled back on purpose");
    }).catch((error: Error) => {
      if (error.message !== "rolled back on purpose") throw error;
    });
    try {
      await held;
      const rematch = await within(
        60,
        "rematch",
        runCaptured(rematchCommand, [
          "--det",
          "member",
          "--year",
          "2025",
          "--no-wait",
          "--database-url",
          url,
        ]),
      );
      assert.equal(rematch.code, 0, rematch.err);
      assert.doesNotMatch(rematch.err, /applying/);
      const migrate = await within(
        60,
        "migrate",
        runCaptured(migrateCommand, ["--database-url", url]),
      );
      assert.equal(migrate.code, 0, migrate.err);
      assert.equal(migrate.out, `schema version ${SCHEMA_VERSION} (up to date)`);
      const exported = await within(
        60,
        "export",
        runCaptured(emissionsCommand, [
          "export",
          "--det",
          "plane",
          "--year",
          "2025",
          "--database-url",
          url,
        ]),
      );
      assert.equal(exported.code, 0, exported.err);
    } finally {
      release();
      await transaction;
      await writer.close();
      await db.sql.unsafe(`alter database ${name} reset lock_timeout`);
    }
  },
  serverOnly,
);

dbTest(
  testDb,
  "floats: a no-op rematch writes nothing on a server database set to extra_float_digits = 0",
  async (db) => {
    const url = testUrl();
    const ids = await seedPreciseSlice(db);
    const before = await rowsOf(db, ids);
    const name = databaseName(url);
    await db.sql.unsafe(`alter database ${name} set extra_float_digits = 0`);
    const plain = client(url);
    try {
      // The premise: a session that does not ask for every digit gets rounded kg.
      const [setting] = await plain`show extra_float_digits`;
      assert.equal(setting.extra_float_digits, "0");
      const rounded = await plain<{ kg: string }[]>`
        select kg_co2eq::text as kg from data_entry_emissions order by id`;
      assert.notDeepEqual(rounded.map((r) => Number(r.kg)), before.map((r) => r.kg_co2eq));

      await using fresh = await openDatabase({ databaseUrl: url, announce: false });
      const [ours] = await fresh.sql`show extra_float_digits`;
      assert.equal(ours.extra_float_digits, "3");
      const result = await recalculateForDataEntryType(fresh, { dataEntryType: "it", year: 2025 });
      assert.equal(result.unchanged, ids.length);
      assert.equal(result.emissionsUpdated, 0);
      assert.deepEqual(await rowsOf(fresh, ids), before);
    } finally {
      await plain.end();
      await db.sql.unsafe(`alter database ${name} reset extra_float_digits`);
    }
  },
  serverOnly,
);

/** A database on the test server without anything in it, dropped after `fn`. */
async function withEmptyDatabase(fn: (url: string) => Promise<void>): Promise<void> {
  const url = new URL(testUrl());
  const name = `rematch_test_empty_${crypto.randomUUID().slice(0, 8)}`;
  const admin = client(url.toString());
  await admin.unsafe(`create database ${name}`);
  url.pathname = `/${name}`;
  try {
    await fn(url.toString());
  } finally {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

const EXPORT = ["export", "--det", "it", "--year", "2025"];

dbTest(
  testDb,
  "read-only commands refuse a database without the schema, behind it or ahead of it; " +
    "writing commands say which migrations they apply",
  async () => {
    await withEmptyDatabase(async (url) => {
      const target = ["--database-url", url];
      const empty = [
        await runCaptured(emissionsCommand, [...EXPORT, ...target]),
        await runCaptured(rematchCommand, [
          "--det",
          "it",
          "--year",
          "2025",
          "--dry-run",
          ...target,
        ]),
        await runCaptured(factorsCommand, [
          "import",
          fileURLToPath(new URL("../../fixtures/demo/it.csv", import.meta.url)),
          "--det",
          "it",
          "--year",
          "2025",
          "--dry-run",
          ...target,
        ]),
      ];
      for (const run of empty) {
        assert.equal(run.code, 1);
        assert.match(run.err, /the database has no rematch schema: run `deno task migrate` first/);
      }
      const sql = client(url);
      try {
        const [tables] = await sql`
          select count(*)::int as n from information_schema.tables
          where table_schema = current_schema()`;
        assert.equal(tables.n, 0);

        // The migration numbers may have gaps while parallel branches land.
        const versions = MIGRATION_FILES.map((file) => Number(file.slice(0, 4)));
        const migrated = await runCaptured(migrateCommand, target);
        assert.equal(migrated.code, 0, migrated.err);
        const applying = SCHEMA_VERSION === 1
          ? "applying migration 1"
          : `applying migrations 1..${SCHEMA_VERSION}`;
        assert.match(migrated.err, new RegExp(`^${applying.replace(/\./g, "\\.")}$`, "m"));
        assert.equal(
          migrated.out,
          `applied ${applying.slice("applying ".length)}: schema version ${SCHEMA_VERSION}`,
        );
        assert.deepEqual(
          (await sql`select version from schema_migrations order by 1`).map((r) => r.version),
          versions,
        );
        const again = await runCaptured(migrateCommand, [...target, "--json"]);
        assert.doesNotMatch(again.err, /applying/);
        assert.deepEqual(JSON.parse(again.out), {
          database: "server",
          schemaVersion: SCHEMA_VERSION,
          applied: [],
        });
        const exported = await runCaptured(emissionsCommand, [...EXPORT, ...target]);
        assert.equal(exported.code, 0, exported.err);

        await sql`delete from schema_migrations where version = ${SCHEMA_VERSION}`;
        const behind = await runCaptured(emissionsCommand, [...EXPORT, ...target]);
        assert.equal(behind.code, 1);
        assert.match(
          behind.err,
          new RegExp(
            `schema is at version ${
              versions.at(-2)
            }, this program needs ${SCHEMA_VERSION}: run \`deno task migrate\` first`,
          ),
        );

        await sql`insert into schema_migrations (version, name)
          values (${SCHEMA_VERSION}, 'back'), (${SCHEMA_VERSION + 1}, 'from the future')`;
        const ahead = [
          await runCaptured(emissionsCommand, [...EXPORT, ...target]),
          await runCaptured(migrateCommand, target),
        ];
        for (const run of ahead) {
          assert.equal(run.code, 1);
          assert.match(
            run.err,
            new RegExp(
              `version ${SCHEMA_VERSION + 1}, newer than this program's ${SCHEMA_VERSION}`,
            ),
          );
        }
      } finally {
        await sql.end();
      }
    });
  },
  serverOnly,
);

/**
 * Waits until no session of that name is left (at most 30 s): a killed client's backend lingers
 * until it notices, and must not be taken for the next child's.
 */
async function waitForNoRematch(sql: Queryable, name: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and application_name = ${name}`;
    if (row.n === 0) return;
    await new Promise((done) => setTimeout(done, 100));
  }
  const rows = await sql`
    select pid, state, wait_event_type, wait_event, backend_start, xact_start, query
    from pg_stat_activity where datname = current_database() and application_name = ${name}`;
  throw new Error(`a rematch session is still there: ${JSON.stringify(rows)}`);
}

/** Waits until a session of that name waits for a lock (at most 30 s); returns its query. */
async function waitForBlockedRematch(sql: Queryable, name: string): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const [row] = await sql<{ query: string }[]>`
      select query from pg_stat_activity
      where datname = current_database() and application_name = ${name}
        and wait_event_type = 'Lock'`;
    if (row) return row.query;
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error("the rematch never got to wait for its lock");
}

dbTest(
  testDb,
  "SIGTERM and SIGINT mid-transaction: one line saying it was rolled back, exit 143 / 130, " +
    "nothing of it committed",
  async (db) => {
    const url = testUrl();
    await importFactorText(db, "it", 2025, IT_FACTOR);
    const ids = await createTestEntries(db, "it", 2025, [laptop, { ...laptop, name: "second" }]);
    await importFactorText(db, "it", 2025, IT_FACTOR.replace(/0\.1$/m, "0.3"));
    const before = await rowsOf(db, ids);
    const script = new URL("../../scripts/rematch.ts", import.meta.url).pathname;
    const blocker = client(url);
    try {
      for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
        const name = `rematch-${signal.toLowerCase()}-test`;
        let release = () => {};
        const released = new Promise<void>((done) => release = done);
        let holding = () => {};
        const held = new Promise<void>((done) => holding = done);
        // The rematch writes its emission rows, then waits here to refresh the module stats.
        const blocking = blocker.begin(async (tx) => {
          await tx`select id from carbon_report_modules for update`;
          holding();
          await released;
        });
        await held;
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", script, "--det", "it", "--year", "2025"],
          // Named apart from this test's own sessions (all "rematch").
          env: { DATABASE_URL: url, NO_COLOR: "1", PGAPPNAME: name },
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        try {
          // Its emission rows are written: it waits to refresh the stats, in the same transaction.
          assert.match(
            await waitForBlockedRematch(db.sql, name),
            /carbon_report_modules[^]*for no key update/,
          );
          child.kill(signal);
          const output = await child.output();
          const err = new TextDecoder().decode(output.stderr);
          assert.equal(output.code, code, err);
          const lines = err.trim().split("\n").filter((line) => /interrupted/.test(line));
          assert.deepEqual(lines, [
            `rematch: interrupted by ${signal}: the transaction in progress was rolled back ` +
            "(nothing of it is committed; work committed before it stays)",
          ]);
        } finally {
          release();
          await blocking;
        }
        await waitForNoRematch(db.sql, name);
        assert.deepEqual(await rowsOf(db, ids), before, signal);
      }
    } finally {
      await blocker.end();
    }
  },
  serverOnly,
);
