// The embedded directory across real processes (`deno run -A scripts/<task>.ts`): two commands
// started at once on a directory with a stale lock file, kill -9 and SIGINT followed at once by
// the next command, and read-only commands on a directory that does not exist.
//
// The stress test runs REMATCH_STRESS_ROUNDS rounds: 10 by default, to keep CI short (a round
// costs about a second); the 50 with REMATCH_STRESS_ROUNDS=50.
import assert from "node:assert/strict";
import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Database,
  lockFileOf,
  openDatabase,
  readLockHolder,
} from "../../src/db/connection.ts";
import { importFactors } from "../../src/db/factors.ts";
import { SCHEMA_VERSION } from "../../src/db/migrate.ts";
import { readCsvFile } from "../../src/imports/csv.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { seedDatabase } from "../../src/seed/seed.ts";
import { deadPid, runScript, type ScriptRun } from "./_connection.ts";

const YEAR = 2025;
const DETS = ["plane", "it"] as const;
const ROUNDS = Number(Deno.env.get("REMATCH_STRESS_ROUNDS") ?? 10);
const quiet = { databaseUrl: "", announce: false } as const;
const options = { sanitizeOps: false, sanitizeResources: false };

let work: string | undefined;
let fixture: Promise<{ template: string; expected: string }> | undefined;

// A small seeded directory whose plane and it factors changed after the entries were computed
// (the demo's changes), so a rematch of either det rewrites rows; and the data one clean run of
// both rematches leaves.
function seededTemplate(): Promise<{ template: string; expected: string }> {
  fixture ??= (async () => {
    work = await Deno.makeTempDir({ prefix: "rematch-embedded-lock-" });
    const template = join(work, "template");
    const db = await openDatabase({ ...quiet, dataDir: template });
    try {
      await seedDatabase(db, { units: 2, entriesPerDet: 15, year: YEAR, dets: [...DETS] });
      for (const det of DETS) {
        const file = fileURLToPath(new URL(`../../fixtures/demo/${det}.csv`, import.meta.url));
        const table = await readCsvFile(file);
        await db.sql.begin((tx) =>
          importFactors(tx, {
            file,
            table,
            year: YEAR,
            target: { dataEntryTypeId: getDataEntryType(det).id },
            mode: "merge",
          })
        );
      }
    } finally {
      await db.close();
    }
    const clean = copyOf(template, "clean");
    const cleanDb = await openDatabase({ ...quiet, dataDir: clean });
    try {
      for (const det of DETS) {
        const result = await recalculateForDataEntryType(cleanDb, {
          dataEntryType: det,
          year: YEAR,
        });
        assert.ok(result.emissionsUpdated + result.emissionsInserted > 0, det);
      }
      return { template, expected: await snapshot(cleanDb) };
    } finally {
      await cleanDb.close();
    }
  })();
  return fixture;
}

function copyOf(template: string, name: string): string {
  const dir = join(work!, name, "db");
  cpSync(template, dir, { recursive: true });
  return dir;
}

Deno.test.afterAll(async () => {
  if (work) await Deno.remove(work, { recursive: true });
});

/**
 * Everything a rematch may change, without row ids and timestamps. Module stats are sums whose
 * last digit depends on the order rows are met (which det ran first), so they are compared to the
 * micro-kg.
 */
async function snapshot(db: Database): Promise<string> {
  const emissions = await db.sql`
    select data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, additional_value, scope,
      meta
    from data_entry_emissions order by data_entry_id, emission_type_id, kg_co2eq`;
  const entries = await db.sql`select id, data from data_entries order by id`;
  const stats = await db.sql`
    select id, stats - 'computed_at' as stats from carbon_report_modules order by id`;
  const microKg = (_key: string, value: unknown) =>
    typeof value === "number" ? Math.round(value * 1e6) / 1e6 : value;
  return JSON.stringify({ emissions, entries, stats: JSON.parse(JSON.stringify(stats), microKg) });
}

async function snapshotOf(dataDir: string): Promise<string> {
  const db = await openDatabase({ ...quiet, dataDir, wait: false });
  try {
    return await snapshot(db);
  } finally {
    await db.close();
  }
}

function rematchProcess(dataDir: string, det: string): Deno.ChildProcess {
  const script = fileURLToPath(new URL("../../scripts/rematch.ts", import.meta.url));
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--det", det, "--year", String(YEAR)],
    env: { DATABASE_URL: "", REMATCH_DATA_DIR: dataDir, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function finished(child: Deno.ChildProcess): Promise<ScriptRun> {
  const output = await child.output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, out: decode(output.stdout), err: decode(output.stderr) };
}

/** Waits until the child holds the directory (its pid is in the lock file). */
async function holding(dataDir: string, child: Deno.ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await readLockHolder(dataDir))?.pid === child.pid) return;
    await new Promise((done) => setTimeout(done, 50));
  }
  throw new Error(`process ${child.pid} never took ${dataDir}`);
}

