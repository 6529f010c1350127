// The one table printer of the command line: columns of text (left) and numbers (right, one
// thousands separator style, decimals aligned), fitted to the page width, with an optional total
// row.

/** A column of a table: its header and how its cells are shown. */
export interface TableColumn {
  /** The header; it wraps onto two or more lines at spaces when the table is too wide. */
  readonly header: string;
  /**
   * The numbers name something (a year, an id): shown without thousands separators and not
   * summed in the total row. @default false
   */
  readonly identifier?: boolean;
  /**
   * Decimals shown for the column's numbers (all the same, so that the points line up).
   * @default 0 when every number is an integer, else as many as the column needs, at most 3
   */
  readonly decimals?: number;
  /**
   * What the total row holds in this column: the sum of its numbers, nothing, or a value
   * computed from the rows.
   * @default "sum" for a column of numbers that are not identifiers, else "none"
   */
  readonly total?: "sum" | "none" | ((rows: readonly (readonly unknown[])[]) => unknown);
  /** May be left out (last ones first) when the table does not fit the width. @default false */
  readonly optional?: boolean;
  /**
   * Text cut only when nothing else helps (numbers never are): the other text columns give way
   * first. @default false
   */
  readonly whole?: boolean;
}

/** Options of {@linkcode formatTable}. */
export interface TableOptions {
  /** Adds a last row of totals, with this label in the first column (e.g. `total`). */
  readonly total?: string;
  /** The widest the table may be, in columns. @default {@linkcode pageWidth}() */
  readonly width?: number;
}

const GROUP = ",";
const POINT = ".";
const ELLIPSIS = "…";

/**
 * The width tables are fitted to: `COLUMNS` when set, else the terminal's width when stdout is
 * a terminal, else 80.
 */
export function pageWidth(): number {
  const env = Number(Deno.env.get("COLUMNS"));
  if (Number.isInteger(env) && env >= 20) return env;
  try {
    if (Deno.stdout.isTerminal()) return Math.max(20, Deno.consoleSize().columns);
  } catch {
    // no console size
  }
  return 80;
}

/**
 * A number with `,` between thousands and a `.` before exactly `decimals` decimals.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatNumber } from "./table.ts";
 * assert.equal(formatNumber(1234567), "1,234,567");
 * assert.equal(formatNumber(-1234.5, 2), "-1,234.50");
 * assert.equal(formatNumber(0.0004, 3), "0.000");
 * ```
 */
export function formatNumber(value: number, decimals = 0): string {
  if (!Number.isFinite(value)) return String(value);
  const fixed = Math.abs(value).toFixed(decimals);
  const [whole, fraction] = fixed.split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, GROUP);
  const negative = value < 0 && /[1-9]/.test(fixed);
  return `${negative ? "-" : ""}${grouped}${fraction ? POINT + fraction : ""}`;
}

/**
 * Formats rows as a text table: a header (wrapped when needed), a rule, the rows and, with
 * `options.total`, a rule and a total row. Columns whose cells are numbers (blank, `null` and
 * `-` allowed) are right-aligned with the same decimals; other cells are left-aligned text. The
 * table is fitted to `options.width`: headers wrap, optional columns are left out (and named
 * under the table), the gap narrows, and text cells are cut with "…"; numbers are never cut.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTable } from "./table.ts";
 * const text = formatTable(
 *   ["det", { header: "year", identifier: true }, "entries", "kg"],
 *   [["plane", 2025, 1200, 3456.5], ["train", 2025, 80, 12.25]],
 *   { total: "total", width: 80 },
 * );
 * assert.equal(text, [
 *   "det    year  entries        kg",
 *   "-----  ----  -------  --------",
 *   "plane  2025    1,200  3,456.50",
 *   "train  2025       80     12.25",
 *   "-----  ----  -------  --------",
 *   "total          1,280  3,468.75",
 * ].join("\n"));
 * ```
 */
export function formatTable(
  columns: readonly (string | TableColumn)[],
  rows: readonly (readonly unknown[])[],
  options: TableOptions = {},
): string {
  const specs = columns.map((c) => (typeof c === "string" ? { header: c } : c));
  const numeric = specs.map((_, i) => isNumberColumn(rows.map((r) => r[i])));
  const decimals = specs.map((spec, i) =>
    spec.decimals ?? (numeric[i] ? neededDecimals(rows.map((r) => r[i])) : 0)
  );
  const grouped = specs.map((spec) => !spec.identifier);
  const body = rows.map((r) => specs.map((_, i) => formatCell(r[i], decimals[i], grouped[i])));
  let total: string[] | undefined;
  if (options.total !== undefined) {
    total = specs.map((spec, i) => {
      if (i === 0) return options.total!;
      const rule = spec.total ?? (numeric[i] && !spec.identifier ? "sum" : "none");
      if (rule === "none") return "";
      const value = rule === "sum"
        ? rows.reduce((sum: number, r) => sum + (typeof r[i] === "number" ? r[i] as number : 0), 0)
        : rule(rows);
      return formatCell(value, decimals[i], grouped[i]);
    });
  }
  const table: Column[] = specs.map((spec, i) => ({
    header: spec.header,
    right: numeric[i],
    optional: spec.optional ?? false,
    whole: spec.whole ?? false,
    cells: [...body.map((r) => r[i]), ...(total ? [total[i]] : [])],
  }));
  return layout(table, options.width ?? pageWidth(), total !== undefined);
}

