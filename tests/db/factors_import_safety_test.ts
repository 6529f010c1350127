// What keeps a factor import from losing data: replace-mode refusals, --dry-run, the atomic
// --rematch, the det routing check, year bounds and the order the slice locks are taken in.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  dbTest,
  onDatabase,
  runCaptured,
  serverBackendExpected,
  useTestDatabase,
} from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { createEntries } from "../../src/db/entries.ts";
import {
  type FactorImportInput,
  FactorImportRejected,
  importFactors,
} from "../../src/db/factors.ts";
import { parseCsv } from "../../src/imports/csv.ts";
import { factorsCommand } from "../../src/cli/factors.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";

const testDb = useTestDatabase();

const HEADER =
  "equipment_class,sub_class,active_power_w,standby_power_w,active_usage_hours_per_week," +
  "standby_usage_hours_per_week,ef_kg_co2eq_per_kwh";
const IT = { dataEntryTypeId: 11 };

/** 40 h × 100 W + 128 h × 10 W, 52 weeks: 290.368 kWh a year (spec/modules.md, equipment). */
const LAPTOP_KWH = (40 * 100 + 128 * 10) * 52 / 1000;

function input(
  text: string,
  options: Partial<Omit<FactorImportInput, "table">> = {},
): FactorImportInput {
  return { file: "it.csv", table: parseCsv("it.csv", text), year: 2025, target: IT, ...options };
}

function importIn(db: Database, value: FactorImportInput) {
  return db.sql.begin((tx) => importFactors(tx, value));
}

/** Every row of the tables an import or its rematch could touch, as PostgreSQL prints them. */
async function snapshot(db: Database) {
  const table = async (name: string) =>
    (await db.sql<{ row: string }[]>`
      select row_to_json(t)::text as row from ${db.sql(name)} t order by id`).map((r) => r.row);
  return {
    factors: await table("factors"),
    emissions: await table("data_entry_emissions"),
    entries: await table("data_entries"),
    modules: await table("carbon_report_modules"),
  };
}

async function withFiles(
  files: Record<string, string>,
  body: (path: (name: string) => string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rematch-factors-safety-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    await body((name) => join(dir, name));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Two it factors (Laptop/Standard ef 0.1, Desktop) and one laptop entry computed from them. */
async function seedLaptop(db: Database): Promise<void> {
  await importIn(
    db,
    input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.1\nDesktop,,120,5,40,128,0.2\n`),
  );
  const created = await db.sql.begin((tx) =>
    createEntries(tx, [{
      unitCode: "U1",
      year: 2025,
      det: getDataEntryType("it"),
      data: { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" },
    }])
  );
  assert.equal(created.emissionsInserted, 1);
  const [row] = await db.sql<{ kg: number }[]>`select kg_co2eq as kg from data_entry_emissions`;
  assert.ok(Math.abs(row.kg - 27.456) < 1e-9, `${row.kg}`);
}

dbTest(testDb, "replace: any row error writes nothing, --strict or not", async (db) => {
  await importIn(
    db,
    input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.1\nDesktop,,120,5,40,128,0.2\n`),
  );
  const before = await snapshot(db);
  // Two rows unreadable: without the rule, replace would delete the two factors they name.
  const text = `${HEADER}\nLaptop,Standard,100,10,40,128,0,2\nDesktop,,abc,5,40,128,0.2\n` +
    `Tablet,,10,1,40,128,0.2\n`;
  await assert.rejects(
    () => importIn(db, input(text, { mode: "replace" })),
    (error) => {
      assert.ok(error instanceof FactorImportRejected);
      assert.equal(error.reason, "replace-row-errors");
      assert.equal(error.result.rowErrorsCount, 2);
      assert.match(error.message, /2 row errors in a replace import/);
      assert.match(error.message, /first: line 2: has 8 cells but the header has 7 columns/);
      return true;
    },
  );
  assert.deepEqual(await snapshot(db), before);

  await withFiles({ "bad.csv": text }, async (path) => {
    const run = await runCaptured(onDatabase(factorsCommand, db), [
      "import",
      path("bad.csv"),
      "--det",
      "it",
      "--year",
      "2025",
      "--mode",
      "replace",
    ]);
    assert.equal(run.code, 1, run.err);
    assert.match(run.out, /rejected, nothing written: 2 row errors in a replace import/);
    assert.match(run.out, /line 3, column active_power_w: "abc" is not a number/);
  });
  assert.deepEqual(await snapshot(db), before);
});

