import assert from "node:assert/strict";
import { MIGRATION_FILES, MIGRATIONS, SCHEMA_VERSION } from "./migrate.ts";

Deno.test("migrations: every file of migrations/ is embedded, in order, with the file's exact text", async () => {
  const folder = new URL("../../migrations/", import.meta.url);
  const files: string[] = [];
  for await (const entry of Deno.readDir(folder)) {
    if (entry.isFile && entry.name.endsWith(".sql")) files.push(entry.name);
  }
  files.sort();
  assert.deepEqual(MIGRATIONS.map((m) => m.file), files);
  assert.deepEqual(MIGRATION_FILES, files);
  for (const { file, sql } of MIGRATIONS) {
    assert.equal(sql, await Deno.readTextFile(new URL(file, folder)), file);
  }
  assert.equal(SCHEMA_VERSION, Number(files.at(-1)!.slice(0, 4)));
});
