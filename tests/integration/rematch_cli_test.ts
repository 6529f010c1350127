// `deno task rematch` as the command line runs it: flags, one JSON document, exit codes.
import assert from "node:assert/strict";
import { dbTest, onDatabase, runCaptured, useTestDatabase } from "../_harness.ts";
import { rematchCommand } from "../../src/cli/rematch.ts";
import { createTestEntries, importFactorText, IT_HEADER } from "./_slice.ts";

const testDb = useTestDatabase();
const laptop = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };

dbTest(testDb, "rematch CLI: --json prints one document; --all covers every det", async (db) => {
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
  await createTestEntries(db, "it", 2025, [laptop]);
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
  const command = onDatabase(rematchCommand, db);
  const one = await runCaptured(command, ["--det", "11", "--year", "2025", "--json"]);
  assert.equal(one.code, 0, one.err);
  const result = JSON.parse(one.out);
  assert.deepEqual([result.dataEntryType, result.recalculated, result.emissionsUpdated], [
    "it",
    1,
    1,
  ]);
  const all = await runCaptured(command, ["--all", "--year", "2025", "--json"]);
  assert.equal(all.code, 0, all.err);
  const { results } = JSON.parse(all.out);
  assert.equal(results.length, 21);
  // The first rematch left `it` current: the second one reads nothing.
  const it = results.find((r: { dataEntryType: string }) => r.dataEntryType === "it");
  assert.deepEqual([it.upToDate, it.scope, it.entriesRead], [true, "none", 0]);
  const human = await runCaptured(command, [
    "--det",
    "it",
    "--year",
    "2025",
    "--dry-run",
    "--full",
  ]);
  assert.match(human.out, /dry run: nothing written/);
  // At 80 columns: it, (year when it fits,) 1 entry, none relinked, dropped or failing.
  assert.match(human.out, /^it\s+(2025\s+)?1\s+0\s+0\s+0\s/m);
});

dbTest(testDb, "rematch CLI: per-entry errors exit 3, with the entry named", async (db) => {
  const header =
    "purchase_institutional_code,purchase_additional_code,currency,ef_kg_co2eq_per_currency";
  await importFactorText(db, "services", 2025, `${header}\n91111500,AA66,eur,0.21\n`);
  const [id] = await createTestEntries(db, "services", 2025, [
    { purchase_institutional_code: "91111500", total_spent_amount: 100, currency: "eur" },
  ]);
  await importFactorText(db, "services", 2025, `${header}\n91111500,AA67,eur,0.3\n`);
  const run = await runCaptured(onDatabase(rematchCommand, db), [
    "--det",
    "services",
    "--year",
    "2025",
  ]);
  assert.equal(run.code, 3);
  assert.match(run.out, new RegExp(`services: entry ${id}: Ambiguous factor data`));
});

dbTest(testDb, "rematch CLI: bad usage exits 2 with a message naming the flag", async (db) => {
  const command = onDatabase(rematchCommand, db);
  const cases: [string[], RegExp][] = [
    [["--year", "2025"], /exactly one of --det D, --all or --stale/],
    [["--det", "it", "--all", "--year", "2025"], /exactly one of --det D, --all or --stale/],
    [["--stale", "--all", "--year", "2025"], /exactly one of --det D, --all or --stale/],
    [["--all"], /--year: is required/],
    [["--stale", "--modules", "3"], /--modules needs --det/],
    [["--det", "laptop", "--year", "2025"], /--det: unknown data entry type/],
    [["--det", "it"], /--year: is required/],
    [["--det", "it", "--year", "2025", "--diff"], /--diff needs --dry-run/],
    [
      ["--det", "it", "--year", "2025", "--modules", "a,b"],
      /--modules: expected comma-separated module ids/,
    ],
    [
      // Found under the slice's lock (no such module here): a flag error all the same.
      ["--det", "it", "--year", "2025", "--modules", "999999"],
      /--modules: module 999999 is not a carbon report module of it 2025/,
    ],
    [
      ["--det", "it", "--year", "2025", "--bogus"],
      /unknown flag --bogus; see deno task rematch --help$/,
    ],
  ];
  for (const [argv, message] of cases) {
    const run = await runCaptured(command, argv);
    assert.equal(run.code, 2, argv.join(" "));
    assert.match(run.err, message, argv.join(" "));
  }
});

dbTest(testDb, "rematch off a terminal shows progress only when asked (--progress)", async (db) => {
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
  await createTestEntries(db, "it", 2025, [laptop, laptop]);
  const command = onDatabase(rematchCommand, db);
  const quiet = await runCaptured(command, ["--det", "it", "--year", "2025", "--full"]);
  assert.equal(quiet.code, 0, quiet.err);
  assert.doesNotMatch(quiet.err, /^rematch it 2025/m, "nothing on a pipe unless asked");
  const asked = await runCaptured(command, [
    "--det",
    "it",
    "--year",
    "2025",
    "--full",
    "--progress",
  ]);
  assert.equal(asked.code, 0, asked.err);
  // Plain lines (no carriage return or erase sequence), the first one at the slice's start.
  assert.match(asked.err, /^rematch it 2025$/m);
  assert.ok(!asked.err.includes("\r") && !asked.err.includes("\x1b"), "nothing redrawn");
  assert.doesNotMatch(asked.out, /^rematch it 2025/m, "stdout holds the report alone");
});
