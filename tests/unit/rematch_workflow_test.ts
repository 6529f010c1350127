// The rematch workflow's behaviour without a database, through an in-memory slice store.
import assert from "node:assert/strict";
import { computeEntry } from "../../src/compute/compute_entry.ts";
import { createFactorLookup } from "../../src/compute/factor_set.ts";
import { getHandler } from "../../src/handlers/mod.ts";
import type { Factor } from "../../src/handlers/types.ts";
import { rematchSlice } from "../../src/rematch/recalculate.ts";
import { airport, factor, reference, YEAR } from "./_compute_fixtures.ts";
import { memoryStore } from "./_memory_store.ts";

const laptopValues = (ef: number) => ({
  active_power_w: 100,
  standby_power_w: 10,
  active_usage_hours_per_week: 40,
  standby_usage_hours_per_week: 128,
  ef_kg_co2eq_per_kwh: ef,
});
const laptop = (data: Record<string, unknown> = {}) => ({
  name: "laptop",
  equipment_class: "Laptop",
  sub_class: "Standard",
  ...data,
});

/** A store whose entries already hold the rows computed against `initial`. */
function seeded(
  initial: Factor[],
  current: Factor[],
  datas: Record<string, unknown>[],
  det = "it",
  moduleOf = (_i: number) => 1,
) {
  const store = memoryStore(current, []);
  const lookup = createFactorLookup(YEAR, initial);
  datas.forEach((data, i) => {
    const id = i + 1;
    const computed = computeEntry(getHandler(det), data, {
      year: YEAR,
      factors: lookup,
      reference: reference(),
    });
    store.entries.push({ id, moduleId: moduleOf(i), data: computed.data });
    store.emissions.set(
      id,
      computed.rows.map((row, k) => ({ ...row, id: id * 100 + k, dataEntryId: id })),
    );
  });
  return store;
}

Deno.test("rematch: success recomputes every entry of the slice with the new values", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const v2 = { ...v1, values: laptopValues(0.2) };
  const store = seeded([v1], [v2], [laptop(), laptop()]);
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR });
  assert.equal(r.entries, 2);
  assert.equal(r.recalculated, 2);
  assert.equal(r.unchanged, 0);
  assert.equal(r.errors, 0);
  assert.ok(Math.abs(r.kgBefore - 2 * 27.456) < 1e-9);
  assert.ok(Math.abs(r.kgAfter - 2 * 54.912) < 1e-9);
  assert.ok(Math.abs(store.emissions.get(1)![0].kgCo2eq - 54.912) < 1e-9);
});

Deno.test("rematch: untouched when unchanged (nothing written, no stats)", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const store = seeded([v1], [v1], [laptop(), laptop()]);
  const before = structuredClone([...store.emissions]);
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR });
  assert.equal(r.unchanged, 2);
  assert.deepEqual(store.calls.writes, []);
  assert.deepEqual(store.calls.stats, []);
  assert.deepEqual([...store.emissions], before);
});

Deno.test("rematch: empty slice reports zeros and writes nothing", async () => {
  const store = memoryStore([], []);
  const r = await rematchSlice(store, { dataEntryType: "plane", year: YEAR });
  assert.deepEqual([r.entries, r.recalculated, r.errors, r.kgBefore, r.kgAfter], [0, 0, 0, 0, 0]);
  assert.deepEqual(store.calls.writes, []);
});

Deno.test("rematch: partial error — the failing entry keeps data and rows, the rest goes on", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const v2 = { ...v1, values: laptopValues(0.2) };
  const store = seeded([v1], [v2], [laptop(), laptop()]);
  // Entry 2's stored data became invalid (hours over 168): compute fails for it alone.
  const bad = {
    ...store.entries[1].data,
    active_usage_hours_per_week: 100,
    standby_usage_hours_per_week: 100,
  };
  store.entries[1] = { ...store.entries[1], data: bad };
  const oldRows = structuredClone(store.emissions.get(2));
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR });
  assert.equal(r.errors, 1);
  assert.equal(r.recalculated, 1);
  assert.equal(r.errorDetails[0].dataEntryId, 2);
  assert.match(r.errorDetails[0].error, /standby_usage_hours_per_week/);
  assert.deepEqual(store.emissions.get(2), oldRows);
  assert.deepEqual(store.entries[1].data, bad);
  assert.ok(Math.abs(store.emissions.get(1)![0].kgCo2eq - 54.912) < 1e-9);
  assert.ok(
    store.calls.writes.every((w) =>
      !w.replaceRowsOf.includes(2) && !w.relinks.some((l) => l.id === 2) &&
      !w.updates.some((u) => oldRows!.some((r) => r.id === u.id))
    ),
  );
});

