// Rows rewritten in place store their meta exactly as computed, whether its `factors_used` list
// is sent once per statement and put back on the server (rows of a factor share it) or not, and
// their kg bit for bit (sent as array literals).
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import { type RowUpdate, sharedJson, sharedJsonText } from "../../src/compute/emission_row.ts";
import { updateEmissionsInPlace } from "../../src/db/emissions.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import { createTestEntries, emissionRows, importFactorText, IT_HEADER } from "./_slice.ts";

const testDb = useTestDatabase();

const itFactors = (ef: number) =>
  `${IT_HEADER}\nLaptop,Standard,100,10,40,128,${ef}\nDesktop,,120,12,30,100,${ef * 2}\n` +
  `Server,,500,50,168,0,${ef / 3}\n`;
const entries = [
  { name: "a", equipment_class: "Laptop", sub_class: "Standard" },
  { name: "b", equipment_class: "Desktop" },
  { name: "c", equipment_class: "Desktop", active_usage_hours_per_week: 10 },
  { name: "d", equipment_class: "Server" },
  { name: "e", equipment_class: "Laptop", sub_class: "Standard", note: 'quote " and é' },
];

dbTest(testDb, "a factor change rewrites metas in place exactly as computed", async (db) => {
  await importFactorText(db, "it", 2025, itFactors(0.1));
  const ids = await createTestEntries(db, "it", 2025, entries);
  await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
  const before = await emissionRows(db.sql, ids);
  await importFactorText(db, "it", 2025, itFactors(0.2));
  const changed = await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
  assert.equal(changed.emissionsUpdated, ids.length);
  const after = await emissionRows(db.sql, ids);
  // Rewritten in place: same ids, new numbers in the kg and in the meta's factor values.
  assert.deepEqual(after.map((r) => r.id), before.map((r) => r.id));
  for (const [i, row] of after.entries()) {
    const meta = row.meta as { factors_used: { values: Record<string, number> }[] };
    const old = before[i].meta as typeof meta;
    assert.ok(meta.factors_used[0].values.ef_kg_co2eq_per_kwh > 0);
    assert.equal(
      meta.factors_used[0].values.ef_kg_co2eq_per_kwh,
      old.factors_used[0].values.ef_kg_co2eq_per_kwh * 2,
    );
  }
  // A forced rematch recomputes every entry and finds every stored row (its meta included) right.
  const forced = await recalculateForDataEntryType(db, {
    dataEntryType: "it",
    year: 2025,
    full: true,
  });
  assert.deepEqual([forced.entries, forced.unchanged], [ids.length, ids.length]);
});

dbTest(
  testDb,
  "shared and unshared metas written in one statement land on their rows",
  async (db) => {
    await importFactorText(db, "it", 2025, itFactors(0.1));
    const ids = await createTestEntries(db, "it", 2025, entries);
    await recalculateForDataEntryType(db, { dataEntryType: "it", year: 2025 });
    const stored = await emissionRows(db.sql, ids);
    const listA = sharedJson(Object.freeze([{ id: 1, values: { ef: 0.5, label: "a\nb" } }]));
    const listB = sharedJson(Object.freeze([{ id: 2, values: { ef: 1e-7 } }]));
    assert.ok(sharedJsonText(listA) && sharedJsonText(listB));
    const metas: Record<string, unknown>[] = [
      { factors_used: listA, kwh: 1 },
      { factors_used: listB, kwh: 2, nested: { x: [1, 2] } },
      { factors_used: [{ id: 3, values: {} }], kwh: 3 },
      { factors_used: listA, kwh: 4, note: 'é " \\' },
      { override: true },
    ];
    const updates: RowUpdate[] = stored.map((r, i) => ({
      id: r.id,
      kgAndMetaOnly: i % 2 === 0,
      row: {
        emissionTypeId: r.emission_type_id,
        primaryFactorId: r.primary_factor_id,
        kgCo2eq: (i + 1) / 3 + 1e-17 * i,
        additionalValue: null,
        scope: r.scope,
        meta: metas[i],
      },
    }));
    assert.equal(await updateEmissionsInPlace(db.sql, updates), stored.length);
    const rows = await emissionRows(db.sql, ids);
    assert.deepEqual(
      rows.map((r) => [r.id, r.kg_co2eq, r.meta]),
      stored.map((r, i) => [r.id, (i + 1) / 3 + 1e-17 * i, JSON.parse(JSON.stringify(metas[i]))]),
    );
  },
);
