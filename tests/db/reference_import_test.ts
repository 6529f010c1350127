// Reference imports end to end: the commands as `deno task` runs them (runCommand), on the
// fixture files and on temporary files, against this test file's database.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { dbTest, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { type CommandSpec, EXIT, runCommand } from "../../src/cli/command.ts";
import { locationsCommand, ratesCommand, roomsCommand } from "../../src/cli/reference.ts";
import { loadReferenceData } from "../../src/db/reference.ts";
import { rateKey, roomKey, stationLookupKey } from "../../src/reference/natural_key.ts";

const testDb = useTestDatabase();

const fixture = (name: string) =>
  fileURLToPath(new URL(`../../fixtures/reference/${name}`, import.meta.url));

/** The command as shipped, its database swapped for the test file's. */
function against<T>(spec: CommandSpec<T>, db: Database): CommandSpec<T> {
  return {
    ...spec,
    run: (args, context) => spec.run(args, { ...context, database: () => Promise.resolve(db) }),
  };
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command, capturing what it prints. */
async function run<T>(spec: CommandSpec<T>, db: Database, argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...args: unknown[]) => out.push(args.join(" "));
  console.error = (...args: unknown[]) => err.push(args.join(" "));
  try {
    const code = await runCommand(against(spec, db), argv);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** Runs with --json and returns the exit code and the one JSON document. */
async function runJson<T>(spec: CommandSpec<T>, db: Database, argv: string[]) {
  const { code, stdout } = await run(spec, db, [...argv, "--json"]);
  return { code, json: JSON.parse(stdout) };
}

async function tempFile(suffix: string, text: string): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "rematch-reference-", suffix });
  await Deno.writeTextFile(path, text);
  return path;
}

async function count(db: Database, table: string): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from ${db.sql(table)}`;
  return row.n;
}

dbTest(testDb, "reference import: the fixture files load and are read back once", async (db) => {
  const locations = await runJson(locationsCommand, db, ["import", fixture("locations.csv")]);
  assert.equal(locations.code, EXIT.ok);
  assert.deepEqual(
    { ...locations.json, file: undefined },
    {
      kind: "locations",
      file: undefined,
      written: true,
      rowsRead: 83,
      inserted: 83,
      updated: 0,
      unchanged: 0,
      rowErrors: [],
      rowErrorsCount: 0,
      // No entries yet: no slice left stale.
      leftStale: { slices: [], command: null },
    },
  );
  const rooms = await runJson(roomsCommand, db, ["import", fixture("rooms.csv")]);
  assert.equal(rooms.code, EXIT.ok);
  assert.equal(rooms.json.inserted, 30);
  const rates = await runJson(ratesCommand, db, ["import", fixture("rates.csv")]);
  assert.equal(rates.code, EXIT.ok);
  assert.equal(rates.json.inserted, 18);

  const reference = await loadReferenceData(db.sql, ["locations", "rooms", "rates"]);
  assert.equal(reference.locations.size, 83);
  const gva = reference.locations.get("plane:GVA");
  assert.ok(gva);
  assert.deepEqual({ ...gva, id: typeof gva.id }, {
    id: "number",
    transportMode: "plane",
    name: "Geneva",
    iataCode: "GVA",
    countryCode: "CH",
    latitude: 46.2381,
    longitude: 6.109,
    naturalKey: "plane:GVA",
  });
  const zurich = reference.locations.get(stationLookupKey("ch", " zürich "));
  assert.equal(zurich?.name, "Zürich");
  assert.equal(zurich?.transportMode, "train");
  assert.deepEqual([zurich?.latitude, zurich?.longitude], [47.3779, 8.5403]);
  assert.deepEqual(reference.rooms.get(roomKey("BC", "BC 010")), {
    buildingName: "BC",
    roomName: "BC 010",
    roomType: "office",
    surfaceSquareMeter: 18,
  });
  assert.equal(reference.rates.size, 18);
  assert.equal(reference.rates.get(rateKey(2025, "chf")), 1 / 0.95, "float8 keeps every digit");

  const only2024 = await loadReferenceData(db.sql, ["rates"], { years: [2024] });
  assert.equal(only2024.rates.size, 9);
  assert.equal(only2024.rates.get("2024:usd"), 0.9239);
  assert.equal(only2024.locations.size, 0, "kinds not asked for are empty");
  assert.equal(only2024.rooms.size, 0);
});

dbTest(testDb, "reference import: a re-import updates in place and keeps ids", async (db) => {
  assert.equal((await run(locationsCommand, db, ["import", fixture("locations.csv")])).code, 0);
  const idsBefore = new Map(
    (await db.sql<{ natural_key: string; id: number }[]>`select natural_key, id from locations`)
      .map((r) => [r.natural_key, r.id]),
  );
  const path = await tempFile(
    ".csv",
    `transport_mode,name,iata_code,country_code,latitude,longitude
