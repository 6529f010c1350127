import assert from "node:assert/strict";
import { parseCsv, parseCsvFully, rowProblem } from "./csv.ts";
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

Deno.test("parseCsv: blanks around a quoted value are left out as around any other", () => {
  const cells = (text: string) => parseCsv("s.csv", text).rows.map((r) => r.cells);
  assert.deepEqual(cells('country_code, ef\n"CH", "0.008"\n"FR" ,0.1\n\t"a, b" \t, " x "\n'), [
    { country_code: "CH", ef: "0.008" },
    { country_code: "FR", ef: "0.1" },
    { country_code: "a, b", ef: "x" },
  ]);
});

Deno.test("parseCsv: a syntax error names its line (counted in CRLF files too) and its column", () => {
  for (const eol of ["\n", "\r\n"]) {
    // Line 2 opens a quoted cell running over four lines; the bad quote is on line 6.
    const text = ["country_code,ef", '"A', "B", "C", 'D",0.1', 'CH,0"5', ""].join(eol);
    assert.throws(() => parseCsv("q.csv", text), {
      message: "q.csv: is not valid CSV: line 6, column ef: a quote inside a value that does not " +
        'start with one (quote the whole value and double each quote inside it: "a ""b"" c")',
    }, JSON.stringify(eol));
  }
  assert.throws(() => parseCsv("c.csv", 'a,b\r\nZürich,1\r\n"x"z,1\r\n'), {
    message: "c.csv: is not valid CSV: line 3, column a: text after the closing quote of a " +
      "quoted value (a quote inside a quoted value is doubled)",
  });
  // Blank lines before the header: the column is still named from the header.
  assert.throws(() => parseCsv("h.csv", '\n  \nname,ef\nLaptop,0"5\n'), {
    message: "h.csv: is not valid CSV: line 4, column ef: a quote inside a value that does not " +
      'start with one (quote the whole value and double each quote inside it: "a ""b"" c")',
  });
  assert.throws(() => parseCsv("u.csv", 'a,b\n1,2\n3,"4\n5,6\n'), {
    message: "u.csv: is not valid CSV: line 3, column b: a quoted value that is never closed " +
      "(its closing quote is missing)",
  });
});

Deno.test("parseCsv: lines of blanks and commas before the header are skipped", () => {
  for (const eol of ["\n", "\r\n"]) {
    const text = ["  ", " , ,", "a,b", "1,2", ""].join(eol);
    const table = parseCsv("h.csv", text);
    assert.deepEqual(table.header, ["a", "b"]);
    assert.deepEqual(table.rows.map((r) => [r.row, r.line, r.cells]), [[1, 4, { a: "1", b: "2" }]]);
  }
  for (const text of [" \n\t\n", ",,\r\n , \r\n", '"",""\n']) {
    assert.throws(() => parseCsv("e.csv", text), {
      message: "e.csv: is empty (expected a header row)",
    }, JSON.stringify(text));
  }
});

Deno.test("rowProblem: a cell the database cannot store counts only in a column that is read", () => {
  const long = "x".repeat(70_000);
  const [row] = parseCsv("n.csv", `name,note,other\nLaptop,${long},a\u0000b\n`).rows;
  assert.equal(rowProblem(row, ["name"]), undefined);
  assert.deepEqual(rowProblem(row, ["name", "other"]), {
    column: "other",
    message: "contains a NUL character (\\0), which the database cannot store",
  });
  assert.equal(rowProblem(row)?.column, "note");
  // A row whose cells do not line up with the header is refused whatever is read.
  const [short] = parseCsv("s.csv", "name,note\nLaptop\n").rows;
  assert.match(rowProblem(short, ["name"])?.message ?? "", /has 1 cell but the header has 2/);
});

Deno.test("parseCsv: a column named __proto__ is a column of its own, not the prototype", () => {
  // Both readers: the plain split, and csv-parse (a quote in the text).
  for (const text of ["unit,__proto__\nU1,x\n", 'unit,__proto__\n"U1",x\n']) {
    const [row] = parseCsv("p.csv", text).rows;
    assert.equal(Object.getPrototypeOf(row.cells), Object.prototype);
    assert.ok(Object.hasOwn(row.cells, "__proto__"));
    assert.deepEqual(Object.entries(row.cells), [["unit", "U1"], ["__proto__", "x"]]);
  }
  // Other names of Object.prototype are columns like any other.
  assert.deepEqual(parseCsv("c.csv", "constructor,toString\n1,2\n").rows[0].cells, {
    constructor: "1",
    toString: "2",
  });
});
