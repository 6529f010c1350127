// Rematch runs (spec/history.md §3): recorded for the CLI, an import's --rematch and a
// rollback's, with kg per module; a failed or dry rematch records none.
import assert from "node:assert/strict";
import {
  dbTest,
  holdInTransaction,
  runOn,
  serverBackendExpected,
  useTestDatabase,
} from "../_harness.ts";
import { lockSlice } from "../../src/db/locks.ts";
import { listFactorImports } from "../../src/history/imports.ts";
import type { Database } from "../../src/db/connection.ts";
import { factorsCommand } from "../../src/cli/factors.ts";
import { factorsHistoryCommand } from "../../src/cli/factors_history.ts";
import { factorsRollbackCommand } from "../../src/cli/factors_rollback.ts";
import { rematchCommand } from "../../src/cli/rematch.ts";
import { rematchHistoryCommand } from "../../src/cli/rematch_history.ts";
import { currentActor } from "../../src/history/actor.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { importFactorText } from "../integration/_slice.ts";
import {
  createItEntries,
  equipmentKg,
  IT_ENTRIES,
  rowOf,
  runJson,
  storedEmissions,
  V1,
  withFiles,
} from "./_history.ts";

const testDb = useTestDatabase();

const V1_TIMES_3 = V1.replaceAll(",0.1\n", ",0.3\n");
/** U1 has a laptop and a desktop, U2 a monitor: per-module kg differ. */
const U1_ENTRIES = [IT_ENTRIES[0], IT_ENTRIES[2]];
const U2_ENTRIES = [IT_ENTRIES[3]];

function kgOf(file: string, entries: readonly Record<string, unknown>[]): number {
  return entries.reduce(
    (sum, e) =>
      sum +
      equipmentKg(rowOf(file, e.equipment_class as string, (e.sub_class as string) ?? "")!),
    0,
  );
}

async function runs(db: Database) {
  const rows = await db.sql<
    {
      id: number;
      trigger: string;
      scope: string;
      import_id: number | null;
      actor: string;
      kg_before: number;
      kg_after: number;
      result: Record<string, unknown>;
      modules: {
        module_id: number;
        kg_before: number;
        kg_after: number;
        entries_changed: number;
        frozen: boolean;
        held_back: number;
      }[];
      started_at: Date;
      finished_at: Date;
    }[]
  >`select * from rematch_runs order by id`;
  return [...rows];
}

async function moduleIds(db: Database): Promise<number[]> {
  return (await db.sql<{ id: number }[]>`
    select m.id from carbon_report_modules m join carbon_reports r on r.id = m.carbon_report_id
    join units u on u.id = r.unit_id where m.module_type_id = 4 order by u.code`).map((r) => r.id);
}

function near(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);
}

dbTest(
  testDb,
  "runs are recorded for the CLI, an import's --rematch and a rollback's, with the right kg per module",
  async (db) => {
    await importFactorText(db, "it", 2025, V1);
    await createItEntries(db, "U1", U1_ENTRIES);
    await createItEntries(db, "U2", U2_ENTRIES);
    const [u1, u2] = await moduleIds(db);

    // CLI: nothing changed since the entries were computed.
    const cli = await runJson(rematchCommand, db, ["--det", "it", "--year", "2025"]);
    assert.equal(cli.exitCode, 0, cli.text);

    await withFiles({ "v3x.csv": V1_TIMES_3 }, async (path) => {
      const imported = await runJson(factorsCommand, db, [
        "import",
        path("v3x.csv"),
        "--det",
        "it",
        "--year",
        "2025",
        "--rematch",
      ]);
      assert.equal(imported.exitCode, 0, imported.text);
      const importId = imported.json.importId as number;
      const undone = await runJson(factorsRollbackCommand, db, [
        "rollback",
        "--import",
        String(importId),
        "--rematch",
      ]);
      assert.equal(undone.exitCode, 0, undone.text);

      const recorded = await runs(db);
      assert.deepEqual(
        recorded.map((r) => [r.trigger, r.import_id, r.scope]),
        [
          // Never rematched before: the whole slice; then only the users of changed values.
          ["cli", null, "full"],
          ["import", importId, "targeted"],
          ["rollback", undone.json.importId, "targeted"],
        ],
      );
      const before = { u1: kgOf(V1, U1_ENTRIES), u2: kgOf(V1, U2_ENTRIES) };
      const after = { u1: kgOf(V1_TIMES_3, U1_ENTRIES), u2: kgOf(V1_TIMES_3, U2_ENTRIES) };
      const expected = [
        { u1: [before.u1, before.u1, 0], u2: [before.u2, before.u2, 0] },
        { u1: [before.u1, after.u1, 2], u2: [before.u2, after.u2, 1] },
        { u1: [after.u1, before.u1, 2], u2: [after.u2, before.u2, 1] },
      ];
      recorded.forEach((run, i) => {
        assert.equal(run.actor, currentActor());
        assert.deepEqual(run.modules.map((m) => m.module_id), [u1, u2]);
        const [m1, m2] = run.modules;
        near(m1.kg_before, expected[i].u1[0], `run ${i} U1 before`);
        near(m1.kg_after, expected[i].u1[1], `run ${i} U1 after`);
        near(m2.kg_before, expected[i].u2[0], `run ${i} U2 before`);
        near(m2.kg_after, expected[i].u2[1], `run ${i} U2 after`);
        assert.deepEqual([m1.entries_changed, m2.entries_changed], [
          expected[i].u1[2],
          expected[i].u2[2],
        ]);
        near(run.kg_before, expected[i].u1[0] + expected[i].u2[0], `run ${i} before`);
        near(run.kg_after, expected[i].u1[1] + expected[i].u2[1], `run ${i} after`);
        assert.ok(run.started_at <= run.finished_at);
        // The stored result keeps the counts, not the detail lists.
        assert.equal(run.result.entries, 3);
        for (const list of ["errorDetails", "warnings", "modules", "affectedModuleIds", "diff"]) {
          assert.equal(list in run.result, false, list);
        }
      });

      const listed = await runJson(rematchHistoryCommand, db, ["history", "--det", "it"]);
      assert.deepEqual(
        listed.json.runs.map((r: { trigger: string }) => r.trigger),
        ["rollback", "import", "cli"],
      );
      const onlyImport = await runJson(rematchHistoryCommand, db, [
        "history",
        "--import",
        String(importId),
      ]);
      assert.deepEqual(onlyImport.json.runs.map((r: { id: number }) => r.id), [recorded[1].id]);
      const text = await runOn(rematchHistoryCommand, db, ["history"]);
      // At 80 columns: when, trigger and actor give way (the JSON above has them).
      assert.match(text.text, /^run +type +year +scope +import +entries +changed +errors +before/m);

      // The history of imports names the runs that followed each.
      const history = await runJson(factorsHistoryCommand, db, ["history"]);
      const byId = new Map(
        history.json.imports.map((
          i: { id: number; runs: { id: number }[] },
        ) => [i.id, i.runs.map((r) => r.id)]),
      );
      assert.deepEqual(byId.get(importId), [recorded[1].id]);
      assert.deepEqual(byId.get(undone.json.importId), [recorded[2].id]);
    });
  },
);

