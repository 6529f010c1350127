// The rematch compares a computed meta with the stored one read as text (`meta::text`): whatever
// PostgreSQL prints for a jsonb value must compare equal to that value, and unequal to others.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import {
  jsonbText,
  sameJsonText,
  sharedJson,
  sharedJsonText,
} from "../../src/compute/emission_row.ts";

const testDb = useTestDatabase();

const VALUES: unknown[] = [
  {},
  [],
  { bb: 1, a: 2, ab: 3, c: [true, false, null] },
  { factors_used: [{ id: 12, values: { ef_kg_co2eq_per_km: 0.19, max_distance: 4000 } }] },
  { x: { z: 1, y: [{ b: 1, a: 2 }, [], {}] } },
  [0.1 + 0.2, 1 / 3, 2 / 3, 153.87840000000003, -0, 100, 1e21, 1e-7, -1.5e-7, 123e-20],
  [Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 1.7976931348623157e308, 5e-324, 1.2345e25],
  { text: 'quote " backslash \\ newline \n tab \t bell \u0007 del \u007f é ü 中 \u{1F600}' },
  { é: 1, z: 2, ü: 3, zz: 4, "\uFF5A": 5, "\u{1F600}": 6, "": 7, 'a"b': 8 },
];

dbTest(
  testDb,
  "a value equals the text PostgreSQL prints for it as jsonb, and only it",
  async (db) => {
    for (const value of VALUES) {
      const [row] = await db.sql<{ text: string }[]>`
      select (${JSON.stringify(value)}::text)::jsonb::text as text`;
      assert.ok(sameJsonText(value, row.text), `${JSON.stringify(value)} against ${row.text}`);
      const others = VALUES.filter((v) => v !== value);
      for (const other of others) assert.ok(!sameJsonText(other, row.text), row.text);
    }
  },
);

dbTest(
  testDb,
  "a shared value's text is what PostgreSQL prints for it, and compares as one piece",
  async (db) => {
    for (const value of VALUES) {
      if (typeof value !== "object" || value === null) continue;
      const shared = sharedJson(structuredClone(value) as object);
      const [row] = await db.sql<{ text: string; nested: string }[]>`
        select (${JSON.stringify(value)}::text)::jsonb::text as text,
          jsonb_build_object('a', 1, 'shared', (${JSON.stringify(value)}::text)::jsonb)::text
            as nested`;
      assert.ok(sameJsonText(shared, row.text), `${JSON.stringify(value)} against ${row.text}`);
      assert.ok(sameJsonText({ shared, a: 1 }, row.nested), row.nested);
      // Printed as one piece unless a number prints otherwise (1e21 as 1000000000000000000000):
      // then the value is walked, as any other.
      if (!/\d[eE][+-]?\d/.test(JSON.stringify(value))) {
        assert.equal(sharedJsonText(shared), row.text);
      }
      for (const other of VALUES.filter((v) => v !== value)) {
        assert.ok(!sameJsonText(shared, JSON.stringify(other)), JSON.stringify(other));
      }
    }
  },
);

dbTest(
  testDb,
  "a classification's text is the identity PostgreSQL indexes (classification::text)",
  async (db) => {
    // Values of every kind a cell can hold; keys of equal length in both orders, upper and
    // lower case, and of different lengths.
    const classifications = [
      { equipment_class: "Laptop", sub_class: null },
      { sub_class: "x", equipment_class: "" },
      { b: 'quote " backslash \\ slash /', a: "NULL", B: null, aa: "\b\f\n\r\t" },
      { kind: "\u0001\u001f\u007f", zone: "é ü 中 \u{1F600} \u2028" },
      { building_name: "Hall B", room_type: null },
      {},
    ];
    for (const classification of classifications) {
      const [row] = await db.sql<{ text: string }[]>`
        select (${JSON.stringify(classification)}::text)::jsonb::text as text`;
      assert.equal(jsonbText(classification), row.text);
    }
    // Spelled out once, independently of the server.
    assert.equal(
      jsonbText(classifications[2]),
      '{"B": null, "a": "NULL", "b": "quote \\" backslash \\\\ slash /", "aa": "\\b\\f\\n\\r\\t"}',
    );
  },
);
