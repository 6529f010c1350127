import assert from "node:assert/strict";
import { MAX_LISTED_ROW_ERRORS } from "./csv.ts";
import { decodeUtf8, FileError, parseCsv } from "./csv.ts";
import { parseFactorTable, resolveFactorTarget } from "./factor_csv.ts";

const IT = { dataEntryTypeId: 11 };
const EQUIPMENT = { moduleTypeId: 4 };
const PURCHASE = { moduleTypeId: 5 };
const EQUIPMENT_HEADER =
  "equipment_class,sub_class,active_power_w,standby_power_w,active_usage_hours_per_week," +
  "standby_usage_hours_per_week,ef_kg_co2eq_per_kwh";

function parse(text: string, target: Parameters<typeof parseFactorTable>[2]) {
  return parseFactorTable("f.csv", parseCsv("f.csv", text), target);
}

Deno.test("factor csv: a leading BOM is dropped and the first column is found", () => {
  const bytes = new TextEncoder().encode("\uFEFFcountry_code,ef_kg_co2eq_per_km\nCH,0.007\n");
  const parsed = parseFactorTable("t.csv", parseCsv("t.csv", decodeUtf8("t.csv", bytes)), {
    dataEntryTypeId: 21,
  });
  assert.equal(parsed.rowErrorsCount, 0);
  assert.deepEqual(parsed.rows[0].classification, { country_code: "CH" });
  assert.deepEqual(parsed.rows[0].values, { ef_kg_co2eq_per_km: 0.007 });
});

Deno.test("factor csv: invalid UTF-8 is a file error", () => {
  const bytes = new Uint8Array([0x61, 0x2c, 0x62, 0x0a, 0xff, 0xfe, 0x0a]);
  assert.throws(() => decodeUtf8("bad.csv", bytes), (e) => {
    assert.ok(e instanceof FileError);
    assert.match(e.message, /bad\.csv: is not valid UTF-8/);
    return true;
  });
});

Deno.test("factor csv: a missing required column is a file error naming it", () => {
  assert.throws(
    () => parse("equipment_class,sub_class,active_power_w\nLaptop,,100\n", IT),
    (e) => {
      assert.ok(e instanceof FileError);
      assert.match(e.message, /f\.csv: missing required columns standby_power_w, /);
      assert.match(e.message, /ef_kg_co2eq_per_kwh/);
      return true;
    },
  );
});

Deno.test("factor csv: a module file without its routing column is a file error", () => {
  assert.throws(() => parse(`${EQUIPMENT_HEADER}\nLaptop,,1,1,1,1,1\n`, EQUIPMENT), (e) => {
    assert.ok(e instanceof FileError);
    assert.match(e.message, /missing required column equipment_category/);
    return true;
  });
});

Deno.test("factor csv: non-numeric and negative values are row errors; good rows are kept", () => {
  const parsed = parse(
    `${EQUIPMENT_HEADER}
Laptop,Standard,100,10,40,128,0.2
Desktop,,abc,5,40,128,0.2
Server,,120,-5,40,128,0.2
Phone,,1,1,40,128,Infinity
`,
    IT,
  );
  assert.deepEqual(parsed.rows.map((r) => r.row), [1]);
  assert.equal(parsed.rowsRead, 4);
  assert.equal(parsed.rowErrorsCount, 3);
  assert.deepEqual(parsed.rowErrors.map((e) => [e.row, e.column]), [
    [2, "active_power_w"],
    [3, "standby_power_w"],
    [4, "ef_kg_co2eq_per_kwh"],
  ]);
  assert.match(
    parsed.rowErrors[0].message,
    /"abc" is not a number \(expected a finite number ≥ 0\)/,
  );
  assert.match(parsed.rowErrors[1].message, /-5 is negative/);
  assert.match(parsed.rowErrors[2].message, /"Infinity" is not a number/);
});

Deno.test("factor csv: a blank required cell is a row error naming the column", () => {
  const parsed = parse(`${EQUIPMENT_HEADER}\n,Standard,100,10,40,128,0.2\n`, IT);
  assert.deepEqual(parsed.rowErrors, [
    { row: 1, line: 2, column: "equipment_class", message: "required value is blank" },
  ]);
});

