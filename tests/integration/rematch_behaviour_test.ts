// Rematch behaviours beyond the matrix, against a real database (server in CI, and embedded).
import assert from "node:assert/strict";
import {
  dbTest,
  onDatabase,
  runCaptured,
  serverBackendExpected,
  useTestDatabase,
} from "../_harness.ts";
import { SliceBusyError } from "../../src/db/locks.ts";
import { lockSlice } from "../../src/db/locks.ts";
import { factorsCommand } from "../../src/cli/factors.ts";
import { createPgSliceStore } from "../../src/rematch/pg_store.ts";
import { rematchSlice } from "../../src/rematch/recalculate.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { ModulesNotInSliceError } from "../../src/rematch/types.ts";
import { createEntries } from "../../src/db/entries.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import {
  createTestEntries,
  emissionRows,
  entryData,
  importFactorText,
  insertAirports,
  insertRates,
  IT_HEADER,
  PLANE_HEADER,
} from "./_slice.ts";

const testDb = useTestDatabase();
const near = (a: number, b: number) => Math.abs(a - b) <= Math.abs(b) * 1e-9;
const laptop = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };

dbTest(
  testDb,
  "year-strict: a 2024 factor with the same classification is never used for 2025",
  async (db) => {
    await importFactorText(db, "it", 2024, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const [id] = await createTestEntries(db, "it", 2025, [laptop]);
    assert.deepEqual(await emissionRows(db.sql, [id]), []);
    const r = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    assert.equal(r.recalculated, 1);
    assert.deepEqual(await emissionRows(db.sql, [id]), []);
    assert.equal((await entryData(db.sql, id)).primary_factor_id ?? null, null);
  },
);

dbTest(
  testDb,
  "kind-only fallback: a sub_class without its own factor links to the kind's factor",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,,100,10,40,128,0.1\n`);
    const [id] = await createTestEntries(db, "it", 2025, [{ ...laptop, sub_class: "Gaming" }]);
    const [row] = await emissionRows(db.sql, [id]);
    assert.ok(near(row.kg_co2eq, 27.456));
    assert.equal((await entryData(db.sql, id)).primary_factor_id, row.primary_factor_id);
  },
);

dbTest(testDb, "override row survives a rematch with changed factors, untouched", async (db) => {
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
  const [plain, overridden] = await createTestEntries(db, "it", 2025, [laptop, {
    ...laptop,
    __kg_co2eq_override__: 7,
  }]);
  const before = await emissionRows(db.sql, [overridden]);
  assert.deepEqual(before.map((r) => [r.kg_co2eq, r.primary_factor_id, r.meta.override]), [[
    7,
    null,
    true,
  ]]);
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
  const r = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
  assert.equal(r.unchanged, 1);
  assert.deepEqual(await emissionRows(db.sql, [overridden]), before);
  assert.ok(near((await emissionRows(db.sql, [plain]))[0].kg_co2eq, 54.912));
});

dbTest(
  testDb,
  "per-entry isolation: an ambiguous purchase is an error, keeps its data and rows",
  async (db) => {
    const header =
      "purchase_institutional_code,purchase_additional_code,currency,ef_kg_co2eq_per_currency";
    await importFactorText(
      db,
      "services",
      2025,
      `${header}\n55000000,C,eur,0.5\n91111500,AA66,eur,0.21\n`,
    );
    const [good, later] = await createTestEntries(db, "services", 2025, [
      { purchase_institutional_code: "55000000", total_spent_amount: 100, currency: "eur" },
      { purchase_institutional_code: "91111500", total_spent_amount: 100, currency: "eur" },
    ]);
    const laterData = await entryData(db.sql, later);
    const laterRows = await emissionRows(db.sql, [later]);
    assert.ok(near(laterRows[0].kg_co2eq, 21));
    // A second 91111500 row without an average row makes the entry's lookup ambiguous.
    await importFactorText(
      db,
      "services",
      2025,
      `${header}\n55000000,C,eur,0.6\n91111500,AA67,eur,0.3\n`,
    );
    const r = await recalculateForDataEntryType(db, { dataEntryType: "services", year: 2025 });
    assert.equal(r.errors, 1);
    assert.equal(r.errorDetails[0].dataEntryId, later);
    assert.match(r.errorDetails[0].error, /Ambiguous factor data/);
    assert.deepEqual(await entryData(db.sql, later), laterData);
    assert.deepEqual(await emissionRows(db.sql, [later]), laterRows);
    assert.ok(near((await emissionRows(db.sql, [good]))[0].kg_co2eq, 60));
  },
);

dbTest(
  testDb,
  "self-healing: a dropped factor imported again is relinked by the next rematch",
  async (db) => {
    const v1 = `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\nDesktop,,200,20,40,128,0.1\n`;
    await importFactorText(db, "it", 2025, v1);
    const [id] = await createTestEntries(db, "it", 2025, [laptop]);
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nDesktop,,200,20,40,128,0.1\n`, "replace");
    const dropped = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    assert.equal(dropped.dropped, 1);
    assert.equal((await entryData(db.sql, id)).primary_factor_id, null);
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
    const healed = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    assert.equal(healed.relinked, 1);
    const [row] = await emissionRows(db.sql, [id]);
    assert.equal((await entryData(db.sql, id)).primary_factor_id, row.primary_factor_id);
    assert.ok(near(row.kg_co2eq, 54.912));
  },
);

