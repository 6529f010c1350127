// `deno task bench` (spec/performance.md): per (det, size) case a fresh database, the seeded
// slice, the write floors, then the rematch after a full change, the no-op rematch, the
// per-entry baseline and the one-percent change, each timed in its own process; ratios are
// taken inside the case, against floor A measured in the same run.
import { join } from "node:path";
import { recalculateForDataEntryType } from "../rematch/run.ts";
import { getDataEntryType } from "../reference/enums.ts";
import type { SeedDet } from "../seed/generate.ts";
import {
  CHANGE_FACTOR,
  closestCoverage,
  emissionSnapshot,
  type FactorCoverage,
  factorCoverage,
  scaleEmissionFactors,
} from "./changes.ts";
import { type BenchTarget, createBenchDatabase, withBenchDatabase } from "./database.ts";
import {
  type BenchHooks,
  type PhaseOutcome,
  type ProfilePart,
  type RematchSummary,
  runPhase,
} from "./phase.ts";
import { BENCH_YEAR } from "./slice.ts";
import { evaluateTargets, type TargetVerdict } from "./targets.ts";

/** The factor changes a case times (`--change`). */
export type ChangeKind = "all" | "one-percent" | "none";

/** What {@linkcode runBench} runs. */
export interface BenchOptions {
  /** Dets, each a case per size. @default ["it", "plane"] */
  readonly dets: readonly SeedDet[];
  /** Slice sizes (entries). */
  readonly entries: readonly number[];
  /** Which changes to time: `all` (rematch and baseline after every factor changed), `none` (the
   * no-op rematch), `one-percent`. */
  readonly changes: ReadonlySet<ChangeKind>;
  /** Time the parts of each rematch (read, compute, write, stats). */
  readonly profile: boolean;
  /** The baseline runs on at most this many entries and is extrapolated beyond. */
  readonly baselineSample: number;
  /** Rows of the factor CSV import measurement (0: skip it). */
  readonly importRows: number;
  /** The server to create the case databases on (undefined: embedded). */
  readonly serverUrl?: string;
  /**
   * On a server, time the full change of each det's 10k slice on the embedded database too, for
   * the embedded target (when the run has that size and the full change). @default false
   */
  readonly compareEmbedded?: boolean;
  /** Progress lines (stderr). */
  readonly onStatus?: (line: string) => void;
}

/** One timed line of a case. */
export interface BenchTiming {
  readonly what:
    | "floor A"
    | "floor B"
    | "rematch"
    | "baseline"
    | "no-op"
    | "forced full no-op"
    | "no-op, warm"
    | "one-percent"
    | "one-percent, warm";
  /** Human label (`rematch, every factor changed`, ...). */
  readonly label: string;
  readonly seconds: number;
  readonly entriesPerSecond: number;
  /** seconds ÷ floor A seconds. */
  readonly floorRatio: number | null;
  /** baseline seconds ÷ seconds: how many times faster than the per-entry baseline. */
  readonly baselineRatio: number | null;
  readonly peakRssBytes: number;
  readonly note?: string;
  readonly profile?: readonly ProfilePart[];
}

/** What a no-op rematch did. */
export interface NoopCheck {
  /** `none`: the slice knew it was current (`full` when forced). */
  readonly scope: string;
  readonly entriesRead: number;
  readonly recalculated: number;
  readonly unchanged: number;
  /** Rows the no-op inserted, updated and deleted. */
  readonly emissionsWritten: number;
  /** Row count, id sum and latest computed_at equal before and after. */
  readonly rowsUntouched: boolean;
}

/** What the rematch after one factor's change did. */
export interface OnePercentCheck {
  /** `targeted`: only the entries using the factor were read. */
  readonly scope: string;
  readonly entriesRead: number;
  readonly factorId: number;
  /** Entries whose rows named the factor. */
  readonly coveredEntries: number;
  readonly share: number;
  readonly entriesWritten: number;
}