Deno.test("factor csv: classification holds every C column, blank as null; values skip blanks", () => {
  const parsed = parse(
    "currency,purchase_institutional_code,purchase_additional_code,ef_kg_co2eq_per_currency," +
      "translation_key\neur,51100000,,0.455,purchase.drugs\n",
    { dataEntryTypeId: 63 },
  );
  assert.deepEqual(parsed.rows[0].classification, {
    purchase_institutional_code: "51100000",
    purchase_additional_code: null,
    currency: "eur",
  });
  assert.deepEqual(parsed.rows[0].values, {
    ef_kg_co2eq_per_currency: 0.455,
    translation_key: "purchase.drugs",
  });
});

Deno.test("factor csv: the same identity twice is an error on the later row naming both", () => {
  const parsed = parse(
    `${EQUIPMENT_HEADER}
Laptop,Standard,100,10,40,128,0.2
Laptop,,60,2,40,128,0.2
Laptop,Standard,90,9,40,128,0.3
`,
    IT,
  );
  assert.deepEqual(parsed.rows.map((r) => r.row), [1, 2]);
  assert.equal(parsed.rows[0].values.active_power_w, 100);
  assert.equal(parsed.rowErrors.length, 1);
  assert.deepEqual([parsed.rowErrors[0].row, parsed.rowErrors[0].line], [3, 4]);
  assert.match(
    parsed.rowErrors[0].message,
    /^duplicate of row 1 \(line 2\): rows 1 and 3 \(lines 2 and 4\) have the same it /,
  );
  assert.match(parsed.rowErrors[0].message, /row 1 is kept$/);
});

Deno.test("factor csv: a column named twice is refused when the import reads it, else ignored", () => {
  const parsed = parse(`country_code,ef_kg_co2eq_per_km,note,note\nCH,0.007,a,b\n`, {
    dataEntryTypeId: 21,
  });
  assert.equal(parsed.rowErrorsCount, 0);
  assert.deepEqual(parsed.rows.map((r) => r.values), [{ ef_kg_co2eq_per_km: 0.007 }]);
  for (
    const header of [
      "country_code,ef_kg_co2eq_per_km,ef_kg_co2eq_per_km",
      "country_code,country_code,ef_kg_co2eq_per_km",
    ]
  ) {
    assert.throws(
      () => parse(`${header}\nCH,0.007,0.008\n`, { dataEntryTypeId: 21 }),
      (e) => e instanceof FileError && /header names column "\w+" twice/.test(e.message),
    );
  }
  // A module's routing column is read with one det targeted too (a row routed elsewhere is an
  // error), so it may not be named twice either.
  assert.throws(
    () => parse(`equipment_category,equipment_category,${EQUIPMENT_HEADER}\n`, IT),
    /names column "equipment_category" twice/,
  );
  // Plane reads min_distance, an optional value column: named twice, it is refused too.
  assert.throws(
    () =>
      parse(
        "category,cabin_class,ef_kg_co2eq_per_km,rfi_adjustment,min_distance,max_distance,min_distance\n",
        { dataEntryTypeId: 20 },
      ),
    /names column "min_distance" twice/,
  );
});

Deno.test("factor csv: a routing value that is not a det of the module is a row error", () => {
  const parsed = parse(
    `equipment_category,${EQUIPMENT_HEADER}
it,Laptop,Standard,100,10,40,128,0.2
plane,Laptop,Standard,100,10,40,128,0.2
,Laptop,Standard,100,10,40,128,0.2
`,
    EQUIPMENT,
  );
  assert.deepEqual(parsed.rows.map((r) => [r.row, r.dataEntryTypeId]), [[1, 11]]);
  assert.deepEqual(parsed.rowErrors.map((e) => [e.row, e.column]), [
    [2, "equipment_category"],
    [3, "equipment_category"],
  ]);
  assert.match(
    parsed.rowErrors[0].message,
    /"plane" is not a known category \(expected a data entry type of module equipment: scientific, it, other\)/,
  );
});