Deno.test({
  name: `embedded: two commands started at once on a directory with a stale lock file, ${ROUNDS} ` +
    "rounds: one runs at a time, the other waits for it, the data is that of one clean run",
  ...options,
  async fn() {
    const { template, expected } = await seededTemplate();
    let contended = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const dataDir = copyOf(template, `round-${round}`);
      // What a killed command leaves: the lock file naming a process that is gone.
      const pid = await deadPid();
      await Deno.writeTextFile(
        lockFileOf(dataDir),
        round % 2 ? String(pid) : JSON.stringify({ pid, command: "killed", since: "earlier" }),
      );
      const children = DETS.map((det) => rematchProcess(dataDir, det));
      const runs = await Promise.all(children.map(finished));
      runs.forEach((run, i) => assert.equal(run.code, 0, `round ${round} ${DETS[i]}: ${run.err}`));
      const waits = runs.map((run) => run.err.split("\n").filter((l) => l.startsWith("waiting: ")));
      // A waiter names the other command as the holder: never both at once, never the stale pid.
      waits.forEach((lines, i) => {
        for (const line of lines) {
          assert.ok(line.includes(`process ${children[1 - i].pid} (`), `round ${round}: ${line}`);
        }
      });
      assert.ok(waits.some((lines) => lines.length === 0), `round ${round}: both waited`);
      if (waits.some((lines) => lines.length > 0)) contended++;
      assert.equal(await snapshotOf(dataDir), expected, `round ${round}`);
      await Deno.remove(join(work!, `round-${round}`), { recursive: true });
    }
    // Started together, the second nearly always finds the first inside: the race was run.
    assert.ok(contended > 0, `no round had both commands contend (${ROUNDS} rounds)`);
    console.log(`${contended} of ${ROUNDS} rounds: one command waited for the other`);
  },
});

Deno.test({
  name: "embedded: kill -9 of a command, then the next command opens the directory at once",
  ...options,
  async fn() {
    const { template, expected } = await seededTemplate();
    const dataDir = copyOf(template, "killed");
    const child = rematchProcess(dataDir, "plane");
    await holding(dataDir, child);
    child.kill("SIGKILL");
    const killed = await finished(child);
    assert.equal(killed.code, 137);
    // --no-wait: a lock left behind would fail it instead of making it wait.
    for (const det of DETS) {
      const next = await runScript("rematch", ["--det", det, "--year", String(YEAR), "--no-wait"], {
        DATABASE_URL: "",
        REMATCH_DATA_DIR: dataDir,
      });
      assert.equal(next.code, 0, next.err);
    }
    assert.equal(await snapshotOf(dataDir), expected);
  },
});

Deno.test({
  name: "embedded: SIGINT ends a command with one line and exit 130; the next opens at once",
  ...options,
  async fn() {
    const { template, expected } = await seededTemplate();
    const dataDir = copyOf(template, "interrupted");
    const child = rematchProcess(dataDir, "it");
    await holding(dataDir, child);
    child.kill("SIGINT");
    const interrupted = await finished(child);
    assert.equal(interrupted.code, 130, interrupted.err);
    assert.deepEqual(interrupted.err.split("\n").filter((l) => / interrupted by /.test(l)), [
      "rematch: interrupted by SIGINT: the transaction in progress was rolled back " +
      "(nothing of it is committed; work committed before it stays)",
    ]);
    for (const det of DETS) {
      const next = await runScript("rematch", ["--det", det, "--year", String(YEAR), "--no-wait"], {
        DATABASE_URL: "",
        REMATCH_DATA_DIR: dataDir,
      });
      assert.equal(next.code, 0, next.err);
    }
    assert.equal(await snapshotOf(dataDir), expected);
  },
});

Deno.test({
  name: "embedded: a read-only command on a missing directory creates nothing and asks for " +
    "migrate; migrate says which migrations it applies",
  ...options,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "rematch-embedded-read-" });
    try {
      const dataDir = join(dir, "nested", "db");
      const env = { DATABASE_URL: "", REMATCH_DATA_DIR: dataDir };
      const exportArgs = ["export", "--det", "it", "--year", String(YEAR)];
      const refused = await runScript("emissions", exportArgs, env);
      assert.equal(refused.code, 1);
      assert.match(
        refused.err,
        /the embedded database .*nested\/db does not exist: run `deno task migrate` first/,
      );
      assert.equal(existsSync(join(dir, "nested")), false);

      const migrated = await runScript("migrate", [], env);
      assert.equal(migrated.code, 0, migrated.err);
      const applying = SCHEMA_VERSION === 1
        ? "applying migration 1"
        : `applying migrations 1..${SCHEMA_VERSION}`;
      assert.ok(migrated.err.split("\n").includes(applying), migrated.err);
      const exported = await runScript("emissions", exportArgs, env);
      assert.equal(exported.code, 0, exported.err);
      assert.match(exported.out, /^entry_id,module_id,unit_code/);
      assert.doesNotMatch(exported.err, /applying/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
