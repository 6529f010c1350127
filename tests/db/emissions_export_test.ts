import assert from "node:assert/strict";
import { join } from "node:path";
import {
  dbTest,
  holdInTransaction,
  runCaptured,
  runCli,
  runOn,
  serverBackendExpected,
  untilSomeoneWaitsForALock,
  useTestDatabase,
} from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { emissionsCommand } from "../../src/cli/emissions.ts";
import {
  EMISSION_EXPORT_COLUMNS,
  type EmissionExportFormat,
  exportEmissions,
} from "../../src/db/emissions_export.ts";
import { createEntries, type NewEntry } from "../../src/db/entries.ts";
import { parseCsv } from "../../src/imports/csv.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { importSeedFixtures } from "../../src/seed/seed.ts";

const testDb = useTestDatabase();

const tempDir = Deno.makeTempDirSync({ prefix: "rematch-emissions-" });
Deno.test.afterAll(() => Deno.remove(tempDir, { recursive: true }));

const entry = (det: string, data: Record<string, unknown>, unitCode = "U1", year = 2025) =>
  ({
    unitCode,
    year,
    det: getDataEntryType(det),
    data,
  }) satisfies NewEntry;

const GVA_CDG = { origin_iata: "GVA", destination_iata: "CDG", cabin_class: "economy" };
const GVA_LHR = {
  origin_iata: "GVA",
  destination_iata: "LHR",
  cabin_class: "Business",
  number_of_trips: 2,
};

/** Fixtures, two planes in the slice, and rows that must stay out of it. */
async function seedSlice(db: Database): Promise<{ cdg: number; lhr: number }> {
  await db.sql.begin((tx) => importSeedFixtures(tx, 2025));
  await db.sql.begin((tx) => importSeedFixtures(tx, 2024));
  const result = await db.sql.begin((tx) =>
    createEntries(tx, [
      entry("plane", GVA_CDG),
      entry("train", {
        origin_name: "Geneva",
        destination_name: "Lausanne",
        cabin_class: "second",
      }),
      entry("plane", GVA_LHR, "U2"),
      entry("plane", GVA_CDG, "U1", 2024),
    ])
  );
  assert.equal(result.rejected.length, 0);
  return { cdg: result.ids[0]!, lhr: result.ids[2]! };
}

function memorySink() {
  const chunks: Uint8Array[] = [];
  return {
    write(bytes: Uint8Array) {
      chunks.push(bytes.slice());
      return Promise.resolve(bytes.length);
    },
    text: () => chunks.map((c) => new TextDecoder().decode(c)).join(""),
  };
}

async function exported(db: Database, det: string, format: EmissionExportFormat, pageSize = 5000) {
  const sink = memorySink();
  const rows = await exportEmissions(
    db,
    { det: getDataEntryType(det).id, year: 2025, format },
    sink,
    pageSize,
  );
  return { rows, text: sink.text() };
}

async function factorId(db: Database, category: string, cabin: string): Promise<number> {
  const [row] = await db.sql<{ id: number }[]>`
    select id from factors where data_entry_type_id = 20 and year = 2025
      and classification->>'category' = ${category} and classification->>'cabin_class' = ${cabin}`;
  return row.id;
}

async function moduleOf(db: Database, entryId: number): Promise<number> {
  const [row] = await db.sql<{ id: number }[]>`
    select carbon_report_module_id as id from data_entries where id = ${entryId}`;
  return row.id;
}

dbTest(testDb, "emissions export: CSV columns and values of a tiny plane slice", async (db) => {
  const { cdg, lhr } = await seedSlice(db);
  const { rows, text } = await exported(db, "plane", "csv");
  assert.equal(rows, 2);
  const table = parseCsv("export.csv", text);
  assert.deepEqual(table.header, [
    "entry_id",
    "module_id",
    "unit_code",
    "data_entry_type",
    "emission_type_id",
    "emission_type",
    "primary_factor_id",
    "kg_co2eq",
    "additional_value",
    "scope",
  ]);
  const [first, second] = table.rows.map((r) => r.cells);
  // The spec's vector with the fixture factor: GVA → CDG 503 km, very_short_haul economy 0.13,
  // rfi 2.
  assert.deepEqual(first, {
    entry_id: String(cdg),
    module_id: String(await moduleOf(db, cdg)),
    unit_code: "U1",
    data_entry_type: "plane",
    emission_type_id: "50203",
    emission_type: "professional_travel__plane__eco",
    primary_factor_id: String(await factorId(db, "very_short_haul", "economy")),
    kg_co2eq: String(503 * 0.13 * 2),
    additional_value: "503",
    scope: "3",
  });
  // GVA → LHR: 849 km (short_haul), business 0.2, rfi 2, two trips.
  assert.equal(first.emission_type_id, "50203");
  assert.deepEqual(
    [second.entry_id, second.unit_code, second.emission_type_id, second.additional_value],
    [String(lhr), "U2", "50202", "1698"],
  );
  assert.equal(second.primary_factor_id, String(await factorId(db, "short_haul", "business")));
  assert.ok(Math.abs(Number(second.kg_co2eq) - 1698 * 0.2 * 2) < 1e-9);
});

