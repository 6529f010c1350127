import assert from "node:assert/strict";
import { parseCsv, parseCsvFully } from "./csv.ts";

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

// A small deterministic generator (mulberry32), so that a failure names a reproducible text.
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("a text without quotes reads as csv-parse reads it (line ends, blank lines, BOM, cell counts)", () => {
  const next = random(20261128);
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)];
  const pieces = ["a", "b", "12", "0.2", " ", "  x ", "é", "日本", "\t", "\u0000", ""];
  let plain = 0;
  for (let n = 0; n < 2000; n++) {
    // Mostly one line end per text; now and then a mixed or lone \r, which the fast path hands
    // to csv-parse.
    const mixed = next() < 0.1;
    const eol = pick(["\n", "\r\n"]);
    const lines: string[] = [];
    const count = Math.floor(next() * 6);
    for (let l = 0; l < count; l++) {
      const shape = next();
      if (shape < 0.15) lines.push("");
      else if (shape < 0.25) lines.push(pick([" ", "  ", ",", " , "]));
      else {
        const cells = 1 + Math.floor(next() * 4);
        lines.push(Array.from({ length: cells }, () => pick(pieces)).join(","));
      }
    }
    let text = lines.map((line) => line + (mixed ? pick(["\n", "\r\n", "\r"]) : eol)).join("");
    if (next() < 0.3) text = text.slice(0, -eol.length);
    if (next() < 0.1) text = "\ufeff" + text;
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