/** What the bench checks about a case's results (the --quick test asserts on them). */
export interface CaseChecks {
  readonly fullChange?: {
    readonly factorsChanged: number;
    readonly entriesWithRows: number;
    /** Entries whose rows the rematch rewrote. */
    readonly entriesWritten: number;
    readonly errors: number;
    readonly kgBefore: number;
    /** The rematch's kg after, and the sum of the stored rows after it. */
    readonly kgAfter: number;
    readonly kgStored: number;
  };
  readonly noop?: NoopCheck;
  /** The no-op as the second rematch of a warm worker process, the first a no-op too. */
  readonly noopWarm?: NoopCheck & { readonly warmUpScope?: string };
  /** The no-op again with `full`: every entry read and recomputed, none written. */
  readonly forcedNoop?: NoopCheck;
  /** Rows each write floor's table held after its COPY (the slice's emission rows, each). */
  readonly floorRows?: { readonly A?: number; readonly B?: number };
  readonly baseline?: {
    readonly entries: number;
    readonly sampled: boolean;
    readonly errors: number;
    readonly kgAfter: number;
    /** Emission rows it inserted. */
    readonly emissionsWritten: number;
    /** Whole-slice baseline only: the det's rows after it, and whether their ids all moved. */
    readonly rowsAfter?: number;
    readonly idsMoved?: boolean;
    /** Whole-slice baseline only: rows a rematch right after it wrote (0: identical rows). */
    readonly rematchAfterWrites?: number;
  };
  readonly onePercent?: OnePercentCheck;
  /**
   * The one-percent change as the second rematch of a warm worker process, whose first rematch
   * followed the change of another factor of about 1 %.
   */
  readonly onePercentWarm?: OnePercentCheck & { readonly warmUp: OnePercentCheck };
  /**
   * The timed rematches, and the rematch runs recorded meanwhile: each timed one runs the product's
   * path, which records its run in its transaction (spec/history.md §3).
   */
  readonly runs?: { readonly timed: number; readonly recorded: number };
}

/** One (det, size) case. */
export interface BenchCase {
  readonly det: SeedDet;
  readonly entries: number;
  readonly units: number;
  readonly emissionRows: number;
  readonly seed: {
    readonly seconds: number;
    readonly entriesPerSecond: number;
    readonly peakRssBytes: number;
  };
  readonly timings: readonly BenchTiming[];
  readonly checks: CaseChecks;
}

/** The factor CSV import measurement (its own database). */
export interface FactorImportTiming {
  readonly rows: number;
  readonly freshSeconds: number;
  readonly unchangedSeconds: number;
  readonly inserted: number;
  readonly unchanged: number;
  readonly peakRssBytes: number;
}

/** The full change of a 10k slice on the embedded database and on the run's server. */
export interface EmbeddedComparison {
  readonly det: SeedDet;
  readonly entries: number;
  readonly embeddedSeconds: number;
  readonly serverSeconds: number;
  /** What the embedded rematch did, to set beside the server case's full change. */
  readonly entriesWritten: number;
  readonly kgAfter: number;
}

/** The size performance.md compares the embedded database with the server at. */
export const EMBEDDED_SIZE = 10_000;

/** The machine and database a run measured. */
export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly os: string;
  readonly deno: string;
  readonly database: string;
  /** /proc/loadavg's 1-minute load at the start and the end of the run. */
  readonly loadAverage: readonly [number, number];
}

/** Everything a run measured. */
export interface BenchReport {
  readonly startedAt: string;
  readonly backend: "server" | "embedded";
  readonly machine: MachineInfo;
  readonly rssMethod: string;
  readonly changeFactor: number;
  readonly cases: readonly BenchCase[];
  readonly factorImport?: FactorImportTiming;
  /** The embedded database's full change beside the server's (`compareEmbedded`). */
  readonly embedded?: readonly EmbeddedComparison[];
  /** Why that comparison could not be made, when it failed. */
  readonly embeddedError?: string;
  /** Each target of spec/performance.md judged on this run. */
  readonly targets: readonly TargetVerdict[];
  readonly notes: readonly string[];
}

const LABELS: Readonly<Record<BenchTiming["what"], string>> = {
  "floor A": "write floor A (indexes, no FKs)",
  "floor B": "write floor B (indexes + FKs)",
  rematch: "rematch, every factor changed",
  baseline: "per-entry baseline",
  "no-op": "no-op rematch (nothing changed)",
  "forced full no-op": "forced full no-op (--full, nothing changed)",
  "no-op, warm": "no-op rematch, in a warm worker",
  "one-percent": "rematch, one factor (~1 %) changed",
  "one-percent, warm": "rematch, one factor (~1 %) changed, in a warm worker",
};