Deno.test("factor csv: with one det targeted, rows routed to another det are row errors", () => {
  const parsed = parse(
    `equipment_category,${EQUIPMENT_HEADER}
scientific,Microscope,,500,50,40,128,0.2
it,Laptop,Standard,100,10,40,128,0.2
,Desktop,,120,5,40,128,0.2
other,Fridge,,300,100,40,128,0.2
`,
    IT,
  );
  assert.deepEqual(
    parsed.rows.map((r) => [r.line, r.dataEntryTypeId, r.emissionTypeId]),
    [[3, 11, 80200], [4, 11, 80200]],
  );
  assert.deepEqual(parsed.rowErrors.map((e) => [e.line, e.column]), [
    [2, "equipment_category"],
    [5, "equipment_category"],
  ]);
  assert.match(parsed.rowErrors[0].message, /this row is for "scientific", not it/);
  assert.match(parsed.rowErrors[0].message, /imported with --module equipment/);
  // The routing column stays optional for one det.
  assert.equal(parse(`${EQUIPMENT_HEADER}\nLaptop,,1,1,1,1,1\n`, IT).rowErrorsCount, 0);
  // A det of an unrouted module ignores another module's routing column.
  const train = parse("purchase_category,country_code,ef_kg_co2eq_per_km\nservices,CH,0.1\n", {
    dataEntryTypeId: 21,
  });
  assert.equal(train.rowErrorsCount, 0);
});

Deno.test("factor csv: a decimal comma is a row error, never a value cut short", () => {
  const parsed = parse(
    `${EQUIPMENT_HEADER}\nLaptop,Standard,100,10,40,128,0,2\nDesktop,,120,5,40,128,"0,2"\n` +
      `Server,,300,100,40,128\n`,
    IT,
  );
  assert.deepEqual(parsed.rows, []);
  assert.deepEqual(parsed.rowErrors.map((e) => [e.line, e.column]), [
    [2, undefined],
    [3, "ef_kg_co2eq_per_kwh"],
    [4, undefined],
  ]);
  assert.match(parsed.rowErrors[0].message, /has 8 cells but the header has 7 columns/);
  assert.match(parsed.rowErrors[0].message, /0\.2, not 0,2/);
  assert.match(parsed.rowErrors[1].message, /"0,2" is not a number/);
  assert.match(parsed.rowErrors[2].message, /has 6 cells but the header has 7 columns/);
});

Deno.test("factor csv: cells the database cannot store are row errors naming the column", () => {
  const huge = "x".repeat(64 * 1024 + 1);
  const parsed = parse(
    `${EQUIPMENT_HEADER}
Lap\u0000top,Standard,100,10,40,128,0.2
Laptop,${huge},100,10,40,128,0.2
${"é".repeat(600)},${"ü".repeat(500)},100,10,40,128,0.2
Laptop,Standard,100,10,40,128,0.2
`,
    IT,
  );
  assert.deepEqual(parsed.rows.map((r) => r.line), [5]);
  assert.deepEqual(parsed.rowErrors.map((e) => [e.line, e.column]), [
    [2, "equipment_class"],
    [3, "sub_class"],
    [4, "equipment_class"],
  ]);
  assert.match(parsed.rowErrors[0].message, /NUL character/);
  assert.match(parsed.rowErrors[1].message, /is 65537 bytes long, above the limit of 65536/);
  // 600 × 2 + 500 × 2 bytes of letters plus the JSON around them: above the 2000-byte key limit.
  assert.match(parsed.rowErrors[2].message, /the classification is 22\d\d bytes long/);
});

Deno.test("factor csv: a column the import ignores is never judged, however long its cell", () => {
  const huge = "x".repeat(64 * 1024 + 1);
  const parsed = parse(
    `${EQUIPMENT_HEADER},note\nLaptop,Standard,100,10,40,128,0.2,${huge}\n` +
      `Desktop,,100,10,40,128,0.2,a\u0000b\n`,
    IT,
  );
  assert.deepEqual(parsed.rowErrors, []);
  assert.deepEqual(parsed.rows.map((r) => r.line), [2, 3]);
});

Deno.test("factor csv: a semicolon-separated file says so", () => {
  assert.throws(
    () => parse("equipment_class;sub_class;ef_kg_co2eq_per_kwh\nLaptop;;0,2\n", IT),
    (e) => {
      assert.ok(e instanceof FileError);
      assert.match(e.message, /missing required columns/);
      assert.match(e.message, /looks semicolon-separated/);
      return true;
    },
  );
});

