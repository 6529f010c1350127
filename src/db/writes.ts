// Bulk writes: statements sent without waiting for their answers, the chunks they go in, and
// the arrays of numbers they carry.

/**
 * Statements sent on one connection without waiting for their answers: the connection runs them
 * in the order sent, so the server writes one while the caller builds the next. A failure is seen
 * where {@linkcode WritesInFlight.all} is awaited; until then it does not count as unhandled.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WritesInFlight } from "./writes.ts";
 * const writes = new WritesInFlight();
 * const first = writes.add(Promise.resolve(1));
 * writes.add(Promise.reject(new Error("refused")));
 * assert.equal(await first, 1);
 * await assert.rejects(writes.all(), /refused/);
 * ```
 */
export class WritesInFlight {
  readonly #writes: Promise<unknown>[] = [];

  /** Keeps `write` (a statement already sent) to be awaited with the others; returns it. */
  add<T>(write: Promise<T>): Promise<T> {
    write.catch(() => {});
    this.#writes.push(write);
    return write;
  }

  /** Resolves once every write has; rejects with the first failure. */
  async all(): Promise<void> {
    await Promise.all(this.#writes);
  }
}

/**
 * `items` in consecutive slices of at most `size`, in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chunksOf } from "./writes.ts";
 * assert.deepEqual([...chunksOf([1, 2, 3, 4, 5], 2)], [[1, 2], [3, 4], [5]]);
 * ```
 */
export function* chunksOf<T>(items: readonly T[], size: number): Generator<readonly T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}

/**
 * A number array as PostgreSQL's array literal (`{1,2.5,NULL}`), sent as text and cast: a
 * number needs no quoting or escaping, which the driver's array serializer does per element.
 * `String(n)` is the shortest text that reads back as the same float8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { numberArray } from "./writes.ts";
 * assert.equal(numberArray([1, 2.5, null, -0.1]), "{1,2.5,NULL,-0.1}");
 * assert.equal(numberArray([]), "{}");
 * ```
 */
export function numberArray(values: readonly (number | null)[]): string {
  let text = "{";
  for (let i = 0; i < values.length; i++) {
    if (i > 0) text += ",";
    const value = values[i];
    text += value === null ? "NULL" : String(value);
  }
  return text + "}";
}
