import assert from "node:assert/strict";
import {
  type EmissionRow,
  flatJsonbText,
  type IdentifiedRow,
  jsonbText,
  planRowUpdates,
  rowsDecidedByMeta,
  sameJsonText,
  sameRow,
  sharedJson,
  sharedJsonText,
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

Deno.test("planRowUpdates: rows as computed at their place are kept, the rest still pair identical rows first", () => {
  // Stored in the order computed, the last rows changed: only those are written.
  const old = [
    stored(1, row(10001, 10)),
    stored(2, row(20001, 20)),
    stored(3, row(10001, 30)),
    stored(4, row(40000, 60)),
  ];
  const computed = [row(10001, 10), row(20001, 20), row(10001, 31), row(40000, 61)];
  assert.deepEqual(planRowUpdates(old, computed)?.map((u) => [u.id, u.row.kgCo2eq]), [
    [3, 31],
    [4, 61],
  ]);
  assert.deepEqual(planRowUpdates(old, old.map(({ id: _, ...r }) => r)), []);
  // After a first row kept at its place, the rest come swapped with one changed: the identical one
  // still pairs with its stored row (one write, not two).
  const swapped = [stored(5, row(10001, 1)), stored(6, row(20001, 2)), stored(7, row(20001, 3))];
  const plan = planRowUpdates(swapped, [row(10001, 1), row(20001, 3), row(20001, 4)]);
  assert.deepEqual(plan?.map((u) => [u.id, u.row.kgCo2eq]), [[6, 4]]);
  // A shape that differs after a kept first row is still a replace.
  assert.equal(planRowUpdates(swapped, [row(10001, 1), row(20001, 2), row(10001, 3)]), null);
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

Deno.test("sameJsonText: the text's value equals the value as sameJson sees it", () => {
  const meta = {
    annual_kwh: 769.392,
    factors_used: [{ id: 201, values: { ef: 0.2, hours: [60, 108], label: "Display" } }],
    note: 'quote " backslash \\ é',
    ok: true,
    none: null,
    absent: undefined,
  };
  // Any key order and spacing; numbers by value; escapes decoded.
  const texts = [
    JSON.stringify(meta),
    '{"ok": true, "none": null, "note": "quote \\" backslash \\\\ \\u00e9", "annual_kwh": 769.3920, ' +
    '"factors_used": [{"id": 201, "values": {"ef": 2e-1, "hours": [60, 108], "label": "Display"}}]}',
  ];
  for (const text of texts) assert.ok(sameJsonText(meta, text), text);
  const other = [
    '{"ok": true}',
    JSON.stringify({ ...meta, extra: 1 }),
    JSON.stringify({ ...meta, ok: false }),
    JSON.stringify({ ...meta, none: 0 }),
    JSON.stringify({ ...meta, annual_kwh: 769.3920000000002 }),
    JSON.stringify({ ...meta, note: "quote" }),
    JSON.stringify({ ...meta, factors_used: [{ id: 201, values: { ef: 0.2, hours: [60] } }] }),
    JSON.stringify({ ...meta, factors_used: [] }),
    JSON.stringify([meta]),
    JSON.stringify(meta).slice(0, -1),
    JSON.stringify(meta) + " x",
  ];
  for (const text of other) assert.ok(!sameJsonText(meta, text), text);
  assert.ok(sameJsonText([], " [ ] "));
  assert.ok(sameJsonText({}, "{}"));
  assert.ok(!sameJsonText({}, "[]"));
});

Deno.test("sameRow: a stored row's meta text is compared without parsing it (1.0 equals 1)", () => {
  const a = row(10001, 100);
  let parsed = 0;
  const storedAs = (text: string): EmissionRow => ({
    ...a,
    metaText: text,
    get meta() {
      parsed++;
      return JSON.parse(text);
    },
  });
  assert.ok(sameRow(storedAs('{"factors_used": [{"id": 1, "values": {"ef": 100}}]}'), a));
  assert.ok(sameRow(a, storedAs('{"factors_used": [{"id": 1, "values": {"ef": 100.0}}]}')));
  assert.ok(!sameRow(storedAs('{"factors_used": [{"id": 1, "values": {"ef": 101}}]}'), a));
  assert.equal(parsed, 0);
});

Deno.test("rowsDecidedByMeta: the stored rows some computed row matches but for its meta", () => {
  const old = [stored(1, row(10001, 100)), stored(2, row(20001, 25)), stored(3, row(40000, 125))];
  // Only food changed: waste matches in every field but meta, so its meta decides; food's kg
  // already differs, and so does the rollup's.
  const computed = [row(10001, 200), row(20001, 25), row(40000, 225)];
  assert.deepEqual(rowsDecidedByMeta(old, computed).map((r) => r.id), [2]);
  assert.deepEqual(rowsDecidedByMeta(old, old).map((r) => r.id), [1, 2, 3]);
  // Another shape is a replacement: no meta is compared.
  assert.deepEqual(rowsDecidedByMeta(old, computed.slice(0, 2)), []);
  assert.deepEqual(rowsDecidedByMeta([stored(7, row(10001, 100))], [row(20001, 100)]), []);
  assert.deepEqual(rowsDecidedByMeta([stored(7, row(10001, 100))], [row(10001, 100)]).length, 1);
});

// Stored rows whose meta throws unless `rowsDecidedByMeta` named them, as rows read without meta
// whose meta was then fetched for the decided ones only.
function withDecidedMetaOnly(old: readonly IdentifiedRow[], computed: readonly EmissionRow[]) {
  const decided = new Set(rowsDecidedByMeta(old, computed).map((r) => r.id));
  return old.map((r) =>
    decided.has(r.id) ? r : Object.defineProperty({ ...r }, "meta", {
      get() {
        throw new Error(`emission row ${r.id}: its meta was not read`);
      },
    })
  );
}

Deno.test("rowsDecidedByMeta: every meta planRowUpdates compares, whether the shape holds or not", () => {
  const food = stored(1, row(10001, 100));
  const waste = stored(2, row(20001, 25));
  const rollup = stored(3, row(40000, 125));
  const cases: [IdentifiedRow[], EmissionRow[], "null" | number][] = [
    // The first row is as stored but for its meta (unknown yet); the second changed its type.
    [[food, waste], [row(10001, 100), row(20009, 25)], "null"],
    [[food, waste, rollup], [row(10001, 100), row(20001, 25), row(20009, 125)], "null"],
    [[food, waste, rollup], [row(10001, 100), row(20001, 30), row(40000, 130)], 2],
    [[food, waste, rollup], [row(20001, 25), row(10001, 100), row(40000, 125)], 0],
    [[food, waste], [row(10001, 90), row(10001, 25)], "null"],
  ];
  for (const [old, computed, expected] of cases) {
    const plan = planRowUpdates(withDecidedMetaOnly(old, computed), computed);
    assert.equal(plan === null ? "null" : plan.length, expected);
  }
  assert.deepEqual(
    rowsDecidedByMeta([food, waste], [row(10001, 100), row(20009, 25)]).map((r) => r.id),
    [1],
  );
});

Deno.test("sameJsonText: a shared value matches as one piece of text, or else walked", () => {
  const list = sharedJson(Object.freeze([{ id: 7, values: { ef_b: 0.2, ef: 100 } }]));
  assert.equal(sharedJsonText(list), '[{"id": 7, "values": {"ef": 100, "ef_b": 0.2}}]');
  const meta = { factors_used: list, kwh: 1.5 };
  assert.ok(sameJsonText(meta, `{"kwh": 1.5, "factors_used": ${sharedJsonText(list)}}`));
  // Printed another way (a number, spaces, key order): the same value, walked.
  assert.ok(
    sameJsonText(meta, '{"factors_used":[{"values":{"ef_b":2e-1,"ef":100.0},"id":7}],"kwh":1.5}'),
  );
  assert.ok(
    !sameJsonText(meta, '{"kwh": 1.5, "factors_used": [{"id": 7, "values": {"ef": 100}}]}'),
  );
  assert.ok(!sameJsonText(meta, `{"kwh": 1.6, "factors_used": ${sharedJsonText(list)}}`));
  // The piece must end where the value does.
  const text = sharedJsonText(list)!;
  assert.ok(!sameJsonText(meta, `{"kwh": 1.5, "factors_used": ${text.slice(0, -1)}, 3]}`));
  assert.equal(sharedJsonText({ id: 7 }), undefined);
});

Deno.test("sameJsonText: keys and numbers compared in place, escapes and other spellings decoded", () => {
  // A key spelled with an escape in the text is decoded, never taken for the raw characters.
  assert.ok(sameJsonText({ "a\n": 1 }, '{"a\\n": 1}'));
  assert.ok(!sameJsonText({ "a\\n": 1 }, '{"a\\n": 1}'));
  assert.ok(sameJsonText({ "a\\n": 1 }, '{"a\\\\n": 1}'));
  assert.ok(sameJsonText({ 'a"b': 1 }, '{"a\\"b": 1}'));
  // Numbers printed otherwise than JavaScript prints them still compare by value.
  assert.ok(sameJsonText({ n: 52, x: 0.2 }, '{"n": 52.0, "x": 2e-1}'));
  assert.ok(!sameJsonText({ n: 52 }, '{"n": 520}'));
  assert.ok(!sameJsonText({ n: 5 }, '{"n": 52}'));
  assert.ok(!sameJsonText({ n: 0.2 }, '{"n": 0.21}'));
});

Deno.test("flatJsonbText: a flat object printed as jsonb prints it, whatever came before", () => {
  const list = sharedJson(Object.freeze([{ id: 7, values: { ef: 100 } }]));
  const metas: Record<string, unknown>[] = [
    { weeks_per_year: 52, annual_kwh: 769.392, factors_used: list, on: true, off: false },
    { annual_kwh: 1.5, weeks_per_year: 52, factors_used: list, on: true, off: false },
    { weeks_per_year: 3, annual_kwh: -0.25, factors_used: list, on: false, off: true },
    { haul: "long_haul", km: 8067, none: null, gone: undefined, "é": 1, 'q"k': "a\\b\n" },
    { b: 1, a: 2 },
    { a: 2, b: 1 },
    {},
  ];
  // Objects of one shape in a row, then shapes that alternate: each printed as jsonb prints it.
  for (const meta of [...metas, ...metas.toReversed(), metas[0], metas[3], metas[0]]) {
    assert.equal(flatJsonbText(meta), jsonbText(meta), JSON.stringify(meta));
  }
  assert.equal(flatJsonbText({ a: 2, b: 1 }), '{"a": 2, "b": 1}');
  // Anything else is left to the walk.
  for (const other of [{ a: [1] }, { a: { b: 1 } }, { a: NaN }, { a: Infinity }, [1], 1, null]) {
    assert.equal(flatJsonbText(other), undefined, String(other));
  }
  // A text printed otherwise is not this one, but the walk still finds the same value.
  const meta = { km: 8067, x: 0.2 };
  assert.notEqual(flatJsonbText(meta), '{"x": 2e-1, "km": 8067}');
  assert.ok(sameJsonText(meta, '{"x": 2e-1, "km": 8067}'));
});
