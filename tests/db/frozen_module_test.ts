// Frozen report modules (spec/history.md §4): a rematch with every factor changed leaves a
// frozen module's emission rows byte for byte and reports what it held back, entry writes into
// it are refused, and after unfreezing the next rematch brings it up to date.
import assert from "node:assert/strict";
import {
  dbTest,
  holdInTransaction,
  runCli,
  runOn,
  serverBackendExpected,
  useTestDatabase,
} from "../_harness.ts";
import { lockSlice } from "../../src/db/locks.ts";
import type { Database } from "../../src/db/connection.ts";
import { createEntries, deleteEntry, updateEntry } from "../../src/db/entries.ts";
import { reportsFreezeCommand, reportsUnfreezeCommand } from "../../src/cli/reports.ts";
import { factorsCommand } from "../../src/cli/factors.ts";
import { factorsRollbackCommand } from "../../src/cli/factors_rollback.ts";
import { rematchCommand } from "../../src/cli/rematch.ts";
import { statusCommand } from "../../src/cli/status.ts";
import { FrozenModuleError, frozenModulesBehind } from "../../src/history/freeze.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { importFactorText } from "../integration/_slice.ts";
import {
  createItEntries,
  equipmentKg,
  IT_ENTRIES,
  rowOf,
  runJson,
  storedEmissions,
  V1,
} from "./_history.ts";

const testDb = useTestDatabase();

/** V1 with every ef multiplied by 5: every factor changes. */
const V1_TIMES_5 = V1.replaceAll(",0.1\n", ",0.5\n");

/** The four entries that v1's factors match (Laptop, Laptop/Standard, Desktop, Monitor). */
const MATCHED = IT_ENTRIES.slice(0, 4);

