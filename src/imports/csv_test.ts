import assert from "node:assert/strict";
import { parseCsv, parseCsvFully } from "./csv.ts";
import { Random } from "../seed/generate.ts";

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

Deno.test("a text without quotes reads as csv-parse reads it (line ends, blank lines, BOM, cell counts)", () => {
  // Seeded, so that a failure names a reproducible text.
  const random = new Random(20261128);
  const pieces = ["a", "b", "12", "0.2", " ", "  x ", "é", "日本", "\t", "\u0000", ""];
  let plain = 0;
  for (let n = 0; n < 2000; n++) {
    // Mostly one line end per text; now and then a mixed or lone \r, which the fast path hands
    // to csv-parse.
    const mixed = random.chance(0.1);
    const eol = random.pick(["\n", "\r\n"]);
    const lines: string[] = [];
    const count = random.int(0, 5);
    for (let l = 0; l < count; l++) {
      const shape = random.next();
      if (shape < 0.15) lines.push("");
      else if (shape < 0.25) lines.push(random.pick([" ", "  ", ",", " , "]));
      else {
        const cells = random.int(1, 4);
        lines.push(Array.from({ length: cells }, () => random.pick(pieces)).join(","));
      }
    }
    let text = lines.map((line) => line + (mixed ? random.pick(["\n", "\r\n", "\r"]) : eol)).join(
      "",
    );
    if (random.chance(0.3)) text = text.slice(0, -eol.length);
    if (random.chance(0.1)) text = "\ufeff" + text;
    const read = (parser: typeof parseCsv) => {
      try {
        return parser("t.csv", text);
      } catch (error) {
        return { error: (error as Error).message };
      }
    };
    const fast = read(parseCsv);
    assert.deepEqual(fast, read(parseCsvFully), JSON.stringify(text));
    if (!("error" in fast)) plain++;
  }
  // The generator reaches the tables it is meant for, not only refusals.
  assert.ok(plain > 1000, `${plain} texts read`);
});

Deno.test("parseCsv: any line end ends a row, whatever the first line ended with", () => {
  const rows = (text: string) =>
    parseCsv("m.csv", text).rows.map((r) => [r.line, r.cells.a, r.cells.b, r.problem]);
  // A CRLF header with LF rows (a file edited on two systems), and the other way round.
  const expected = [[2, "1", "2", undefined], [3, "3", "4", undefined]];
  assert.deepEqual(rows("a,b\r\n1,2\n3,4\n"), expected);
  assert.deepEqual(rows("a,b\n1,2\r\n3,4\r\n"), expected);
  // Lone CRs (old Mac files) count as line ends too, blank lines included.
  assert.deepEqual(rows("a,b\r1,2\r\r3,4\r"), [[2, "1", "2", undefined], [4, "3", "4", undefined]]);
  // A line end inside quotes stays in the cell; the line numbers go on counting.
  assert.deepEqual(rows('a,b\n"x\r\ny",2\r\n\r\n3,4\n'), [
    [2, "x\r\ny", "2", undefined],
    [5, "3", "4", undefined],
  ]);
});
