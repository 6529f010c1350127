import assert from "node:assert/strict";
import { MAX_LISTED_ROW_ERRORS } from "./csv.ts";
import { FileError } from "./csv.ts";
import { parseReferenceText } from "./reference_csv.ts";

const LOCATIONS_HEADER = "transport_mode,name,iata_code,country_code,latitude,longitude";
const ROOMS_HEADER = "building_name,room_name,room_type,room_surface_square_meter";
const RATES_HEADER = "year,currency,eur_per_unit";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../../fixtures/reference/${name}`, import.meta.url));

Deno.test("reference csv: the fixture files parse without a row error", () => {
  const locations = parseReferenceText("locations", "locations.csv", fixture("locations.csv"));
  assert.equal(locations.rowsRead, 83);
  assert.equal(locations.rows.length, 83);
  assert.equal(locations.rowErrorsCount, 0);
  assert.deepEqual(locations.rows[0], {
    transportMode: "plane",
    name: "Geneva",
    iataCode: "GVA",
    countryCode: "CH",
    latitude: 46.2381,
    longitude: 6.109,
    naturalKey: "plane:GVA",
  });
  const rooms = parseReferenceText("rooms", "rooms.csv", fixture("rooms.csv"));
  assert.equal(rooms.rows.length, 30);
  assert.equal(rooms.rowErrorsCount, 0);
  const rates = parseReferenceText("rates", "rates.csv", fixture("rates.csv"));
  assert.equal(rates.rows.length, 18);
  assert.deepEqual(rates.rows.find((r) => r.year === 2025 && r.currency === "chf"), {
    year: 2025,
    currency: "chf",
    eurPerUnit: 1 / 0.95,
  });
});

Deno.test("reference csv: locations normalise case and derive the natural key", () => {
  const parsed = parseReferenceText(
    "locations",
    "l.csv",
    `country_code,latitude,longitude,transport_mode,name,iata_code,comment
ch,46.2381,6.1090,PLANE,Geneva,gva,ignored
ch,47.3779,8.5403,Train, Zürich  HB ,,
,-33.9,151.17,plane,Somewhere,,`,
  );
  assert.equal(parsed.rowErrorsCount, 0);
  assert.deepEqual(parsed.rows.map((r) => [r.transportMode, r.iataCode, r.countryCode]), [
    ["plane", "GVA", "CH"],
    ["train", null, "CH"],
    ["plane", null, null],
  ]);
  assert.deepEqual(parsed.rows.map((r) => r.naturalKey), [
    "plane:GVA",
    "train:ch:zürich hb",
    "plane::somewhere",
  ]);
  assert.equal(parsed.rows[1].name, "Zürich  HB", "the stored name keeps its inner spacing");
});

Deno.test("reference csv: each bad location cell is reported with its column and value", () => {
  const parsed = parseReferenceText(
    "locations",
    "l.csv",
    `${LOCATIONS_HEADER}
bus,Geneva,GVA,CH,46.2,6.1
plane,,GVA,CH,46.2,6.1
plane,Geneva,GV,CHE,91,-180.5
train,Bern,,CH,abc,0x10
train,Basel,,CH,,1e999`,
  );
  assert.equal(parsed.rows.length, 0);
  assert.deepEqual(parsed.rowErrors, [
    { row: 1, line: 2, column: "transport_mode", message: 'expected plane or train, got "bus"' },
    {
      row: 2,
      line: 3,
      column: "name",
      message: "is required: expected the airport's or station's name",
    },
    {
      row: 3,
      line: 4,
      column: "iata_code",
      message: 'expected a 3-letter IATA code or a blank cell, got "GV"',
    },
    {
      row: 3,
      line: 4,
      column: "country_code",
      message: 'expected a 2-letter ISO 3166-1 country code or a blank cell, got "CHE"',
    },
    {
      row: 3,
      line: 4,
      column: "latitude",
      message: 'expected a latitude in degrees from -90 to 90, got "91"',
    },
    {
      row: 3,
      line: 4,
      column: "longitude",
      message: 'expected a longitude in degrees from -180 to 180, got "-180.5"',
    },
    {
      row: 4,
      line: 5,
      column: "latitude",
      message: 'expected a latitude in degrees from -90 to 90, got "abc"',
    },
    {
      row: 4,
      line: 5,
      column: "longitude",
      message: 'expected a longitude in degrees from -180 to 180, got "0x10"',
    },
    {
      row: 5,
      line: 6,
      column: "latitude",
      message: "is required: expected a latitude in degrees from -90 to 90",
    },
    {
      row: 5,
      line: 6,
      column: "longitude",
      message: 'expected a longitude in degrees from -180 to 180, got "1e999"',
    },
  ]);
  assert.equal(parsed.rowErrorsCount, 10, "a row with several bad cells counts each of them");
  assert.equal(parsed.rowsRead, 5);
});

Deno.test("reference csv: the latitude and longitude bounds are inclusive", () => {
  const parsed = parseReferenceText(
    "locations",
    "l.csv",
    `${LOCATIONS_HEADER}\ntrain,North,,NO,90,-180\ntrain,South,,AQ,-90,180`,
  );
  assert.equal(parsed.rowErrorsCount, 0);
  assert.deepEqual(parsed.rows.map((r) => [r.latitude, r.longitude]), [[90, -180], [-90, 180]]);
});

Deno.test("reference csv: a repeated key is an error on the later row naming the first", () => {
  const parsed = parseReferenceText(
    "locations",
    "l.csv",
    `${LOCATIONS_HEADER}
