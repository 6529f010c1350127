// `status`, `rematch --stale` and the "left stale" lines of imports (spec/rematch.md rule 18).
import assert from "node:assert/strict";
import { dbTest, onDatabase, runCaptured, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { factorsCommand } from "../../src/cli/factors.ts";
import { factorsRollbackCommand } from "../../src/cli/factors_rollback.ts";
import { locationsCommand } from "../../src/cli/reference.ts";
import { rematchCommand } from "../../src/cli/rematch.ts";
import { statusCommand } from "../../src/cli/status.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { leftStale, type SliceStatus } from "../../src/rematch/state.ts";
import {
  createTestEntries,
  importFactorText,
  insertAirports,
  IT_HEADER,
  PLANE_HEADER,
} from "./_slice.ts";

const testDb = useTestDatabase();
const laptop = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };
const desktop = { name: "desktop", equipment_class: "Desktop" };
const flight = { origin_iata: "GVA", destination_iata: "CDG", cabin_class: "economy" };
const itFactors = (laptopEf: number) =>
  `${IT_HEADER}\nLaptop,Standard,100,10,40,128,${laptopEf}\nDesktop,,100,10,40,128,0.1\n`;

/** it (two entries) and plane (one flight) of 2025, and one it entry of 2024; all rematched. */
async function threeSlices(db: Database): Promise<void> {
  await insertAirports(db);
  await importFactorText(db, "it", 2025, itFactors(0.1));
  await importFactorText(db, "it", 2024, itFactors(0.1));
  await importFactorText(
    db,
    "plane",
    2025,
    `${PLANE_HEADER}\nvery_short_haul,economy,0.1,1,0,800\n`,
  );
  await createTestEntries(db, "it", 2025, [laptop, desktop]);
  await createTestEntries(db, "it", 2024, [laptop]);
  await createTestEntries(db, "plane", 2025, [flight]);
  for (const [det, year] of [["it", 2025], ["it", 2024], ["plane", 2025]] as const) {
    await recalculateForDataEntryType(db, { dataEntryType: det, year });
  }
}

async function status(db: Database, argv: string[] = []) {
  const run = await runCaptured(onDatabase(statusCommand, db), [...argv, "--json"]);
  assert.equal(run.code, 0, run.err);
  return JSON.parse(run.out) as { slices: SliceStatus[]; stale: number; command: string | null };
}

async function csvFile(text: string): Promise<string> {
  const file = await Deno.makeTempFile({ suffix: ".csv" });
  await Deno.writeTextFile(file, text);
  return file;
}

dbTest(testDb, "status lists every slice with entries and its state", async (db) => {
  await threeSlices(db);
  const current = await status(db);
  assert.deepEqual(
    current.slices.map((s) => [s.dataEntryType, s.year, s.entries, s.factors, s.label]),
    [["it", 2024, 1, 2, "current"], ["it", 2025, 2, 2, "current"], [
      "plane",
      2025,
      1,
      1,
      "current",
    ]],
  );
  assert.equal(current.command, null);
  // 503 km × 0.1 (spec/modules.md GVA → CDG)
  assert.ok(Math.abs(current.slices[2].kg! - 50.3) < 1e-9);
  assert.equal(current.slices[2].lastRematch?.scope, "full");

  await importFactorText(db, "it", 2025, itFactors(0.2));
  await importFactorText(
    db,
    "plane",
    2025,
    `${PLANE_HEADER}\nvery_short_haul,economy,0.1,1,0,900\n`,
  );
  await createTestEntries(db, "it", 2026, [laptop]);
  const stale = await status(db);
  assert.deepEqual(stale.slices.map((s) => [s.dataEntryType, s.year, s.label]), [
    ["it", 2024, "current"],
    ["it", 2025, "stale: targeted (1 factor, about 1 entry)"],
    ["it", 2026, "never rematched"],
    ["plane", 2025, "stale: full (factor 5: max_distance changed (a structural value))"],
  ]);
  assert.equal(stale.stale, 3);
  assert.equal(stale.command, "deno task rematch --stale");

  const text = await runCaptured(onDatabase(statusCommand, db), ["--year", "2025"]);
  // At 80 columns the state stays whole; factors, kg, when and how the slice was last rematched
  // give way (--json has them).
  assert.match(text.out, /^it\s+2025\s+2\s+stale: targeted \(1 factor, about 1 entry\)$/m);
  assert.match(
    text.out,
    /^\(left out to fit 80 columns: factors, kg, last rematch, result; see --json\)$/m,
  );
  assert.equal(stale.slices[1].lastRematch?.scope, "full");
  assert.equal(stale.slices[1].lastRematch?.summary.entriesRead, 2);
  assert.equal(stale.slices[1].lastRematch?.summary.errors, 0);
  assert.match(text.out, /^2 of 2 slices need a rematch: deno task rematch --stale --year 2025$/m);
  const oneDet = await status(db, ["--det", "plane"]);
  assert.deepEqual(oneDet.slices.map((s) => s.dataEntryType), ["plane"]);
  assert.equal(oneDet.command, "deno task rematch --det plane --year 2025");

  const usage = await runCaptured(onDatabase(statusCommand, db), ["--det", "laptop"]);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /--det: unknown data entry type/);
});

