// What factor differences mean for a rematch (pure): which need the whole slice, which only the
// users of the factors.
import assert from "node:assert/strict";
import type { Factor } from "../handlers/types.ts";
import {
  classifyFactorChanges,
  diffFactorSet,
  type FactorFingerprint,
  markEntries,
  rematchCommandFor,
} from "./state.ts";
import type { Queryable } from "../db/connection.ts";

const room = (
  values: Record<string, number | string>,
  roomType = "office",
  importId: number | null = null,
): FactorFingerprint => ({
  emissionTypeId: 60100,
  classification: { building_name: "BC", room_type: roomType },
  values: { ef_kg_co2eq_per_kwh: 0.1, energy_type: "electric", ...values },
  importId,
});

Deno.test("classifyFactorChanges: numeric non-structural value changes are targeted", () => {
  const changes = classifyFactorChanges([
    { id: 3, before: room({}), after: room({ ef_kg_co2eq_per_kwh: 0.2 }) },
    { id: 9, before: room({ conversion_factor: 0 }), after: room({ conversion_factor: 1 }) },
  ], []);
  assert.deepEqual(changes, {
    scope: "targeted",
    reason: "2 factors changed in value",
    valueChangedIds: [3, 9],
  });
});

Deno.test("classifyFactorChanges: equal values (JSON key order aside) change nothing", () => {
  const before = room({ lighting_kwh_per_square_meter: 5 });
  const after = { ...before, values: Object.fromEntries(Object.entries(before.values).reverse()) };
  assert.deepEqual(classifyFactorChanges([{ id: 3, before, after }], []), {
    scope: "none",
    reason: "",
    valueChangedIds: [],
  });
});

Deno.test("classifyFactorChanges: everything else reads the whole slice, and says why", () => {
  const cases: [FactorFingerprint | undefined, FactorFingerprint | undefined, string][] = [
    [undefined, room({}), "1 factor inserted"],
    [room({}), undefined, "1 factor deleted"],
    [room({}), { ...room({}), emissionTypeId: 60101 }, "factor 4: emission type 60100 → 60101"],
    [room({}), room({}, "archives"), "factor 4: classification changed"],
    [room({}), room({ extra: 1 }), "factor 4: value extra added"],
    [room({ extra: 1 }), room({}), "factor 4: value extra removed"],
    [room({}), room({ energy_type: "thermal" }), "factor 4: energy_type changed (not a number)"],
    [room({ extra: "1" }), room({ extra: 1 }), "factor 4: extra changed (not a number)"],
  ];
  for (const [before, after, reason] of cases) {
    const changes = classifyFactorChanges([{ id: 4, before, after }], []);
    assert.deepEqual([changes.scope, changes.reason], ["full", reason]);
  }
  const structural = classifyFactorChanges(
    [{ id: 4, before: room({ max_distance: 800 }), after: room({ max_distance: 900 }) }],
    ["min_distance", "max_distance"],
  );
  assert.equal(structural.reason, "factor 4: max_distance changed (a structural value)");
});

Deno.test("classifyFactorChanges: several reasons are summed up, value changes still listed", () => {
  const changes = classifyFactorChanges([
    { id: 1, after: room({}) },
    { id: 2, after: room({}) },
    { id: 3, before: room({}) },
    { id: 5, before: room({}), after: room({}, "archives") },
    { id: 6, before: room({}), after: room({ extra: 2 }) },
    { id: 7, before: room({}), after: room({ ef_kg_co2eq_per_kwh: 1 }) },
  ], []);
  assert.equal(changes.scope, "full");
  assert.equal(
    changes.reason,
    "2 factors inserted; 1 factor deleted; factor 5: classification changed (and 1 more)",
  );
  assert.deepEqual(changes.valueChangedIds, [7]);
});

Deno.test("classifyFactorChanges: values set again by another import are targeted too", () => {
  const changes = classifyFactorChanges([
    { id: 3, before: room({}, "office", 1), after: room({}, "office", 3) },
    {
      id: 4,
      before: room({}, "office", 1),
      after: room({ ef_kg_co2eq_per_kwh: 0.2 }, "office", 3),
    },
  ], []);
  assert.deepEqual(changes, {
    scope: "targeted",
    reason: "1 factor changed in value; 1 factor set again by another import",
    valueChangedIds: [3, 4],
  });
});

Deno.test("diffFactorSet: the recorded snapshot against a set read into memory", () => {
  const factor = (id: number, fingerprint: FactorFingerprint): Factor => ({
    id,
    dataEntryTypeId: 30,
    year: 2025,
    ...fingerprint,
  });
  const recorded = new Map([[1, room({})], [2, room({})], [3, room({})], [5, room({}, "lab", 1)]]);
  const live = [
    factor(1, room({})),
    factor(2, room({ ef_kg_co2eq_per_kwh: 0.3 })),
    factor(4, room({}, "archives")),
    factor(5, room({}, "lab", 2)),
  ];
  assert.deepEqual(diffFactorSet(recorded, live), [
    { id: 2, before: room({}), after: room({ ef_kg_co2eq_per_kwh: 0.3 }) },
    { id: 3, before: room({}) },
    { id: 4, before: undefined, after: room({}, "archives") },
    { id: 5, before: room({}, "lab", 1), after: room({}, "lab", 2) },
  ]);
});

Deno.test("rematchCommandFor: one slice, one year, or every year", () => {
  assert.equal(
    rematchCommandFor([{ dataEntryType: "it", year: 2025 }]),
    "deno task rematch --det it --year 2025",
  );
  assert.equal(
    rematchCommandFor([{ dataEntryType: "it", year: 2025 }, {
      dataEntryType: "plane",
      year: 2025,
    }]),
    "deno task rematch --stale --year 2025",
  );
  assert.equal(
    rematchCommandFor([{ dataEntryType: "it", year: 2025 }, { dataEntryType: "it", year: 2024 }]),
    "deno task rematch --stale",
  );
});

Deno.test("markEntries: its statements are all sent before the first is answered", async () => {
  // A transaction's client as postgres.js's: a statement is sent when first awaited, answered
  // when the test says.
  const sent: string[] = [];
  const answers: (() => void)[] = [];
  const tx = (strings: TemplateStringsArray) => ({
    then(resolve: (rows: unknown[]) => void, reject: (error: unknown) => void) {
      sent.push(strings.join("?").trim().split(/\s+/)[0]);
      return new Promise<unknown[]>((answer) => answers.push(() => answer([]))).then(
        resolve,
        reject,
      );
    },
  });
  const marking = markEntries(tx as unknown as Queryable, {
    cleared: [1],
    noLongerFailing: [2],
    failed: [{ id: 3, error: "no factor" }],
  });
  await new Promise((resolve) => setTimeout(resolve, 0));
  // Sent one after another, the second would wait for the first's answer: a failure elsewhere
  // meanwhile rolls the transaction back, and what was still to send ran outside it.
  assert.deepEqual(sent, ["delete", "update", "insert"]);
  for (const answer of answers) answer();
  await marking;
});
