import assert from "node:assert/strict";
import {
  type EmissionRow,
  type IdentifiedRow,
  jsonbText,
  metaText,
  planRowUpdates,
  sameRow,
} from "./emission_row.ts";

const row = (type: number, kg: number, factor = 1): EmissionRow => ({
  emissionTypeId: type,
  primaryFactorId: factor,
  kgCo2eq: kg,
  additionalValue: null,
  scope: 3,
  meta: { factors_used: [{ id: factor, values: { ef: kg } }] },
});
const stored = (id: number, r: EmissionRow): IdentifiedRow => ({ ...r, id });

Deno.test("planRowUpdates: identical rows (any order, meta key order aside) need nothing", () => {
  const old = [stored(1, row(10001, 100)), stored(2, row(20001, 25))];
  const reordered = {
    ...row(10001, 100),
    meta: { factors_used: [{ values: { ef: 100 }, id: 1 }] },
  };
  assert.deepEqual(planRowUpdates(old, [row(20001, 25), reordered]), []);
});

Deno.test("planRowUpdates: a changed value rewrites only that row, in place, by id", () => {
  const old = [stored(1, row(10001, 100)), stored(2, row(20001, 25)), stored(3, row(40000, 125))];
  const plan = planRowUpdates(old, [row(10001, 200), row(20001, 25), row(40000, 225)]);
  assert.deepEqual(plan?.map((u) => [u.id, u.row.kgCo2eq]), [[1, 200], [3, 225]]);
});

Deno.test("planRowUpdates: a different shape (count or types) means replace (null)", () => {
  const old = [stored(1, row(10001, 100)), stored(2, row(20001, 25))];
  assert.equal(planRowUpdates(old, [row(10001, 100)]), null);
  assert.equal(planRowUpdates(old, [row(10001, 100), row(30004, 25)]), null);
  assert.equal(planRowUpdates(old, []), null);
  assert.deepEqual(planRowUpdates([], []), []);
});

Deno.test("planRowUpdates: same total but other counts per type ({food, waste} → {food, food}) means replace", () => {
  const old = [stored(1, row(10001, 100)), stored(2, row(20001, 25)), stored(3, row(40000, 125))];
  // No computed food row equals the stored one, so both would claim stored row 1.
  const shapes = [
    [row(10001, 200), row(10001, 6, 2), row(40000, 206)],
    [row(10001, 100), row(10001, 6, 2), row(40000, 106)],
    [row(10001, 100), row(40000, 125), row(40000, 125)],
  ];
  for (const computed of shapes) assert.equal(planRowUpdates(old, computed), null);
});

Deno.test("planRowUpdates: several rows of one type pair identical rows first, then by position", () => {
  const old = [stored(1, row(10001, 100)), stored(2, row(10001, 6, 2)), stored(3, row(40000, 106))];
  const plan = planRowUpdates(old, [row(10001, 7, 2), row(10001, 100), row(40000, 107)]);
  assert.deepEqual(plan?.map((u) => [u.id, u.row.kgCo2eq]), [[2, 7], [3, 107]]);
  const both = planRowUpdates(old, [row(10001, 8, 2), row(10001, 9), row(40000, 17)]);
  assert.deepEqual(both?.map((u) => [u.id, u.row.kgCo2eq]), [[1, 8], [2, 9], [3, 17]]);
});

Deno.test("sameRow: JSON semantics for meta — key order and undefined keys do not count", () => {
  const a = row(10001, 100);
  assert.ok(sameRow(a, { ...a, meta: { ...a.meta, absent: undefined } }));
  assert.ok(!sameRow(a, { ...a, meta: { ...a.meta, extra: null } }));
  assert.ok(!sameRow(a, { ...a, meta: { factors_used: [{ id: 1, values: { ef: 101 } }] } }));
  assert.ok(!sameRow(a, { ...a, kgCo2eq: 100.0000001 }));
  assert.ok(!sameRow(a, { ...a, primaryFactorId: null }));
});

