// The targets of spec/performance.md, judged on one bench run: what the run measured for each and
// whether it holds. A target the run did not measure (a size, a change or a backend it left out)
// says what it would need instead of passing or failing.
import type { BenchCase, BenchReport, BenchTiming } from "./run.ts";

/** One target of spec/performance.md against one run. */
export interface TargetVerdict {
  /** The target as performance.md states it. */
  readonly target: string;
  /** What the run measured for it, per det and size (empty when nothing). */
  readonly measured: string;
  /** Whether every measurement meets it; null when the run measured nothing it applies to. */
  readonly holds: boolean | null;
  /** Why a target is not judged, or how far the run went (a size span short of 10k → 1M). */
  readonly remark?: string;
}

/**
 * The smallest size the targets that name none are judged at: they are set for 100k and 1M
 * entries, where a slice's fixed costs (a fresh process, a few statements) no longer dominate.
 */
const JUDGED_FROM = 100_000;
/** The size performance.md's baseline ratio is judged at. */
const BASELINE_SIZE = 100_000;
/** The size its peak RSS is judged at. */
const RSS_SIZE = 1_000_000;
/** The rows of the factor CSV it names. */
const IMPORT_ROWS = 50_000;
const MB = 2 ** 20;

/** The rematch's own phases (not the floors, not the baseline): their peak RSS is the product's. */
const PRODUCT_PHASES: ReadonlySet<BenchTiming["what"]> = new Set([
  "rematch",
  "no-op",
  "forced full no-op",
  "no-op, warm",
  "one-percent",
  "one-percent, warm",
]);

/**
 * A size as performance.md writes it (`10k`, `1M`), else the number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sizeLabel } from "./targets.ts";
 * assert.deepEqual([sizeLabel(10_000), sizeLabel(1_000_000), sizeLabel(2_000)], ["10k", "1M", "2k"]);
 * assert.equal(sizeLabel(2_500), "2500");
 * ```
 */
export function sizeLabel(entries: number): string {
  if (entries >= 1e6 && entries % 1e6 === 0) return `${entries / 1e6}M`;
  if (entries >= 1e3 && entries % 1e3 === 0) return `${entries / 1e3}k`;
  return String(entries);
}

/**
 * A ratio with the digits that tell it apart from its target: two decimals from 0.1 up (one from
 * 10), three significant digits below (a no-op's 0.00128 is not 0, its 0.0104 not 0.01).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ratioText } from "./targets.ts";
 * assert.deepEqual([ratioText(1.456), ratioText(48.71), ratioText(0.0104), ratioText(0.00128)], [
 *   "1.46", "48.7", "0.0104", "0.00128",
 * ]);
 * ```
 */
export function ratioText(value: number): string {
  if (value >= 10) return value.toFixed(1);
  if (value >= 0.1 || value === 0) return value.toFixed(2);
  return String(Number(value.toPrecision(3)));
}

const timingOf = (c: BenchCase, what: BenchTiming["what"]) =>
  c.timings.find((t) => t.what === what);

/**
 * A target judged per case on one timing's ratio: holds when every case that has the timing meets
 * `ok`; the warm worker's figure, when there is one, is shown beside the fresh process's.
 */
function perCase(
  cases: readonly BenchCase[],
  what: BenchTiming["what"],
  value: (t: BenchTiming) => number | null,
  ok: (value: number) => boolean,
  warm?: BenchTiming["what"],
): { measured: string; holds: boolean | null } {
  const parts: string[] = [];
  let holds: boolean | null = null;
  for (const c of cases) {
    const t = timingOf(c, what);
    const v = t ? value(t) : null;
    if (v === null) continue;
    holds = (holds ?? true) && ok(v);
    const w = warm ? timingOf(c, warm) : undefined;
    const wv = w ? value(w) : null;
    parts.push(
      `${c.det} ${sizeLabel(c.entries)}: ${ratioText(v)}` +
        (wv === null ? "" : ` (warm worker ${ratioText(wv)})`),
    );
  }
  return { measured: parts.join("; "), holds };
}

