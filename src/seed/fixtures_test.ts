import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { FIXTURE_FILES } from "./fixture_files.ts";
import { fixtureNames, FixturesMissingError, fixtureText, fixtureYears } from "./fixtures.ts";

const ROOT = new URL("../../fixtures/", import.meta.url);

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(new URL(`${dir}/`, ROOT))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) found.push(...await filesUnder(path));
    else if (entry.isFile) found.push(path);
  }
  return found;
}

Deno.test("fixtures: every file of factors/, reference/ and demo/ is embedded with its exact text", async () => {
  const onDisk = [
    ...await filesUnder("factors"),
    ...await filesUnder("reference"),
    ...await filesUnder("demo"),
  ].sort();
  assert.deepEqual([...FIXTURE_FILES.keys()].sort(), onDisk);
  for (const path of onDisk) {
    const text = await Deno.readTextFile(fileURLToPath(new URL(path, ROOT)));
    assert.equal(fixtureText(path), text, path);
  }
});

Deno.test("fixtures: years, listings, and a missing file named", () => {
  assert.deepEqual(fixtureYears(), [2024, 2025]);
  assert.ok(fixtureNames("factors/2025").includes("plane.csv"));
  assert.ok(!fixtureNames("factors").length, "a listing holds files directly in the folder only");
  assert.throws(() => fixtureText("factors/1999/plane.csv"), FixturesMissingError);
  assert.throws(() => fixtureText("factors/1999/plane.csv"), /fixtures\/factors\/1999\/plane\.csv/);
});