function kgOf(file: string, entry: Record<string, unknown>): number {
  return equipmentKg(
    rowOf(file, entry.equipment_class as string, (entry.sub_class as string) ?? "")!,
  );
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

async function equipmentModuleId(db: Database, unit: string): Promise<number> {
  const [row] = await db.sql<{ id: number }[]>`
    select m.id from carbon_report_modules m join carbon_reports r on r.id = m.carbon_report_id
    join units u on u.id = r.unit_id where u.code = ${unit} and m.module_type_id = 4`;
  return row.id;
}

async function moduleRow(db: Database, id: number): Promise<string> {
  const [row] = await db.sql<{ row: string }[]>`
    select row_to_json(m)::text as row from carbon_report_modules m where id = ${id}`;
  return row.row;
}

async function setUp(db: Database) {
  await importFactorText(db, "it", 2025, V1);
  const frozenIds = await createItEntries(db, "U1", MATCHED);
  const openIds = await createItEntries(db, "U2", MATCHED);
  const freeze = await runJson(reportsFreezeCommand, db, [
    "freeze",
    "--unit",
    "U1",
    "--year",
    "2025",
    "--module",
    "equipment",
    "--reason",
    "validated 2026-02-01",
  ]);
  assert.equal(freeze.exitCode, 0, freeze.text);
  assert.equal(freeze.json.changed.length, 1);
  assert.equal(freeze.json.changed[0].frozenReason, "validated 2026-02-01");
  return {
    frozenIds,
    openIds,
    frozenModule: await equipmentModuleId(db, "U1"),
    openModule: await equipmentModuleId(db, "U2"),
  };
}

dbTest(
  testDb,
  "a frozen module keeps its emission rows byte for byte through a rematch with every factor changed; its delta is reported",
  async (db) => {
    const { frozenIds, openIds, frozenModule, openModule } = await setUp(db);
    await importFactorText(db, "it", 2025, V1_TIMES_5);
    const frozenRows = await storedEmissions(db.sql, frozenIds);
    const frozenEntries = await db.sql`
      select row_to_json(e)::text as row from data_entries e
      where id = any(${frozenIds}::bigint[]) order by id`;
    const frozenModuleRow = await moduleRow(db, frozenModule);
    assert.equal(frozenRows.length, 4);

    const oldKg = sum(MATCHED.map((e) => kgOf(V1, e)));
    const newKg = sum(MATCHED.map((e) => kgOf(V1_TIMES_5, e)));

    // Dry run with --diff: the frozen entries are listed, marked, and nothing is written.
    const dry = await runJson(rematchCommand, db, [
      "--det",
      "it",
      "--year",
      "2025",
      "--dry-run",
      "--diff",
    ]);
    assert.equal(dry.exitCode, 0, dry.text);
    const frozenDiff = dry.json.diff.filter((d: { frozen?: boolean }) => d.frozen);
    assert.deepEqual(
      frozenDiff.map((d: { dataEntryId: number }) => d.dataEntryId),
      frozenIds,
    );
    assert.deepEqual(
      dry.json.diff.filter((d: { frozen?: boolean }) => !d.frozen).map((
        d: { dataEntryId: number },
      ) => d.dataEntryId),
      openIds,
    );
    const dryText = await runOn(rematchCommand, db, [
      "--det",
      "it",
      "--year",
      "2025",
      "--dry-run",
      "--diff",
    ]);
    assert.match(dryText.text, /frozen: not written/);
    assert.match(
      dryText.text,
      /it 2025: 4 entries of frozen module \d+ not written; they would move \+/,
    );

    const run = await runJson(rematchCommand, db, ["--det", "it", "--year", "2025"]);
    assert.equal(run.exitCode, 0, run.text);
    const result = run.json;
    assert.equal(result.entries, 8);
    assert.equal(result.frozen, 4);
    assert.equal(result.recalculated, 4);
    assert.ok(Math.abs(result.frozenKgDelta - (newKg - oldKg)) < 1e-9, `${result.frozenKgDelta}`);
    // The slice after: the open module moved, the frozen one did not.
    assert.ok(Math.abs(result.kgBefore - 2 * oldKg) < 1e-9);
    assert.ok(Math.abs(result.kgAfter - (oldKg + newKg)) < 1e-9);
    assert.deepEqual(result.affectedModuleIds, [openModule]);
    const [frozenTally, openTally] = result.modules;
    assert.deepEqual(
      [frozenTally.moduleId, frozenTally.frozen, frozenTally.entriesChanged],
      [frozenModule, true, 0],
    );
    assert.equal(frozenTally.heldBack, 4);
    assert.ok(Math.abs(frozenTally.heldBackKg - (newKg - oldKg)) < 1e-9);
    assert.equal(openTally.heldBack, 0);
    assert.ok(Math.abs(frozenTally.kgBefore - oldKg) < 1e-9);
    assert.ok(Math.abs(frozenTally.kgAfter - oldKg) < 1e-9);
    assert.deepEqual([openTally.moduleId, openTally.frozen, openTally.entriesChanged], [
      openModule,
      false,
      4,
    ]);
    assert.ok(Math.abs(openTally.kgAfter - newKg) < 1e-9);

    assert.deepEqual(await storedEmissions(db.sql, frozenIds), frozenRows);
    assert.deepEqual(
      await db.sql`
        select row_to_json(e)::text as row from data_entries e
        where id = any(${frozenIds}::bigint[]) order by id`,
      frozenEntries,
    );
    assert.equal(await moduleRow(db, frozenModule), frozenModuleRow, "stats not refreshed");
    // What status shows: the frozen module, behind the current factors by that much.
    const behind = await frozenModulesBehind(db, { year: 2025 });
    assert.deepEqual(
      behind.map((m) => [m.unitCode, m.moduleType, m.dataEntryType, m.entriesBehind]),
      [["U1", "equipment", "it", 4]],
    );
    assert.ok(Math.abs(behind[0].kgDelta - (newKg - oldKg)) < 1e-9);
    assert.deepEqual(await frozenModulesBehind(db, { year: 2024 }), []);
    // status: the slice is current (a freeze is not staleness), the frozen module is behind.
    const status = await runJson(statusCommand, db, ["--year", "2025"]);
    assert.deepEqual(
      status.json.slices.map((s: { dataEntryType: string; state: string }) => [
        s.dataEntryType,
        s.state,
      ]),
      [["it", "current"]],
    );
    assert.deepEqual(
      status.json.frozenBehind.map((m: { unitCode: string; entriesBehind: number }) => [
        m.unitCode,
        m.entriesBehind,
      ]),
      [["U1", 4]],
    );
    const statusText = await runOn(statusCommand, db, ["--year", "2025"]);
    assert.match(statusText.text, /frozen modules behind the current factors/);
    assert.match(statusText.text, /U1 +2025 +equipment +it +4 /);
    assert.deepEqual(status.json.frozenNotCompared, []);
    if (serverBackendExpected()) {
      // status only reads: a slice another session holds is said so, not waited for.
      const held = await holdInTransaction(db, (tx) => lockSlice(tx, 11, 2025));
      try {
        const busy = await Promise.race([
          runJson(statusCommand, db, ["--year", "2025"]),
          new Promise<"waited">((r) => setTimeout(() => r("waited"), 10_000)),
        ]);
        assert.notEqual(busy, "waited");
        if (busy !== "waited") {
          assert.deepEqual(busy.json.frozenBehind, []);
          assert.deepEqual(busy.json.frozenNotCompared, [{ dataEntryType: "it", year: 2025 }]);
        }
      } finally {
        await held.release();
      }
    }
    assert.deepEqual(await frozenModulesBehind(db, { year: 2025, dataEntryTypeId: 10 }), []);
    assert.deepEqual(await storedEmissions(db.sql, frozenIds), frozenRows, "nothing written");
    const openKg = await db.sql<{ kg: number }[]>`
      select sum(kg_co2eq) as kg from data_entry_emissions
      where data_entry_id = any(${openIds}::bigint[])`;
    assert.ok(Math.abs(openKg[0].kg - newKg) < 1e-9);
  },
);

dbTest(
  testDb,
  "unfreeze then rematch brings the module up to date",
  async (db) => {
    const { frozenIds } = await setUp(db);
    await importFactorText(db, "it", 2025, V1_TIMES_5);
    await runJson(rematchCommand, db, ["--det", "it", "--year", "2025"]);
    const unfreeze = await runJson(reportsUnfreezeCommand, db, [
      "unfreeze",
      "--unit",
      "U1",
      "--year",
      "2025",
    ]);
    assert.equal(unfreeze.exitCode, 0, unfreeze.text);
    assert.deepEqual(
      unfreeze.json.changed.map((m: { moduleType: string }) => m.moduleType),
      ["equipment"],
    );
    assert.match(unfreeze.json.leftStale.command, /rematch --det it --year 2025/);
    const text = await runOn(reportsUnfreezeCommand, db, [
      "unfreeze",
      "--unit",
      "U1",
      "--year",
      "2025",
    ]);
    assert.match(text.text, /was not frozen/);

    assert.deepEqual(await frozenModulesBehind(db, { year: 2025 }), [], "no longer frozen");
    // Unfreezing leaves the slice stale: its entries wait for the next rematch.
    const status = await runJson(statusCommand, db, ["--year", "2025"]);
    assert.equal(status.json.slices[0].state, "stale");
    assert.equal(status.json.slices[0].label, "stale: targeted (0 factors, about 4 entries)");
    const run = await runJson(rematchCommand, db, ["--det", "it", "--year", "2025"]);
    assert.equal(run.json.scope, "targeted");
    assert.equal(run.json.entriesRead, 4, "only the unfrozen module's entries");
    assert.equal(run.json.frozen, 0);
    assert.equal(run.json.frozenKgDelta, 0);
    const [{ kg }] = await db.sql<{ kg: number }[]>`
      select sum(kg_co2eq) as kg from data_entry_emissions
      where data_entry_id = any(${frozenIds}::bigint[])`;
    assert.ok(Math.abs(kg - sum(MATCHED.map((e) => kgOf(V1_TIMES_5, e)))) < 1e-9, `${kg}`);
  },
);

dbTest(testDb, "entry writes into a frozen module are refused with a clear error", async (db) => {
  const { frozenIds } = await setUp(db);
  const before = await storedEmissions(db.sql, frozenIds);
  const created = await db.sql.begin((tx) =>
    createEntries(tx, [
      { unitCode: "U1", year: 2025, det: getDataEntryType("it"), data: MATCHED[0] },
      { unitCode: "U2", year: 2025, det: getDataEntryType("it"), data: MATCHED[0] },
    ])
  );
  assert.equal(created.created, 1, "the entry of the open module is written");
  assert.deepEqual(created.rejected.map((r) => r.index), [0]);
  assert.match(
    created.rejected[0].message,
    /module equipment of unit U1 2025 \(module \d+\) is frozen since .* \(validated 2026-02-01\).*reports unfreeze --unit U1 --year 2025 --module equipment/,
  );
  await assert.rejects(
    () => db.sql.begin((tx) => updateEntry(tx, frozenIds[0], { ...MATCHED[0], name: "renamed" })),
    FrozenModuleError,
  );
  await assert.rejects(
    () => db.sql.begin((tx) => deleteEntry(tx, frozenIds[0])),
    (error) => error instanceof FrozenModuleError && /is frozen/.test(error.message),
  );
  assert.deepEqual(await storedEmissions(db.sql, frozenIds), before);
});

dbTest(
  testDb,
  "freezing a whole report freezes the modules a later entry would add; unfreezing opens them",
  async (db) => {
    await setUp(db);
    const plane = (unitCode: string) => ({
      unitCode,
      year: 2025,
      det: getDataEntryType("plane"),
      data: { origin_iata: "GVA", destination_iata: "CDG", cabin_class: "economy" },
    });
    const report = ["--unit", "U1", "--year", "2025"];
    const freeze = await runJson(reportsFreezeCommand, db, [
      ...["freeze", ...report, "--reason", "published"],
    ]);
    assert.equal(freeze.exitCode, 0, freeze.text);
    // equipment was frozen by setUp; every other module type with dets is created and frozen.
    assert.deepEqual(
      freeze.json.changed.map((m: { moduleType: string }) => m.moduleType),
      [
        "headcount",
        "professional_travel",
        "buildings",
        "purchase",
        "external_cloud_and_ai",
        "process_emissions",
      ],
    );
    assert.deepEqual(freeze.json.unchanged.map((m: { moduleType: string }) => m.moduleType), [
      "equipment",
    ]);
    const written = await db.sql.begin((tx) => createEntries(tx, [plane("U1"), plane("U2")]));
    assert.equal(written.created, 1, "U2's report is open");
    assert.deepEqual(written.rejected.map((r) => r.index), [0]);
    assert.match(
      written.rejected[0].message,
      /module professional_travel of unit U1 2025 .* is frozen since .*\(published\)/,
    );
    const unfreeze = await runJson(reportsUnfreezeCommand, db, ["unfreeze", ...report]);
    assert.equal(unfreeze.exitCode, 0, unfreeze.text);
    assert.equal(unfreeze.json.changed.length, 7);
    const again = await db.sql.begin((tx) => createEntries(tx, [plane("U1")]));
    assert.equal(again.created, 1, again.rejected[0]?.message);
  },
);

dbTest(testDb, "reports freeze: exit codes, an existing freeze is kept", async (db) => {
  await setUp(db);
  const again = await runJson(reportsFreezeCommand, db, [
    "freeze",
    "--unit",
    "U1",
    "--year",
    "2025",
    "--reason",
    "second",
  ]);
  assert.equal(again.exitCode, 0);
  assert.deepEqual(
    again.json.unchanged.map((m: { frozenReason: string }) => m.frozenReason),
    ["validated 2026-02-01"],
  );
  const missing = await runJson(reportsFreezeCommand, db, [
    "freeze",
    "--unit",
    "NOPE",
    "--year",
    "2025",
    "--reason",
    "x",
  ]);
  assert.equal(missing.exitCode, 1);
  assert.match(missing.json.error.message, /no unit "NOPE"/);
  const noModule = await runJson(reportsFreezeCommand, db, [
    "freeze",
    "--unit",
    "U2",
    "--year",
    "2025",
    "--module",
    "buildings",
    "--reason",
    "x",
  ]);
  assert.equal(noModule.exitCode, 1);
  assert.match(noModule.json.error.message, /unit "U2" has no module buildings in its report/);
  const noReport = await runJson(reportsFreezeCommand, db, [
    ...["freeze", "--unit", "U2", "--year", "2024", "--reason", "x"],
  ]);
  assert.equal(noReport.exitCode, 1);
  assert.equal(noReport.json.error.message, 'unit "U2" has no report for 2024');

  const usage = await runCli(reportsFreezeCommand, ["freeze", "--unit", "U1", "--year", "2025"]);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /--reason: is required/);
});