dbTest(
  testDb,
  "replace: a header-only file with --rematch is refused and changes nothing",
  async (db) => {
    await seedLaptop(db);
    const before = await snapshot(db);
    await withFiles({ "empty.csv": `${HEADER}\n` }, async (path) => {
      const argv = [
        "import",
        path("empty.csv"),
        "--det",
        "it",
        "--year",
        "2025",
        "--mode",
        "replace",
        "--rematch",
      ];
      const refused = await runCaptured(onDatabase(factorsCommand, db), [...argv, "--json"]);
      assert.equal(refused.code, 1, refused.err);
      const json = JSON.parse(refused.out);
      assert.equal(json.error.reason, "empty-replace");
      assert.match(json.error.message, /no data rows.*all 2 factors of it 2025.*--allow-empty/);
      assert.deepEqual(await snapshot(db), before);

      // In a merge (which deletes nothing) the override means nothing: refused, not ignored.
      for (const flag of ["--allow-empty", "--force"]) {
        const merge = await runCaptured(onDatabase(factorsCommand, db), [
          ...argv.filter((a) => a !== "--mode" && a !== "replace"),
          flag,
        ]);
        assert.equal(merge.code, 2, merge.err);
        assert.match(
          merge.err,
          new RegExp(`${flag}: applies to mode replace only \\(a merge deletes nothing\\)`),
        );
      }
      // --allow-empty empties the slice on purpose, and the rematch drops the laptop's row.
      const allowed = await runCaptured(onDatabase(factorsCommand, db), [
        ...argv,
        "--allow-empty",
        "--json",
      ]);
      assert.equal(allowed.code, 0, allowed.err);
      const done = JSON.parse(allowed.out);
      assert.equal(done.deleted, 2);
      assert.equal(done.rematch[0].dropped, 1);
      assert.equal((await snapshot(db)).emissions.length, 0);
    });
  },
);

dbTest(
  testDb,
  "replace: deleting more than half of a slice needs force; the message names counts and kinds",
  async (db) => {
    const rows = [
      "Laptop,Standard,100,10,40,128,0.1",
      "Laptop,,60,2,40,128,0.1",
      "Desktop,,120,5,40,128,0.2",
      "Monitor,,30,1,40,128,0.2",
    ];
    await importIn(db, input(`${HEADER}\n${rows.join("\n")}\n`));
    // Keeping 2 of 4 deletes exactly half: allowed.
    const half = await importIn(
      db,
      input(`${HEADER}\n${rows[0]}\n${rows[1]}\n`, { mode: "replace" }),
    );
    assert.equal(half.deleted, 2);
    await importIn(db, input(`${HEADER}\n${rows.join("\n")}\n`));
    const before = await snapshot(db);

    // Keeping 1 of 4 deletes 3: refused, nothing written.
    await assert.rejects(
      () => importIn(db, input(`${HEADER}\n${rows[3]}\n`, { mode: "replace" })),
      (error) => {
        assert.ok(error instanceof FactorImportRejected);
        assert.equal(error.reason, "mass-delete");
        assert.match(
          error.message,
          /more than half .*--force.*it 2025: 3 of 4 factors \(equipment_class: Desktop, Laptop\)/,
        );
        assert.equal(error.result.changes[0].deleted, 3);
        return true;
      },
    );
    assert.deepEqual(await snapshot(db), before);

    const forced = await importIn(
      db,
      input(`${HEADER}\n${rows[3]}\n`, { mode: "replace", force: true }),
    );
    assert.deepEqual([forced.unchanged, forced.deleted], [1, 3]);
    assert.equal((await snapshot(db)).factors.length, 1);
  },
);

