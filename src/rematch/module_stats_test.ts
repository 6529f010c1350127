import assert from "node:assert/strict";
import type { EmissionRow } from "../compute/emission_row.ts";
import {
  addStatsChange,
  CompensatedSum,
  EMPTY_MODULE_STATS,
  type ModuleStatsChange,
  ModuleStatsDeltas,
} from "./module_stats.ts";

const row = (emissionTypeId: number, kgCo2eq: number, scope: number | null): EmissionRow => ({
  emissionTypeId,
  kgCo2eq,
  scope,
  primaryFactorId: 1,
  additionalValue: null,
  meta: {},
});

Deno.test("a compensated sum keeps what plain addition rounds away", () => {
  const sum = new CompensatedSum();
  for (const x of [1e16, 1, -1e16, 0.1, 0.2, -0.3]) sum.add(x);
  // Plain addition loses the 1 to the rounding of 1e16 and ends at 5.55e-17.
  assert.equal(sum.value, 1);
});

Deno.test("a module's change: old rows out, new rows in, rollups left out", () => {
  const deltas = new ModuleStatsDeltas();
  deltas.add(5, [row(80200, 10, 2), row(40000, 99, null)], [
    row(80200, 14, 2),
    row(40000, 7, null),
  ]);
  deltas.add(5, [row(6010501, 3, 1)], [row(6010501, 1, 1), row(6010301, 4, 2)]);
  deltas.add(2, [row(50101, 8, 3), row(50102, 1, null)], [row(50102, 1, null)]);
  const [two, five] = deltas.changes();
  assert.deepEqual(
    { ...five, byEmissionType: Object.fromEntries(five.byEmissionType) },
    {
      moduleId: 5,
      scope1: -2,
      scope2: 8,
      scope3: 0,
      total: 6,
      entries: 0,
      byEmissionType: {
        80200: { kg: 4, rows: 0 },
        6010501: { kg: -2, rows: 0 },
        6010301: { kg: 4, rows: 1 },
      },
      recompute: false,
    },
  );
  // A type lost rows: it may have none left in the module.
  assert.equal(two.moduleId, 2);
  assert.equal(two.scope3, -8);
  assert.equal(two.total, -8);
  assert.equal(two.recompute, true);
});

Deno.test("a new entry adds its rows and one to the entry count", () => {
  const deltas = new ModuleStatsDeltas();
  deltas.add(3, [], [row(80200, 5, 2), row(40000, 5, null)], 1);
  deltas.add(3, [], [], 1); // stored without emissions
  const [three] = deltas.changes();
  assert.deepEqual(
    [three.entries, three.scope2, three.total, Object.fromEntries(three.byEmissionType)],
    [2, 5, 5, { 80200: { kg: 5, rows: 1 } }],
  );
  assert.equal(three.recompute, false);
});

Deno.test("stored stats plus a change: sums, the entry count and the types; other keys kept", () => {
  const change: ModuleStatsChange = {
    moduleId: 1,
    scope1: 1,
    scope2: -2,
    scope3: 3,
    total: 2,
    entries: -1,
    recompute: false,
    byEmissionType: new Map([[10001, { kg: -2, rows: 0 }], [20001, { kg: 4, rows: 2 }]]),
  };
  const stored = JSON.stringify({
    scope1: 10,
    scope2: 20,
    scope3: 30,
    total: 60,
    entry_count: 5,
    by_emission_type: { 10001: 60 },
    note: "kept",
  });
  assert.deepEqual(JSON.parse(addStatsChange(stored, change)!), {
    scope1: 11,
    scope2: 18,
    scope3: 33,
    total: 62,
    entry_count: 4,
    by_emission_type: { 10001: 58, 20001: 4 },
    note: "kept",
  });
  // Bases that cannot be trusted: a key missing or not a number, no stats, or a type whose rows
  // did not grow missing (it may have had none left).
  const untrusted = [
    null,
    "null",
    "[]",
    JSON.stringify({ ...JSON.parse(stored), total: "60" }),
    JSON.stringify({ ...JSON.parse(stored), entry_count: undefined }),
    JSON.stringify({ ...JSON.parse(stored), by_emission_type: [] }),
    JSON.stringify({ ...JSON.parse(stored), by_emission_type: { 20001: 1 } }),
  ];
  for (const base of untrusted) {
    assert.equal(addStatsChange(base, change), undefined, base ?? "null");
  }
  // A type whose rows grew may be new.
  assert.deepEqual(
    JSON.parse(
      addStatsChange(EMPTY_MODULE_STATS, {
        ...change,
        byEmissionType: new Map([[20001, { kg: 4, rows: 2 }]]),
      })!,
    )
      .by_emission_type,
    { 20001: 4 },
  );
});

Deno.test("addStatsChange: a change that takes away all there was leaves 0, not its rounding", () => {
  const stored = JSON.stringify({
    scope1: 0,
    scope2: 0.1 + 0.2,
    scope3: 0,
    total: 0.1 + 0.2,
    entry_count: 2,
    by_emission_type: { 80200: 0.1 + 0.2, 80300: 1e-10 },
  });
  // The rows' kg summed in another order: 0.3, and 0.1 + 0.2 − 0.3 is 5.6e-17.
  const all = -0.3;
  const next = JSON.parse(
    addStatsChange(stored, {
      moduleId: 1,
      scope1: 0,
      scope2: all,
      scope3: 0,
      total: all,
      entries: 0,
      recompute: false,
      byEmissionType: new Map([[80200, { kg: all, rows: 0 }]]),
    })!,
  );
  assert.deepEqual([next.scope2, next.total, next.by_emission_type[80200]], [0, 0, 0]);
  // A small amount that is there stays.
  assert.equal(next.by_emission_type[80300], 1e-10);
});