dbTest(testDb, "emissions export: JSON array, ordering and keyset pages", async (db) => {
  const { cdg } = await seedSlice(db);
  const json = await exported(db, "plane", "json");
  const parsed = JSON.parse(json.text);
  assert.equal(parsed.length, 2);
  assert.deepEqual(Object.keys(parsed[0]), [...EMISSION_EXPORT_COLUMNS]);
  assert.equal(parsed[0].entry_id, cdg);
  assert.equal(parsed[0].kg_co2eq, 503 * 0.13 * 2);
  assert.equal(parsed[0].scope, 3);
  assert.equal(typeof parsed[0].primary_factor_id, "number");

  // A member entry: many rows per entry (several types, the rollup), plus building rows.
  await db.sql.begin((tx) =>
    createEntries(tx, [
      entry("member", { fte: 1 }),
      entry("member", { fte: 0.5 }, "U2"),
      entry("building", {
        building_name: "BC",
        room_name: "BC 010",
        room_type: "office",
        room_surface_square_meter: 18,
      }),
    ])
  );
  const whole = JSON.parse((await exported(db, "member", "json")).text);
  assert.ok(whole.length > 10);
  const order = whole.map((r: { entry_id: number; emission_type_id: number }) => [
    r.entry_id,
    r.emission_type_id,
  ]);
  const sorted = [...order].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  assert.deepEqual(order, sorted, "ordered by entry id then emission type");
  assert.ok(
    whole.some((r: { emission_type: string; scope: number | null }) =>
      r.emission_type === "headcount" && r.scope === null
    ),
  );
  // Pages of 3 rows give the same export as one page.
  assert.deepEqual(JSON.parse((await exported(db, "member", "json", 3)).text), whole);
  const paged = await exported(db, "member", "csv", 3);
  assert.equal(paged.text, (await exported(db, "member", "csv")).text);
  assert.equal(parseCsv("x.csv", paged.text).rows.length, whole.length);

  // Embodied energy: one row per factor, all of one type; the row id keeps the order total.
  const embodied = JSON.parse((await exported(db, "building_embodied_energy", "json", 2)).text);
  assert.equal(embodied.length, 5);
  assert.ok(embodied.every((r: { emission_type_id: number }) => r.emission_type_id === 60300));

  // An empty slice: a header alone, or an empty array.
  assert.equal((await exported(db, "it", "csv")).text, `${EMISSION_EXPORT_COLUMNS.join(",")}\n`);
  assert.deepEqual(JSON.parse((await exported(db, "it", "json")).text), []);

  // A page size that reads nothing is refused, not taken for an empty slice.
  for (const pageSize of [0, -1, 2.5, NaN]) {
    await assert.rejects(
      () => exported(db, "member", "csv", pageSize),
      (e) => e instanceof RangeError && /^pageSize: expected a positive integer/.test(e.message),
    );
  }
});

dbTest(testDb, "emissions CLI: export to a file, summary, usage errors", async (db) => {
  await seedSlice(db);
  const csv = join(tempDir, "plane.csv");
  const argv = ["export", "--det", "plane", "--year", "2025", "--output", csv];
  const written = await runOn(emissionsCommand, db, argv);
  assert.equal(written.exitCode, 0);
  assert.match(written.text, /^2 emission rows of plane 2025 written to .*plane\.csv \(csv\)$/);
  const table = parseCsv(csv, await Deno.readTextFile(csv));
  assert.deepEqual(table.rows.map((r) => r.cells.additional_value), ["503", "1698"]);

  const jsonFile = join(tempDir, "plane.json");
  const summary = await runOn(
    emissionsCommand,
    db,
    ["export", "--det", "20", "--year", "2025", "--format", "json", "--output", jsonFile],
    true,
  );
  assert.deepEqual(summary.json, {
    dataEntryType: "plane",
    year: 2025,
    format: "json",
    rows: 2,
    output: jsonFile,
  });
  assert.equal(JSON.parse(await Deno.readTextFile(jsonFile)).length, 2);

  for (
    const [argv, message] of [
      [["export", "--year", "2025"], /--det: is required/],
      [["export", "--det", "plane"], /--year: is required/],
      [["export", "--det", "rocket", "--year", "2025"], /--det: unknown data entry type/],
      [["export", "--det", "plane", "--year", "2025", "--format", "xml"], /--format: expected/],
      [["import", "--det", "plane", "--year", "2025"], /arguments: expected "export"/],
      [["export", "--det", "plane", "--year", "2025", "--json"], /--json needs --output FILE/],
    ] as const
  ) {
    const usage = await runCli(emissionsCommand, [...argv]);
    assert.equal(usage.code, 2, argv.join(" "));
    assert.match(usage.err + usage.out, message);
  }
});