Deno.test("rematch: a store (database) error is fatal and propagates", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const store = seeded([v1], [{ ...v1, values: laptopValues(0.3) }], [laptop()]);
  store.failWrites = new Error("connection lost");
  await assert.rejects(
    () => rematchSlice(store, { dataEntryType: "it", year: YEAR }),
    /connection lost/,
  );
});

Deno.test("rematch: relink when the resolved factor changes; strict-drop when none is left", async () => {
  const standard = factor(
    "it",
    { equipment_class: "Laptop", sub_class: "Standard" },
    laptopValues(0.1),
  );
  const generic = factor("it", { equipment_class: "Laptop", sub_class: null }, laptopValues(0.3));
  const store = seeded([standard, generic], [generic], [
    laptop(),
    laptop({ equipment_class: "Phone" }),
  ]);
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR });
  // Entry 1: Standard gone → kind-only fallback to the generic Laptop factor.
  assert.equal(r.relinked, 1);
  assert.equal(store.entries[0].data.primary_factor_id, generic.id);
  assert.equal(store.emissions.get(1)![0].primaryFactorId, generic.id);
  assert.ok(Math.abs(store.emissions.get(1)![0].kgCo2eq - 27.456 * 3) < 1e-9);
  // Entry 2 never had a factor: nothing to drop, nothing written for it.
  assert.equal(r.dropped, 0);
});

Deno.test("rematch: strict-drop deletes the rows and nulls the JSON link, keeping the entry", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const store = seeded([v1], [], [laptop()]);
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR });
  assert.equal(r.dropped, 1);
  assert.equal(r.emissionsDeleted, 1);
  assert.equal(store.emissions.has(1), false);
  assert.equal(store.entries[0].data.primary_factor_id, null);
  assert.equal(store.entries.length, 1);
});

Deno.test("rematch: kind-only fallback when the subkind has no factor of its own", async () => {
  const generic = factor("it", { equipment_class: "Laptop", sub_class: null }, laptopValues(0.2));
  const store = seeded([], [generic], [laptop({ sub_class: "Gaming" })]);
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR });
  assert.equal(r.relinked, 1);
  assert.equal(store.entries[0].data.primary_factor_id, generic.id);
  assert.ok(Math.abs(store.emissions.get(1)![0].kgCo2eq - 54.912) < 1e-9);
});

Deno.test("rematch: affected module ids are the modules of entries actually written", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const other = factor("it", { equipment_class: "Desktop", sub_class: null }, laptopValues(0.1));
  const v2 = { ...v1, values: laptopValues(0.2) };
  const store = seeded(
    [v1, other],
    [v2, other],
    [laptop(), laptop({ equipment_class: "Desktop", sub_class: "" })],
    "it",
    (i) => 10 + i,
  );
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR });
  assert.deepEqual(r.affectedModuleIds, [10]);
  assert.deepEqual(store.calls.stats, [[10]]);
  const noStats = seeded([v1], [{ ...v1, values: laptopValues(0.5) }], [laptop()]);
  await rematchSlice(noStats, { dataEntryType: "it", year: YEAR, noStats: true });
  assert.deepEqual(noStats.calls.stats, []);
});

