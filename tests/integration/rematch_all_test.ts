// `rematch --all`: each det commits alone; a det that fails is reported and the others are kept.
import assert from "node:assert/strict";
import {
  dbTest,
  onDatabase,
  runCaptured,
  serverBackendExpected,
  useTestDatabase,
} from "../_harness.ts";
import { rematchCommand } from "../../src/cli/rematch.ts";
import { freezeModules } from "../../src/history/freeze.ts";
import type { Database } from "../../src/db/connection.ts";
import { lockSlice } from "../../src/db/locks.ts";
import { createTestEntries, emissionRows, importFactorText, IT_HEADER } from "./_slice.ts";

const testDb = useTestDatabase();
const near = (a: number, b: number) => Math.abs(a - b) <= Math.abs(b) * 1e-9;
const laptop = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };
const HEADCOUNT_HEADER =
  "headcount_category,headcount_class,headcount_subclass,unit,number_of_unit_per_fte,ef_kg_co2eq_per_unit";

/** An it entry and a member entry whose factors then change: both slices have work to do. */
async function twoStaleSlices(db: Database) {
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
  await importFactorText(db, "member", 2025, `${HEADCOUNT_HEADER}\nfood,vegetarian,,meal,100,1\n`);
  const [it] = await createTestEntries(db, "it", 2025, [laptop]);
  const [member] = await createTestEntries(db, "member", 2025, [{ name: "A", fte: 1 }]);
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
  await importFactorText(db, "member", 2025, `${HEADCOUNT_HEADER}\nfood,vegetarian,,meal,100,2\n`);
  return { it, member, memberRows: await emissionRows(db.sql, [member]) };
}

interface AllResult {
  status: string;
  dataEntryType: string;
  error?: string;
  emissionsUpdated?: number;
}

dbTest(
  testDb,
  "--all: a det failing in the database is reported, the others commit; exit 3",
  async (db) => {
    const { it, member, memberRows } = await twoStaleSlices(db);
    // Any write of a member emission row fails inside the database.
    await db.sql.unsafe(`
      create function refuse_member_rows() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from data_entries where id = new.data_entry_id and data_entry_type_id = 1)
        then raise exception 'member emission rows refused by a test trigger'; end if;
        return new;
      end $$;
      create trigger refuse_member_rows before insert or update on data_entry_emissions
        for each row execute function refuse_member_rows();`);
    try {
      const command = onDatabase(rematchCommand, db);
      const json = await runCaptured(command, ["--all", "--year", "2025", "--json"]);
      assert.equal(json.code, 3, json.err);
      const doc = JSON.parse(json.out);
      assert.deepEqual(doc.counts, { committed: 20, "dry-run": 0, failed: 1, skipped: 0 });
      const byDet = new Map<string, AllResult>(
        doc.results.map((r: AllResult) => [r.dataEntryType, r]),
      );
      assert.equal(byDet.get("member")?.status, "failed");
      assert.match(
        byDet.get("member")?.error ?? "",
        /member emission rows refused by a test trigger/,
      );
      assert.equal(byDet.get("it")?.status, "committed");
      assert.equal(byDet.get("it")?.emissionsUpdated, 1);
      // Dets after the failing one ran too (student is det 2, additional_purchases the last).
      assert.equal(byDet.get("student")?.status, "committed");
      assert.equal(byDet.get("additional_purchases")?.status, "committed");
      // What committed stays committed; the failing det wrote nothing.
      assert.ok(near((await emissionRows(db.sql, [it]))[0].kg_co2eq, 54.912));
      assert.deepEqual(await emissionRows(db.sql, [member]), memberRows);

      // --full: `it` is current by now, and the table should show its entry counted again.
      const human = await runCaptured(command, ["--all", "--year", "2025", "--full"]);
      assert.equal(human.code, 3);
      assert.match(human.out, /^member\s+FAILED\s+-/m);
      // At 80 columns: it, 1 entry, none relinked, dropped or failing, kg 54.912 before and after.
      assert.match(human.out, /^it\s+(2025\s+)?1\s+0\s+0\s+0\s+55\s+55\s/m);
      assert.match(
        human.out,
        /^member: failed, nothing of it written: member emission rows refused by a test trigger/m,
      );
      assert.match(human.out, /^20 committed, 1 failed, 0 not run/m);
    } finally {
      await db.sql.unsafe(`drop trigger refuse_member_rows on data_entry_emissions;
        drop function refuse_member_rows();`);
    }
    // Once the cause is gone, the member slice catches up.
    const again = await runCaptured(onDatabase(rematchCommand, db), ["--all", "--year", "2025"]);
    assert.equal(again.code, 0, again.out);
    assert.ok(near((await emissionRows(db.sql, [member]))[0].kg_co2eq, 200));
  },
);

