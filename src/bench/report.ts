// How a bench run is printed: a text table per case, or the Markdown table of the README.
import { formatTable } from "../cli/table.ts";
import type { BenchCase, BenchReport, BenchTiming, OnePercentCheck } from "./run.ts";
import type { ProfilePart } from "./phase.ts";
import type { TargetVerdict } from "./targets.ts";

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
const ratio = (value: number | null) => (value === null ? "" : round(value, value < 10 ? 2 : 1));

function timingRow(t: BenchTiming): (string | number)[] {
  return [
    t.label,
    round(t.seconds, 3),
    Math.round(t.entriesPerSecond),
    ratio(t.floorRatio),
    ratio(t.baselineRatio),
    mb(t.peakRssBytes),
    t.note ?? "",
  ];
}

const HEADER = ["what", "seconds", "entries/s", "× floor A", "baseline ÷", "peak RSS MB", "note"];

function describeChecks(c: BenchCase): string[] {
  const lines: string[] = [];
  const { fullChange, noop, noopWarm, forcedNoop, baseline, onePercent, onePercentWarm } = c.checks;
  if (fullChange) {
    lines.push(
      `full change: ${fullChange.factorsChanged} factors changed; the rematch rewrote ` +
        `${fullChange.entriesWritten} of ${fullChange.entriesWithRows} entries with rows ` +
        `(${fullChange.errors} errors); kg ${round(fullChange.kgBefore, 3)} → ` +
        `${round(fullChange.kgAfter, 3)} (×${
          round(fullChange.kgAfter / fullChange.kgBefore, 6)
        }), ` +
        `stored ${round(fullChange.kgStored, 3)}`,
    );
  }
  const noops = [
    ["no-op", noop],
    ["forced full no-op", forcedNoop],
    ["warm worker's no-op", noopWarm],
  ] as const;
  for (const [name, run] of noops) {
    if (!run) continue;
    lines.push(
      `${name}: scope ${run.scope}, ${run.entriesRead} entries read, ${run.unchanged} of ` +
        `${run.recalculated} unchanged, ${run.emissionsWritten} rows written, stored rows ${
          run.rowsUntouched ? "untouched" : "CHANGED"
        }`,
    );
  }
  if (baseline) {
    lines.push(
      `baseline: ${baseline.entries} entries${baseline.sampled ? " (sample)" : ""}, ` +
        `${baseline.errors} errors, kg ${round(baseline.kgAfter, 3)}` +
        (baseline.rematchAfterWrites === undefined
          ? ""
          : `; a rematch right after it wrote ${baseline.rematchAfterWrites} rows`),
    );
  }
  const change = (run: OnePercentCheck) =>
    `factor ${run.factorId} covered ${run.coveredEntries} entries ` +
    `(${round(run.share * 100, 2)} %); the rematch (${run.scope}) read ` +
    `${run.entriesRead} and rewrote ${run.entriesWritten}`;
  if (onePercent) lines.push(`one-percent: ${change(onePercent)}`);
  if (onePercentWarm) {
    lines.push(
      `warm worker's one-percent: ${change(onePercentWarm)}; its first rematch: ` +
        change(onePercentWarm.warmUp),
    );
  }
  return lines;
}

function describeProfiles(c: BenchCase): string[] {
  const parts = (list: readonly ProfilePart[]) =>
    list.map((p) => `${p.part} ${round(p.seconds, 3)} s`).join(" · ");
  return c.timings.filter((t) => t.profile).map((t) => {
    const overlapping = t.profile!.filter((p) => p.overlapping);
    return `profile of "${t.label}": ` + parts(t.profile!.filter((p) => !p.overlapping)) +
      (overlapping.length ? ` (meanwhile: ${parts(overlapping)})` : "");
  });
}

/** A verdict's last column: yes, no, or why the run did not judge it. */
function holdsText(v: TargetVerdict): string {
  const verdict = v.holds === null ? "not measured" : v.holds ? "yes" : "no";
  return v.remark ? `${verdict}: ${v.remark}` : verdict;
}

const TARGET_HEADER = ["target (spec/performance.md)", "measured in this run", "holds"];

