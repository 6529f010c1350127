// Rematch matrix, FK-link rows (Strategy B): travel, headcount and embodied energy re-derive
// their factor on every rematch; building rooms (JSON link, five leaves + rollup) sits here for
// its 1:N shape.
import { dbTest, useTestDatabase } from "../_harness.ts";
import { runMatrixFixture } from "./_matrix.ts";

const testDb = useTestDatabase();

const FIXTURES = [
  "professional_travel__plane",
  "professional_travel__plane_strict_drop",
  "professional_travel__train",
  "headcount__member",
  "headcount__student",
  "buildings__building_embodied_energy",
  "buildings__building",
];

for (const name of FIXTURES) {
  dbTest(testDb, `rematch matrix: ${name}`, (db) => runMatrixFixture(db, name));
}
