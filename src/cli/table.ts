// Plain-text tables and a progress bar for terminal output.

/** Formats rows as a left/right aligned text table (numbers right-aligned). */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly unknown[])[],
): string {
  const cells = [header.map(String), ...rows.map((r) => r.map(formatCell))];
  const numeric = header.map((_, i) =>
    rows.length > 0 && rows.every((r) => typeof r[i] === "number")
  );
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) =>
    r.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ")
      .trimEnd();
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)]
    .join("\n");
}

function formatCell(value: unknown): string {
  if (typeof value === "number") {
    return Number.isInteger(value)
      ? String(value)
      : value.toLocaleString("en-US", { maximumFractionDigits: 3 });
  }
  return value === null || value === undefined ? "" : String(value);
}

/** A one-line progress bar redrawn on stderr; `done()` clears it. */
export function progressBar(
  label: string,
): { update(done: number, total: number): void; done(): void } {
  const encoder = new TextEncoder();
  const write = (text: string) => Deno.stderr.writeSync(encoder.encode(text));
  return {
    update(done, total) {
      const width = 30;
      const ratio = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(ratio * width);
      write(`\r${label} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total}`);
    },
    done() {
      write("\r\x1b[2K");
    },
  };
}