Deno.test("rematch: FK-link entries are re-derived, never relinked (data untouched)", async () => {
  const airports = reference({
    locations: [airport("GVA", 46.2381, 6.109), airport("CDG", 49.0097, 2.5479, "FR")],
  });
  const values = (ef: number) => ({
    ef_kg_co2eq_per_km: ef,
    rfi_adjustment: 1,
    min_distance: 0,
    max_distance: 800,
  });
  const v1 = factor("plane", { category: "very_short_haul", cabin_class: "economy" }, values(0.1));
  const data = {
    origin_iata: "GVA",
    destination_iata: "CDG",
    cabin_class: "economy",
    number_of_trips: 1,
  };
  const store = memoryStore([{ ...v1, values: values(0.2) }], [{ id: 1, moduleId: 1, data }], {
    reference: airports,
  });
  const first = computeEntry(getHandler("plane"), data, {
    year: YEAR,
    factors: createFactorLookup(YEAR, [v1]),
    reference: airports,
  });
  store.emissions.set(1, first.rows.map((row) => ({ ...row, id: 1, dataEntryId: 1 })));
  const r = await rematchSlice(store, { dataEntryType: "plane", year: YEAR });
  assert.equal(r.relinked, 0);
  assert.deepEqual(store.entries[0].data, data);
  assert.equal("primary_factor_id" in store.entries[0].data, false);
  assert.ok(Math.abs(store.emissions.get(1)![0].kgCo2eq - 100.6) < 1e-9);
});

Deno.test("rematch: the factor set is read once for a slice of many chunks; progress per chunk", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const store = seeded(
    [v1],
    [{ ...v1, values: laptopValues(0.2) }],
    Array.from({ length: 7 }, () => laptop()),
  );
  const progress: [number, number][] = [];
  const r = await rematchSlice(store, {
    dataEntryType: "it",
    year: YEAR,
    chunkSize: 3,
    onProgress: (done, total) => progress.push([done, total]),
  });
  assert.equal(store.calls.loadInputs, 1);
  assert.equal(store.calls.locks, 1);
  assert.deepEqual(progress, [[3, 7], [6, 7], [7, 7]]);
  assert.equal(store.calls.writes.length, 3);
  assert.equal(r.recalculated, 7);
});

Deno.test("rematch: the slice is counted for progress only, never when nobody watches", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const store = seeded(
    [v1],
    [{ ...v1, values: laptopValues(0.2) }],
    Array.from({ length: 4 }, () => laptop()),
  );
  let counted = 0;
  const count = store.countEntries.bind(store);
  store.countEntries = (...args) => {
    counted++;
    return count(...args);
  };
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR, chunkSize: 3 });
  assert.equal(r.recalculated, 4);
  assert.equal(counted, 0);
  const progress: [number, number][] = [];
  await rematchSlice(store, {
    dataEntryType: "it",
    year: YEAR,
    chunkSize: 3,
    full: true,
    onProgress: (done, total) => progress.push([done, total]),
  });
  assert.equal(counted, 1);
  assert.deepEqual(progress, [[3, 4], [4, 4]]);
});

Deno.test("rematch: dry run computes the same counts, writes nothing, and lists the diff", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const store = seeded([v1], [{ ...v1, values: laptopValues(0.2) }], [laptop()]);
  const r = await rematchSlice(store, {
    dataEntryType: "it",
    year: YEAR,
    dryRun: true,
    diff: true,
  });
  assert.equal(r.recalculated, 1);
  assert.equal(r.emissionsUpdated, 1);
  assert.deepEqual(store.calls.writes, []);
  assert.equal(r.diff?.length, 1);
  assert.ok(
    Math.abs(r.diff![0].kgBefore - 27.456) < 1e-9 && Math.abs(r.diff![0].kgAfter - 54.912) < 1e-9,
  );
});

Deno.test("rematch: an override row survives unchanged", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const store = seeded([v1], [{ ...v1, values: laptopValues(0.2) }], [
    laptop({ __kg_co2eq_override__: 12 }),
  ]);
  assert.deepEqual(
    store.emissions.get(1)!.map((r) => [r.kgCo2eq, r.primaryFactorId, r.meta.override]),
    [[12, null, true]],
  );
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR });
  assert.equal(r.unchanged, 1);
  assert.deepEqual(store.calls.writes, []);
});

