// Issue 13 item 1: a building factor with a blank room_type is the building's generic factor,
// which rule L gives to room entries without a room type (generic nodes 60101..60105).
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import { createEntries } from "../../src/db/entries.ts";
import { importFactors } from "../../src/db/factors.ts";
import { upsertRooms } from "../../src/db/reference.ts";
import { parseCsv } from "../../src/imports/csv.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";

const testDb = useTestDatabase();

const FILE = `building_name,room_type,ef_kg_co2eq_per_kwh,heating_kwh_per_square_meter,` +
  `cooling_kwh_per_square_meter,ventilation_kwh_per_square_meter,lighting_kwh_per_square_meter,` +
  `energy_type,conversion_factor
BC,,0.1,30,20,10,5,thermal,0.9
BC,office,0.2,30,20,10,5,electric,
`;

dbTest(
  testDb,
  "a blank room_type imports the generic building factor that room entries without a type use",
  async (db) => {
    const result = await db.sql.begin((tx) =>
      importFactors(tx, {
        file: "building.csv",
        table: parseCsv("building.csv", FILE),
        year: 2025,
        target: { dataEntryTypeId: 30 },
      })
    );
    assert.deepEqual([result.rowErrorsCount, result.inserted], [0, 2]);
    const factors = await db.sql<{ id: number; room_type: string | null }[]>`
      select id, classification->>'room_type' as room_type from factors order by id`;
    assert.deepEqual(factors.map((f) => f.room_type), [null, "office"]);
    const [generic, office] = factors.map((f) => f.id);
    assert.notEqual(generic, office);

    await db.sql.begin((tx) =>
      upsertRooms(tx, [{
        buildingName: "BC",
        roomName: "BC 010",
        roomType: null,
        surfaceSquareMeter: 12,
      }])
    );
    const created = await db.sql.begin((tx) =>
      createEntries(tx, [{
        unitCode: "U1",
        year: 2025,
        det: getDataEntryType("building"),
        data: { building_name: "BC", room_name: "BC 010" },
      }])
    );
    assert.deepEqual([created.created, created.computeErrors, created.warnings], [1, [], []]);

    // spec/modules.md, building rooms: kg = surface × kwh/m² × ratio × ef × conversion, with
    // 12 m², ratio 1 (default), ef 0.1; thermal energy, so heating_elec gets conversion 0 and
    // heating_thermal conversion_factor 0.9.
    const expected: [number, number, number | null][] = [
      [60101, 12 * 5 * 1 * 0.1, 2], // lighting
      [60102, 12 * 20 * 1 * 0.1, 2], // cooling
      [60103, 12 * 10 * 1 * 0.1, 2], // ventilation
      [60104, 0, 2], // heating_elec
      [60105, 12 * 30 * 1 * 0.1 * 0.9, 1], // heating_thermal
    ];
    const rollup = expected.reduce((sum, [, kg]) => sum + kg, 0);
    const rows = await db.sql<
      { type: number; kg: number; scope: number | null; factor: number | null }[]
    >`
      select emission_type_id as type, kg_co2eq as kg, scope, primary_factor_id as factor
      from data_entry_emissions order by id`;
    assert.deepEqual(
      rows.map((r) => [r.type, r.scope, r.factor]),
      [...expected.map(([type, , scope]) => [type, scope, generic]), [60100, null, generic]],
    );
    for (const [i, kg] of [...expected.map(([, kg]) => kg), rollup].entries()) {
      assert.ok(Math.abs(rows[i].kg - kg) <= 1e-9 * Math.max(1, kg), `${rows[i].type}: ${kg}`);
    }
    assert.ok(Math.abs(rollup - 74.4) < 1e-9);
    const [entry] = await db.sql`select data from data_entries`;
    assert.equal(entry.data.primary_factor_id, generic);

    // The rematch resolves the same link and finds nothing to change.
    const rematch = await recalculateForDataEntryType(db, {
      dataEntryType: "building",
      year: 2025,
    });
    assert.deepEqual([rematch.recalculated, rematch.unchanged, rematch.errors], [1, 1, 0]);
  },
);
