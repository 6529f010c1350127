// Progress on the terminal: one status line on stderr, redrawn in place, never wider than the
// terminal (so it never wraps), with the overall progress and an ETA of a run over several slices,
// and what the run is waiting for when a slice lock is held elsewhere.
import type { SliceLockWait } from "../db/locks.ts";

/** Where a status line is drawn. */
export interface StatusLineTarget {
  /** Writes text as is (carriage returns and erase sequences included). */
  write(text: string): void;
  /** The terminal's width in columns. */
  columns(): number;
}

const encoder = new TextEncoder();
const ERASE_LINE = "\r\x1b[2K";

/** stderr, when it is a terminal. */
export const stderrLine: StatusLineTarget = {
  write: (text) => {
    Deno.stderr.writeSync(encoder.encode(text));
  },
  columns: () => {
    try {
      return Deno.consoleSize().columns || 80;
    } catch {
      return 80;
    }
  },
};

/**
 * Status lines for a pipe or a log file (`--progress` off a terminal): each given to `write` as a
 * line of its own, nothing erased, at most one every `everyMs` (the first one always), none wider
 * than `columns`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { drawStatusLine, lineByLine } from "./progress.ts";
 * let clock = 0;
 * const out: string[] = [];
 * const target = lineByLine((line) => out.push(line), { everyMs: 5000, now: () => clock });
 * drawStatusLine("rematch plane 2025 10/100", target);
 * clock = 1000;
 * drawStatusLine("rematch plane 2025 20/100", target); // too soon: left out
 * clock = 6000;
 * drawStatusLine("rematch plane 2025 90/100", target);
 * assert.deepEqual(out, ["rematch plane 2025 10/100", "rematch plane 2025 90/100"]);
 * ```
 */
export function lineByLine(
  write: (text: string) => void,
  options: { everyMs?: number; columns?: number; now?: () => number } = {},
): StatusLineTarget {
  const { everyMs = 5000, columns = 200, now = Date.now } = options;
  let last: number | undefined;
  return {
    write(text) {
      // Erasing has nothing to do on a pipe.
      const line = text.startsWith(ERASE_LINE) ? text.slice(ERASE_LINE.length) : text;
      if (line === "") return;
      const at = now();
      if (last !== undefined && at - last < everyMs) return;
      last = at;
      write(line);
    },
    columns: () => columns,
  };
}

/** stderr as {@linkcode lineByLine} writes it: a line every 5 s at most. */
export const stderrLines: StatusLineTarget = lineByLine((line) => console.error(line));

// The target a status line is on screen on, if one is: cleared before anything else is printed.
let shown: StatusLineTarget | undefined;

/** Erases the status line if one is drawn (before printing an error or a signal's line). */
export function clearStatusLine(): void {
  shown?.write(ERASE_LINE);
  shown = undefined;
}

/**
 * Cuts a line to fit `columns` terminal columns with one to spare (a line exactly as wide as the
 * terminal wraps on some terminals), ending it with "…" when cut.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitLine } from "./progress.ts";
 * assert.equal(fitLine("rematch plane 2025", 80), "rematch plane 2025");
 * assert.equal(fitLine("rematch plane 2025", 10), "rematch …");
 * ```
 */
export function fitLine(text: string, columns: number): string {
  const room = Math.max(1, columns - 1);
  const chars = [...text];
  return chars.length <= room ? text : `${chars.slice(0, room - 1).join("")}…`;
}

/** Draws `text` as the status line (replacing the previous one), cut to the terminal width. */
export function drawStatusLine(text: string, target: StatusLineTarget = stderrLine): void {
  target.write(`${ERASE_LINE}${fitLine(text, target.columns())}`);
  shown = target;
}

/**
 * A duration as a person reads it: `45s`, `3m 05s`, `2h 10m`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration } from "./progress.ts";
 * assert.equal(formatDuration(45_000), "45s");
 * assert.equal(formatDuration(185_000), "3m 05s");
 * assert.equal(formatDuration(7_800_000), "2h 10m");
 * ```
 */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