function loadAverage(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/**
 * The huge pages this machine's kernel holds, when the server runs on this machine: with
 * `huge_pages = try` (PostgreSQL's default) the server maps its shared buffers on them only when
 * the kernel has enough of them reserved, and a new backend then faults far less on its first
 * touch of each buffer page.
 */
function hugePagesNote(kind: string, serverUrl: string | undefined): string {
  if (kind !== "server" || !serverUrl) return "";
  const host = new URL(serverUrl).hostname;
  if (!["localhost", "127.0.0.1", "::1", "[::1]", ""].includes(host)) return "";
  try {
    const total = /HugePages_Total:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1];
    return total === undefined ? "" : ` (${total} huge pages reserved by the kernel)`;
  } catch {
    return "";
  }
}

function cpuModel(): string {
  try {
    const line = Deno.readTextFileSync("/proc/cpuinfo").split("\n")
      .find((l) => l.startsWith("model name"));
    return line?.split(":")[1]?.trim() ?? Deno.build.arch;
  } catch {
    return Deno.build.arch;
  }
}

function rowsWritten(r: RematchSummary): number {
  return r.emissionsInserted + r.emissionsUpdated + r.emissionsDeleted;
}

/** What the rematch read and why: `targeted, 1000 entries read (1 factor changed in value)`. */
function scopeNote(r: RematchSummary): string {
  return `${r.scope}, ${r.entriesRead} entries read (${r.scopeReason})`;
}

/** What the rematch after `factor`'s change did (no rematch: scope `none`, nothing read). */
function onePercentCheck(
  result: RematchSummary | undefined,
  factor: FactorCoverage,
  entries: number,
): OnePercentCheck {
  return {
    scope: result?.scope ?? "none",
    entriesRead: result?.entriesRead ?? 0,
    factorId: factor.factorId,
    coveredEntries: factor.entries,
    share: factor.entries / entries,
    entriesWritten: result ? result.recalculated - result.unchanged : 0,
  };
}

type Timed = Omit<BenchTiming, "label" | "floorRatio" | "baselineRatio" | "entriesPerSecond">;

