// Decimal numbers as people write them in a file or a form: digits, an optional point and
// exponent. `Number()` alone would also take "0x10", "0b11", "Infinity" or an empty text.

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * The finite number a text writes in decimal (surrounding blanks allowed), else undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDecimal } from "./decimal.ts";
 * assert.equal(parseDecimal(" 0.25 "), 0.25);
 * assert.equal(parseDecimal("1e3"), 1000);
 * assert.equal(parseDecimal("0x10"), undefined);
 * assert.equal(parseDecimal("1e999"), undefined);
 * assert.equal(parseDecimal(""), undefined);
 * ```
 */
export function parseDecimal(text: string): number | undefined {
  const trimmed = text.trim();
  if (!DECIMAL.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}
