// Factor rows sent column by column (src/db/factor_rows.ts): the server must build, for every row,
// the same jsonb it parses from the row's classification and values as JSON, since imports pair
// the file with the stored factors by that jsonb (text for the identity, equality for values).
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import { type FactorRowInput, factorRowsRelation } from "../../src/db/factor_rows.ts";

const testDb = useTestDatabase();

const ROWS: readonly FactorRowInput[] = [
  // An equipment factor: two classification columns, numbers of every kind.
  {
    dataEntryTypeId: 11,
    emissionTypeId: 80200,
    classification: { equipment_class: "Laptop", sub_class: null },
    values: { active_power_w: 45, ef_kg_co2eq_per_kwh: 0.1 + 0.2, standby_power_w: 1e21 },
  },
  // A building factor of the same file: other classification columns (another shape), a text
  // value, a value column the first row has not and one it lacks.
  {
    dataEntryTypeId: 31,
    emissionTypeId: 70100,
    classification: { building_name: 'Hall "B" \\ north', room_type: null },
    values: { energy_type: "heating", ef_kg_co2eq_per_kwh: 1e-7 },
  },
  // The first shape again, after the other: positions must survive the grouping.
  {
    dataEntryTypeId: 11,
    emissionTypeId: 80200,
    classification: { equipment_class: "NULL", sub_class: "Été, 2ᵉ" },
    values: { active_power_w: 0, standby_power_w: 2.5 },
  },
  // A text column that holds a number in one row and text in another; no values at all.
  {
    dataEntryTypeId: 31,
    emissionTypeId: 70100,
    classification: { building_name: "", room_type: "office" },
    values: { energy_type: 12 },
  },
  { dataEntryTypeId: 31, emissionTypeId: 70100, classification: {}, values: {} },
];

dbTest(
  testDb,
  "factor rows sent by column: each row's jsonb is the JSON's, in file order",
  async (db) => {
    const built = await db.sql<
      { n: number; det: number; et: number; cls: string; vals: string; same: boolean }[]
    >`
    select i.n::int as n, i.det, i.et, i.cls::text as cls, i.vals::text as vals,
      i.cls = c.cls and i.vals = v.vals as same
    from (${factorRowsRelation(db.sql, ROWS)}) as i
    join jsonb_array_elements(${
      JSON.stringify(ROWS.map((r) => r.classification))
    }::text::jsonb) with ordinality as c(cls, n) on c.n = i.n
    join jsonb_array_elements(${
      JSON.stringify(ROWS.map((r) => r.values))
    }::text::jsonb) with ordinality as v(vals, n) on v.n = i.n
    order by i.n`;
    assert.deepEqual(
      built.map((r) => [r.n, r.det, r.et]),
      ROWS.map((r, i) => [
        i + 1,
        r.dataEntryTypeId,
        r.emissionTypeId,
      ]),
    );
    assert.ok(built.every((r) => r.same), JSON.stringify(built.filter((r) => !r.same)));
    // The same canonical text as PostgreSQL's own parse of the JSON (the identity compares text).
    const parsed = await db.sql<{ cls: string; vals: string }[]>`
    select c.cls::text as cls, v.vals::text as vals
    from jsonb_array_elements(${
      JSON.stringify(ROWS.map((r) => r.classification))
    }::text::jsonb) with ordinality as c(cls, n)
    join jsonb_array_elements(${
      JSON.stringify(ROWS.map((r) => r.values))
    }::text::jsonb) with ordinality as v(vals, n) on v.n = c.n
    order by c.n`;
    assert.deepEqual(built.map((r) => [r.cls, r.vals]), parsed.map((r) => [r.cls, r.vals]));
    // Spelled out for two rows, independently of the server's parse.
    assert.deepEqual(JSON.parse(built[0].vals), {
      active_power_w: 45,
      ef_kg_co2eq_per_kwh: 0.30000000000000004,
      standby_power_w: 1e21,
    });
    assert.deepEqual(JSON.parse(built[1].cls), {
      building_name: 'Hall "B" \\ north',
      room_type: null,
    });
    assert.deepEqual(JSON.parse(built[3].vals), { energy_type: 12 });
    assert.deepEqual([built[4].cls, built[4].vals], ["{}", "{}"]);
  },
);

dbTest(testDb, "factor rows sent by column: no rows is an empty relation", async (db) => {
  const rows = await db.sql`select * from (${factorRowsRelation(db.sql, [])}) as i`;
  assert.equal(rows.length, 0);
});