interface Column {
  header: string;
  right: boolean;
  optional: boolean;
  whole: boolean;
  cells: string[];
}

// Fits the columns to the width, trying each step in turn until the table fits: headers wrap at
// spaces; optional columns go, last first; the gap narrows to one space; text columns are cut to
// 12, then 8 characters, then the `whole` ones too; at last, columns go from the right (never the
// first). Numbers are never cut. Whatever was left out is named under the table.
function layout(all: Column[], width: number, hasTotal: boolean): string {
  let columns = all;
  let wrap = false;
  let gap = 2;
  let minText = Infinity;
  let minWhole = Infinity;
  let widths = fitWidths(columns, wrap, gap, minText, minWhole, width);
  const fits = () => widths.reduce((a, b) => a + b, 0) + gap * (widths.length - 1) <= width;
  const left: string[] = [];
  const dropLast = (which: (c: Column, i: number) => boolean): boolean => {
    const drop = columns.findLastIndex(which);
    if (drop < 0) return false;
    left.unshift(columns[drop].header);
    columns = columns.filter((_, i) => i !== drop);
    return true;
  };
  const refit = () => {
    widths = fitWidths(columns, wrap, gap, minText, minWhole, width);
  };
  if (!fits()) (wrap = true), refit();
  while (!fits() && dropLast((c) => c.optional)) refit();
  if (!fits()) (gap = 1), refit();
  if (!fits()) (minText = 12), refit();
  if (!fits()) (minText = 8), refit();
  if (!fits()) (minWhole = 8), refit();
  while (!fits() && dropLast((_, i) => i > 0)) refit();
  const headerLines = columns.map((c, i) => wrap ? wrapWords(c.header, widths[i]) : [c.header]);
  const depth = Math.max(...headerLines.map((l) => l.length));
  const line = (cells: string[]) =>
    cells.map((cell, i) => {
      const text = cut(cell, widths[i]);
      return columns[i].right ? text.padStart(widths[i]) : padEnd(text, widths[i]);
    }).join(" ".repeat(gap)).trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join(" ".repeat(gap));
  const out: string[] = [];
  for (let d = 0; d < depth; d++) {
    // Header lines sit at the bottom, next to the rule.
    out.push(line(headerLines.map((l) => l[d - (depth - l.length)] ?? "")));
  }
  out.push(rule);
  const rows = columns[0]?.cells.length ?? 0;
  for (let r = 0; r < rows; r++) {
    if (hasTotal && r === rows - 1) out.push(rule);
    out.push(line(columns.map((c) => c.cells[r])));
  }
  if (left.length) {
    const named = all.filter((c) => left.includes(c.header)).map((c) => c.header);
    out.push(
      ...wrapWords(`(left out to fit ${width} columns: ${named.join(", ")}; see --json)`, width),
    );
  }
  return out.join("\n");
}

// The columns' widths: each as wide as its widest cell (and header, or header word when headers
// wrap); then text columns, widest first, lose a character at a time down to `minText`
// (`minWhole` for whole ones) while the table is wider than `width`.
function fitWidths(
  columns: readonly Column[],
  wrap: boolean,
  gap: number,
  minText: number,
  minWhole: number,
  width: number,
): number[] {
  const widths = naturalWidths(columns, wrap);
  const size = () => widths.reduce((a, b) => a + b, 0) + gap * Math.max(0, widths.length - 1);
  while (size() > width) {
    let widest = -1;
    columns.forEach((c, i) => {
      const cuttable = !c.right && widths[i] > (c.whole ? minWhole : minText);
      if (cuttable && (widest < 0 || widths[i] > widths[widest])) {
        widest = i;
      }
    });
    if (widest < 0) break;
    widths[widest]--;
  }
  return widths;
}

function naturalWidths(columns: readonly Column[], wrap: boolean): number[] {
  return columns.map((c) => {
    // A loop, not a spread: a column may hold more cells than a call takes arguments.
    let cells = 0;
    for (const cell of c.cells) cells = Math.max(cells, length(cell));
    const header = wrap ? Math.max(...c.header.split(" ").map(length)) : length(c.header);
    return Math.max(cells, header, 1);
  });
}

// Words of a header in lines no wider than `width` (a longer word gets its own line).
function wrapWords(header: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of header.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && length(lines[last]) + 1 + length(word) <= width) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines;
}

function isNumberColumn(values: readonly unknown[]): boolean {
  const filled = values.filter((v) => !isBlank(v));
  return filled.length > 0 && filled.every((v) => typeof v === "number");
}

function isBlank(value: unknown): boolean {
  return value === null || value === undefined || value === "" || value === "-";
}

function neededDecimals(values: readonly unknown[]): number {
  let needed = 0;
  for (const v of values) {
    if (typeof v !== "number" || !Number.isFinite(v) || Number.isInteger(v)) continue;
    const fraction = v.toFixed(3).split(".")[1].replace(/0+$/, "");
    needed = Math.max(needed, fraction.length);
  }
  return needed;
}

function formatCell(value: unknown, decimals: number, grouped: boolean): string {
  if (typeof value === "number") {
    return grouped ? formatNumber(value, decimals) : String(value);
  }
  return value === null || value === undefined ? "" : String(value);
}

function length(text: string): number {
  return [...text].length;
}

function padEnd(text: string, width: number): string {
  return text + " ".repeat(Math.max(0, width - length(text)));
}

function cut(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, width - 1).join("")}${ELLIPSIS}`;
}