dbTest(testDb, "rematch --stale rematches only the slices that are not current", async (db) => {
  await threeSlices(db);
  await importFactorText(db, "it", 2025, itFactors(0.2));
  await importFactorText(db, "it", 2024, itFactors(0.3));
  const command = onDatabase(rematchCommand, db);
  const year = await runCaptured(command, ["--stale", "--year", "2025", "--json"]);
  assert.equal(year.code, 0, year.err + year.out);
  const doc = JSON.parse(year.out);
  assert.deepEqual(
    doc.results.map((r: { dataEntryType: string; year: number; scope: string }) => [
      r.dataEntryType,
      r.year,
      r.scope,
    ]),
    [["it", 2025, "targeted"]],
  );
  assert.deepEqual((await status(db)).slices.map((s) => s.state), ["stale", "current", "current"]);
  const all = await runCaptured(command, ["--stale"]);
  assert.equal(all.code, 0, all.err);
  // it 2024: 1 entry, none relinked, dropped or failing; its one row updated in place.
  assert.match(all.out, /^it\s+2024\s+1\s+0\s+0\s+0\s+[\d,]+\s+[\d,]+\s+0\s+1\s+0$/m);
  assert.equal((await status(db)).command, null);
  const none = await runCaptured(command, ["--stale"]);
  assert.equal(none.out, "every slice with entries is current: nothing to rematch");
  assert.equal(none.code, 0, "nothing to rematch is a success");
});

dbTest(testDb, "a factor import without --rematch says which slices it left stale", async (db) => {
  await threeSlices(db);
  const file = await csvFile(itFactors(0.2));
  try {
    const command = onDatabase(factorsCommand, db);
    const argv = ["import", file, "--year", "2025", "--det", "it"];
    const dry = await runCaptured(command, [...argv, "--dry-run"]);
    assert.match(
      dry.out,
      /^left stale: it 2025 \(stale: targeted \(1 factor, about 1 entry\)\)\nbring them up to date: deno task rematch --det it --year 2025$/m,
    );
    assert.equal((await status(db)).stale, 0, "a dry run changes nothing");
    const json = await runCaptured(command, [...argv, "--json"]);
    const doc = JSON.parse(json.out);
    assert.equal(doc.leftStale.command, "deno task rematch --det it --year 2025");
    assert.deepEqual(doc.leftStale.slices.map((s: SliceStatus) => s.scope), ["targeted"]);
    // With --rematch nothing is left stale, and nothing is said about it.
    await Deno.writeTextFile(file, itFactors(0.3));
    const rematched = await runCaptured(command, [...argv, "--rematch"]);
    assert.equal(rematched.code, 0, rematched.err);
    assert.doesNotMatch(rematched.out, /left stale/);
    assert.equal((await status(db)).stale, 0);
  } finally {
    await Deno.remove(file);
  }
});

