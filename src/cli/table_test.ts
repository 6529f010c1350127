import assert from "node:assert/strict";
import { formatNumber, formatTable } from "./table.ts";

const widest = (text: string) => Math.max(...text.split("\n").map((l) => [...l].length));

Deno.test("table: numbers right-aligned with , between thousands and the same decimals per column", () => {
  const text = formatTable(
    ["det", "entries", "kg"],
    [["plane", 1234567, 0.5], ["it", 3, 1234.125]],
    { width: 80 },
  );
  // kg needs 3 decimals (1234.125), so 0.5 shows as 0.500; text left, numbers right
  assert.equal(
    text,
    [
      "det      entries         kg",
      "-----  ---------  ---------",
      "plane  1,234,567      0.500",
      "it             3  1,234.125",
    ].join("\n"),
  );
});

Deno.test("table: a column's decimals can be fixed; negatives keep their sign; points line up", () => {
  const text = formatTable(
    ["a", { header: "kg", decimals: 1 }, "change"],
    [["x", 12.34, -5.5], ["y", 1000, 20]],
    { width: 80 },
  );
  assert.equal(
    text,
    [
      "a       kg  change",
      "-  -------  ------",
      "x     12.3    -5.5",
      "y  1,000.0    20.0",
    ].join("\n"),
  );
});

Deno.test("table: identifiers are neither grouped nor summed; the total row sums the rest", () => {
  const text = formatTable(
    ["det", { header: "year", identifier: true }, "entries", "kg", "note"],
    [["plane", 2025, 1500, 2.25, "a"], ["train", 2025, 500, 0.75, "b"], [
      "it",
      2025,
      "-",
      null,
      "",
    ]],
    { total: "total", width: 80 },
  );
  const lines = text.split("\n");
  assert.match(lines[2], /^plane\s+2025\s+1,500\s+2.25\s+a$/);
  assert.match(lines[4], /^it\s+2025\s+-$/);
  assert.match(lines[5], /^-+\s+-+\s+-+\s+-+\s+-+$/);
  // 1,500 + 500 = 2,000 entries; 2.25 + 0.75 = 3 kg; no year total, no note total
  assert.equal(lines[6], `total${" ".repeat(10)}2,000  3.00`);
});

Deno.test("table: a total can be computed from the rows (e.g. a percentage of totals)", () => {
  const text = formatTable(
    ["det", "before", "after", {
      header: "change %",
      decimals: 1,
      total: (rows) => {
        const before = rows.reduce((s, r) => s + (r[1] as number), 0);
        const after = rows.reduce((s, r) => s + (r[2] as number), 0);
        return ((after - before) / before) * 100;
      },
    }],
    [["a", 100, 110, 10], ["b", 300, 270, -10]],
    { total: "total", width: 80 },
  );
  // (380 − 400) / 400 = −5 %: not the sum of the rows' percentages (0)
  assert.match(text.split("\n").at(-1)!, /^total\s+400\s+380\s+-5.0$/);
});

Deno.test("table: a wide table fits the width: headers wrap, optional columns go (named), text is cut", () => {
  const header = [
    "det",
    { header: "year", identifier: true, optional: true },
    "entries",
    { header: "recalculated", optional: true },
    "relinked",
    "dropped",
    "errors",
    "kg before",
    "kg after",
    "rows inserted",
    "rows updated",
    "rows deleted",
  ];
  const rows = [
    [
      "biological_chemical_gaseous_product",
      2025,
      1200000,
      1199990,
      12,
      3,
      10,
      987654.5,
      1e6,
      5,
      7,
      9,
    ],
    ["it", 2025, 10, 10, 0, 0, 0, 1.5, 2.5, 0, 10, 0],
  ];
  for (const width of [80, 100, 60]) {
    const text = formatTable(header, rows, { width, total: "total" });
    assert.ok(widest(text) <= width, `${width}: ${widest(text)} columns\n${text}`);
    // numbers are never cut: only the det column (text) ends with "…"
    assert.match(text, /1,200,000/);
    assert.match(text, /987,654\.5/);
    for (const line of text.split("\n").filter((l) => l.includes("…"))) {
      assert.match(line, /^\S+… /);
    }
  }
  const small = [
    ["plane", 2025, 1200, 1190, 12, 3, 10, 9876.5, 10000, 5, 7, 9],
    ["it", 2025, 10, 10, 0, 0, 0, 1.5, 2.5, 0, 10, 0],
  ];
  const at80 = formatTable(header, small, { width: 80 });
  assert.ok(widest(at80) <= 80);
  assert.match(at80, /^\(left out to fit 80 columns: year, recalculated; see --json\)$/m);
  // too wide even so: columns go from the right too, and the note wraps to the width
  const narrow = formatTable(header, rows, { width: 60 });
  assert.match(
    narrow.replaceAll("\n", " "),
    /\(left out to fit 60 columns: year, recalculated, .*rows deleted; see --json\)$/,
  );
  assert.match(formatTable(header, rows, { width: 80 }), /^biological_che…\s/m);
  // the headers went onto two lines, the words bottom-aligned above the rule
  const lines = at80.split("\n");
  assert.match(lines[0], /\brows\b/);
  assert.match(lines[1], /\binserted\b/);
  assert.match(lines[2], /^-+( -+)+$/);
  // wide enough, nothing is left out and headers stay on one line
  const wide = formatTable(header, small, { width: 200 });
  assert.doesNotMatch(wide, /left out/);
  assert.match(wide.split("\n")[0], /^det\s+year\s+entries\s+recalculated\s/);
});

Deno.test("formatNumber: one thousands separator style, fixed decimals, no negative zero", () => {
  assert.equal(formatNumber(0), "0");
  assert.equal(formatNumber(999), "999");
  assert.equal(formatNumber(1000), "1,000");
  assert.equal(formatNumber(-1234567.891, 2), "-1,234,567.89");
  assert.equal(formatNumber(-0.0001, 2), "0.00");
  assert.equal(formatNumber(123456789012345), "123,456,789,012,345");
});

Deno.test("table: a whole text column is never cut; the others give way", () => {
  const rows = [[
    "biological_chemical_gaseous_product",
    "stale: targeted (12 factors, about 60 entries)",
  ]];
  const text = formatTable(["det", { header: "state", whole: true }], rows, { width: 60 });
  assert.ok(widest(text) <= 60, text);
  assert.match(text, /stale: targeted \(12 factors, about 60 entries\)$/m);
  assert.match(text, /^biological_\S*… /m);
});

Deno.test("table: a column of more cells than a call takes arguments (a dry run's --diff of a large slice)", () => {
  const rows = Array.from({ length: 200_000 }, (_, i) => [i + 1, i / 4]);
  const text = formatTable([{ header: "entry", identifier: true }, "kg"], rows, { width: 80 });
  const lines = text.split("\n");
  assert.equal(lines.length, 2 + rows.length);
  assert.equal(lines.at(-1), "200000  49,999.75");
});
