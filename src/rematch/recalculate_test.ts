import assert from "node:assert/strict";
import { digestsToRecord } from "./recalculate.ts";

Deno.test("digestsToRecord: the data the entries were computed with, or a state that matches nothing", () => {
  const compared = { locations: "a", "weeks per year": "52" };
  // Read as compared: recorded as such.
  assert.deepEqual(
    digestsToRecord("targeted", compared, { referenceDigests: { ...compared } }),
    compared,
  );
  // A reference import committed between the comparison and the read: a full rematch computed
  // every entry with what it read.
  const moved = { locations: "b", "weeks per year": "52" };
  assert.deepEqual(digestsToRecord("full", compared, { referenceDigests: moved }), moved);
  // A targeted one left the entries it did not read as they were: its state matches neither, so
  // the next comparison asks for a full rematch, even once the data is back as compared.
  const recorded = digestsToRecord("targeted", compared, { referenceDigests: moved });
  assert.equal(recorded["weeks per year"], "52");
  assert.notEqual(recorded.locations, "a");
  assert.notEqual(recorded.locations, "b");
  // Inputs from elsewhere (no digests): the comparison's.
  assert.deepEqual(digestsToRecord("full", compared, {}), compared);
});
