// Shared body of the two isolation test files: each writes its own marker and must never see
// the other's, while both run at once under `deno test --parallel`.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";

export function isolationTest(marker: string, other: string): void {
  const testDb = useTestDatabase();
  dbTest(testDb, `isolation: test file ${marker} sees only its own data`, async (db) => {
    await db.sql`insert into units (code) values (${marker})`;
    for (let i = 0; i < 20; i++) {
      const codes = (await db.sql<{ code: string }[]>`select code from units`).map((r) => r.code);
      assert.deepEqual(codes, [marker], `saw ${codes.join(",")}; ${other} must stay invisible`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
}