const floorRatio = (t: BenchTiming) => t.floorRatio;

/** Per det, the full change's time per entry at each size measured and its spread. */
function flatness(cases: readonly BenchCase[]): TargetVerdict {
  const target = "time per entry 10k → 1M flat within 1.5 ×";
  const byDet = new Map<string, { entries: number; micros: number }[]>();
  for (const c of cases) {
    const t = timingOf(c, "rematch");
    if (!t) continue;
    const list = byDet.get(c.det) ?? [];
    list.push({ entries: c.entries, micros: (t.seconds * 1e6) / c.entries });
    byDet.set(c.det, list);
  }
  const parts: string[] = [];
  let holds: boolean | null = null;
  let fullSpan = true;
  for (const [det, sizes] of byDet) {
    if (sizes.length < 2) continue;
    sizes.sort((a, b) => a.entries - b.entries);
    const micros = sizes.map((s) => s.micros);
    const spread = Math.max(...micros) / Math.min(...micros);
    holds = (holds ?? true) && spread <= 1.5;
    if (sizes[0].entries > 10_000 || sizes[sizes.length - 1].entries < 1_000_000) fullSpan = false;
    parts.push(
      `${det}: ${sizes.map((s) => `${s.micros.toFixed(1)} µs`).join(" → ")} ` +
        `(${sizes.map((s) => sizeLabel(s.entries)).join(" → ")}; ${ratioText(spread)} ×)`,
    );
  }
  if (holds === null) {
    return { target, measured: "", holds, remark: "needs two sizes of a det with --change all" };
  }
  return {
    target,
    measured: parts.join("; "),
    holds,
    ...(fullSpan ? {} : { remark: "judged on the sizes run, not the whole 10k → 1M span" }),
  };
}

/** The embedded database's full change of 10k against the server's, from the same run. */
function embeddedVerdict(
  report: Pick<BenchReport, "backend" | "embedded" | "embeddedError">,
): TargetVerdict {
  const target = "embedded full rematch of 10k ≤ 3 × the server's";
  const compared = report.embedded ?? [];
  if (report.embeddedError) {
    return {
      target,
      measured: "",
      holds: null,
      remark: `the embedded run failed: ${report.embeddedError}`,
    };
  }
  if (compared.length === 0) {
    return {
      target,
      measured: "",
      holds: null,
      remark: report.backend === "server"
        ? "needs --entries 10000 with --change all, without --server-only"
        : "needs a run on a server (DATABASE_URL), which times the embedded database beside it",
    };
  }
  const ratios = compared.map((c) => ({ c, ratio: c.embeddedSeconds / c.serverSeconds }));
  return {
    target,
    measured: ratios.map(({ c, ratio }) =>
      `${c.det}: ${c.embeddedSeconds.toFixed(3)} s against ${c.serverSeconds.toFixed(3)} s ` +
      `(${ratioText(ratio)} ×)`
    ).join("; "),
    holds: ratios.every((r) => r.ratio <= 3),
  };
}

/**
 * Every target of spec/performance.md, in its order, judged on `report`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluateTargets } from "./targets.ts";
 * const verdicts = evaluateTargets({ backend: "server", cases: [] });
 * assert.equal(verdicts.length, 10);
 * assert.ok(verdicts.every((v) => v.holds === null));
 * ```
 */
