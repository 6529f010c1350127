// The slice lock's keys go into its statement as literals (one round trip on a fresh connection):
// anything but an integer is refused before a statement is built.
import assert from "node:assert/strict";
import type { Queryable } from "../../src/db/connection.ts";
import { lockSlice } from "../../src/db/locks.ts";

// A transaction that fails the test if the lock builds or sends anything.
const untouched = new Proxy({}, {
  get(_target, property) {
    throw new Error(`the lock used the transaction (${String(property)}) before checking its keys`);
  },
  apply() {
    throw new Error("the lock sent a statement before checking its keys");
  },
}) as unknown as Queryable;

Deno.test("the slice lock refuses keys that are not integers before building its statement", async () => {
  for (const [det, year] of [[11, 2025.5], [11, Number.NaN], [11.5, 2025], [11, 2 ** 60]]) {
    await assert.rejects(
      () => lockSlice(untouched, det, year),
      (error: Error) => {
        assert.ok(error instanceof TypeError, `${det}, ${year}: ${error.message}`);
        assert.match(error.message, /slice lock keys must be integers/);
        return true;
      },
    );
  }
  // An injection attempt through a year that is not a number at all.
  await assert.rejects(
    () => lockSlice(untouched, 11, "2025); drop table factors; --" as unknown as number),
    TypeError,
  );
});
