import assert from "node:assert/strict";
import { MAX_YEAR, MIN_YEAR, yearProblem } from "./years.ts";

Deno.test("years outside 1990..2100 and non-integers are refused", () => {
  assert.equal(MIN_YEAR, 1990);
  assert.equal(MAX_YEAR, 2100);
  for (const ok of [1990, 2025, 2100]) assert.equal(yearProblem(ok), undefined);
  for (const bad of [0, 1989, 2101, 2025.5, Number.NaN]) {
    assert.match(yearProblem(bad) ?? "", /expected a year between 1990 and 2100/);
  }
});