Deno.test("planRowUpdates: one row each — same type compared directly, another type is a replace", () => {
  const old = [stored(7, row(10001, 100))];
  assert.deepEqual(planRowUpdates(old, [row(10001, 100)]), []);
  assert.deepEqual(planRowUpdates(old, [row(10001, 110)])?.map((u) => [u.id, u.row.kgCo2eq]), [
    [7, 110],
  ]);
  assert.equal(planRowUpdates(old, [row(20001, 100)]), null);
});

Deno.test("sameRow: floats compare bit for bit", () => {
  const a = row(10001, 0.1 + 0.2);
  assert.ok(sameRow(a, { ...a }));
  assert.ok(!sameRow(a, { ...a, kgCo2eq: 0.3 }));
  assert.ok(!sameRow({ ...a, additionalValue: 1 }, { ...a, additionalValue: 1 + Number.EPSILON }));
});

// What PostgreSQL prints for these values stored as jsonb, worked out by its rules (keys by
// length then bytes, ", " and ": ", numeric without exponent); tests/db/jsonb_text_test.ts asks
// the server itself.
Deno.test("jsonbText: PostgreSQL's jsonb text — key order, separators, numbers, strings", () => {
  assert.equal(jsonbText({}), "{}");
  assert.equal(jsonbText([]), "[]");
  assert.equal(
    jsonbText({ bb: 1, a: 2, ab: 3, c: [true, false, null] }),
    '{"a": 2, "c": [true, false, null], "ab": 3, "bb": 1}',
  );
  assert.equal(
    jsonbText({ x: { z: 1, y: [{ b: 1, a: 2 }] } }),
    '{"x": {"y": [{"a": 2, "b": 1}], "z": 1}}',
  );
  assert.equal(jsonbText(1e21), "1000000000000000000000");
  assert.equal(jsonbText(-1.5e-7), "-0.00000015");
  assert.equal(jsonbText(2.5e-3), "0.0025");
  assert.equal(jsonbText(123.456), "123.456");
  assert.equal(jsonbText(1.2345e25), "12345000000000000000000000");
  assert.equal(jsonbText(-0), "0");
  assert.equal(jsonbText(NaN), "null");
  assert.equal(jsonbText('a"b\\c\n\u0001é'), '"a\\"b\\\\c\\n\\u0001é"');
  assert.equal(jsonbText({ a: undefined, b: () => 1, c: [undefined] }), '{"c": [null]}');
  // By UTF-8 bytes: "é" is two bytes, so it sorts after the one-byte "z"; U+1F600 (four bytes)
  // after U+FF5A (three), although UTF-16 puts its surrogates first.
  assert.equal(jsonbText({ é: 1, z: 2 }), '{"z": 2, "é": 1}');
  assert.equal(jsonbText({ "\u{1F600}": 1, "\uFF5A": 2 }), '{"\uFF5A": 2, "\u{1F600}": 1}');
});

Deno.test("sameRow: meta by its jsonb text, and by value when the texts differ (1.0 against 1)", () => {
  const a = row(10001, 100);
  const text = metaText(a);
  assert.equal(text, '{"factors_used": [{"id": 1, "values": {"ef": 100}}]}');
  // A stored row carries the text it was read with; its meta is parsed only when needed.
  let parsed = 0;
  const storedAs = (t: string): EmissionRow => ({
    ...a,
    metaText: t,
    get meta() {
      parsed++;
      return JSON.parse(t);
    },
  });
  assert.ok(sameRow(storedAs(text), a));
  assert.equal(parsed, 0);
  assert.ok(sameRow(storedAs('{"factors_used": [{"id": 1, "values": {"ef": 100.0}}]}'), a));
  assert.ok(!sameRow(storedAs('{"factors_used": [{"id": 1, "values": {"ef": 101}}]}'), a));
  assert.equal(parsed, 2);
});