async function runCase(
  hooks: BenchHooks,
  options: BenchOptions,
  det: SeedDet,
  entries: number,
  target: BenchTarget,
): Promise<BenchCase> {
  const status = (line: string) => options.onStatus?.(`${det} ${entries}: ${line}`);
  const detId = getDataEntryType(det).id;
  const onDb = <T>(fn: Parameters<typeof withBenchDatabase<T>>[1]) => withBenchDatabase(target, fn);
  const timed: Timed[] = [];
  const checks: { -readonly [K in keyof CaseChecks]: CaseChecks[K] } = {};
  const add = (what: Timed["what"], outcome: PhaseOutcome, extra: Partial<Timed> = {}) =>
    timed.push({ what, seconds: outcome.seconds, peakRssBytes: outcome.peakRssBytes, ...extra });
  const runs = { timed: 0, recorded: 0 };
  const rematch = async (full = false, warm?: { thenScale?: number }) => {
    const outcome = await runPhase(hooks, {
      kind: "rematch",
      target,
      det,
      profile: options.profile,
      full,
      ...(warm ? { warm } : {}),
    });
    runs.timed++;
    runs.recorded += outcome.detail.runsRecorded;
    checks.runs = { ...runs };
    return {
      outcome,
      result: outcome.detail.result,
      profile: outcome.detail.profile,
      warmUp: outcome.detail.warmUp,
    };
  };

  status("seeding");
  const seed = await runPhase(hooks, { kind: "seed", target, det, entries });
  // The planner gets statistics, as autovacuum would give it on a live database.
  await onDb((db) => db.sql`vacuum analyze`);

  for (const variant of ["A", "B"] as const) {
    status(`write floor ${variant}`);
    const floor = await runPhase(hooks, { kind: "floor", target, det, variant });
    checks.floorRows = { ...checks.floorRows, [variant]: floor.detail.storedRows };
    add(`floor ${variant}`, floor, {
      note: floor.detail.method === "copy"
        ? `COPY of ${floor.detail.rows} rows`
        : `${floor.detail.rows} rows by INSERT ... SELECT FROM unnest (no COPY on embedded)`,
    });
  }

  if (!options.changes.has("all")) {
    // The no-op and the one-percent change start from a slice whose state is recorded: without
    // the full change, a first rematch (not timed) records it.
    status("first rematch (records the slice state, not timed)");
    await onDb((db) => recalculateForDataEntryType(db, { dataEntryType: det, year: BENCH_YEAR }));
  }

  if (options.changes.has("all")) {
    status("rematch after every factor changed");
    const before = await onDb((db) => emissionSnapshot(db.sql, detId));
    const factorsChanged = await onDb((db) => scaleEmissionFactors(db.sql, detId, BENCH_YEAR));
    const { outcome, result, profile } = await rematch();
    const after = await onDb((db) => emissionSnapshot(db.sql, detId));
    add("rematch", outcome, { profile, note: scopeNote(result) });
    checks.fullChange = {
      factorsChanged,
      entriesWithRows: before.entriesWithRows,
      entriesWritten: result.recalculated - result.unchanged,
      errors: result.errors,
      kgBefore: result.kgBefore,
      kgAfter: result.kgAfter,
      kgStored: after.kg,
    };
  }

  if (options.changes.has("none")) {
    const noops = [
      { what: "no-op", check: "noop", full: false, warm: false },
      { what: "forced full no-op", check: "forcedNoop", full: true, warm: false },
      { what: "no-op, warm", check: "noopWarm", full: false, warm: true },
    ] as const;
    for (const { what, check, full, warm } of noops) {
      status(`${what} rematch`);
      const before = await onDb((db) => emissionSnapshot(db.sql, detId));
      const { outcome, result, profile, warmUp } = await rematch(full, warm ? {} : undefined);
      const after = await onDb((db) => emissionSnapshot(db.sql, detId));
      add(what, outcome, { profile, note: scopeNote(result) });
      checks[check] = {
        scope: result.scope,
        entriesRead: result.entriesRead,
        recalculated: result.recalculated,
        unchanged: result.unchanged,
        emissionsWritten: rowsWritten(result),
        rowsUntouched: JSON.stringify(before) === JSON.stringify(after),
        ...(warm ? { warmUpScope: warmUp?.scope ?? "(no warm-up)" } : {}),
      };
    }
  }

  if (options.changes.has("all")) {
    const sampled = entries > options.baselineSample;
    status(`per-entry baseline${sampled ? ` (first ${options.baselineSample} entries)` : ""}`);
    const before = await onDb((db) => emissionSnapshot(db.sql, detId));
    const outcome = await runPhase(hooks, {
      kind: "baseline",
      target,
      det,
      limit: sampled ? options.baselineSample : undefined,
      commit: !sampled,
    });
    const summary = outcome.detail;
    const seconds = outcome.seconds * (entries / Math.max(1, summary.entries));
    add("baseline", { ...outcome, seconds }, {
      note: sampled
        ? `extrapolated ×${(entries / summary.entries).toFixed(1)} from its first ` +
          `${summary.entries} entries (${outcome.seconds.toFixed(2)} s, rolled back)`
        : `${summary.statements} SQL statements`,
    });
    let rematchAfterWrites: number | undefined;
    let written: { rowsAfter: number; idsMoved: boolean } | undefined;
    if (!sampled) {
      // It deleted and inserted every row of the slice: all new rows, none of the old ids.
      const after = await onDb((db) => emissionSnapshot(db.sql, detId));
      written = { rowsAfter: after.rows, idsMoved: after.idSum !== before.idSum };
      // The baseline rewrote every row: a rematch right after must find every row right.
      // --full: the baseline wrote behind the slice state's back.
      const check = await onDb((db) =>
        recalculateForDataEntryType(db, { dataEntryType: det, year: BENCH_YEAR, full: true })
      );
      rematchAfterWrites = check.emissionsInserted + check.emissionsUpdated +
        check.emissionsDeleted;
    }
    checks.baseline = {
      entries: summary.entries,
      sampled,
      errors: summary.errors,
      kgAfter: summary.kgAfter,
      emissionsWritten: summary.emissionsWritten,
      ...written,
      rematchAfterWrites,
    };
  }

  if (options.changes.has("one-percent")) {
    status("rematch after one factor (~1 %) changed");
    // The bench's own baseline may have left a slice of dead rows behind: not the rematch's.
    await onDb((db) => db.sql`vacuum analyze`);
    const coverage = await onDb((db) => factorCoverage(db.sql, detId));
    const chosen = closestCoverage(coverage, entries, 0.01);
    if (chosen) {
      await onDb((db) => scaleEmissionFactors(db.sql, detId, BENCH_YEAR, chosen.factorId));
      const { outcome, result, profile } = await rematch();
      const share = chosen.entries / entries;
      add("one-percent", outcome, {
        profile,
        note: `factor ${chosen.factorId} covers ${chosen.entries} entries ` +
          `(${(share * 100).toFixed(2)} %); ${scopeNote(result)}`,
      });
      checks.onePercent = onePercentCheck(result, chosen, entries);
    }
    // The same kind of change in a warm worker: its first rematch follows another factor's
    // change, its second (timed) a third factor's. Neither is the factor timed above.
    const first = chosen && closestCoverage(coverage, entries, 0.01, new Set([chosen.factorId]));
    const second = first &&
      closestCoverage(coverage, entries, 0.01, new Set([chosen.factorId, first.factorId]));
    if (first && second) {
      status("rematch after one factor (~1 %) changed, in a warm worker");
      await onDb((db) => db.sql`vacuum analyze`);
      await onDb((db) => scaleEmissionFactors(db.sql, detId, BENCH_YEAR, first.factorId));
      const { outcome, result, profile, warmUp } = await rematch(false, {
        thenScale: second.factorId,
      });
      const share = second.entries / entries;
      add("one-percent, warm", outcome, {
        profile,
        note: `factor ${second.factorId} covers ${second.entries} entries ` +
          `(${(share * 100).toFixed(2)} %), after factor ${first.factorId}'s ` +
          `(${first.entries} entries) in the same process; ${scopeNote(result)}`,
      });
      checks.onePercentWarm = {
        ...onePercentCheck(result, second, entries),
        warmUp: onePercentCheck(warmUp, first, entries),
      };
    }
  }

  const floorA = timed.find((t) => t.what === "floor A")?.seconds;
  const baseline = timed.find((t) => t.what === "baseline")?.seconds;
  return {
    det,
    entries: seed.detail.entries,
    units: seed.detail.units,
    emissionRows: seed.detail.emissionRows,
    seed: {
      seconds: seed.detail.entrySeconds,
      entriesPerSecond: seed.detail.entries / seed.detail.entrySeconds,
      peakRssBytes: seed.peakRssBytes,
    },
    timings: timed.map((t) => ({
      ...t,
      label: LABELS[t.what],
      entriesPerSecond: entries / t.seconds,
      floorRatio: floorA ? t.seconds / floorA : null,
      baselineRatio: baseline ? baseline / t.seconds : null,
    })),
    checks,
  };
}