Deno.test("factor csv: rows of blank cells are skipped like blank lines", () => {
  const parsed = parse(`${EQUIPMENT_HEADER}\n,,,,,,\nLaptop,,1,1,1,1,1\n  \n`, IT);
  assert.equal(parsed.rowErrorsCount, 0);
  assert.equal(parsed.rowsRead, 1);
  assert.deepEqual(parsed.rows.map((r) => [r.row, r.line]), [[1, 3]]);
});

Deno.test("factor csv: an unresolvable emission type is a row error", () => {
  const parsed = parse(
    `headcount_category,headcount_class,headcount_subclass,unit,number_of_unit_per_fte,ef_kg_co2eq_per_unit
food,vegetarian,,meal,100,1.2
nonsense,vegetarian,,meal,100,1.2
`,
    { dataEntryTypeId: 1 },
  );
  assert.deepEqual(parsed.rows.map((r) => [r.row, r.emissionTypeId]), [[1, 10001]]);
  assert.equal(parsed.rowErrors.length, 1);
  assert.equal(parsed.rowErrors[0].row, 2);
  assert.match(parsed.rowErrors[0].message, /cannot resolve the emission type/);
  assert.match(parsed.rowErrors[0].message, /headcount_category="nonsense"/);
});

Deno.test("factor csv: names of Object.prototype name no emission type", () => {
  // A name without a type of its own takes the det's catch-all type where it has one...
  const combustion = parse(
    "name,unit,ef_kg_co2eq_per_unit\nHeating oil,l,3.17\nconstructor,kWh,0.1\n__proto__,kWh,0.2\n",
    { dataEntryTypeId: 31 },
  );
  assert.deepEqual(combustion.rowErrors, []);
  assert.deepEqual(combustion.rows.map((r) => r.emissionTypeId), [60202, 60200, 60200]);
  const ai = parse(
    "provider,usage_type,ef_kg_co2eq_per_request\nOpenAI,chat,0.002\nconstructor,chat,0.003\n",
    { dataEntryTypeId: 41 },
  );
  assert.deepEqual(ai.rows.map((r) => r.emissionTypeId), [110204, 110206]);
  // ...and is a row error where it has none (process emissions); the good rows are kept. (A
  // cloud factor's service_type is checked against its list before its type is resolved.)
  for (const name of ["constructor", "__proto__"]) {
    const parsed = parse(
      `category,subcategory,unit,ef_kg_co2eq_per_unit\nn2o,,kg,265\n${name},,kg,1\n`,
      { dataEntryTypeId: 50 },
    );
    assert.deepEqual(parsed.rows.map((r) => r.emissionTypeId), [70300], name);
    assert.deepEqual(parsed.rowErrors.map((e) => e.row), [2], name);
    assert.match(parsed.rowErrors[0].message, /cannot resolve the emission type/);
  }
});

Deno.test("factor csv: a value no entry can look up is a row error, not a factor never used", () => {
  // Entries store these lower-cased (a cloud's service type) or in capitals (a station's country)
  // and link by them.
  const cases: [number, string, string, string][] = [
    [
      40,
      "provider,service_type,currency,ef_kg_co2eq_per_currency\nAWS,compute,eur,0.1\n" +
      "AWS,Compute,eur,0.1\nGCP,STORAGE,eur,0.1\n",
      "service_type",
      "service_type",
    ],
    [
      21,
      "country_code,ef_kg_co2eq_per_km\nCH,0.007\nch,0.007\nROW,0.03\n",
      "country_code",
      "country_code",
    ],
  ];
  for (const [dataEntryTypeId, text, second, third] of cases) {
    const parsed = parse(text, { dataEntryTypeId });
    assert.deepEqual(parsed.rows.map((r) => r.row), [1], text);
    assert.deepEqual(parsed.rowErrors.map((e) => [e.row, e.column]), [[2, second], [3, third]]);
  }
  const train = parse("country_code,ef_kg_co2eq_per_km\nch,0.007\nRoW,0.03\n", {
    dataEntryTypeId: 21,
  });
  assert.deepEqual(train.rows.map((r) => r.classification.country_code), ["RoW"]);
  assert.equal(
    train.rowErrors[0].message,
    '"ch" is not allowed (expected a country code in capitals, e.g. CH, or RoW: journeys look ' +
      "their country up in capitals)",
  );
  // A currency is the unit of the factor's value, converted through the rates whatever its case:
  // no entry looks a factor up by it.
  const spend = [
    parse(
      "provider,service_type,currency,ef_kg_co2eq_per_currency\nAWS,compute,USD,0.1\n",
      { dataEntryTypeId: 40 },
    ),
    parse(
      "currency,purchase_institutional_code,purchase_additional_code,ef_kg_co2eq_per_currency\n" +
        "CHF,12000000,,0.5\nnok,12000001,,0.5\n",
      { dataEntryTypeId: 60 },
    ),
  ];
  for (const parsed of spend) assert.deepEqual(parsed.rowErrors, []);
});

