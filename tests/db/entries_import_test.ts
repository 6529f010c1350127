import assert from "node:assert/strict";
import { join } from "node:path";
import { dbTest, runCli, runOn, serverBackendExpected, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { lockSlice } from "../../src/db/locks.ts";
import {
  describeEntriesImport,
  entriesCommand,
  type EntriesImportArgs,
  importEntriesFile,
  MAX_LINE_LENGTH,
} from "../../src/cli/entries.ts";
import { FileError } from "../../src/imports/csv.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { importSeedFixtures } from "../../src/seed/seed.ts";

const testDb = useTestDatabase();

const line = (det: string | number, data: Record<string, unknown>, unit = "U1", year = 2025) =>
  JSON.stringify({ unit, year, data_entry_type: det, data });

const PLANE = line("plane", {
  origin_iata: "GVA",
  destination_iata: "CDG",
  cabin_class: "Economy",
});
const TRAIN = line("train", {
  origin_name: "Geneva",
  origin_country_code: "ch",
  destination_name: "Lausanne",
  destination_country_code: "CH",
  cabin_class: " Second ",
});
const LAPTOP = line(11, {
  name: "Laptop A",
  equipment_class: "Laptop",
  sub_class: "Standard",
  active_usage_hours_per_week: "40",
  standby_usage_hours_per_week: 128,
});
const BAD_HOURS = line("it", {
  name: "Laptop B",
  equipment_class: "Laptop",
  active_usage_hours_per_week: 100,
  standby_usage_hours_per_week: 100,
});

async function withFixtures(db: Database): Promise<void> {
  await db.sql.begin((tx) => importSeedFixtures(tx, 2025));
}

const tempDir = Deno.makeTempDirSync({ prefix: "rematch-entries-" });
Deno.test.afterAll(() => Deno.remove(tempDir, { recursive: true }));

async function tempFile(name: string, text: string): Promise<string> {
  const path = join(tempDir, name);
  await Deno.writeTextFile(path, text);
  return path;
}

function jsonl(file: string, options: Partial<EntriesImportArgs> = {}): EntriesImportArgs {
  return { file, format: "jsonl", strict: false, ...options };
}

async function stored(db: Database) {
  const rows = await db.sql<
    {
      id: number;
      det: number;
      unit: string;
      year: number;
      data: Record<string, unknown>;
      rows: { type: number; kg: number; additional: number | null }[];
    }[]
  >`
    select e.id, e.data_entry_type_id as det, u.code as unit, r.year, e.data,
      coalesce((select json_agg(json_build_object('type', x.emission_type_id, 'kg', x.kg_co2eq,
        'additional', x.additional_value) order by x.id)
        from data_entry_emissions x where x.data_entry_id = e.id), '[]') as rows
    from data_entries e join carbon_report_modules m on m.id = e.carbon_report_module_id
      join carbon_reports r on r.id = m.carbon_report_id join units u on u.id = r.unit_id
    order by e.id`;
  return rows.map((r) => ({ ...r }));
}

function assertClose(actual: number, expected: number, message?: string) {
  assert.ok(
    Math.abs(actual - expected) <= 1e-9 * Math.abs(expected),
    `${message ?? ""}: ${actual} != ${expected}`,
  );
}

dbTest(
  testDb,
  "entries import: good lines are written, the bad line names line and field",
  async (db) => {
    await withFixtures(db);
    const file = await tempFile(
      "entries.jsonl",
      [PLANE, TRAIN, BAD_HOURS, "", LAPTOP, ""].join("\n"),
    );
    const result = await importEntriesFile(db, jsonl(file));
    assert.equal(result.written, true);
    assert.equal(result.linesRead, 4, "blank lines are not counted");
    assert.deepEqual([result.created, result.rejectedCount, result.computeErrorsCount], [3, 1, 0]);
    assert.equal(result.errorsCount, 1);
    assert.equal(result.errors[0].line, 3);
    assert.equal(result.errors[0].stored, false);
    assert.match(
      result.errors[0].message,
      /^line 3: standby_usage_hours_per_week: active \+ standby hours per week must be ≤ 168$/,
    );

    const [plane, train, laptop] = await stored(db);
    assert.deepEqual([plane.det, train.det, laptop.det], [20, 21, 11]);
    assert.deepEqual([plane.unit, plane.year], ["U1", 2025]);
    // Normalisation (domain.md §5): enumerations trimmed and lower-cased, numeric strings numbers.
    assert.equal(plane.data.cabin_class, "economy");
    assert.equal(train.data.cabin_class, "second");
    assert.equal(train.data.origin_country_code, "CH");
    assert.equal(laptop.data.active_usage_hours_per_week, 40);

    // GVA → CDG: 503 km, very_short_haul economy ef 0.13, rfi 2 (fixture factors).
    assert.equal(plane.rows.length, 1);
    assert.equal(plane.rows[0].type, 50203);
    assertClose(plane.rows[0].kg, 503 * 0.13 * 2, "plane");
    assert.equal(plane.rows[0].additional, 503);
    // Geneva → Lausanne: 61 km, CH ef 0.007.
    assert.equal(train.rows.length, 1);
    assert.equal(train.rows[0].type, 50102);
    assertClose(train.rows[0].kg, 61 * 0.007, "train");
    // The spec's it vector: 40 h × 100 W + 128 h × 10 W, ef 0.2.
    assertClose(laptop.rows[0].kg, 54.912, "laptop");
  },
);

dbTest(testDb, "entries import: malformed lines, unknown dets and --det", async (db) => {
  await withFixtures(db);
  const file = await tempFile(
    "mixed.ndjson",
    [
      "{not json",
      line("rocket", { x: 1 }),
      "[1, 2]",
      JSON.stringify({ unit: " ", year: "20x5", data: {} }),
      JSON.stringify({
        unit: "U2",
        year: "2025",
        data: { origin_iata: "gva", destination_iata: "cdg", cabin_class: "first" },
      }),
      line("train", { origin_name: "Geneva", destination_name: "Lausanne", cabin_class: "second" }),
    ].join("\r\n"),
  );
  const result = await importEntriesFile(db, jsonl(file, { det: getDataEntryType("plane") }));
  assert.equal(result.created, 1);
  assert.deepEqual(result.errors.map((e) => e.line), [1, 2, 3, 4, 6]);
  assert.match(result.errors[0].message, /^line 1: invalid JSON: /);
  assert.match(
    result.errors[1].message,
    /^line 2: data_entry_type: unknown data entry type "rocket"/,
  );
  assert.equal(result.errors[2].message, "line 3: expected a JSON object");
  assert.match(result.errors[3].message, /^line 4: unit: must not be empty; year: /);
  assert.equal(
    result.errors[4].message,
    "line 6: data_entry_type: train does not match --det plane",
  );
  const [plane] = await stored(db);
  assert.deepEqual([plane.det, plane.unit, plane.data.origin_iata], [20, "U2", "GVA"]);
  assert.equal(plane.rows[0].type, 50201);

  const noDet = await tempFile(
    "no-det.jsonl",
    JSON.stringify({ unit: "U1", year: 2025, data: {} }),
  );
  const missing = await importEntriesFile(db, jsonl(noDet));
  assert.match(missing.errors[0].message, /^line 1: data_entry_type: is required/);
});

dbTest(
  testDb,
  "entries import: JSON lines end at any line end; an empty file and bytes that are not UTF-8 are file errors",
  async (db) => {
    await withFixtures(db);
    // Lone CRs end lines as in a CSV file. The first line is padded to 65,535 bytes so that its
    // CRLF straddles the file's first 64 KiB piece: counted once, the bad line is line 2.
    const padded = PLANE + " ".repeat(65_535 - PLANE.length);
    const crs = await tempFile("cr.jsonl", `${padded}\r\n{not json\r${LAPTOP}\r`);
    const result = await importEntriesFile(db, jsonl(crs));
    assert.equal(result.created, 2);
    assert.deepEqual(result.errors.map((e) => e.line), [2]);

    const before = await stored(db);
    for (const text of ["", "\n \r\n\t\r"]) {
      const empty = await tempFile("empty.jsonl", text);
      const run = await runCli(entriesCommand, ["import", empty]);
      assert.equal(run.code, 1, JSON.stringify(text));
      assert.match(run.err, /empty\.jsonl: is empty \(expected one JSON object per line\)/);
    }
    const bytes = new TextEncoder().encode(`${PLANE}\n${LAPTOP}\n`);
    bytes[PLANE.length + 10] = 0xe9; // a Latin-1 "é" on line 2
    const latin1 = join(tempDir, "latin1.jsonl");
    await Deno.writeFile(latin1, bytes);
    const run = await runCli(entriesCommand, ["import", latin1]);
    assert.equal(run.code, 1);
    assert.match(
      run.err,
      new RegExp(
        `latin1\\.jsonl: is not valid UTF-8 text: line 2, byte ${PLANE.length + 11} \\(0xe9\\)`,
      ),
    );
    assert.deepEqual(await stored(db), before);
  },
);

dbTest(testDb, "entries import: --strict writes nothing when a line is bad", async (db) => {
  await withFixtures(db);
  const file = await tempFile("strict.jsonl", [PLANE, BAD_HOURS, LAPTOP].join("\n"));
  const result = await importEntriesFile(db, jsonl(file, { strict: true, batchSize: 1 }));
  assert.equal(result.written, false);
  assert.deepEqual([result.created, result.errorsCount], [0, 1]);
  assert.match(result.errors[0].message, /^line 2: standby_usage_hours_per_week: /);
  assert.deepEqual(await stored(db), []);
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from units`;
  assert.equal(n, 0, "units created on demand are rolled back too");

  const clean = await tempFile("clean.jsonl", [PLANE, LAPTOP].join("\n"));
  const ok = await importEntriesFile(db, jsonl(clean, { strict: true }));
  assert.deepEqual([ok.written, ok.created, ok.errorsCount], [true, 2, 0]);
});

dbTest(
  testDb,
  "entries import: compute errors are stored without emissions; warnings",
  async (db) => {
    await withFixtures(db);
    // Without a 2025 usd rate a usd purchase cannot be converted: a per-entry compute error.
    await db.sql`delete from exchange_rates where year = 2025 and currency = 'usd'`;
    const file = await tempFile(
      "compute.jsonl",
      [
        line("it_equipment", {
          total_spent_amount: 100,
          currency: "USD",
          purchase_institutional_code: "43211500",
        }),
        line("building", { building_name: "BC", room_name: "BC 999", room_type: "office" }),
      ].join("\n"),
    );
    const result = await importEntriesFile(db, jsonl(file, { batchSize: 1 }));
    assert.equal(result.written, true);
    assert.deepEqual([result.created, result.computeErrorsCount, result.warningsCount], [2, 1, 1]);
    assert.deepEqual([result.errors[0].line, result.errors[0].stored], [1, true]);
    assert.match(result.errors[0].message, /^line 1: stored without emissions: .*usd.*2025/);
    assert.equal(result.warnings[0].line, 2);
    assert.match(result.warnings[0].message, /^line 2: room "BC 999" of building "BC" not found/);
    assert.deepEqual((await stored(db)).map((e) => e.rows.length), [0, 0]);
  },
);

dbTest(testDb, "entries import: CSV for one det", async (db) => {
  await withFixtures(db);
  const file = await tempFile(
    "it.csv",
    [
      "unit,year,name,equipment_class,sub_class,active_usage_hours_per_week,standby_usage_hours_per_week,note",
      "U1,2025,Laptop A,Laptop,Standard,40,128,",
      "U1,2025,Laptop B,Laptop,,,,kind-only fallback and default hours",
      "U2,2025,Laptop C,Laptop,Standard,100,100,",
      "U2,later,Laptop D,Laptop,Standard,1,1,",
    ].join("\n"),
  );
  const result = await importEntriesFile(db, {
    file,
    format: "csv",
    det: getDataEntryType("it"),
    strict: false,
  });
  assert.deepEqual([result.linesRead, result.created, result.errorsCount], [4, 2, 2]);
  // Problems name the file line (the header is line 1).
  assert.deepEqual(result.errors.map((e) => e.line), [4, 5]);
  assert.match(result.errors[0].message, /^line 4: standby_usage_hours_per_week: /);
  assert.equal(
    result.errors[1].message,
    'line 5: year: expected a year between 1990 and 2100, got "later"',
  );
  const [a, b] = await stored(db);
  assert.deepEqual(a.data.sub_class, "Standard");
  assert.equal("note" in a.data, false, "blank cells are left out");
  assert.equal("sub_class" in b.data, false);
  assert.equal(b.data.note, "kind-only fallback and default hours");
  assertClose(a.rows[0].kg, 54.912, "spec vector");
  // Laptop without sub_class: 40 h × 60 W + 128 h × 2 W, ef 0.2.
  assertClose(b.rows[0].kg, (40 * 60 + 128 * 2) * 52 / 1000 * 0.2, "fallback");

  // Every other column is a data field, whatever its name: one named __proto__ is judged (and
  // refused) like the same key in a JSON line, never dropped.
  const proto = await importEntriesFile(db, {
    file: await tempFile(
      "proto.csv",
      "unit,year,name,equipment_class,__proto__\nU1,2025,Laptop E,Laptop,x\nU1,2025,Laptop F,Laptop,\n",
    ),
    format: "csv",
    det: getDataEntryType("it"),
    strict: false,
  });
  const json = await importEntriesFile(db, {
    file: await tempFile(
      "proto.jsonl",
      '{"unit": "U1", "year": 2025, "data": {"name": "Laptop G", "equipment_class": "Laptop", ' +
        '"__proto__": "x"}}\n',
    ),
    format: "jsonl",
    det: getDataEntryType("it"),
    strict: false,
  });
  assert.deepEqual([proto.created, proto.errorsCount, json.created], [1, 1, 0]);
  for (const [result, number] of [[proto, 2], [json, 1]] as const) {
    assert.deepEqual(
      result.errors.map((e) => e.message),
      [`line ${number}: __proto__: not a name a field can have (the field would be lost); rename it`],
    );
  }

  const noYear = await tempFile("bad.csv", "unit,name\nU1,x\n");
  await assert.rejects(
    importEntriesFile(db, {
      file: noYear,
      format: "csv",
      det: getDataEntryType("it"),
      strict: false,
    }),
    (error: unknown) =>
      error instanceof FileError && /missing required column year/.test(error.message),
  );
});

dbTest(testDb, "entries import --year: a line of another year is a bad line", async (db) => {
  await withFixtures(db);
  const lastYear = line("plane", { origin_iata: "GVA", destination_iata: "CDG" }, "U1", 2024);
  const file = await tempFile("years.jsonl", [PLANE, lastYear].join("\n"));
  const run = await runOn(entriesCommand, db, ["import", file, "--year", "2025"], true);
  assert.equal(run.exitCode, 3);
  const json = run.json as { created: number; errors: { line: number; message: string }[] };
  assert.equal(json.created, 1);
  assert.deepEqual(json.errors.map((e) => e.message), [
    "line 2: year: expected 2025 (the import's year), got 2024",
  ]);
  const csv = await tempFile(
    "years.csv",
    "unit,year,name,equipment_class\nU1,2025,Laptop A,Laptop\nU1,2024,Laptop B,Laptop\n",
  );
  const result = await importEntriesFile(db, {
    file: csv,
    format: "csv",
    det: getDataEntryType("it"),
    strict: false,
    year: 2024,
  });
  assert.deepEqual([result.created, result.errors.map((e) => e.message)], [1, [
    "line 2: year: expected 2024 (the import's year), got 2025",
  ]]);
  const usage = await runCli(entriesCommand, ["import", file, "--year", "last"]);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /--year: /);
});

dbTest(testDb, "entries CLI: exit codes 0, 3, 1 and 2", async (db) => {
  await withFixtures(db);
  const good = await tempFile("good.jsonl", [PLANE, LAPTOP].join("\n"));
  const partial = await tempFile("partial.jsonl", [PLANE, BAD_HOURS].join("\n"));

  const ok = await runOn(entriesCommand, db, ["import", good]);
  assert.equal(ok.exitCode, 0);
  assert.match(
    ok.text,
    /good\.jsonl: 2 lines read, 2 entries created, 0 updated, 0 unchanged, 2 emission rows written$/,
  );

  const some = await runOn(entriesCommand, db, ["import", partial], true);
  assert.equal(some.exitCode, 3);
  const json = some.json as { created: number; errorsCount: number; written: boolean };
  assert.deepEqual([json.created, json.errorsCount, json.written], [1, 1, true]);
  const text = await runOn(entriesCommand, db, ["import", partial]);
  assert.match(text.text, /2 lines read, 1 entry created/);
  assert.match(text.text, /\n {2}line 2: standby_usage_hours_per_week: /);

  const before = (await stored(db)).length;
  const strict = await runOn(entriesCommand, db, ["import", partial, "--strict"]);
  assert.equal(strict.exitCode, 1);
  assert.match(strict.text, /nothing written \(--strict and bad lines\)/);
  assert.equal((await stored(db)).length, before);

  // Every line bad: the import ran through and wrote nothing.
  const allBad = await tempFile("bad.jsonl", [BAD_HOURS, BAD_HOURS].join("\n"));
  const none = await runOn(entriesCommand, db, ["import", allBad]);
  assert.equal(none.exitCode, 1);
  assert.match(none.text, /^.*bad\.jsonl: 2 lines read, nothing written: every line is bad$/m);
  assert.equal((await stored(db)).length, before);

  const absent = await runCli(entriesCommand, ["import", join(tempDir, "absent.jsonl")]);
  assert.equal(absent.code, 1);
  assert.match(absent.err, /absent\.jsonl: cannot be read/);
  const noColumns = await runCli(entriesCommand, [
    "import",
    await tempFile("columns.csv", "unit,name\nU1,x\n"),
    "--det",
    "it",
  ]);
  assert.equal(noColumns.code, 1);
  assert.match(noColumns.err, /columns\.csv: missing required column year/);

  for (
    const [argv, message] of [
      [["import"], /arguments: expected "import FILE"/],
      [["import", "x.txt"], /cannot tell the format of x\.txt/],
      [["import", "x.csv"], /--det: is required for a CSV file/],
      [["import", "x.jsonl", "--det", "rocket"], /--det: unknown data entry type "rocket"/],
      [["export", "x.jsonl"], /arguments: expected "import FILE"/],
    ] as const
  ) {
    const usage = await runCli(entriesCommand, [...argv]);
    assert.equal(usage.code, 2, argv.join(" "));
    assert.match(usage.err, message);
  }
});

// ---- re-importing with source keys (issue 7 item 17) -----------------------------------------

const keyed = (key: Record<string, unknown>, det: string, data: Record<string, unknown>) =>
  JSON.stringify({ unit: "U1", year: 2025, data_entry_type: det, ...key, data });

const LAPTOP_DATA = { name: "Laptop A", equipment_class: "Laptop", sub_class: "Standard" };

dbTest(
  testDb,
  "entries import: a file with keys imported twice updates instead of duplicating",
  async (db) => {
    await withFixtures(db);
    const lines = [
      keyed({ source_key: "L1" }, "it", LAPTOP_DATA),
      keyed({ id: 7 }, "it", { ...LAPTOP_DATA, name: "Laptop B" }),
      keyed({ id: "T1" }, "plane", {
        origin_iata: "GVA",
        destination_iata: "CDG",
        cabin_class: "economy",
      }),
    ];
    const file = await tempFile("keyed.jsonl", lines.join("\n"));
    const first = await importEntriesFile(db, jsonl(file));
    assert.deepEqual([first.created, first.updated, first.unchanged], [3, 0, 0]);
    const before = await stored(db);

    const again = await runOn(entriesCommand, db, ["import", file]);
    assert.equal(again.exitCode, 0);
    assert.match(again.text, /3 lines read, 0 entries created, 0 updated, 3 unchanged/);
    assert.deepEqual(await stored(db), before, "same entries, same ids, same rows");
    const [{ keys }] = await db.sql<{ keys: string[] }[]>`
      select array_agg(source_key order by id) as keys from data_entries`;
    assert.deepEqual(keys, ["L1", "7", "T1"]);

    // One line changed: that entry is updated in place and recomputed.
    const changed = await tempFile(
      "keyed-2.jsonl",
      [
        lines[0],
        keyed({ id: 7 }, "it", { ...LAPTOP_DATA, active_usage_hours_per_week: 20 }),
        lines[2],
      ]
        .join("\n"),
    );
    const third = await importEntriesFile(db, jsonl(changed, { batchSize: 2 }));
    assert.deepEqual([third.created, third.updated, third.unchanged], [0, 1, 2]);
    const after = await stored(db);
    assert.deepEqual(after.map((e) => e.id), before.map((e) => e.id));
    // 20 h × 100 W + 128 h × 10 W, × 52 / 1000, ef 0.2 (fixture factors).
    assertClose(after[1].rows[0].kg, 3280 * 52 / 1000 * 0.2, "updated");
    assert.deepEqual(after[0], before[0]);
  },
);

dbTest(
  testDb,
  "entries import: a key given twice in a file, or both id and source_key, is a line error",
  async (db) => {
    await withFixtures(db);
    const file = await tempFile(
      "twice.jsonl",
      [
        keyed({ source_key: "L1" }, "it", LAPTOP_DATA),
        keyed({ source_key: "L1" }, "it", LAPTOP_DATA),
        keyed({ source_key: "L1", unit: "U2" }, "it", LAPTOP_DATA),
        keyed({ source_key: "A", id: "B" }, "it", LAPTOP_DATA),
        keyed({ source_key: 1.5 }, "it", LAPTOP_DATA),
      ].join("\n"),
    );
    const result = await importEntriesFile(db, jsonl(file, { batchSize: 1 }));
    assert.equal(result.created, 2);
    assert.deepEqual(result.errors.map((e) => e.message), [
      'line 2: source_key: "L1" is already the key of line 1 (one entry per key in a unit, year and module)',
      "line 4: source_key: give the key as source_key or as id, not both",
      "line 5: source_key: expected a text or an integer, got 1.5",
    ]);
  },
);

dbTest(
  testDb,
  "entries import: a CSV with an id column re-imports as updates",
  async (db) => {
    await withFixtures(db);
    const csv = (hours: number) =>
      [
        "unit,year,id,name,equipment_class,sub_class,active_usage_hours_per_week",
        `U1,2025,A-1,Laptop A,Laptop,Standard,${hours}`,
        "U1,2025,,Laptop B,Laptop,Standard,40",
      ].join("\n");
    const args = (file: string) => ({
      file,
      format: "csv" as const,
      det: getDataEntryType("it"),
      strict: false,
    });
    const first = await importEntriesFile(db, args(await tempFile("k1.csv", csv(40))));
    assert.deepEqual([first.created, first.updated, first.unchanged], [2, 0, 0]);
    const second = await importEntriesFile(db, args(await tempFile("k2.csv", csv(20))));
    // The keyed row updates its entry; the row without a key is created again.
    assert.deepEqual([second.created, second.updated, second.unchanged], [1, 1, 0]);
    const entries = await stored(db);
    assert.equal(entries.length, 3);
    assert.equal("id" in entries[0].data, false, "the key is not a data field");
    assert.equal(entries[0].data.active_usage_hours_per_week, 20);
  },
);

// ---- counts, lines, years, overrides ---------------------------------------------------------

dbTest(
  testDb,
  "entries import: an entry stored without emissions is counted and noted",
  async (db) => {
    await withFixtures(db);
    const file = await tempFile(
      "bare.jsonl",
      [
        line("it", { name: "Mystery", equipment_class: "Abacus" }),
        BAD_HOURS,
        LAPTOP,
      ].join("\n"),
    );
    const result = await importEntriesFile(db, jsonl(file));
    assert.deepEqual([result.created, result.withoutEmissionsCount], [2, 1]);
    assert.deepEqual(result.warnings.map((w) => [w.line, w.stored, w.message]), [[
      1,
      true,
      "line 1: stored without emissions: no it factor of 2025 gives it an emission row",
    ]]);
    const text = describeEntriesImport(result);
    assert.match(text, /2 entries created, .*; 1 stored without emissions\n/);
    assert.match(text, /1 error \(1 line skipped, 0 stored without emissions after a failed/);
  },
);

dbTest(testDb, "entries import: a year outside 1990..2100 names the line", async (db) => {
  await withFixtures(db);
  const file = await tempFile(
    "years.jsonl",
    [line("it", LAPTOP_DATA, "U1", 0), line("it", LAPTOP_DATA, "U1", 2101), LAPTOP].join("\n"),
  );
  const result = await importEntriesFile(db, jsonl(file));
  assert.equal(result.created, 1);
  assert.deepEqual(result.errors.map((e) => e.message), [
    "line 1: year: expected a year between 1990 and 2100, got 0",
    "line 2: year: expected a year between 1990 and 2100, got 2101",
  ]);
});

dbTest(
  testDb,
  "entries import: CSV problems name the file line; numbers and the override are parsed",
  async (db) => {
    await withFixtures(db);
    const file = await tempFile(
      "override.csv",
      [
        "unit,year,name,equipment_class,sub_class,active_usage_hours_per_week,note,__kg_co2eq_override__",
        'U1,2025,Laptop A,Laptop,Standard,40,"a note',
        'on two lines",42',
        "",
        "U1,2025,Laptop B,Laptop,Standard,40,,",
        "U1,2025,Laptop C,Laptop,Standard,lots,,",
        "U1,2025,Laptop D,Laptop,Standard,40,,many",
      ].join("\n"),
    );
    const result = await importEntriesFile(db, {
      file,
      format: "csv",
      det: getDataEntryType("it"),
      strict: false,
    });
    assert.equal(result.created, 2);
    assert.deepEqual(result.errors.map((e) => e.message), [
      'line 6: active_usage_hours_per_week: expected a number, got "lots"',
      'line 7: __kg_co2eq_override__: expected a finite decimal number of kg CO2-eq, got "many"',
    ]);
    const [overridden, computed] = await stored(db);
    assert.equal(overridden.data.__kg_co2eq_override__, 42);
    assert.equal(overridden.data.active_usage_hours_per_week, 40);
    assert.deepEqual(overridden.rows, [{ type: 80200, kg: 42, additional: null }]);
    assert.equal("__kg_co2eq_override__" in computed.data, false, "blank cell: no override");
    assertClose(computed.rows[0].kg, 54.912, "computed as usual");
  },
);

// ---- data the database cannot store (issue 7 item 13) ----------------------------------------

dbTest(
  testDb,
  "entries import: NUL, deep nesting and oversized entries are line errors, nothing lost",
  async (db) => {
    await withFixtures(db);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { x: deep };
    const file = await tempFile(
      "unstorable.jsonl",
      [
        line("it", { ...LAPTOP_DATA, note: "a\u0000b" }),
        line("it", { ...LAPTOP_DATA, deep }),
        JSON.stringify({ unit: "U\u0000", year: 2025, data_entry_type: "it", data: LAPTOP_DATA }),
        line("it", { ...LAPTOP_DATA, note: "x".repeat(MAX_LINE_LENGTH) }),
        line("it", { ...LAPTOP_DATA, note: "é".repeat(600_000) }),
        LAPTOP,
      ].join("\n"),
    );
    const result = await importEntriesFile(db, jsonl(file));
    assert.equal(result.created, 1);
    assert.deepEqual(result.errors.map((e) => e.line), [1, 2, 3, 4, 5]);
    assert.equal(
      result.errors[0].message,
      "line 1: note: contains a NUL character (\\u0000), which PostgreSQL cannot store",
    );
    assert.match(result.errors[1].message, /^line 2: deep(\.x)+: nested deeper than 32 levels$/);
    assert.match(result.errors[2].message, /^line 3: unit: contains a NUL character/);
    assert.match(result.errors[3].message, /^line 4: longer than 4194304 characters/);
    assert.match(result.errors[4].message, /^line 5: data: is 12\d{5} bytes as JSON; at most/);

    const csv = await tempFile(
      "unstorable.csv",
      [
        "unit,year,name,equipment_class,note",
        "U1,2025,Laptop,Laptop,a\u0000b",
        `U1,2025,Laptop,Laptop,${"x".repeat(1_100_000)}`,
        "U1,2025,Laptop,Laptop,fine",
      ].join("\n"),
    );
    const fromCsv = await importEntriesFile(db, {
      file: csv,
      format: "csv",
      det: getDataEntryType("it"),
      strict: false,
    });
    assert.equal(fromCsv.created, 1);
    assert.deepEqual(fromCsv.errors.map((e) => e.line), [2, 3]);
    assert.match(fromCsv.errors[0].message, /^line 2: note: contains a NUL character/);
    // The CSV reader's own cell limit (64 KiB) speaks first.
    assert.match(
      fromCsv.errors[1].message,
      /^line 3: note: is 1100000 bytes long, above the limit/,
    );
  },
);

dbTest(
  testDb,
  "entries import: a member id used twice names the entry and the line that holds it",
  async (db) => {
    await withFixtures(db);
    const file = await tempFile(
      "members.jsonl",
      [
        line("member", { user_institutional_id: "42", fte: 1 }),
        line("member", { user_institutional_id: "7", fte: 1 }),
        line("member", { user_institutional_id: "42", fte: 0.5 }),
      ].join("\n"),
    );
    const result = await importEntriesFile(db, jsonl(file, { batchSize: 1 }));
    assert.equal(result.created, 2);
    const [first] = await stored(db);
    assert.deepEqual(result.errors.map((e) => e.message), [
      `line 3: user_institutional_id: "42" is already used in this module by entry ${first.id} ` +
      "(line 1) (it must be unique per module)",
    ]);
  },
);

// ---- locks and stats -------------------------------------------------------------------------

dbTest(
  testDb,
  "entries import: every slice of the file is locked before anything is written",
  async (db) => {
    await withFixtures(db);
    // plane (20) comes first in the file, it (11) second: the import must ask for 11 first.
    const file = await tempFile("slices.jsonl", [PLANE, LAPTOP].join("\n"));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = db.sql.begin(async (tx) => {
      await lockSlice(tx, 11, 2025);
      locked();
      await released;
    });
    await isLocked;
    const importing = importEntriesFile(db, jsonl(file, { batchSize: 1 }));
    try {
      let requests: { det: number; granted: boolean; pid: number }[] = [];
      for (let i = 0; i < 400 && !requests.some((r) => !r.granted); i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        requests = (await db.sql<{ det: number; granted: boolean; pid: number }[]>`
          select classid::int - 310000 as det, granted, pid from pg_locks
          where locktype = 'advisory' and objsubid = 2 and classid between 310000 and 310100
            and database = (select oid from pg_database where datname = current_database())`)
          .map((r) => ({ ...r }));
      }
      const waiter = requests.find((r) => !r.granted);
      assert.ok(waiter, "the import waits for a slice");
      assert.deepEqual(
        requests.filter((r) => r.pid === waiter.pid).map((r) => [r.det, r.granted]),
        [[11, false]],
        "it waits for it (11) holding nothing, not plane (20) first",
      );
    } finally {
      release();
      await holder;
    }
    assert.equal((await importing).created, 2);
  },
  { ignore: !serverBackendExpected() },
);

dbTest(testDb, "entries import: module stats are refreshed, rollups excluded", async (db) => {
  await withFixtures(db);
  const file = await tempFile(
    "stats.jsonl",
    [LAPTOP, line("member", { fte: 1 })].join("\n"),
  );
  await importEntriesFile(db, jsonl(file));
  const modules = await db.sql<{ module_type_id: number; stats: Record<string, number> }[]>`
    select module_type_id, stats from carbon_report_modules order by module_type_id`;
  const [headcount, equipment] = modules;
  const [member] = (await stored(db)).filter((e) => e.det === 1);
  // The member's leaf rows, without its headcount rollup (40000).
  const leaves = member.rows.filter((r) => r.type !== 40000);
  assert.ok(member.rows.some((r) => r.type === 40000), "the member has a rollup row");
  assertClose(headcount.stats.total, leaves.reduce((sum, r) => sum + r.kg, 0), "headcount");
  assert.equal(headcount.stats.entry_count, 1);
  assertClose(equipment.stats.total, 54.912, "equipment");
});