plane,Geneva,GVA,CH,46.2381,6.1090
train,Zürich,,CH,47.3779,8.5403
plane,Genève Cointrin,gva,CH,46.2,6.1
train, zürich ,,ch,47.0,8.0`,
  );
  assert.deepEqual(parsed.rows.map((r) => r.name), ["Geneva", "Zürich"]);
  assert.deepEqual(parsed.rowErrors, [
    {
      row: 3,
      line: 4,
      message: 'repeats natural key "plane:GVA" of row 1 (line 2; row 1 is kept)',
    },
    {
      row: 4,
      line: 5,
      message: 'repeats natural key "train:ch:zürich" of row 2 (line 3; row 2 is kept)',
    },
  ]);
});

Deno.test("reference csv: rooms lower-case the room type and allow blank type and surface", () => {
  const parsed = parseReferenceText(
    "rooms",
    "r.csv",
    `${ROOMS_HEADER}
BC,BC 010,Office,18.5
BC,BC 011,,
BC,BC 012,kitchen,-1
BC,BC 010,office,20
,BC 013,office,abc`,
  );
  assert.deepEqual(parsed.rows, [
    { buildingName: "BC", roomName: "BC 010", roomType: "office", surfaceSquareMeter: 18.5 },
    { buildingName: "BC", roomName: "BC 011", roomType: null, surfaceSquareMeter: null },
  ]);
  assert.deepEqual(parsed.rowErrors, [
    {
      row: 3,
      line: 4,
      column: "room_type",
      message:
        'expected one of office, miscellaneous, laboratories, archives, libraries, auditoriums or a blank cell, got "kitchen"',
    },
    {
      row: 3,
      line: 4,
      column: "room_surface_square_meter",
      message: 'expected a surface in m² ≥ 0 or a blank cell, got "-1"',
    },
    {
      row: 4,
      line: 5,
      message: 'repeats room "BC 010" of building "BC" of row 1 (line 2; row 1 is kept)',
    },
    {
      row: 5,
      line: 6,
      column: "building_name",
      message: "is required: expected the building's name",
    },
    {
      row: 5,
      line: 6,
      column: "room_surface_square_meter",
      message: 'expected a surface in m² ≥ 0 or a blank cell, got "abc"',
    },
  ]);
});

Deno.test("reference csv: rates lower-case the currency and need a positive finite rate", () => {
  const parsed = parseReferenceText(
    "rates",
    "x.csv",
    `${RATES_HEADER}
