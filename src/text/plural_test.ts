import assert from "node:assert/strict";
import { plural } from "./plural.ts";

Deno.test("plural: singular for exactly one, the given or regular plural otherwise", () => {
  assert.equal(plural(1, "row"), "1 row");
  assert.equal(plural(0, "row"), "0 rows");
  assert.equal(plural(2, "entry", "entries"), "2 entries");
  assert.equal(plural(1, "entry", "entries"), "1 entry");
});
