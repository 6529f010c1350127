// Tables from names to values that answer only for their own names. A plain object literal also
// answers for the names of Object.prototype ("constructor", "__proto__"), which a file or a form
// can hold once lower-cased.

/**
 * A frozen table of `entries` without a prototype: looking up any other name gives undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nameTable } from "./names.ts";
 * const types = nameTable({ first: 50101, second: 50102 });
 * assert.equal(types["first"], 50101);
 * assert.equal(types["constructor"], undefined);
 * assert.equal(types["__proto__"], undefined);
 * ```
 */
export function nameTable<T>(entries: Readonly<Record<string, T>>): Readonly<Record<string, T>> {
  return Object.freeze(Object.assign(Object.create(null) as Record<string, T>, entries));
}