2025,USD,0.885
25,usd,1
2025,euro,1
2024,eur,0
2024,gbp,-1.2
2024,jpy,
2025,usd,0.9
0000,chf,1
2101,chf,1
2025,EUR,1
2024,eur,2`,
  );
  assert.deepEqual(parsed.rows, [
    { year: 2025, currency: "usd", eurPerUnit: 0.885 },
    { year: 2025, currency: "eur", eurPerUnit: 1 },
  ]);
  assert.deepEqual(parsed.rowErrors, [
    { row: 2, line: 3, column: "year", message: 'expected a year from 1990 to 2100, got "25"' },
    {
      row: 3,
      line: 4,
      column: "currency",
      message: 'expected a 3-letter ISO 4217 currency code, got "euro"',
    },
    {
      row: 4,
      line: 5,
      column: "eur_per_unit",
      message: 'expected a finite number > 0 (EUR per unit), got "0"',
    },
    {
      row: 5,
      line: 6,
      column: "eur_per_unit",
      message: 'expected a finite number > 0 (EUR per unit), got "-1.2"',
    },
    {
      row: 6,
      line: 7,
      column: "eur_per_unit",
      message: "is required: expected a finite number > 0 (EUR per unit)",
    },
    { row: 7, line: 8, message: "repeats the 2025 rate of usd of row 1 (line 2; row 1 is kept)" },
    { row: 8, line: 9, column: "year", message: 'expected a year from 1990 to 2100, got "0000"' },
    { row: 9, line: 10, column: "year", message: 'expected a year from 1990 to 2100, got "2101"' },
    {
      row: 11,
      line: 12,
      column: "eur_per_unit",
      message: "the rate of eur is 1 by definition (EUR is the unit of every rate)",
    },
  ]);
});

Deno.test("reference csv: 100 row errors are listed, all are counted", () => {
  const lines = Array.from({ length: 150 }, (_, i) => `2025,c${i},1`);
  const parsed = parseReferenceText("rates", "x.csv", `${RATES_HEADER}\n${lines.join("\n")}`);
  assert.equal(parsed.rowsRead, 150);
  assert.equal(parsed.rowErrors.length, MAX_LISTED_ROW_ERRORS);
  assert.equal(parsed.rowErrorsCount, 150);
  assert.equal(parsed.rowErrors.at(-1)?.row, 100);
});

Deno.test("reference csv: file-level problems throw FileError", () => {
  assert.throws(
    () => parseReferenceText("rates", "x.csv", "year,currency\n2025,chf\n"),
    (error: unknown) =>
      error instanceof FileError && /missing required column eur_per_unit/.test(error.message),
  );
  assert.throws(
    () => parseReferenceText("locations", "x.csv", "transport_mode,name,latitude,longitude\n"),
    /missing required columns iata_code, country_code/,
    "every column of the kind must be in the header, even those whose cells may be blank",
  );
  assert.throws(() => parseReferenceText("rooms", "x.csv", ""), FileError);
  assert.throws(() => parseReferenceText("rooms", "x.jsonl", "\n  \n"), FileError);
});

Deno.test("reference csv: a header without rows is an empty, valid file", () => {
  const parsed = parseReferenceText("rooms", "x.csv", `${ROOMS_HEADER}\n`);
  assert.deepEqual({ ...parsed }, {
    kind: "rooms",
    rows: [],
    rowsRead: 0,
    rowErrors: [],
    rowErrorsCount: 0,
  });
});

Deno.test("reference csv: JSON lines take the same fields, numbers and nulls allowed", () => {
  const text = [
    '{"transport_mode": "plane", "name": "Geneva", "iata_code": "gva", "country_code": "CH", "latitude": 46.2381, "longitude": 6.109}',
    "",
    '{"transport_mode": "train", "name": " Lausanne ", "iata_code": null, "country_code": "ch", "latitude": "46.5167", "longitude": 6.6322}',
    "{not json",
    "[1, 2]",
    '{"transport_mode": "train", "name": true, "country_code": "CH", "latitude": 1, "longitude": 1}',
    '{"transport_mode": "train", "name": "Bern", "latitude": 100, "longitude": 1}',
  ].join("\r\n");
  const parsed = parseReferenceText("locations", "stations.JSONL", text);
  assert.equal(parsed.rowsRead, 6, "blank lines are not rows");
  assert.deepEqual(parsed.rows.map((r) => [r.naturalKey, r.name, r.latitude, r.iataCode]), [
    ["plane:GVA", "Geneva", 46.2381, "GVA"],
    ["train:ch:lausanne", "Lausanne", 46.5167, null],
  ]);
  // Rows are numbered by line, so a person finds them in an editor.
  assert.deepEqual(parsed.rowErrors.map((e) => [e.row, e.line, e.column]), [
    [4, 4, undefined],
    [5, 5, undefined],
    [6, 6, "name"],
    [7, 7, "latitude"],
  ]);
  assert.match(parsed.rowErrors[0].message, /^is not valid JSON: /);
  assert.equal(
    parsed.rowErrors[1].message,
    "expected a JSON object with fields transport_mode, name, iata_code, country_code, latitude, longitude",
  );
  assert.equal(parsed.rowErrors[2].message, "expected a string or a number, got true");
});

Deno.test("reference csv: a column the import ignores is never judged; JSON lines end at a lone CR", () => {
  const csv = parseReferenceText(
    "rates",
    "r.csv",
    `year,currency,eur_per_unit,note\n2025,chf,1.05,${"x".repeat(70_000)}\n2025,usd,0.9,a\u0000b\n`,
  );
  assert.deepEqual(csv.rowErrors, []);
  assert.deepEqual(csv.rows.map((r) => r.currency), ["chf", "usd"]);
  // Whatever its name.
  const proto = parseReferenceText(
    "rates",
    "p.csv",
    "year,__proto__,currency,eur_per_unit,constructor\n2025,x,chf,1.05,y\n",
  );
  assert.deepEqual(proto.rowErrors, []);
  assert.deepEqual(proto.rows, [{ year: 2025, currency: "chf", eurPerUnit: 1.05 }]);
  const jsonl = parseReferenceText(
    "rates",
    "r.jsonl",
    '{"year": 2025, "currency": "chf", "eur_per_unit": 1.05}\r{not json\r' +
      '{"year": 2025, "currency": "usd", "eur_per_unit": 0.9}\r',
  );
  assert.deepEqual(jsonl.rows.map((r) => r.currency), ["chf", "usd"]);
  assert.deepEqual(jsonl.rowErrors.map((e) => e.line), [2]);
});

Deno.test("reference csv: .ndjson is JSON lines too, with a leading BOM dropped", () => {
  const parsed = parseReferenceText(
    "rates",
    "rates.ndjson",
    '\uFEFF{"year": 2025, "currency": "CHF", "eur_per_unit": 1.0526315789473684}\n',
  );
  assert.deepEqual(parsed.rows, [{ year: 2025, currency: "chf", eurPerUnit: 1 / 0.95 }]);
});

Deno.test("reference csv: cells and keys the database cannot store are row errors", () => {
  const long = "Gare ".repeat(450); // 2250 bytes: a station key PostgreSQL could not index
  const csv = parseReferenceText(
    "locations",
    "l.csv",
    `${LOCATIONS_HEADER}
