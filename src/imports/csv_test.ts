import assert from "node:assert/strict";
import { parseCsv } from "./csv.ts";

Deno.test("rows carry the file line they start on (blank lines, quoted newlines, CRLF)", () => {
  for (const eol of ["\n", "\r\n"]) {
    const text = ["a,b", "1,2", "", '"x', 'y",3', "", "", "4,5", ""].join(eol);
    const table = parseCsv("t.csv", text);
    assert.deepEqual(
      table.rows.map((r) => [r.row, r.line, r.cells.a]),
      [[1, 2, "1"], [2, 4, `x${eol}y`], [3, 8, "4"]],
      JSON.stringify(eol),
    );
  }
});