dbTest(testDb, "dry run computes the counts and the diff but writes nothing", async (db) => {
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
  const ids = await createTestEntries(db, "it", 2025, [laptop, laptop]);
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
  const before = await emissionRows(db.sql, ids);
  const [stats] = await db.sql`select stats from carbon_report_modules`;
  const r = await recalculateForDataEntryType(db, {
    dataEntryType: "it",
    year: 2025,
    dryRun: true,
    diff: true,
  });
  assert.equal(r.dryRun, true);
  assert.equal(r.emissionsUpdated, 2);
  assert.ok(near(r.kgAfter, 2 * 54.912));
  assert.deepEqual(r.diff?.map((d) => d.dataEntryId), ids);
  assert.deepEqual(await emissionRows(db.sql, ids), before);
  assert.deepEqual((await db.sql`select stats from carbon_report_modules`)[0], stats);
});

dbTest(
  testDb,
  "a value change rewrites rows in place (ids kept); a shape change replaces them",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const [id] = await createTestEntries(db, "it", 2025, [laptop]);
    const [before] = await emissionRows(db.sql, [id]);
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
    const changed = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    assert.deepEqual([
      changed.emissionsUpdated,
      changed.emissionsInserted,
      changed.emissionsDeleted,
    ], [1, 0, 0]);
    const [after] = await emissionRows(db.sql, [id]);
    assert.equal(after.id, before.id);
    assert.ok(near(after.kg_co2eq, 54.912));
    assert.notDeepEqual(after.computed_at, before.computed_at);
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nDesktop,,1,1,1,1,1\n`, "replace");
    const dropped = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    assert.deepEqual([
      dropped.emissionsUpdated,
      dropped.emissionsInserted,
      dropped.emissionsDeleted,
    ], [0, 0, 1]);
    assert.deepEqual(await emissionRows(db.sql, [id]), []);
  },
);

dbTest(
  testDb,
  "no-op rematch: unchanged = entries, emission ids and computed_at unchanged",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const ids = await createTestEntries(db, "it", 2025, [laptop, laptop, {
      ...laptop,
      sub_class: "",
    }]);
    const before = await emissionRows(db.sql, ids);
    const r = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    assert.equal(r.unchanged, r.entries);
    assert.equal(r.entries, 3);
    assert.deepEqual(r.affectedModuleIds, []);
    assert.deepEqual(await emissionRows(db.sql, ids), before);
  },
);

dbTest(
  testDb,
  "a rematch killed by a database error half-way leaves every row as before",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const ids = await createTestEntries(db, "it", 2025, Array.from({ length: 5 }, () => laptop));
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
    const before = await emissionRows(db.sql, ids);
    await assert.rejects(() =>
      db.sql.begin(async (tx) => {
        const store = createPgSliceStore(tx);
        let chunks = 0;
        const write = store.writeChunk;
        store.writeChunk = async (w) => {
          // The second chunk fails inside the database after the first one was written.
          if (++chunks === 2) await tx`select 1 / 0`;
          return write(w);
        };
        await rematchSlice(store, { dataEntryType: "it", year: 2025, chunkSize: 2 });
      }), /division by zero/);
    assert.deepEqual(await emissionRows(db.sql, ids), before);
  },
);

dbTest(testDb, "--modules: only the given carbon report modules are recomputed", async (db) => {
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
  const [inA] = await createTestEntries(db, "it", 2025, [laptop], "A");
  const [inB] = await createTestEntries(db, "it", 2025, [laptop], "B");
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
  const [moduleA] = await db.sql<{ id: number }[]>`
    select m.id from carbon_report_modules m join carbon_reports r on r.id = m.carbon_report_id
      join units u on u.id = r.unit_id where u.code = 'A'`;
  // A module id that is not the slice's (none such; a module of another type) refuses the
  // rematch: nothing read, written or recorded.
  const [other] = await db.sql<{ id: number }[]>`
    insert into carbon_report_modules (carbon_report_id, module_type_id)
    select carbon_report_id, 1 from carbon_report_modules where id = ${moduleA.id}
    returning id`;
  const runs = async () => (await db.sql`select count(*)::int as n from rematch_runs`)[0].n;
  const runsBefore = await runs();
  await assert.rejects(
    () =>
      recalculateForDataEntryType(db, {
        dataEntryType: "it",
        year: 2025,
        carbonReportModuleIds: [moduleA.id, 999_999, other.id, 999_999],
      }),
    (error) => {
      assert.ok(error instanceof ModulesNotInSliceError);
      assert.equal(
        error.message,
        `modules ${other.id}, 999999 are not carbon report modules of it 2025 (expected modules ` +
          "of its module type and year)",
      );
      return true;
    },
  );
  assert.equal(await runs(), runsBefore);
  assert.ok(near((await emissionRows(db.sql, [inA]))[0].kg_co2eq, 27.456));
  const r = await recalculateForDataEntryType(db, {
    dataEntryType: "it",
    year: 2025,
    carbonReportModuleIds: [moduleA.id],
  });
  assert.equal(r.entries, 1);
  assert.deepEqual(r.affectedModuleIds, [moduleA.id]);
  assert.ok(near((await emissionRows(db.sql, [inA]))[0].kg_co2eq, 54.912));
  assert.ok(near((await emissionRows(db.sql, [inB]))[0].kg_co2eq, 27.456));
});

dbTest(
  testDb,
  "module stats are recomputed for the affected modules, rollups excluded",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    await createTestEntries(db, "it", 2025, [laptop, laptop]);
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
    const r = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    const [module] = await db.sql<{ id: number; stats: Record<string, unknown> }[]>`
    select id, stats from carbon_report_modules`;
    assert.deepEqual(r.affectedModuleIds, [module.id]);
    assert.equal(module.stats.entry_count, 2);
    assert.ok(near(module.stats.scope2 as number, 2 * 54.912));
    assert.ok(near(module.stats.total as number, 2 * 54.912));
    assert.equal(module.stats.scope1, 0);
    assert.ok(near((module.stats.by_emission_type as Record<string, number>)["80200"], 2 * 54.912));
  },
);

dbTest(
  testDb,
  "e2e: a v2 plane CSV through `factors import --rematch` updates the emission in place",
  async (db) => {
    await insertAirports(db);
    await importFactorText(
      db,
      "plane",
      2025,
      `${PLANE_HEADER}\nvery_short_haul,economy,0.1,1,0,800\n`,
    );
    const [id] = await createTestEntries(db, "plane", 2025, [{
      origin_iata: "GVA",
      destination_iata: "CDG",
      cabin_class: "economy",
    }]);
    const [before] = await emissionRows(db.sql, [id]);
    assert.ok(near(before.kg_co2eq, 50.3));
    const dir = await Deno.makeTempDir();
    const file = `${dir}/plane_v2.csv`;
    await Deno.writeTextFile(file, `${PLANE_HEADER}\nvery_short_haul,economy,0.2,1,0,800\n`);
    const { code, err } = await runCaptured(onDatabase(factorsCommand, db), [
      "import",
      file,
      "--year",
      "2025",
      "--det",
      "plane",
      "--rematch",
      "--json",
    ]);
    await Deno.remove(dir, { recursive: true });
    assert.equal(code, 0, err);
    const [after] = await emissionRows(db.sql, [id]);
    assert.ok(near(after.kg_co2eq, 100.6));
    assert.equal(after.data_entry_id, id);
    assert.equal(
      after.primary_factor_id,
      before.primary_factor_id,
      "the factor keeps its id on re-import",
    );
    const [count] = await db.sql`select count(*) as n from data_entries`;
    assert.equal(count.n, 1);
  },
);

dbTest(testDb, "exchange rates: a chf purchase converts with the year's rate", async (db) => {
  await insertRates(db, [{ year: 2025, currency: "chf", eurPerUnit: 1 / 0.95 }]);
  const header =
    "purchase_institutional_code,purchase_additional_code,currency,ef_kg_co2eq_per_currency";
  await importFactorText(db, "services", 2025, `${header}\n55000000,C,eur,0.5\n`);
  const [id] = await createTestEntries(db, "services", 2025, [
    { purchase_institutional_code: "55000000", total_spent_amount: 1000, currency: "chf" },
  ]);
  assert.ok(near((await emissionRows(db.sql, [id]))[0].kg_co2eq, 526.3157894736842));
});

dbTest(
  testDb,
  "exclusive per slice: a second rematch waits for the first; with noWait it fails at once",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    await createTestEntries(db, "it", 2025, [laptop]);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = db.sql.begin(async (tx) => {
      await lockSlice(tx, 11, 2025);
      locked();
      await held;
    });
    await isLocked;
    await assert.rejects(
      () => recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025, noWait: true }),
      (e) => e instanceof SliceBusyError && /slice it 2025 is busy/.test(e.message),
    );
    let finished = false;
    const waiting = recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 }).then(
      (r) => {
        finished = true;
        return r;
      },
    );
    let imported = false;
    const importing = importFactorText(
      db,
      "it",
      2025,
      `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`,
    )
      .then((r) => {
        imported = true;
        return r;
      });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(finished, false, "the second rematch must wait for the lock");
    assert.equal(imported, false, "a factor import of the slice must wait for the lock too");
    // Another slice is not blocked.
    const other = await recalculateForDataEntryType(db, {
      dataEntryType: "plane",
      year: 2025,
      noWait: true,
    });
    assert.equal(other.entries, 0);
    release();
    await holder;
    assert.equal((await waiting).entries, 1);
    assert.equal((await importing).updated, 1);
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "library calls: a year outside 1990..2100, or not a number, and a write outside a transaction are refused",
  async (db) => {
    for (const year of [1800, 2025.5, "2025"]) {
      await assert.rejects(
        () => recalculateForDataEntryType(db, { dataEntryType: "plane", year: year as number }),
        (error) => {
          assert.ok(error instanceof RangeError, String(error));
          assert.match(error.message, /^year: expected a year between 1990 and 2100/);
          return true;
        },
        String(year),
      );
    }
    const [{ runs }] = await db.sql`select count(*)::int as runs from rematch_runs`;
    assert.equal(runs, 0, "nothing recorded");
    // The pool instead of a transaction: refused before anything is written.
    await assert.rejects(
      () =>
        createEntries(db.sql, [{
          unitCode: "U1",
          year: 2025,
          det: getDataEntryType("it"),
          data: laptop,
        }]),
      /slice it 2025: its lock is held for a transaction; call this inside transaction\(db\.sql, \(tx\) => \.\.\.\) or db\.sql\.begin/,
    );
    const [{ entries }] = await db.sql`select count(*)::int as entries from data_entries`;
    assert.equal(entries, 0);
  },
);