dbTest(
  testDb,
  "a freeze takes its entries' pending marks along: the slice can be current while frozen",
  async (db) => {
    await importFactorText(db, "it", 2025, V1);
    const frozenIds = await createItEntries(db, "U1", MATCHED);
    await createItEntries(db, "U2", MATCHED);
    const rematch = onDatabaseRematch(db);
    assert.equal((await rematch()).scope, "full");
    // One of U1's entries was left pending (a module rematch against other inputs, say).
    await db.sql`insert into data_entry_pending (data_entry_id, reason)
      values (${frozenIds[0]}, 'rematched')`;
    const freeze = await runJson(reportsFreezeCommand, db, [
      ...["freeze", "--unit", "U1", "--year", "2025", "--module", "equipment", "--reason", "ok"],
    ]);
    assert.equal(freeze.exitCode, 0, freeze.text);
    // The rematch cannot clear a frozen entry's mark (it writes nothing of it): the freeze did.
    assert.equal((await rematch()).upToDate, true);
    // Unfreezing marks the module's entries again: the next rematch reads them.
    const unfreeze = await runJson(reportsUnfreezeCommand, db, [
      ...["unfreeze", "--unit", "U1", "--year", "2025", "--module", "equipment"],
    ]);
    assert.equal(unfreeze.exitCode, 0, unfreeze.text);
    const after = await rematch();
    assert.equal(after.scope, "targeted");
    assert.equal(after.entriesRead, frozenIds.length);
    assert.equal((await rematch()).upToDate, true);
  },
);