Deno.test("factor csv: a headcount factor must be typed under food, waste or commuting", () => {
  const parsed = parse(
    `headcount_category,headcount_class,headcount_subclass,unit,number_of_unit_per_fte,ef_kg_co2eq_per_unit
food,vegetarian,,meal,100,1.2
buildings,rooms,,m2,1,1
headcount,x,,fte,1,1
equipment,it,,unit,1,1
commuting,unknown_mode,,km,200,0.2
`,
    { dataEntryTypeId: 1 },
  );
  assert.deepEqual(parsed.rows.map((r) => [r.row, r.emissionTypeId]), [[1, 10001], [5, 30000]]);
  assert.deepEqual(parsed.rowErrors.map((e) => e.row), [2, 3, 4]);
  for (const error of parsed.rowErrors) {
    assert.match(
      error.message,
      /^cannot resolve the emission type of this member factor from .*\(expected headcount_category, headcount_class and headcount_subclass naming an emission type under food, waste or commuting\)$/,
    );
  }
});

Deno.test("factor csv: the same identity after a rejected row is still a duplicate", () => {
  const parsed = parse(
    "country_code,ef_kg_co2eq_per_km\nQQ,-1\nCH,0.007\nQQ,0.5\n",
    { dataEntryTypeId: 21 },
  );
  assert.deepEqual(parsed.rows.map((r) => r.row), [2]);
  assert.deepEqual(parsed.rowErrors.map((e) => [e.row, e.column]), [
    [1, "ef_kg_co2eq_per_km"],
    [3, undefined],
  ]);
  assert.match(
    parsed.rowErrors[1].message,
    /^duplicate of row 1 \(line 2\): rows 1 and 3 \(lines 2 and 4\) have the same train factor identity .*; row 1 comes first and is rejected, so neither is imported$/,
  );
  // Rejected for a value the database cannot store, the same.
  const nul = parse("country_code,ef_kg_co2eq_per_km\nCH,0.1\u0000\nCH,0.2\n", {
    dataEntryTypeId: 21,
  });
  assert.deepEqual(nul.rows, []);
  assert.deepEqual(nul.rowErrors.map((e) => [e.row, e.column]), [
    [1, "ef_kg_co2eq_per_km"],
    [2, undefined],
  ]);
  assert.match(nul.rowErrors[0].message, /NUL/);
  assert.match(nul.rowErrors[1].message, /row 1 comes first and is rejected/);
  // A row whose classification is itself wrong has no identity to repeat.
  const blank = parse("country_code,ef_kg_co2eq_per_km\n,1\n,2\n", { dataEntryTypeId: 21 });
  assert.deepEqual(
    blank.rowErrors.map((e) => [e.row, e.message]),
    [[1, "required value is blank"], [2, "required value is blank"]],
  );
});

Deno.test("factor csv: equipment hours must be integers in 0..168 summing to at most 168", () => {
  const parsed = parse(
    `${EQUIPMENT_HEADER}
Laptop,A,100,10,100,100,0.2
Laptop,B,100,10,40.5,100,0.2
Laptop,C,100,10,40,169,0.2
Laptop,D,100,10,40,128,0.2
`,
    IT,
  );
  assert.deepEqual(parsed.rows.map((r) => r.row), [4]);
  assert.deepEqual(parsed.rowErrors.map((e) => e.row), [1, 2, 3]);
  assert.match(parsed.rowErrors[0].message, /168/);
  assert.equal(parsed.rowErrors[1].column, "active_usage_hours_per_week");
  assert.match(parsed.rowErrors[1].message, /40\.5 .*integer from 0 to 168/);
  assert.equal(parsed.rowErrors[2].column, "standby_usage_hours_per_week");
});