dbTest(
  testDb,
  "a factor rollback without --rematch says which slices it left stale",
  async (db) => {
    await threeSlices(db);
    const file = await csvFile(itFactors(0.2));
    try {
      const command = onDatabase(factorsCommand, db);
      const imported = await runCaptured(command, [
        ...["import", file, "--year", "2025", "--det", "it", "--rematch", "--json"],
      ]);
      assert.equal(imported.code, 0, imported.err);
      const rollback = onDatabase(factorsRollbackCommand, db);
      const argv = ["rollback", "--import", String(JSON.parse(imported.out).importId)];
      assert.equal((await status(db)).stale, 0);
      const dry = await runCaptured(rollback, [...argv, "--dry-run"]);
      assert.equal(dry.code, 0, dry.err);
      assert.match(
        dry.out,
        /^left stale: it 2025 \(stale: targeted \(1 factor, about 1 entry\)\)\nbring them up to date: deno task rematch --det it --year 2025$/m,
      );
      assert.equal((await status(db)).stale, 0, "a dry run changes nothing");
      const json = await runCaptured(rollback, [...argv, "--json"]);
      assert.equal(json.code, 0, json.err);
      assert.equal(
        JSON.parse(json.out).leftStale.command,
        "deno task rematch --det it --year 2025",
      );
      assert.deepEqual(
        (await status(db)).slices.filter((s) => s.state !== "current").map((s) => [
          s.dataEntryType,
          s.year,
        ]),
        [["it", 2025]],
      );
      // Rolled back again with --rematch: nothing is left stale, and nothing is said about it.
      const rematched = await runCaptured(rollback, [
        ...["rollback", "--import", String(JSON.parse(json.out).importId), "--rematch"],
      ]);
      assert.equal(rematched.code, 0, rematched.err);
      assert.doesNotMatch(rematched.out, /left stale/);
      assert.equal((await status(db)).stale, 0);
    } finally {
      await Deno.remove(file);
    }
  },
);

dbTest(testDb, "a locations import names the travel slices it left stale", async (db) => {
  await threeSlices(db);
  const file = await csvFile(
    "transport_mode,name,iata_code,country_code,latitude,longitude\nplane,Geneva,GVA,CH,46.3,6.109\n",
  );
  try {
    const run = await runCaptured(onDatabase(locationsCommand, db), ["import", file]);
    assert.equal(run.code, 0, run.err);
    assert.match(
      run.out,
      /^left stale: plane 2025 \(stale: full \(locations changed\)\)\nbring them up to date: deno task rematch --det plane --year 2025$/m,
    );
  } finally {
    await Deno.remove(file);
  }
});

dbTest(
  testDb,
  "an import that changed nothing says nothing of slices others left stale; rates name their years",
  async (db) => {
    await threeSlices(db);
    // it 2024 and it 2025 are made stale by factor changes.
    await importFactorText(db, "it", 2025, itFactors(0.2));
    await importFactorText(db, "it", 2024, itFactors(0.2));
    const file = await csvFile(
      "transport_mode,name,iata_code,country_code,latitude,longitude\nplane,Geneva,GVA,CH,46.2381,6.109\n",
    );
    try {
      const run = await runCaptured(onDatabase(locationsCommand, db), ["import", file, "--json"]);
      assert.equal(run.code, 0, run.err);
      const doc = JSON.parse(run.out);
      assert.deepEqual([doc.inserted, doc.updated, doc.unchanged], [0, 0, 1]);
      assert.equal("leftStale" in doc, false);
    } finally {
      await Deno.remove(file);
    }
    // The slices of the years given, only.
    const of2024 = await leftStale(db.sql, { years: [2024] });
    assert.deepEqual(of2024.slices.map((s) => [s.dataEntryType, s.year]), [["it", 2024]]);
    assert.equal(of2024.command, "deno task rematch --det it --year 2024");
    const both = await leftStale(db.sql, { years: [2024, 2025] });
    assert.deepEqual(both.slices.map((s) => [s.dataEntryType, s.year]), [["it", 2024], [
      "it",
      2025,
    ]]);
  },
);