/** Writes an `it` factor CSV of `rows` distinct classes (500 kinds × subkinds) for the import. */
async function writeImportCsv(path: string, rows: number): Promise<void> {
  const lines = [
    "equipment_class,sub_class,active_power_w,standby_power_w,active_usage_hours_per_week," +
    "standby_usage_hours_per_week,ef_kg_co2eq_per_kwh",
  ];
  for (let i = 0; i < rows; i++) {
    lines.push(
      `Class ${Math.floor(i / 100)},Model ${i % 100},${20 + (i % 480)},${1 + (i % 9)},40,128,0.2`,
    );
  }
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
}

async function measureFactorImport(
  hooks: BenchHooks,
  options: BenchOptions,
): Promise<FactorImportTiming> {
  options.onStatus?.(`factor CSV import of ${options.importRows} rows`);
  const dir = await Deno.makeTempDir({ prefix: "rematch-bench-csv-" });
  const database = await createBenchDatabase(options.serverUrl, "import");
  try {
    const file = join(dir, "it.csv");
    await writeImportCsv(file, options.importRows);
    const outcome = await runPhase(hooks, {
      kind: "factor-import",
      target: database.target,
      file,
    });
    const d = outcome.detail;
    return {
      rows: d.rows,
      freshSeconds: d.fresh.seconds,
      unchangedSeconds: d.unchanged.seconds,
      inserted: d.fresh.inserted,
      unchanged: d.unchanged.unchanged,
      peakRssBytes: outcome.peakRssBytes,
    };
  } finally {
    await database.drop();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The full change of a fresh embedded slice of `entries` entries of `det`, as a server case times
 * it: seeded, analysed, every factor scaled, then the rematch in a fresh process.
 */
async function embeddedFullChange(
  hooks: BenchHooks,
  det: SeedDet,
  entries: number,
): Promise<{ seconds: number; result: RematchSummary }> {
  const created = await createBenchDatabase(undefined, `${det}_${entries}_embedded`);
  try {
    await runPhase(hooks, { kind: "seed", target: created.target, det, entries });
    await withBenchDatabase(created.target, async (db) => {
      await db.sql`vacuum analyze`;
      await scaleEmissionFactors(db.sql, getDataEntryType(det).id, BENCH_YEAR);
    });
    const outcome = await runPhase(hooks, {
      kind: "rematch",
      target: created.target,
      det,
      profile: false,
    });
    return { seconds: outcome.seconds, result: outcome.detail.result };
  } finally {
    await created.drop();
  }
}

/**
 * Times the full change of each server case of `size` entries (that has one) again on a fresh
 * embedded database: the embedded target of performance.md, within the server's run.
 */
export async function compareWithEmbedded(
  hooks: BenchHooks,
  cases: readonly BenchCase[],
  options: { readonly size?: number; readonly onStatus?: (line: string) => void } = {},
): Promise<EmbeddedComparison[]> {
  const size = options.size ?? EMBEDDED_SIZE;
  const compared: EmbeddedComparison[] = [];
  for (const c of cases) {
    const server = c.timings.find((t) => t.what === "rematch");
    if (c.entries !== size || !server) continue;
    options.onStatus?.(`${c.det} ${c.entries}: the full change again, on the embedded database`);
    const { seconds, result } = await embeddedFullChange(hooks, c.det, c.entries);
    compared.push({
      det: c.det,
      entries: c.entries,
      embeddedSeconds: seconds,
      serverSeconds: server.seconds,
      entriesWritten: result.recalculated - result.unchanged,
      kgAfter: result.kgAfter,
    });
  }
  return compared;
}

/**
 * What is inconsistent between the embedded full changes and the server's (empty when all is
 * well): the same seeded slice must come out the same on both backends (spec/rematch.md), every
 * entry rewritten and the same kg.
 */
export function embeddedProblems(report: Pick<BenchReport, "cases" | "embedded">): string[] {
  const problems: string[] = [];
  for (const e of report.embedded ?? []) {
    const server = report.cases.find((c) => c.det === e.det && c.entries === e.entries)?.checks
      .fullChange;
    if (!server) continue;
    const label = `${e.det} ${e.entries} embedded`;
    if (e.entriesWritten !== server.entriesWritten) {
      problems.push(
        `${label}: rewrote ${e.entriesWritten} entries, the server ${server.entriesWritten}`,
      );
    }
    if (!close(e.kgAfter, server.kgAfter)) {
      problems.push(`${label}: kg after ${e.kgAfter}, the server's ${server.kgAfter}`);
    }
  }
  return problems;
}

/**
 * Runs every (det, size) case in its own fresh database (dropped at the end, also on failure),
 * then the factor import measurement, and returns what was measured.
 */
export async function runBench(hooks: BenchHooks, options: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const loadAtStart = loadAverage();
  const cases: BenchCase[] = [];
  let database = "";
  let rssMethod = "";
  for (const det of options.dets) {
    for (const entries of options.entries) {
      const created = await createBenchDatabase(options.serverUrl, `${det}_${entries}`);
      options.onStatus?.(`${det} ${entries}: database ${created.description}`);
      try {
        if (!database) {
          database = await withBenchDatabase(created.target, async (db) => {
            const [row] = await db.sql<{ v: string; buffers: string; huge: string }[]>`
              select version() as v, current_setting('shared_buffers') as buffers,
                current_setting('huge_pages') as huge`;
            return `${db.kind}: ${row.v.split(" ").slice(0, 2).join(" ")}, shared_buffers ` +
              `${row.buffers}, huge_pages ${row.huge}${hugePagesNote(db.kind, options.serverUrl)}`;
          });
        }
        cases.push(await runCase(hooks, options, det, entries, created.target));
      } finally {
        await created.drop();
      }
    }
  }
  // A failure of the embedded side (PGlite cannot load, say) costs the run only its verdict on
  // that target, not the server cases measured before it.
  let embedded: EmbeddedComparison[] | undefined;
  let embeddedError: string | undefined;
  if (options.serverUrl && options.compareEmbedded) {
    try {
      embedded = await compareWithEmbedded(hooks, cases, { onStatus: options.onStatus });
    } catch (error) {
      embeddedError = (error instanceof Error ? error.message : String(error)).split("\n")[0];
      options.onStatus?.(`the embedded full change failed: ${embeddedError}`);
    }
  }
  const factorImport = options.importRows > 0
    ? await measureFactorImport(hooks, options)
    : undefined;
  rssMethod = "VmHWM (Linux peak RSS) of a fresh process per phase, reset when the timed work " +
    "starts; it includes the Deno runtime and the client, not the PostgreSQL server" +
    (options.serverUrl ? "" : " (embedded: PGlite runs inside the process and is included)");
  const notes = [
    "Every timed phase runs in its own Deno process; the database is opened (and on a server " +
    "a CHECKPOINT taken) before the clock starts.",
    `A change multiplies the ef_* values of the factors by ${CHANGE_FACTOR}.`,
    `The no-op rematch runs right after ${
      options.changes.has("all")
        ? "the full-change rematch"
        : "a first, untimed rematch that records the slice state"
    }, then the forced full no-op; the one-percent change after ${
      options.changes.has("all") ? "the baseline and " : ""
    }a VACUUM ANALYZE.`,
  ];
  if (options.changes.has("none") || options.changes.has("one-percent")) {
    notes.push(
      "A warm worker's phase times the second rematch of its process, as a `worker` that " +
        "handled an upload before runs it: before the clock, the same connection ran a rematch " +
        "(the no-op's first is a no-op; the one-percent's first follows another factor's change " +
        "of about 1 %, after a VACUUM ANALYZE), then the change to time was made.",
    );
  }
  if (!options.serverUrl) {
    notes.push(
      "Embedded (PGlite): the write floor uses INSERT ... SELECT FROM unnest because COPY FROM " +
        "STDIN does not work over the embedded socket; its ratios are not comparable to a server's.",
    );
  }
  const backend = options.serverUrl ? "server" : "embedded";
  return {
    startedAt,
    backend,
    machine: {
      cpu: cpuModel(),
      cores: navigator.hardwareConcurrency,
      memoryGb: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
      os: `${Deno.build.os} ${Deno.osRelease()}`,
      deno: Deno.version.deno,
      database,
      loadAverage: [loadAtStart, loadAverage()],
    },
    rssMethod,
    changeFactor: CHANGE_FACTOR,
    cases,
    factorImport,
    ...(embedded?.length ? { embedded } : {}),
    ...(embeddedError ? { embeddedError } : {}),
    targets: evaluateTargets({ backend, cases, factorImport, embedded, embeddedError }),
    notes,
  };
}

/** The shares of the entries that count as "about 1 %" for the one-percent change. */
const ONE_PERCENT_SPAN = [0.005, 0.02] as const;

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

/**
 * What is inconsistent in a case's results (empty when all is well): the full change rewrote
 * every entry with rows and scaled the kg by {@linkcode CHANGE_FACTOR}; the no-op wrote nothing;
 * a whole-slice baseline left rows a rematch finds right; the one-percent change rewrote exactly
 * the entries its factor covered.
 */
export function consistencyProblems(c: BenchCase): string[] {
  const problems: string[] = [];
  const { fullChange, noop, noopWarm, forcedNoop, baseline, onePercent, onePercentWarm, runs } =
    c.checks;
  if (runs && runs.recorded !== runs.timed) {
    problems.push(`rematch runs: ${runs.timed} timed, ${runs.recorded} recorded`);
  }
  if (fullChange) {
    if (fullChange.factorsChanged === 0) problems.push("full change: no factor changed");
    if (fullChange.entriesWritten !== fullChange.entriesWithRows) {
      problems.push(
        `full change: ${fullChange.entriesWritten} entries rewritten, ` +
          `${fullChange.entriesWithRows} have rows`,
      );
    }
    if (!close(fullChange.kgAfter, fullChange.kgBefore * CHANGE_FACTOR)) {
      problems.push(`full change: kg ${fullChange.kgBefore} → ${fullChange.kgAfter}`);
    }
    if (!close(fullChange.kgStored, fullChange.kgAfter)) {
      problems.push(`full change: stored kg ${fullChange.kgStored} ≠ ${fullChange.kgAfter}`);
    }
  }
  for (const [name, run] of [["no-op", noop], ["warm no-op", noopWarm]] as const) {
    if (!run) continue;
    if (run.emissionsWritten || run.unchanged !== run.recalculated || !run.rowsUntouched) {
      problems.push(`${name}: ${run.emissionsWritten} rows written`);
    }
    if (run.scope !== "none" || run.entriesRead !== 0) {
      problems.push(`${name}: scope ${run.scope}, ${run.entriesRead} entries read`);
    }
  }
  if (noopWarm && noopWarm.warmUpScope !== "none") {
    problems.push(`warm no-op: its first rematch's scope was ${noopWarm.warmUpScope}`);
  }
  if (
    forcedNoop &&
    (forcedNoop.emissionsWritten || forcedNoop.unchanged !== forcedNoop.recalculated ||
      !forcedNoop.rowsUntouched || forcedNoop.scope !== "full")
  ) {
    problems.push(
      `forced full no-op: scope ${forcedNoop.scope}, ${forcedNoop.emissionsWritten} rows written`,
    );
  }
  for (const variant of ["A", "B"] as const) {
    const rows = c.checks.floorRows?.[variant];
    if (rows !== undefined && rows !== c.emissionRows) {
      problems.push(`floor ${variant}: ${rows} rows written, the slice has ${c.emissionRows}`);
    }
  }
  if (baseline && baseline.entries > baseline.errors && baseline.emissionsWritten === 0) {
    problems.push(`baseline: ${baseline.entries} entries recomputed, no row written`);
  }
  if (
    baseline?.rowsAfter !== undefined && baseline.errors === 0 &&
    (baseline.emissionsWritten !== baseline.rowsAfter || !baseline.idsMoved)
  ) {
    problems.push(
      `baseline: ${baseline.emissionsWritten} rows written, the slice has ${baseline.rowsAfter}` +
        (baseline.idsMoved ? "" : ", its rows kept their ids"),
    );
  }
  if (baseline?.rematchAfterWrites) {
    problems.push(`baseline: a rematch after it rewrote ${baseline.rematchAfterWrites} rows`);
  }
  if (baseline && !baseline.sampled && fullChange && !close(baseline.kgAfter, fullChange.kgAfter)) {
    problems.push(`baseline: kg ${baseline.kgAfter} ≠ the rematch's ${fullChange.kgAfter}`);
  }
  const changes = [
    ["one-percent", onePercent],
    ["warm one-percent", onePercentWarm],
    ["warm one-percent's first rematch", onePercentWarm?.warmUp],
  ] as const;
  for (const [name, run] of changes) {
    if (!run) continue;
    // performance.md times one factor covering about 1 % of the entries: a det whose factors
    // each cover far more (or far less) has no such change to time.
    if (run.share < ONE_PERCENT_SPAN[0] || run.share > ONE_PERCENT_SPAN[1]) {
      problems.push(
        `${name}: factor ${run.factorId} covers ${(run.share * 100).toFixed(2)} % of the ` +
          "entries, not about 1 %",
      );
    }
    if (run.scope !== "targeted" || run.entriesRead !== run.coveredEntries) {
      problems.push(
        `${name}: scope ${run.scope}, ${run.entriesRead} entries read, ` +
          `${run.coveredEntries} covered by factor ${run.factorId}`,
      );
    }
    if (run.entriesWritten !== run.coveredEntries) {
      problems.push(
        `${name}: ${run.entriesWritten} entries rewritten, ` +
          `${run.coveredEntries} covered by factor ${run.factorId}`,
      );
    }
  }
  return problems;
}