/** Options of a {@linkcode RunProgress}. */
export interface RunProgressOptions {
  /** What runs, first on the line (e.g. `rematch`). */
  readonly label: string;
  /** The number of slices the run does (see {@linkcode RunProgress.plan}). @default 1 */
  readonly slices?: number;
  /**
   * Entries of all the slices together, when known before the run: the ETA then counts them.
   * @default estimated from the slices done so far
   */
  readonly expectedEntries?: number;
  /** Where the line is drawn. @default stderr */
  readonly target?: StatusLineTarget;
  /** The clock, in milliseconds. @default Date.now */
  readonly now?: () => number;
  /** Redraw a waiting line this often (ms); 0 draws it only once. @default 1000 */
  readonly refreshMs?: number;
}

/**
 * The status line of a run over one or more slices (`rematch --det`, `--all`, `--stale`):
 *
 * `rematch 3/21 plane 2025 [#####-----] 12,000/24,000 · 40% of all · ETA 1m 20s`
 *
 * The overall share counts entries; slices not started yet count as many entries as the average
 * slice done so far, unless the total was given up front. While a slice lock is held elsewhere the
 * line says which slice, since when and, when known, who holds it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunProgress } from "./progress.ts";
 * let clock = 0;
 * const lines: string[] = [];
 * const target = { write: (t: string) => lines.push(t), columns: () => 100 };
 * const progress = new RunProgress({ label: "rematch", slices: 2, target, now: () => clock });
 * progress.startSlice("plane 2025");
 * clock = 10_000;
 * progress.update(500, 1000);
 * assert.match(progress.line(), /^rematch 1\/2 plane 2025 \[#+-+\] 500\/1,000 · 25% of all · ETA 30s$/);
 * progress.done();
 * ```
 */