function onDatabaseRematch(db: Database) {
  return async () => {
    const run = await runJson(rematchCommand, db, ["--det", "it", "--year", "2025"]);
    assert.ok(run.exitCode === 0, run.text);
    return run.json as { scope: string; upToDate: boolean; entriesRead: number };
  };
}

dbTest(
  testDb,
  "a frozen module's rows unlinked by a replace import get their factor back when it is rolled back",
  async (db) => {
    const { frozenIds } = await setUp(db);
    const before = await storedEmissions(db.sql, frozenIds);
    // A replace import without the Monitor factor deletes it: its rows lose their link, the
    // frozen module's too (spec/domain.md §3), and a rematch writes nothing of those.
    const file = await Deno.makeTempFile({ suffix: ".csv" });
    try {
      await Deno.writeTextFile(
        file,
        V1.split("\n").filter((l) => !l.includes("Monitor")).join("\n"),
      );
      const replaced = await runJson(factorsCommand, db, [
        ...["import", file, "--year", "2025", "--det", "it", "--mode", "replace", "--rematch"],
      ]);
      assert.equal(replaced.exitCode, 0, replaced.text);
      assert.equal(replaced.json.deleted, 1);
      const unlinked = await db.sql<{ n: number }[]>`
        select count(*)::int as n from data_entry_emissions
        where data_entry_id = any(${frozenIds}::bigint[]) and primary_factor_id is null`;
      assert.equal(unlinked[0].n, 1, "the frozen monitor's row lost its factor");
      const undone = await runJson(factorsRollbackCommand, db, [
        ...["rollback", "--import", String(replaced.json.importId), "--rematch"],
      ]);
      assert.equal(undone.exitCode, 0, undone.text);
      // Byte for byte as before the replace import: link included.
      assert.deepEqual(await storedEmissions(db.sql, frozenIds), before);
    } finally {
      await Deno.remove(file);
    }
  },
);