dbTest(testDb, "a failed or dry rematch records no run", async (db) => {
  await importFactorText(db, "it", 2025, V1);
  const ids = [
    ...(await createItEntries(db, "U1", U1_ENTRIES)),
    ...(await createItEntries(db, "U2", U2_ENTRIES)),
  ];
  await importFactorText(db, "it", 2025, V1_TIMES_3);
  const rows = await storedEmissions(db.sql, ids);

  // Aborted after its first chunk has been written: the transaction rolls back.
  const controller = new AbortController();
  await assert.rejects(() =>
    recalculateForDataEntryType(db, {
      dataEntryType: "it",
      year: 2025,
      chunkSize: 1,
      signal: controller.signal,
      onProgress: () => controller.abort(new Error("stopped by the test")),
    }), /stopped by the test/);
  assert.deepEqual(await runs(db), []);
  assert.deepEqual(await storedEmissions(db.sql, ids), rows);

  const dry = await runJson(rematchCommand, db, ["--det", "it", "--year", "2025", "--dry-run"]);
  assert.equal(dry.exitCode, 0);
  assert.equal(dry.json.recalculated, 3);
  assert.deepEqual(await runs(db), []);

  // A library call records a run too, with what the caller says started it.
  await recalculateForDataEntryType(db, {
    dataEntryType: "it",
    year: 2025,
    run: { trigger: "job", jobId: 42, actor: "worker-7" },
  });
  const [run] = await runs(db);
  assert.deepEqual([run.trigger, run.actor, (run as unknown as { job_id: number }).job_id], [
    "job",
    "worker-7",
    42,
  ]);
});

dbTest(
  testDb,
  "a rematch that waited for the slice behind an import is listed under that import",
  async (db) => {
    await importFactorText(db, "it", 2025, V1);
    await createItEntries(db, "U1", U1_ENTRIES);
    const waiters = async () =>
      (await db.sql<{ n: number }[]>`
        select count(*)::int as n from pg_locks
        where locktype = 'advisory' and not granted and database = (
          select oid from pg_database where datname = current_database())`)[0].n;
    const until = async (n: number) => {
      for (let i = 0; i < 400 && await waiters() < n; i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(await waiters(), n);
    };
    // The import queues for the slice first, the rematch behind it: the rematch has started (and
    // waits) before the import, once it has the slice, records itself.
    const holder = await holdInTransaction(db, (tx) => lockSlice(tx, 11, 2025));
    const imported = importFactorText(db, "it", 2025, V1_TIMES_3);
    await until(1);
    const rematched = recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    await until(2);
    await holder.release();
    await imported;
    const result = await rematched;
    near(result.kgAfter, kgOf(V1_TIMES_3, U1_ENTRIES), "the rematch saw the import's factors");

    const [run] = await runs(db);
    const listed = await listFactorImports(db.sql, { dataEntryTypeId: 11, year: 2025 });
    assert.deepEqual(
      listed.map((i) => [i.id, i.runs.map((r) => r.id)]),
      [[listed[0].id, [run.id]], [listed[1].id, []]],
    );
  },
  { ignore: !serverBackendExpected() },
);