dbTest(
  testDb,
  "--dry-run --rematch reports what the real import does and leaves the database identical",
  async (db) => {
    await seedLaptop(db);
    const before = await snapshot(db);
    const file = `${HEADER}\nLaptop,Standard,100,10,40,128,0.2\nTablet,,10,1,40,128,0.2\n`;
    await withFiles({ "it.csv": file }, async (path) => {
      const argv = [
        "import",
        path("it.csv"),
        "--det",
        "it",
        "--year",
        "2025",
        "--mode",
        "replace",
        "--rematch",
        "--json",
      ];
      const dry = await runCaptured(onDatabase(factorsCommand, db), [...argv, "--dry-run"]);
      assert.equal(dry.code, 0, dry.err);
      assert.deepEqual(await snapshot(db), before, "a dry run writes nothing");
      const report = JSON.parse(dry.out);
      assert.equal(report.dryRun, true);
      assert.deepEqual(
        [report.inserted, report.updated, report.unchanged, report.deleted],
        [1, 1, 0, 1],
      );
      const [it] = report.changes;
      assert.deepEqual(it.listed.inserted, [{
        row: 2,
        line: 3,
        emissionTypeId: 80200,
        classification: { equipment_class: "Tablet", sub_class: null },
      }]);
      assert.deepEqual(it.listed.updated.map((u: { line: number }) => u.line), [2]);
      assert.deepEqual(
        it.listed.deleted.map((d: { classification: unknown }) => d.classification),
        [{ equipment_class: "Desktop", sub_class: null }],
      );
      const [rematch] = report.rematch;
      assert.equal(rematch.dryRun, true);
      assert.ok(Math.abs(rematch.kgBefore - LAPTOP_KWH * 0.1) < 1e-9, `${rematch.kgBefore}`);
      assert.ok(Math.abs(rematch.kgAfter - LAPTOP_KWH * 0.2) < 1e-9, `${rematch.kgAfter}`);

      const text = await runCaptured(onDatabase(factorsCommand, db), [
        ...argv.filter((a) => a !== "--json"),
        "--dry-run",
      ]);
      assert.match(text.out, /^dry run: nothing written/);
      assert.match(text.out, /it 2025 deleted:\n {2}factor \d+: emission type 80200, /);
      assert.deepEqual(await snapshot(db), before);

      // The real import does exactly what the dry run reported.
      const real = await runCaptured(onDatabase(factorsCommand, db), argv);
      assert.equal(real.code, 0, real.err);
      const done = JSON.parse(real.out);
      const comparable = (r: { rematch: { durationMs?: number }[] }) => ({
        ...r,
        dryRun: undefined,
        importId: undefined,
        rematch: r.rematch.map((m) => ({ ...m, durationMs: undefined, dryRun: undefined })),
      });
      assert.deepEqual(comparable(done), comparable(report));
      assert.notDeepEqual(await snapshot(db), before);
    });
  },
);

dbTest(
  testDb,
  "--rematch is atomic: a failing emission write leaves the factors unchanged",
  async (db) => {
    await seedLaptop(db);
    const before = await snapshot(db);
    await db.sql.unsafe(`
      create function rematch_test_refuse() returns trigger language plpgsql as $$
      begin raise exception 'emission writes refused by the test'; end $$;
      create trigger rematch_test_refuse before insert or update or delete
        on data_entry_emissions for each statement execute function rematch_test_refuse();`);
    try {
      await withFiles(
        { "it.csv": `${HEADER}\nLaptop,Standard,100,10,40,128,0.2\n` },
        async (path) => {
          const run = await runCaptured(onDatabase(factorsCommand, db), [
            "import",
            path("it.csv"),
            "--det",
            "it",
            "--year",
            "2025",
            "--rematch",
          ]);
          assert.equal(run.code, 1, run.out);
          assert.match(run.err, /emission writes refused by the test/);
        },
      );
    } finally {
      await db.sql.unsafe(`
        drop trigger rematch_test_refuse on data_entry_emissions;
        drop function rematch_test_refuse();`);
    }
    assert.deepEqual(await snapshot(db), before);
  },
);