dbTest(
  testDb,
  "relinked after a rollback: a frozen rollup row names the least factor of its entry again",
  async (db) => {
    const header =
      "headcount_category,headcount_class,headcount_subclass,unit,number_of_unit_per_fte,ef_kg_co2eq_per_unit";
    const all = `${header}\nfood,vegetarian,,meal,100,1\nwaste,incineration,,kg,50,0.5\n` +
      "commuting,public_transport,,km,200,0.2\n";
    await importFactorText(db, "member", 2025, all);
    const ids = (await db.sql.begin((tx) =>
      createEntries(tx, [{
        unitCode: "U1",
        year: 2025,
        det: getDataEntryType("member"),
        data: { name: "A", fte: 1 },
      }])
    )).ids.map((id) => id!);
    const before = await storedEmissions(db.sql, ids);
    // The rollup row names the least of its leaves' factors: food's, the first imported.
    assert.equal(before.length, 4);
    const freeze = await runJson(reportsFreezeCommand, db, [
      ...["freeze", "--unit", "U1", "--year", "2025", "--module", "headcount", "--reason", "ok"],
    ]);
    assert.equal(freeze.exitCode, 0, freeze.text);
    // Food goes (replace): the food row and the rollup lose their link.
    const file = await Deno.makeTempFile({ suffix: ".csv" });
    try {
      await Deno.writeTextFile(
        file,
        all.split("\n").filter((l) => !l.startsWith("food")).join("\n"),
      );
      const replaced = await runJson(factorsCommand, db, [
        ...["import", file, "--year", "2025", "--det", "member", "--mode", "replace"],
      ]);
      assert.equal(replaced.exitCode, 0, replaced.text);
      const [{ n }] = await db.sql<{ n: number }[]>`
        select count(*)::int as n from data_entry_emissions
        where data_entry_id = any(${ids}::bigint[]) and primary_factor_id is null`;
      assert.equal(n, 2, "the food row and the rollup");
      const undone = await runJson(factorsRollbackCommand, db, [
        ...["rollback", "--import", String(replaced.json.importId)],
      ]);
      assert.equal(undone.exitCode, 0, undone.text);
      assert.deepEqual(await storedEmissions(db.sql, ids), before);
    } finally {
      await Deno.remove(file);
    }
  },
);