/** `emissions export` of plane 2025 to `output`. */
const exportTo = (output: string) => [
  "export",
  "--det",
  "plane",
  "--year",
  "2025",
  "--output",
  output,
];

dbTest(
  testDb,
  "emissions export: an export that fails or is interrupted leaves its output file as it was",
  async (db) => {
    await seedSlice(db);
    const dir = await Deno.makeTempDir({ dir: tempDir });
    const out = join(dir, "plane.csv");
    await Deno.writeTextFile(out, "the export of yesterday\n");
    // The export waits for the emission rows (locked here) with its file open; SIGINT ends it.
    const held = await holdInTransaction(
      db,
      (tx) => tx`lock table data_entry_emissions in access exclusive mode`,
    );
    const script = new URL("../../scripts/emissions.ts", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-q", "-A", script, ...exportTo(out)],
      env: { DATABASE_URL: testDb.current.url! },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    try {
      await untilSomeoneWaitsForALock(db);
      child.kill("SIGINT");
    } finally {
      const ended = await child.output();
      await held.release();
      assert.equal(ended.code, 130, new TextDecoder().decode(ended.stderr));
    }
    assert.equal(await Deno.readTextFile(out), "the export of yesterday\n");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["plane.csv"]);

    // A failing export (a directory has the output's name) leaves nothing of its own either.
    const taken = join(dir, "taken.csv");
    await Deno.mkdir(taken);
    const failed = await runCaptured(emissionsCommand, [
      ...exportTo(taken),
      "--database-url",
      testDb.current.url!,
    ]);
    assert.equal(failed.code, 1, failed.err);
    assert.match(failed.err, /taken\.csv/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "plane.csv",
      "taken.csv",
    ]);

    const done = await runOn(emissionsCommand, db, exportTo(out));
    assert.equal(done.exitCode, 0);
    assert.match(await Deno.readTextFile(out), /^entry_id,module_id,/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "plane.csv",
      "taken.csv",
    ]);
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "emissions export: a file replaced keeps its permissions; through a link, its target is written",
  async (db) => {
    await seedSlice(db);
    const dir = await Deno.makeTempDir({ dir: tempDir });
    const privateFile = join(dir, "private.csv");
    await Deno.writeTextFile(privateFile, "old\n", { mode: 0o600 });
    await Deno.chmod(privateFile, 0o600);
    assert.equal((await runOn(emissionsCommand, db, exportTo(privateFile))).exitCode, 0);
    assert.equal((await Deno.stat(privateFile)).mode! & 0o777, 0o600);
    assert.match(await Deno.readTextFile(privateFile), /^entry_id,/);

    const target = join(dir, "2025.csv");
    await Deno.writeTextFile(target, "old\n");
    const link = join(dir, "latest.csv");
    await Deno.symlink(target, link);
    assert.equal((await runOn(emissionsCommand, db, exportTo(link))).exitCode, 0);
    assert.ok((await Deno.lstat(link)).isSymlink, "still a link");
    assert.match(await Deno.readTextFile(target), /^entry_id,/);
    // A link to nothing yet: its target is created, the link stays.
    const dangling = join(dir, "next.csv");
    await Deno.symlink(join(dir, "2026.csv"), dangling);
    assert.equal((await runOn(emissionsCommand, db, exportTo(dangling))).exitCode, 0);
    assert.ok((await Deno.lstat(dangling)).isSymlink, "still a link");
    assert.match(await Deno.readTextFile(join(dir, "2026.csv")), /^entry_id,/);
    // Only the files named: no partial file left beside any of them.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "2025.csv",
      "2026.csv",
      "latest.csv",
      "next.csv",
      "private.csv",
    ]);
  },
);