export class RunProgress {
  readonly #options: RunProgressOptions;
  readonly #now: () => number;
  #slices: number;
  #expected: number | undefined;
  readonly #started: number;
  #slice = "";
  #index = 0;
  #done = 0;
  #total = 0;
  #finishedEntries = 0;
  #finishedSlices = 0;
  #wait: SliceLockWait | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: RunProgressOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#slices = options.slices ?? 1;
    this.#expected = options.expectedEntries;
    this.#started = this.#now();
  }

  /**
   * Says how many slices the run does and, when known, how many entries they read together
   * (once they are known, e.g. after finding the stale slices).
   */
  plan(slices: number, expectedEntries?: number): void {
    this.#slices = slices;
    this.#expected = expectedEntries;
  }

  /** A slice starts (e.g. `plane 2025`). */
  startSlice(slice: string): void {
    this.#endSlice();
    this.#slice = slice;
    this.#index++;
    this.#draw();
  }

  /** Entries done of the current slice and its total (the rematch's `onProgress`). */
  update(done: number, total: number): void {
    this.#stopWaiting();
    this.#done = done;
    this.#total = total;
    this.#draw();
  }

  /**
   * The current slice's lock is held by another transaction: says so until the returned
   * function is called (the lock is taken).
   */
  waiting(wait: SliceLockWait): () => void {
    this.#stopWaiting();
    this.#wait = wait;
    this.#draw();
    const every = this.#options.refreshMs ?? 1000;
    if (every > 0) this.#timer = setInterval(() => this.#draw(), every);
    return () => {
      if (this.#wait !== wait) return;
      this.#stopWaiting();
      this.#draw();
    };
  }

  /** The line as it is drawn now (before it is cut to the terminal). */
  line(): string {
    const { label } = this.#options;
    const slices = this.#slices;
    const count = slices > 1 ? ` ${this.#index}/${slices}` : "";
    const head = `${label}${count} ${this.#slice}`.trimEnd();
    if (this.#wait) return `${head}: ${describeLockWait(this.#wait, this.#now())}`;
    const parts = [head];
    if (this.#total > 0) {
      const width = 20;
      const filled = Math.round(Math.min(1, this.#done / this.#total) * width);
      parts.push(`[${"#".repeat(filled)}${"-".repeat(width - filled)}]`);
      parts.push(`${groupDigits(this.#done)}/${groupDigits(this.#total)}`);
    }
    const estimate = this.#estimate();
    if (estimate) {
      const shares = slices > 1 ? [`${Math.floor(estimate.share * 100)}% of all`] : [];
      const eta = estimate.remainingMs === undefined
        ? []
        : [`ETA ${formatDuration(estimate.remainingMs)}`];
      if (shares.length || eta.length) return [parts.join(" "), ...shares, ...eta].join(" · ");
    }
    return parts.join(" ");
  }

  /** Clears the line (the run is over, or something else is about to be printed). */
  done(): void {
    this.#stopWaiting();
    clearStatusLine();
  }

  #endSlice(): void {
    if (!this.#slice) return;
    this.#finishedEntries += this.#total;
    this.#finishedSlices++;
    this.#done = 0;
    this.#total = 0;
  }

  // The share of the run's entries done, and the time left at the rate so far.
  #estimate(): { share: number; remainingMs?: number } | undefined {
    const slices = this.#slices;
    const expectedEntries = this.#expected;
    const doneEntries = this.#finishedEntries + this.#done;
    const started = this.#finishedSlices + (this.#slice ? 1 : 0);
    const known = this.#finishedEntries + this.#total;
    let all: number;
    if (expectedEntries !== undefined) all = Math.max(expectedEntries, known);
    else if (started === 0) return undefined;
    else {
      const perSlice = this.#finishedSlices > 0
        ? this.#finishedEntries / this.#finishedSlices
        : this.#total;
      all = known + Math.max(0, slices - started) * perSlice;
    }
    if (all <= 0) return undefined;
    const share = Math.min(1, doneEntries / all);
    const elapsed = this.#now() - this.#started;
    if (doneEntries <= 0 || elapsed <= 0) return { share };
    return { share, remainingMs: ((all - doneEntries) * elapsed) / doneEntries };
  }

  #stopWaiting(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#wait = undefined;
  }

  #draw(): void {
    drawStatusLine(this.line(), this.#options.target);
  }
}

/**
 * What a run waiting for a slice lock says: which slice, since when (and for how long, given
 * the time now), and who holds it when known.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeLockWait } from "./progress.ts";
 * const since = new Date(2025, 0, 1, 14, 2, 11);
 * assert.equal(
 *   describeLockWait({ slice: "plane 2025", since, holder: "pid 42 (rematch)" }, since.getTime() + 65_000),
 *   "waiting for the slice lock of plane 2025 since 14:02:11 (1m 05s; held by pid 42 (rematch))",
 * );
 * ```
 */
export function describeLockWait(wait: SliceLockWait, now?: number): string {
  const waited = now === undefined ? [] : [formatDuration(now - wait.since.getTime())];
  const holder = wait.holder ? [`held by ${wait.holder}`] : [];
  const details = [...waited, ...holder].join("; ");
  return `waiting for the slice lock of ${wait.slice} since ${clockTime(wait.since)}` +
    (details ? ` (${details})` : "");
}

/**
 * The `onLockWait` of a rematch: on a terminal the status line says what it waits for (and for
 * how long) until the lock is taken; elsewhere one line on stderr says it.
 */
export function reportLockWait(
  command: string,
  progress: RunProgress | undefined,
): (wait: SliceLockWait) => (() => void) | void {
  return (wait) => {
    if (progress) return progress.waiting(wait);
    console.error(`${command}: ${describeLockWait(wait)}`);
  };
}

function clockTime(date: Date): string {
  return date.toTimeString().slice(0, 8);
}

function groupDigits(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