dbTest(testDb, "--det on a module file: rows of other dets are row errors", async (db) => {
  const file = `equipment_category,${HEADER}
it,Laptop,Standard,100,10,40,128,0.2
scientific,Microscope,,500,50,40,128,0.2
other,Fridge,,300,100,40,128,0.2
IT,Desktop,,200,20,40,128,0.2
`;
  await withFiles({ "equipment.csv": file }, async (path) => {
    const run = await runCaptured(onDatabase(factorsCommand, db), [
      "import",
      path("equipment.csv"),
      "--det",
      "it",
      "--year",
      "2025",
    ]);
    assert.equal(run.code, 3, run.err);
    assert.match(run.out, /2 inserted/);
    assert.match(
      run.out,
      /line 3, column equipment_category: this row is for "scientific", not it: .*--module equipment/,
    );
    assert.match(run.out, /line 4, column equipment_category: this row is for "other"/);
  });
  const stored = await db.sql`
    select data_entry_type_id, classification->>'equipment_class' as class from factors
    order by id`;
  assert.deepEqual(stored.map((r) => [r.data_entry_type_id, r.class]), [[11, "Laptop"], [
    11,
    "Desktop",
  ]]);
});

dbTest(testDb, "years outside 1990..2100 are refused and write nothing", async (db) => {
  await withFiles({ "it.csv": `${HEADER}\nLaptop,Standard,100,10,40,128,0.2\n` }, async (path) => {
    for (const year of ["0000", "1989", "2101"]) {
      const run = await runCaptured(onDatabase(factorsCommand, db), [
        "import",
        path("it.csv"),
        "--det",
        "it",
        "--year",
        year,
      ]);
      assert.equal(run.code, 2, year);
      assert.match(run.err, /--year: expected a year between 1990 and 2100/);
    }
  });
  // Library callers are refused too.
  await assert.rejects(
    () => importIn(db, input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`, { year: 0 })),
    (error) =>
      error instanceof RangeError && /year: expected a year between 1990/.test(error.message),
  );
  assert.deepEqual((await snapshot(db)).factors, []);
});

dbTest(
  testDb,
  "a classification just below the identity limit is stored and indexed",
  async (db) => {
    // Pseudo-random letters do not compress: the index sees their full length.
    let seed = 42;
    const letters = (n: number) =>
      Array.from({ length: n }, () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return String.fromCharCode(97 + seed % 26);
      }).join("");
    const result = await importIn(
      db,
      input(`${HEADER}\n${letters(1000)},${letters(950)},100,10,40,128,0.2\n`),
    );
    assert.equal(result.inserted, 1);
    const again = await importIn(
      db,
      input(`${HEADER}\n${letters(1000)},${letters(1000)},100,10,40,128,0.2\n`),
    );
    assert.equal(again.inserted, 0);
    assert.match(again.rowErrors[0].message, /the classification is 20\d\d bytes long/);
  },
);

dbTest(
  testDb,
  "the import takes its slice locks in det id order",
  async (db) => {
    // Hold `it` (11); a whole equipment import (scientific 10, it 11, other 12) must then hold
    // scientific and wait on it, without having taken other.
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select pg_advisory_xact_lock(310011, 2025)`;
      const file = `equipment_category,${HEADER}\nit,Laptop,Standard,100,10,40,128,0.2\n`;
      const pending = importIn(db, input(file, { target: { moduleTypeId: 4 } }));
      let waiting: { pid: number } | undefined;
      for (let attempt = 0; attempt < 200 && !waiting; attempt++) {
        [waiting] = await db.sql<{ pid: number }[]>`
          select pid from pg_locks
          where locktype = 'advisory' and not granted and classid::int = 310011
            and objid::int = 2025 and database = (
              select oid from pg_database where datname = current_database())`;
        if (!waiting) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(waiting, "the import never waited on the it slice");
      const held = await db.sql<{ key: number; granted: boolean }[]>`
        select classid::int as key, granted from pg_locks
        where pid = ${waiting.pid} and locktype = 'advisory' and objid::int = 2025
        order by classid::int`;
      assert.deepEqual(held.map((l) => [l.key, l.granted]), [[310010, true], [310011, false]]);
      await holder`commit`;
      const result = await pending;
      assert.equal(result.inserted, 1);
    } finally {
      holder.release();
    }
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "an import that deletes factors does it without JIT (compiled once per factor)",
  async (db) => {
    await importIn(
      db,
      input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.1\nMonitor,,30,1,40,128,0.1\n`),
    );
    const jit = await db.sql.begin(async (tx) => {
      const result = await importFactors(
        tx,
        input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`, { mode: "replace" }),
      );
      assert.equal(result.deleted, 1);
      const [row] = await tx<{ jit: string }[]>`show jit`;
      return row.jit;
    });
    assert.equal(jit, "off");
  },
);