function machineLine(report: BenchReport): string {
  const m = report.machine;
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB RAM, ${m.os}, Deno ${m.deno}, ` +
    `${m.database}; 1-minute load average ${m.loadAverage[0]} → ${m.loadAverage[1]}`;
}

/** The human report: per case its table, checks and profiles; then seeding and factor import. */
export function formatBenchText(report: BenchReport): string {
  const out = [`bench ${report.startedAt} on ${machineLine(report)}`, ""];
  for (const c of report.cases) {
    out.push(
      `${c.det} · ${c.entries} entries in ${c.units} units · ${c.emissionRows} emission rows · ` +
        `seeded at ${Math.round(c.seed.entriesPerSecond)} entries/s ` +
        `(${round(c.seed.seconds, 2)} s, peak RSS ${mb(c.seed.peakRssBytes)} MB)`,
      formatTable(HEADER, c.timings.map(timingRow)),
      ...describeChecks(c),
      ...describeProfiles(c),
      "",
    );
  }
  if (report.factorImport) {
    const f = report.factorImport;
    out.push(
      `factor CSV import, ${f.rows} rows: fresh ${round(f.freshSeconds, 3)} s ` +
        `(${f.inserted} inserted), unchanged re-import ${round(f.unchangedSeconds, 3)} s ` +
        `(${f.unchanged} unchanged); peak RSS ${mb(f.peakRssBytes)} MB`,
      "",
    );
  }
  out.push(
    "targets of spec/performance.md in this run:",
    ...report.targets.map((v) => {
      const verdict = v.holds === null ? "not measured" : v.holds ? "holds" : "MISSED";
      const detail = [v.measured, v.remark].filter(Boolean).join("; ");
      return `  ${verdict}: ${v.target}${detail ? ` (${detail})` : ""}`;
    }),
    "",
    `peak RSS: ${report.rssMethod}`,
    ...report.notes,
  );
  return out.join("\n");
}

const cell = (value: string | number) => String(value).replaceAll("|", "\\|");

/** The README's table: every case's timings, then seeding and factor import, with the machine. */
export function formatBenchMarkdown(report: BenchReport): string {
  const head = [
    "det",
    "entries",
    "what",
    "seconds",
    "entries/s",
    "× floor A",
    "baseline ÷",
    "peak RSS",
  ];
  const rows = report.cases.flatMap((c) =>
    c.timings.map((t) => [
      c.det,
      c.entries,
      t.label + (t.note && t.what === "baseline" && t.note.startsWith("extrapolated")
        ? " (extrapolated)"
        : ""),
      round(t.seconds, 3),
      Math.round(t.entriesPerSecond),
      ratio(t.floorRatio),
      ratio(t.baselineRatio),
      `${mb(t.peakRssBytes)} MB`,
    ])
  );
  const table = [
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i === 0 || i === 2 ? "---" : "---:")).join("|")}|`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ];
  const extra = [
    ...report.cases.map((c) =>
      `- seeding ${c.det} ${c.entries}: ${Math.round(c.seed.entriesPerSecond)} entries/s`
    ),
    ...(report.factorImport
      ? [
        `- factor CSV import of ${report.factorImport.rows} rows: ` +
        `${round(report.factorImport.freshSeconds, 2)} s fresh, ` +
        `${round(report.factorImport.unchangedSeconds, 2)} s unchanged re-import`,
      ]
      : []),
    ...report.cases.flatMap((c) =>
      describeProfiles(c).map((line) => `- ${c.det} ${c.entries}, ${line}`)
    ),
  ];
  const targets = [
    `| ${TARGET_HEADER.join(" | ")} |`,
    "|---|---|---|",
    ...report.targets.map((v) =>
      `| ${[v.target, v.measured, holdsText(v)].map(cell).join(" | ")} |`
    ),
  ];
  return [
    `Measured ${report.startedAt.slice(0, 10)} by \`deno task bench\` on a shared machine under ` +
    `load (${machineLine(report)}): absolute times are noisy, the ratios within one run are what ` +
    `counts. × floor A: seconds ÷ the case's write floor A; baseline ÷: the per-entry ` +
    `baseline's seconds ÷ these; peak RSS: of the phase's own Deno process (` +
    (report.backend === "server" ? "the server's memory not counted" : "PGlite included") +
    ").",
    "",
    ...table,
    "",
    ...extra,
    "",
    ...targets,
  ].join("\n");
}