train,${long},,CH,46.2,6.1
train,Gen\u0000ève,,CH,46.2,6.1
plane,${"x".repeat(70_000)},GVA,CH,46.2,6.1
plane,${long},GVA,CH,46.2,6.1
`,
  );
  // An airport's key is its IATA code: a long airport name is stored as it is.
  assert.deepEqual(csv.rows.map((r) => r.naturalKey), ["plane:GVA"]);
  assert.deepEqual(csv.rowErrors.map((e) => [e.line, e.column]), [
    [2, "name"],
    [3, "name"],
    [4, "name"],
  ]);
  assert.match(csv.rowErrors[0].message, /the natural key is 22\d\d bytes long/);
  assert.match(csv.rowErrors[1].message, /NUL character/);
  assert.match(csv.rowErrors[2].message, /70000 bytes long/);

  const jsonl = parseReferenceText(
    "rooms",
    "r.jsonl",
    [
      JSON.stringify({ building_name: "BC", room_name: "a\u0000b" }),
      JSON.stringify({ building_name: "BC".repeat(600), room_name: "x".repeat(900) }),
      JSON.stringify({ building_name: "BC", room_name: "BC 010", room_type: "office" }),
    ].join("\n"),
  );
  assert.deepEqual(jsonl.rows.map((r) => r.roomName), ["BC 010"]);
  assert.deepEqual(jsonl.rowErrors.map((e) => [e.line, e.column]), [
    [1, "room_name"],
    [2, "room_name"],
  ]);
  assert.match(jsonl.rowErrors[0].message, /NUL character/);
  assert.match(jsonl.rowErrors[1].message, /building_name and room_name together is 2101 bytes/);

  const rates = parseReferenceText(
    "rates",
    "x.jsonl",
    '{"year": 0, "currency": "chf", "eur_per_unit": 1}',
  );
  assert.deepEqual(rates.rowErrors.map((e) => [e.line, e.column, e.message]), [
    [1, "year", 'expected a year from 1990 to 2100, got "0"'],
  ]);
});