Deno.test("factor csv: an enum column rejects values outside its list", () => {
  const parsed = parse(
    `category,cabin_class,ef_kg_co2eq_per_km,rfi_adjustment,min_distance,max_distance
short_haul,economy,0.1,2,800,1500
short_haul,Economy,0.1,2,800,1500
`,
    { dataEntryTypeId: 20 },
  );
  assert.deepEqual(parsed.rows.map((r) => r.row), [1]);
  assert.equal(parsed.rowErrors[0].column, "cabin_class");
  assert.match(
    parsed.rowErrors[0].message,
    /"Economy" is not allowed \(expected one of economy, business, first\)/,
  );
});

Deno.test("factor csv: row errors are listed up to the cap and always counted", () => {
  const bad = Array.from({ length: 150 }, (_, i) => `C${i},x`).join("\n");
  const parsed = parse(`country_code,ef_kg_co2eq_per_km\n${bad}\nCH,0.007\n`, {
    dataEntryTypeId: 21,
  });
  assert.equal(parsed.rowsRead, 151);
  assert.equal(parsed.rowErrors.length, MAX_LISTED_ROW_ERRORS);
  assert.equal(parsed.rowErrorsCount, 150);
  assert.equal(parsed.rows.length, 1);
});

Deno.test("factor csv: the purchase common module file routes each row to its det", () => {
  const text =
    `currency,purchase_category,purchase_institutional_code,purchase_institutional_description,purchase_additional_code,ef_kg_co2eq_per_currency
eur,biological_chemical_gaseous_product,12000000,"Produits chimiques, biochimiques et gazeux",N,0.5
eur,biological_chemical_gaseous_product,51000000,Médicaments et produits pharmaceutiques,LA0,0.5
eur,biological_chemical_gaseous_product,51100000,Médicaments anti-infectieux,LA05,0.41
eur,consumable_accessories,10000000,"Fournitures, accessoires et matériel pour plantes et animaux vivants",K,0.5
eur,it_equipment,43000000,"Composants, fournitures et équipements informatiques et de communication",I,0.5
eur,scientific_equipment,23000000,Machines et accessoires pour la transformation et la fabrication industrielle,RA1,0.5
eur,services,47100000,"Traitement, fournitures et élimination de l'eau et de l'eau usée",JA13,0.34
eur,services,55000000,Produits publiés,C,0.5
eur,services,91111500,Services de blanchissage,AA66,0.21
eur,biological_chemical_gaseous_product,51100000,Médicaments anti-infectieux,,0.455
eur,biological_chemical_gaseous_product,A,Médicaments,,0.9
`;
  const parsed = parse(text, PURCHASE);
  assert.equal(parsed.rowErrorsCount, 0);
  assert.equal(parsed.rowsRead, 11);
  assert.deepEqual(
    parsed.rows.map((r) => [r.row, r.dataEntryTypeId, r.emissionTypeId]),
    [
      [1, 63, 90500],
      [2, 63, 90500],
      [3, 63, 90500],
      [4, 62, 90400],
      [5, 61, 90300],
      [6, 60, 90200],
      [7, 64, 90600],
      [8, 64, 90600],
      [9, 64, 90600],
      [10, 63, 90500],
      [11, 63, 90500],
    ],
  );
  assert.deepEqual(parsed.rows[9].classification, {
    purchase_institutional_code: "51100000",
    purchase_additional_code: null,
    currency: "eur",
  });
  assert.deepEqual(parsed.rows[9].values, { ef_kg_co2eq_per_currency: 0.455 });
});

Deno.test("factor csv: a module without a routing column needs --det unless it has one det", () => {
  assert.throws(
    () => resolveFactorTarget({ moduleTypeId: 1 }),
    /module headcount has no routing column.*member, student/,
  );
  assert.deepEqual(resolveFactorTarget({ moduleTypeId: 8 }).dets.map((d) => d.name), [
    "process_emissions",
  ]);
});