Deno.test("rematch: an aborted signal stops before the next chunk", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const store = seeded([v1], [{ ...v1, values: laptopValues(0.2) }], [laptop()]);
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  await assert.rejects(
    () => rematchSlice(store, { dataEntryType: "it", year: YEAR, signal: controller.signal }),
    /stop/,
  );
  assert.deepEqual(store.calls.writes, []);
});

Deno.test("rematch: an unexpected exception computing one entry is that entry's error", async () => {
  const good = factor(
    "it",
    { equipment_class: "Laptop", sub_class: "Standard" },
    laptopValues(0.1),
  );
  const broken = factor("it", { equipment_class: "Desktop", sub_class: null }, laptopValues(0.1));
  const store = seeded([good, broken], [{ ...good, values: laptopValues(0.2) }, {
    ...broken,
    // A defect, not bad data: reading the factor's values throws a TypeError.
    values: new Proxy(broken.values, {
      get() {
        throw new TypeError("values unreadable");
      },
    }),
  }], [laptop({ equipment_class: "Desktop", sub_class: "" }), laptop()]);
  const oldRows = structuredClone(store.emissions.get(1));
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR });
  assert.deepEqual([r.entries, r.recalculated, r.errors], [2, 1, 1]);
  assert.deepEqual(r.errorDetails, [{
    dataEntryId: 1,
    error: "unexpected TypeError: values unreadable",
  }]);
  assert.deepEqual(store.emissions.get(1), oldRows);
  assert.ok(Math.abs(store.emissions.get(2)![0].kgCo2eq - 54.912) < 1e-9);
});

Deno.test("rematch: an unexpected exception comparing one entry's rows is that entry's error", async () => {
  const v1 = factor("it", { equipment_class: "Laptop", sub_class: "Standard" }, laptopValues(0.1));
  const store = seeded([v1], [v1], [laptop(), laptop()]);
  const [row] = store.emissions.get(1)!;
  // Everything but meta equals the computed row, so the comparison reaches meta and throws.
  const poisoned = Object.defineProperty({ ...row }, "meta", {
    get() {
      throw new RangeError("meta unreadable");
    },
  });
  store.emissions.set(1, [poisoned]);
  const r = await rematchSlice(store, { dataEntryType: "it", year: YEAR });
  assert.deepEqual([r.entries, r.recalculated, r.unchanged, r.errors], [2, 1, 1, 1]);
  assert.deepEqual(r.errorDetails, [{
    dataEntryId: 1,
    error: "unexpected RangeError: meta unreadable",
  }]);
  assert.deepEqual(store.calls.writes, []);
});

Deno.test("rematch: a change of row shape with the same row count replaces the rows", async () => {
  const headcount = (category: string, kind: string, unit: string, n: number, ef: number) =>
    factor("member", {
      headcount_category: category,
      headcount_class: kind,
      headcount_subclass: null,
      unit,
    }, { number_of_unit_per_fte: n, ef_kg_co2eq_per_unit: ef });
  const meal = headcount("food", "vegetarian", "meal", 100, 1);
  const waste = headcount("waste", "incineration", "kg", 50, 0.5);
  const kg = headcount("food", "vegetarian", "kg", 2, 3);
  const store = seeded([meal, waste], [{
    ...meal,
    values: { ...meal.values, ef_kg_co2eq_per_unit: 2 },
  }, kg], [
    { fte: 1 },
    { fte: 0.5 },
  ], "member");
  const r = await rematchSlice(store, { dataEntryType: "member", year: YEAR });
  assert.deepEqual([r.recalculated, r.errors, r.emissionsDeleted, r.emissionsInserted], [
    2,
    0,
    6,
    6,
  ]);
  assert.deepEqual(
    store.emissions.get(1)!.map((row) => [row.emissionTypeId, row.primaryFactorId, row.kgCo2eq]),
    [[10001, meal.id, 200], [10001, kg.id, 6], [40000, meal.id, 206]],
  );
});