plane,Genève Aéroport,GVA,CH,46.2380,6.1089
train,ZÜRICH,,CH,47.3780,8.5404
plane,Geneva,GVA,CH,46.2381,6.1090
train,Visp,,CH,46.2940,7.8813
plane,Lausanne Blécherette,,ch,46.5453,6.6167
`,
  );
  try {
    const { code, json } = await runJson(locationsCommand, db, ["import", path]);
    assert.equal(code, EXIT.partial, "the repeated GVA row is a row error");
    assert.deepEqual(
      { inserted: json.inserted, updated: json.updated, unchanged: json.unchanged },
      { inserted: 2, updated: 2, unchanged: 0 },
    );
    assert.deepEqual(json.rowErrors, [
      {
        row: 3,
        line: 4,
        message: 'repeats natural key "plane:GVA" of row 1 (line 2; row 1 is kept)',
      },
    ]);
    const rows = await db.sql<
      { natural_key: string; id: number; name: string; latitude: number }[]
    >`select natural_key, id, name, latitude from locations
      where natural_key in ('plane:GVA', 'train:ch:zürich', 'train:ch:visp', 'plane:ch:lausanne blécherette')
      order by natural_key`;
    assert.deepEqual(rows.map((r) => ({ ...r })), [
      {
        natural_key: "plane:GVA",
        id: idsBefore.get("plane:GVA"),
        name: "Genève Aéroport",
        latitude: 46.238,
      },
      {
        natural_key: "plane:ch:lausanne blécherette",
        id: rows[1].id,
        name: "Lausanne Blécherette",
        latitude: 46.5453,
      },
      { natural_key: "train:ch:visp", id: rows[2].id, name: "Visp", latitude: 46.294 },
      {
        natural_key: "train:ch:zürich",
        id: idsBefore.get("train:ch:zürich"),
        name: "ZÜRICH",
        latitude: 47.378,
      },
    ]);
    assert.ok(!idsBefore.has("train:ch:visp"));
    assert.equal(await count(db, "locations"), 85);

    // The same file again: nothing changes, so nothing is rewritten.
    const again = await runJson(locationsCommand, db, ["import", path]);
    assert.deepEqual(
      {
        inserted: again.json.inserted,
        updated: again.json.updated,
        unchanged: again.json.unchanged,
      },
      { inserted: 0, updated: 0, unchanged: 4 },
    );
  } finally {
    await Deno.remove(path);
  }
});

dbTest(testDb, "reference import: rooms and rates upsert by their keys", async (db) => {
  await run(roomsCommand, db, ["import", fixture("rooms.csv")]);
  await run(ratesCommand, db, ["import", fixture("rates.csv")]);
  const [roomBefore] = await db.sql`select id from building_rooms where room_name = 'BC 010'`;
  const rooms = await tempFile(
    ".csv",
    "building_name,room_name,room_type,room_surface_square_meter\nBC,BC 010,Laboratories,\nBC,BC 999,,7\n",
  );
  const rates = await tempFile(".csv", "year,currency,eur_per_unit\n2025,CHF,1.07\n2026,chf,1.1\n");
  try {
    const r = await runJson(roomsCommand, db, ["import", rooms]);
    assert.equal(r.code, EXIT.ok);
    assert.deepEqual([r.json.inserted, r.json.updated, r.json.unchanged], [1, 1, 0]);
    const [room] = await db.sql`
      select id, room_type, room_surface_square_meter from building_rooms where room_name = 'BC 010'`;
    assert.deepEqual({ ...room }, {
      id: roomBefore.id,
      room_type: "laboratories",
      room_surface_square_meter: null,
    });
    const x = await runJson(ratesCommand, db, ["import", rates]);
    assert.deepEqual([x.json.inserted, x.json.updated, x.json.unchanged], [1, 1, 0]);
    const reference = await loadReferenceData(db.sql, ["rates"], { years: [2025, 2026] });
    assert.equal(reference.rates.get("2025:chf"), 1.07);
    assert.equal(reference.rates.get("2026:chf"), 1.1);
    assert.equal(reference.rates.size, 10);
  } finally {
    await Deno.remove(rooms);
    await Deno.remove(rates);
  }
});

dbTest(testDb, "reference import: --strict with a bad row writes nothing (exit 1)", async (db) => {
  const path = await tempFile(
    ".csv",
    "year,currency,eur_per_unit\n2025,chf,1.05\n2025,usd,-1\n2025,gbp,1.17\n",
  );
  try {
    const strict = await runJson(ratesCommand, db, ["import", path, "--strict"]);
    assert.equal(strict.code, EXIT.failed);
    assert.equal(strict.json.written, false);
    assert.deepEqual([strict.json.inserted, strict.json.rowErrorsCount], [0, 1]);
    assert.deepEqual(strict.json.rowErrors, [
      {
        row: 2,
        line: 3,
        column: "eur_per_unit",
        message: 'expected a finite number > 0 (EUR per unit), got "-1"',
      },
    ]);
    assert.equal(await count(db, "exchange_rates"), 0);

    // Without --strict the good rows go in and the exit code says some were skipped.
    const loose = await run(ratesCommand, db, ["import", path]);
    assert.equal(loose.code, EXIT.partial);
    assert.match(loose.stdout, /3 rows read, 2 inserted, 0 updated, 0 unchanged/);
    assert.match(loose.stdout, /line 3, column eur_per_unit: expected a finite number > 0/);
    assert.equal(await count(db, "exchange_rates"), 2);
  } finally {
    await Deno.remove(path);
  }
});

dbTest(testDb, "reference import: a file error writes nothing (exit 1)", async (db) => {
  const missing = await tempFile(
    ".csv",
    "transport_mode,name,latitude,longitude\ntrain,Bern,46.9,7.4\n",
  );
  const notUtf8 = await Deno.makeTempFile({ suffix: ".csv" });
  await Deno.writeFile(notUtf8, new Uint8Array([0x79, 0x65, 0x61, 0x72, 0x0a, 0xff, 0xfe, 0x0a]));
  try {
    const columns = await runJson(locationsCommand, db, ["import", missing]);
    assert.equal(columns.code, EXIT.failed);
    assert.equal(columns.json.error.code, "FileError");
    assert.match(columns.json.error.message, /missing required columns iata_code, country_code/);
    const bytes = await run(locationsCommand, db, ["import", notUtf8]);
    assert.equal(bytes.code, EXIT.failed);
    assert.match(bytes.stderr, /is not valid UTF-8/);
    const absent = await run(roomsCommand, db, ["import", `${missing}.absent`]);
    assert.equal(absent.code, EXIT.failed);
    assert.match(absent.stderr, /cannot be read/);
    assert.equal(await count(db, "locations"), 0);
  } finally {
    await Deno.remove(missing);
    await Deno.remove(notUtf8);
  }
});

dbTest(testDb, "reference import: bad usage exits 2", async (db) => {
  for (
    const [argv, message] of [
      [[], /expected import FILE/],
      [["export", "x.csv"], /unknown action "export": expected import/],
      [["import"], /expected FILE after import/],
      [["import", "a.csv", "b.csv"], /unexpected argument "b.csv"/],
      [["import", "a.csv", "--replace"], /unknown flag --replace/],
    ] as const
  ) {
    const { code, stderr } = await run(ratesCommand, db, [...argv]);
    assert.equal(code, EXIT.usage, argv.join(" "));
    assert.match(stderr, message);
    // One line: what is wrong, then where the help is (not the whole usage text).
    assert.match(stderr, /^rates: [^\n]*; see deno task rates --help$/);
  }
});

dbTest(
  testDb,
  "reference import: JSON lines and awkward text survive the round trip",
  async (db) => {
    const names = ['Quote " and, comma', "Back\\slash {braces}", "NULL", "Ünïcödé  spaced"];
    const path = await tempFile(
      ".jsonl",
      names.map((name, i) =>
        JSON.stringify({
          transport_mode: "train",
          name,
          country_code: "fr",
          latitude: 45 + i,
          longitude: -1.5,
        })
      ).join("\n") + "\n",
    );
    try {
      const { code, json } = await runJson(locationsCommand, db, ["import", path]);
      assert.equal(code, EXIT.ok);
      assert.equal(json.inserted, 4);
      const reference = await loadReferenceData(db.sql, ["locations"]);
      for (const [i, name] of names.entries()) {
        const station = reference.locations.get(stationLookupKey("FR", name));
        assert.equal(station?.name, name);
        assert.equal(station?.iataCode, null);
        assert.equal(station?.countryCode, "FR");
        assert.equal(station?.latitude, 45 + i);
      }
    } finally {
      await Deno.remove(path);
    }
  },
);

dbTest(testDb, "reference import: loadReferenceData reads inside a transaction too", async (db) => {
  await run(ratesCommand, db, ["import", fixture("rates.csv")]);
  const reference = await db.sql.begin((tx) => loadReferenceData(tx, ["rates", "rates"]));
  assert.equal(reference.rates.size, 18);
});

dbTest(testDb, "reference import: a rate year outside 1990..2100 is a row error", async (db) => {
  const path = await tempFile(
    ".csv",
    "year,currency,eur_per_unit\n2025,chf,1.05\n0000,usd,0.9\n2101,gbp,1.17\n",
  );
  try {
    const { code, json } = await runJson(ratesCommand, db, ["import", path]);
    assert.equal(code, EXIT.partial);
    assert.deepEqual(
      json.rowErrors.map((e: { line: number; column: string }) => [e.line, e.column]),
      [[3, "year"], [4, "year"]],
    );
    const years = await db.sql`select year from exchange_rates order by year`;
    assert.deepEqual(years.map((r) => r.year), [2025]);
  } finally {
    await Deno.remove(path);
  }
});