export function evaluateTargets(
  report: Pick<BenchReport, "backend" | "cases" | "factorImport" | "embedded" | "embeddedError">,
): TargetVerdict[] {
  const { cases } = report;
  const large = cases.filter((c) => c.entries >= JUDGED_FROM);
  const needsLarge = (flag: string) => `needs --entries 100000 or more with ${flag}`;
  const notMeasured = (target: string, remark: string): TargetVerdict => ({
    target,
    measured: "",
    holds: null,
    remark,
  });
  const judged = (
    target: string,
    result: { measured: string; holds: boolean | null },
    remark: string,
  ): TargetVerdict => (result.holds === null ? notMeasured(target, remark) : { target, ...result });

  const verdicts: TargetVerdict[] = [
    judged(
      "full change, every size ≤ 2 × floor A",
      perCase(cases, "rematch", floorRatio, (v) => v <= 2),
      "needs --change all",
    ),
    judged(
      "per-entry baseline ÷ rematch at 100k ≥ 50 ×",
      perCase(
        cases.filter((c) => c.entries === BASELINE_SIZE),
        "rematch",
        (t) => t.baselineRatio,
        (v) => v >= 50,
      ),
      "needs --entries 100000 with --change all",
    ),
    judged(
      "one-percent change ≤ 0.05 × floor A, from 100k",
      perCase(large, "one-percent", floorRatio, (v) => v <= 0.05, "one-percent, warm"),
      needsLarge("--change one-percent"),
    ),
    judged(
      "no-op ≤ 0.01 × floor A, from 100k",
      perCase(large, "no-op", floorRatio, (v) => v <= 0.01, "no-op, warm"),
      needsLarge("--change none"),
    ),
    judged(
      "forced full no-op ≤ 0.5 × floor A, from 100k",
      perCase(large, "forced full no-op", floorRatio, (v) => v <= 0.5),
      needsLarge("--change none"),
    ),
    flatness(cases),
  ];

  const largest = cases.filter((c) => c.entries === RSS_SIZE);
  const rss = largest.flatMap((c) =>
    c.timings.filter((t) => PRODUCT_PHASES.has(t.what)).map((t) => ({ c, mb: t.peakRssBytes / MB }))
  );
  verdicts.push(
    rss.length === 0 ? notMeasured("peak RSS at 1M entries < 200 MB", "needs --entries 1000000") : {
      target: "peak RSS at 1M entries < 200 MB",
      measured: largest.map((c) => {
        const peak = Math.max(...rss.filter((r) => r.c === c).map((r) => r.mb));
        return `${c.det}: ${Math.round(peak)} MB`;
      }).join("; "),
      holds: rss.every((r) => r.mb < 200),
    },
  );

  const f = report.factorImport;
  const importTarget = "factor CSV of 50,000 rows < 3 s; unchanged re-import < 1 s";
  verdicts.push(
    !f
      ? notMeasured(importTarget, "needs --import-rows 50000")
      : f.rows !== IMPORT_ROWS
      ? notMeasured(importTarget, `this run imported ${f.rows} rows: needs --import-rows 50000`)
      : {
        target: importTarget,
        measured: `${f.freshSeconds.toFixed(2)} s; unchanged ${f.unchangedSeconds.toFixed(2)} s`,
        holds: f.freshSeconds < 3 && f.unchangedSeconds < 1,
      },
  );

  const seedTarget = "entries import / seed ≥ 20,000 entries/s, from 100k";
  verdicts.push(
    report.backend !== "server"
      ? notMeasured(seedTarget, "judged on a server")
      : large.length === 0
      ? notMeasured(seedTarget, "needs --entries 100000 or more")
      : {
        target: seedTarget,
        measured: large.map((c) =>
          `${c.det} ${sizeLabel(c.entries)}: ${Math.round(c.seed.entriesPerSecond)}/s`
        ).join("; "),
        holds: large.every((c) => c.seed.entriesPerSecond >= 20_000),
      },
    embeddedVerdict(report),
  );
  if (report.backend === "server") return verdicts;
  // performance.md measures against a server; an embedded run's floor is no COPY (its ratios
  // are not a server's) and its peak RSS holds PGlite: what it measured is shown, not judged.
  const embedded = verdicts.at(-1)!;
  return [
    ...verdicts.slice(0, -1).map((v): TargetVerdict =>
      v.holds === null ? v : {
        target: v.target,
        measured: v.measured,
        holds: null,
        remark: "judged on a server (DATABASE_URL): measured here on the embedded database",
      }
    ),
    embedded,
  ];
}
