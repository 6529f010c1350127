// Rematch matrix, JSON-link rows (Strategy A): the nine JSON-link dets plus the strict-drop
// variant where a replace import removes the entry's linked factor.
import { dbTest, useTestDatabase } from "../_harness.ts";
import { runMatrixFixture } from "./_matrix.ts";

const testDb = useTestDatabase();

const FIXTURES = [
  "equipment__it",
  "equipment__scientific",
  "equipment__other",
  "purchase__scientific_equipment",
  "purchase__additional_purchases",
  "external_cloud_and_ai__external_clouds",
  "external_cloud_and_ai__external_ai",
  "process_emissions__process_emissions",
  "buildings__energy_combustion",
  "equipment__it_strict_drop",
];

for (const name of FIXTURES) {
  dbTest(testDb, `rematch matrix: ${name}`, (db) => runMatrixFixture(db, name));
}