dbTest(
  testDb,
  "--all --no-wait: a busy slice fails at once and alone; the other dets commit",
  async (db) => {
    const { it, member, memberRows } = await twoStaleSlices(db);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = db.sql.begin(async (tx) => {
      await lockSlice(tx, 1, 2025);
      locked();
      await held;
    });
    await isLocked;
    try {
      const run = await runCaptured(onDatabase(rematchCommand, db), [
        "--all",
        "--year",
        "2025",
        "--no-wait",
        "--json",
      ]);
      assert.equal(run.code, 3, run.err);
      const doc = JSON.parse(run.out);
      assert.deepEqual(doc.counts, { committed: 20, "dry-run": 0, failed: 1, skipped: 0 });
      const failed = doc.results.filter((r: AllResult) => r.status === "failed");
      assert.deepEqual(failed.map((r: AllResult) => r.dataEntryType), ["member"]);
      assert.match(failed[0].error, /slice member 2025 is busy/);
      assert.ok(near((await emissionRows(db.sql, [it]))[0].kg_co2eq, 54.912));
      assert.deepEqual(await emissionRows(db.sql, [member]), memberRows);
    } finally {
      release();
      await holder;
    }
  },
  // PGlite serves every connection from one session: a second holder cannot exist there.
  { ignore: !serverBackendExpected() },
);

dbTest(testDb, "--all --dry-run: every det reported as dry-run, nothing written", async (db) => {
  const { it } = await twoStaleSlices(db);
  const before = await emissionRows(db.sql, [it]);
  const run = await runCaptured(onDatabase(rematchCommand, db), [
    "--all",
    "--year",
    "2025",
    "--dry-run",
    "--json",
  ]);
  assert.equal(run.code, 0, run.err);
  const doc = JSON.parse(run.out);
  assert.deepEqual(doc.counts, { committed: 0, "dry-run": 21, failed: 0, skipped: 0 });
  assert.equal(doc.dryRun, true);
  assert.deepEqual(await emissionRows(db.sql, [it]), before);

  // --diff lists each changed entry in the text too, under its slice, for --all as for --det.
  for (const which of [["--all", "--year", "2025"], ["--stale"]]) {
    const text = await runCaptured(onDatabase(rematchCommand, db), [
      ...which,
      "--dry-run",
      "--diff",
    ]);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^it 2025 changes:$/m, which.join(" "));
    assert.match(text.out, new RegExp(`^\\s*${it}\\s+27\\.456\\s+54\\.912\\b`, "m"));
    assert.match(text.out, /^member 2025 changes:$/m, which.join(" "));
  }
  assert.deepEqual(await emissionRows(db.sql, [it]), before);

  // What a frozen module holds back is said for --all as for --det.
  await db.sql.begin((tx) =>
    freezeModules(tx, { unitCode: "U1", year: 2025, moduleTypeId: 4 }, { reason: "validated" })
  );
  const frozen = await runCaptured(onDatabase(rematchCommand, db), [
    "--all",
    "--year",
    "2025",
    "--dry-run",
  ]);
  assert.equal(frozen.code, 0, frozen.err);
  assert.match(
    frozen.out,
    /^it 2025: 1 entries of frozen module \d+ not written; they would move \+27\.456 kg$/m,
  );
});
