// The years a report, a factor set or an exchange rate may carry: one range for every edge
// (flags, CSV cells, entry lines, HTTP), so that a typo such as `--year 0000` never writes data.

/** The earliest accepted year (the Kyoto Protocol's base year). */
export const MIN_YEAR = 1990;
/** The latest accepted year. */
export const MAX_YEAR = 2100;

/**
 * Why `value` is not an accepted year, or undefined when it is one (an integer in
 * {@linkcode MIN_YEAR}..{@linkcode MAX_YEAR}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { yearProblem } from "./years.ts";
 * assert.equal(yearProblem(2025), undefined);
 * assert.equal(yearProblem(0), "expected a year between 1990 and 2100, got 0");
 * ```
 */
export function yearProblem(value: number): string | undefined {
  return Number.isInteger(value) && value >= MIN_YEAR && value <= MAX_YEAR
    ? undefined
    : `expected a year between ${MIN_YEAR} and ${MAX_YEAR}, got ${value}`;
}
