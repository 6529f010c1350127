// One timed phase of the bench, run in a fresh Deno process so that its peak RSS is its own
// (nothing left over from seeding or from an earlier phase): the parent hands the phase over
// as JSON, the child opens the case's database, times the work and prints one JSON line.
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { Database } from "../db/connection.ts";
import { runFactorsImport } from "../cli/factors.ts";
import { getDataEntryType } from "../reference/enums.ts";
import { createPgSliceStore } from "../rematch/pg_store.ts";
import { recalculateForDataEntryType, rematchInTransaction } from "../rematch/run.ts";
import type { RematchResult, SliceStore } from "../rematch/types.ts";
import type { SeedDet } from "../seed/generate.ts";
import { type BenchTarget, openBenchDatabase } from "./database.ts";
import {
  createFloorTable,
  dropFloorTable,
  type FloorMethod,
  floorTable,
  type FloorVariant,
  readFloorTemplate,
  writeFloorRows,
} from "./floor.ts";
import { BENCH_YEAR, type BenchSliceSummary, seedBenchSlice } from "./slice.ts";
import { scaleEmissionFactors } from "./changes.ts";

/** What the per-entry baseline is asked to do. */
export interface BaselineOptions {
  readonly dataEntryType: string;
  readonly year: number;
  /** Only the first `limit` entries (id order). @default the whole slice */
  readonly limit?: number;
  /** Commit the writes (else they are rolled back). */
  readonly commit: boolean;
}

/** What the per-entry baseline did. */
export interface BaselineSummary {
  readonly entries: number;
  readonly errors: number;
  /** kg of the rows it wrote (rollups excluded), plus the old kg of entries that failed. */
  readonly kgAfter: number;
  readonly emissionsWritten: number;
  /** SQL statements it sent. */
  readonly statements: number;
}

/** The per-entry baseline: lives in tests/bench/ and is handed in, so src/ never imports it. */
export type BaselineRunner = (db: Database, options: BaselineOptions) => Promise<BaselineSummary>;

/** What the bench needs from its composition root (scripts/bench.ts). */
export interface BenchHooks {
  readonly baseline: BaselineRunner;
  /** The script that runs `--phase JSON` in a fresh process. */
  readonly entrypoint: string | URL;
}

/** One phase, as plain data. */
export type PhaseSpec =
  | { readonly kind: "seed"; readonly target: BenchTarget; readonly det: SeedDet; entries: number }
  | {
    readonly kind: "floor";
    readonly target: BenchTarget;
    readonly det: string;
    readonly variant: FloorVariant;
  }
  | {
    readonly kind: "rematch";
    readonly target: BenchTarget;
    readonly det: string;
    readonly profile: boolean;
    /** Read every entry whatever the slice state says (`--full`). */
    readonly full?: boolean;
    /**
     * The timed rematch is the second of a warm worker process: before the clock, this process
     * runs a rematch of the slice on its connection (untimed: whatever the slice's state asks
     * for), then scales the ef_* values of `thenScale` (when given) through the same connection.
     */
    readonly warm?: { readonly thenScale?: number };
  }
  | {
    readonly kind: "baseline";
    readonly target: BenchTarget;
    readonly det: string;
    readonly limit?: number;
    readonly commit: boolean;
  }
  | { readonly kind: "factor-import"; readonly target: BenchTarget; readonly file: string };

/**
 * Time spent in one part of the rematch (`--profile`). The parts without `overlapping` add up to
 * the rematch's time; the overlapping ones (work done meanwhile: the writes on the server while
 * the next chunk is computed, the CPU of each process) do not.
 */
export interface ProfilePart {
  readonly part: string;
  readonly seconds: number;
  readonly calls: number;
  readonly overlapping?: true;
}

/** A rematch result without its long lists (their lengths are the counts). */
export type RematchSummary = Omit<RematchResult, "errorDetails" | "warnings" | "diff"> & {
  readonly firstErrors: RematchResult["errorDetails"];
};

/** What each phase kind reports besides its time. */
export interface PhaseDetails {
  seed: BenchSliceSummary;
  floor: {
    readonly rows: number;
    readonly method: FloorMethod;
    /** Rows the floor table held after the timed work (counted after the clock). */
    readonly storedRows: number;
  };
  rematch: {
    readonly result: RematchSummary;
    readonly profile?: readonly ProfilePart[];
    /** Rematch runs recorded by the timed work (counted right before and after the clock). */
    readonly runsRecorded: number;
    /** A warm phase's first, untimed rematch. */
    readonly warmUp?: RematchSummary;
  };
  baseline: BaselineSummary;
  "factor-import": {
    readonly rows: number;
    readonly fresh: { readonly seconds: number; readonly inserted: number };
    readonly unchanged: { readonly seconds: number; readonly unchanged: number };
  };
}

/** A phase's time, its process's peak RSS during the phase, and its details. */
export interface PhaseOutcome<K extends PhaseSpec["kind"] = PhaseSpec["kind"]> {
  readonly seconds: number;
  readonly peakRssBytes: number;
  /** How the peak was measured. */
  readonly rssMethod: string;
  readonly detail: PhaseDetails[K];
}

// ---- peak RSS ---------------------------------------------------------------------------------

const STATUS = "/proc/self/status";

function vmHwmBytes(): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+)\s+kB/.exec(Deno.readTextFileSync(STATUS))?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The peak RSS of this process from now on: Linux's high-water mark (VmHWM) after resetting it
 * (`5` into /proc/self/clear_refs), else `Deno.memoryUsage().rss` sampled every 10 ms.
 */
export function startPeakRss(): { method: string; stop(): number } {
  (globalThis as { gc?: () => void }).gc?.();
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    if (vmHwmBytes() !== undefined) {
      return {
        method: "VmHWM of the phase's process, reset at its start",
        stop: () => vmHwmBytes()!,
      };
    }
  } catch {
    // Not Linux, or not allowed: sample instead.
  }
  let peak = Deno.memoryUsage().rss;
  const timer = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 10);
  return {
    method: "Deno.memoryUsage().rss of the phase's process, sampled every 10 ms",
    stop() {
      clearInterval(timer);
      return Math.max(peak, Deno.memoryUsage().rss);
    },
  };
}

// ---- the rematch, optionally profiled ---------------------------------------------------------

/** Which part of the rematch each store method is (the others count as their own part). */
const PART_OF: Readonly<Record<string, string>> = {
  lockSlice: "setup",
  loadInputs: "setup",
  moduleIds: "setup",
  countEntries: "setup",
  frozenModuleIds: "setup",
  compareState: "slice state",
  lockAndCompareState: "slice state",
  recordedFactors: "slice state",
  factorStamp: "slice state",
  recordFactorStamp: "slice state",
  targetEntryIds: "slice state",
  pendingEntryIds: "slice state",
  refreshModuleStats: "stats",
  recordState: "slice state",
};

interface Spent {
  ms: number;
  calls: number;
}

/**
 * Wraps the store to see where the rematch waits: for each chunk to arrive ("read"), for the
 * other calls (by part). Writes are not waited for when sent: they run on the server while the
 * next chunk is computed, and "writes in flight" adds up their times (overlapping the rest).
 */
function timedStore(store: SliceStore, spent: Map<string, Spent>): SliceStore {
  const add = (part: string, ms: number) => {
    const s = spent.get(part) ?? { ms: 0, calls: 0 };
    s.ms += ms;
    s.calls++;
    spent.set(part, s);
  };
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      if (property === "readSlice") {
        return (...args: Parameters<SliceStore["readSlice"]>) => ({
          [Symbol.asyncIterator]() {
            const chunks = target.readSlice(...args)[Symbol.asyncIterator]();
            return {
              async next() {
                const started = performance.now();
                try {
                  return await chunks.next();
                } finally {
                  add("read", performance.now() - started);
                }
              },
              return: () => chunks.return?.() ?? Promise.resolve({ done: true, value: undefined }),
            };
          },
        });
      }
      if (property === "writeChunk" || property === "markEntries") {
        // Sent without waiting: they run on the server while the next chunk is computed.
        return (...args: unknown[]) => {
          const sent = performance.now();
          const write = value.apply(target, args) as Promise<unknown>;
          write.then(() => add("writes in flight", performance.now() - sent), () => {});
          return write;
        };
      }
      const part = PART_OF[String(property)] ?? String(property);
      return async (...args: unknown[]) => {
        const started = performance.now();
        try {
          return await value.apply(target, args);
        } finally {
          add(part, performance.now() - started);
        }
      };
    },
  });
}

const CPU_TICK_MS = 10;

/** CPU time (user + system) of a local process, or undefined (no /proc, or not this machine). */
function processCpuMs(pid: number): number | undefined {
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * CPU_TICK_MS;
  } catch {
    return undefined;
  }
}

/** The server process of the client's connection (the phase's clients have one each). */
async function backendPid(sql: Database["sql"]): Promise<number> {
  const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  return row.pid;
}

/** The CPU time of these backends together, or undefined when one cannot be read. */
function backendsCpuMs(pids: readonly number[]): number | undefined {
  let sum = 0;
  for (const pid of pids) {
    const ms = processCpuMs(pid);
    if (ms === undefined) return undefined;
    sum += ms;
  }
  return sum;
}

/**
 * The rematch with each part timed: the product's store and workflow in one transaction, as
 * recalculateForDataEntryType runs them (its run recorded too), the store wrapped.
 * "compute/compare" is the rest of the workflow's time: computing, comparing, recording the run
 * and, when the server is the slower side, waiting for the previous chunk's writes before sending
 * the next.
 * Then, overlapping: the writes' time on the connection, the CPU of this process and, when the
 * server runs on this machine, of its backends (the transaction's and the reader's).
 */
async function profiledRematch(
  db: Database,
  det: string,
  full: boolean,
  serverPids: readonly number[] | undefined,
) {
  const spent = new Map<string, Spent>();
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  let inside = 0;
  let serverCpu: number | undefined;
  const result = await db.sql.begin(async (tx) => {
    const serverBefore = serverPids && backendsCpuMs(serverPids);
    const result = await rematchInTransaction(
      tx,
      { dataEntryType: det, year: BENCH_YEAR, full },
      timedStore(createPgSliceStore(tx, { reader: db.readerSql }), spent),
    );
    inside = performance.now() - started;
    const serverAfter = serverBefore === undefined ? undefined : backendsCpuMs(serverPids!);
    serverCpu = serverAfter === undefined ? undefined : serverAfter - serverBefore!;
    return result;
  });
  const total = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const part = (name: string, ms: number, calls: number, overlapping?: true): ProfilePart => ({
    part: name,
    seconds: ms / 1000,
    calls,
    ...(overlapping ? { overlapping } : {}),
  });
  const waited = [...spent].filter(([name]) => name !== "writes in flight");
  const waitedMs = waited.reduce((sum, [, s]) => sum + s.ms, 0);
  const listed = (names: readonly string[]) =>
    names.filter((n) => spent.has(n)).map((n) => part(n, spent.get(n)!.ms, spent.get(n)!.calls));
  const known = ["setup", "slice state", "read", "stats", "writes in flight"];
  const inFlight = spent.get("writes in flight");
  return {
    result,
    parts: [
      ...listed(["setup", "slice state", "read"]),
      part("compute/compare", inside - waitedMs, 0),
      ...listed(["stats"]),
      ...listed(waited.map(([n]) => n).filter((n) => !known.includes(n))),
      part("begin/commit", total - inside, 1),
      ...(inFlight ? [part("writes in flight", inFlight.ms, inFlight.calls, true)] : []),
      part("client CPU", (cpu.user + cpu.system) / 1000, 1, true),
      ...(serverCpu === undefined ? [] : [part("server CPU", serverCpu, 1, true)]),
    ],
  };
}

function summarize(result: RematchResult): RematchSummary {
  const { errorDetails, warnings: _warnings, diff: _diff, ...counts } = result;
  return { ...counts, firstErrors: errorDetails.slice(0, 5) };
}

// ---- running a phase --------------------------------------------------------------------------

async function timed<T>(work: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { seconds: (performance.now() - started) / 1000, value };
}

/** What the timed work of a phase returns (a rematch's run count is added after the clock). */
type TimedDetails =
  | PhaseDetails[Exclude<PhaseSpec["kind"], "rematch" | "floor">]
  | Omit<PhaseDetails["floor"], "storedRows">
  | Omit<PhaseDetails["rematch"], "runsRecorded">;

/** Prepares what is not timed and returns the work that is. */
async function prepare(
  spec: PhaseSpec,
  db: Database,
  hooks: Pick<BenchHooks, "baseline">,
): Promise<() => Promise<TimedDetails>> {
  switch (spec.kind) {
    case "seed":
      return () => seedBenchSlice(db, { det: spec.det, entries: spec.entries });
    case "floor": {
      await createFloorTable(db, spec.variant);
      const template = await readFloorTemplate(db, getDataEntryType(spec.det).id);
      return () => writeFloorRows(db, spec.variant, template);
    }
    case "rematch": {
      const warmUp = spec.warm ? await warmUpRematch(db, spec.det, spec.warm.thenScale) : undefined;
      const withWarmUp = warmUp ? { warmUp } : {};
      // A whole-slice read runs on a session of the reader's (see executePhase): connected
      // before the clock starts, as the transaction's.
      const readerPid = db.readerSql ? await backendPid(db.readerSql) : undefined;
      if (spec.profile) {
        // The phase has one connection of each kind (see executePhase): their backends are the
        // ones to watch, and asking for them is done before the clock starts.
        const serverPids = db.kind === "server"
          ? [await backendPid(db.sql), ...(readerPid === undefined ? [] : [readerPid])]
          : undefined;
        return async () => {
          const { result, parts } = await profiledRematch(
            db,
            spec.det,
            spec.full ?? false,
            serverPids,
          );
          return { result: summarize(result), profile: parts, ...withWarmUp };
        };
      }
      return async () => ({
        result: summarize(
          await recalculateForDataEntryType(db, {
            dataEntryType: spec.det,
            year: BENCH_YEAR,
            full: spec.full,
          }),
        ),
        ...withWarmUp,
      });
    }
    case "baseline":
      return () =>
        hooks.baseline(db, {
          dataEntryType: spec.det,
          year: BENCH_YEAR,
          limit: spec.limit,
          commit: spec.commit,
        });
    case "factor-import":
      return () => importTwice(db, spec.file);
  }
}

/**
 * Runs one phase in this process: opens the database, prepares what is not timed, then times
 * the work and measures the peak RSS around it.
 */
export async function executePhase(
  spec: PhaseSpec,
  hooks: Pick<BenchHooks, "baseline">,
): Promise<PhaseOutcome> {
  // A rematch runs on one connection, and reads a whole slice on one of the reader's: opened with
  // one of each, both are connected before the clock starts.
  const db = await openBenchDatabase(spec.target, spec.kind === "rematch" ? 1 : undefined);
  try {
    const work = await prepare(spec, db, hooks);
    const runsBefore = spec.kind === "rematch" ? await countRematchRuns(db) : 0;
    // Dirty pages of the previous phase are written now, not inside the timed work.
    if (db.kind === "server") await db.sql`checkpoint`.catch(() => {});
    const rss = startPeakRss();
    const started = performance.now();
    const done = await work();
    const seconds = (performance.now() - started) / 1000;
    const peakRssBytes = rss.stop();
    let stored: { storedRows: number } | undefined;
    if (spec.kind === "floor") {
      // What the floor really wrote, not what it meant to write.
      const [{ n }] = await db.sql<{ n: number }[]>`
        select count(*)::int as n from ${db.sql(floorTable(spec.variant))}`;
      stored = { storedRows: n };
      await dropFloorTable(db, spec.variant);
    }
    // The work of a rematch phase is a rematch's (prepare builds it from the same spec).
    const detail = (spec.kind === "rematch"
      ? { ...done, runsRecorded: await countRematchRuns(db) - runsBefore }
      : { ...done, ...stored }) as PhaseDetails[PhaseSpec["kind"]];
    return { seconds, peakRssBytes, rssMethod: rss.method, detail };
  } finally {
    await db.close();
  }
}

/**
 * What makes a phase's process a warm worker: a first rematch of the slice through the product's
 * path on the phase's one connection (its statements prepared, the server's caches of that
 * backend and the process's compiled code warm, as in a `worker` that handled an upload before),
 * then, when given, the next change: `factorId`'s ef_* values scaled through that connection.
 */
async function warmUpRematch(
  db: Database,
  det: string,
  factorId: number | undefined,
): Promise<RematchSummary> {
  const result = await recalculateForDataEntryType(db, { dataEntryType: det, year: BENCH_YEAR });
  if (factorId !== undefined) {
    const changed = await scaleEmissionFactors(
      db.sql,
      getDataEntryType(det).id,
      BENCH_YEAR,
      factorId,
    );
    if (changed !== 1) throw new Error(`warm phase: factor ${factorId} of ${det} did not change`);
  }
  return summarize(result);
}

async function countRematchRuns(db: Database): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from rematch_runs`;
  return row.n;
}

async function importTwice(db: Database, file: string): Promise<PhaseDetails["factor-import"]> {
  const args = {
    file,
    year: BENCH_YEAR,
    target: { dataEntryTypeId: getDataEntryType("it").id },
    targetLabel: "det it",
    mode: "merge" as const,
    strict: false,
    rematch: false,
  };
  const fresh = await timed(() => runFactorsImport(db, args));
  const again = await timed(() => runFactorsImport(db, args));
  return {
    rows: fresh.value.result.rowsRead,
    fresh: { seconds: fresh.seconds, inserted: fresh.value.result.inserted },
    unchanged: { seconds: again.seconds, unchanged: again.value.result.unchanged },
  };
}

const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/**
 * The V8 flags the rematch runs with in the tasks of deno.json (`rematch`, `factors`, `demo`,
 * `serve`, `worker`) and the binary of `deno task compile`, so that each phase measures the
 * rematch as shipped: semi-spaces of 8 MB keep V8 from growing its young generation to 64 MB under
 * the rematch's allocation rate (no faster, only more memory); a WebAssembly tiering budget about
 * four times V8's default keeps the embedded database's code in its baseline tier for longer, instead
 * of compiling it again on the second core the work needs (a full change of 10,000 entries on PGlite:
 * 0.49 to 0.58 s against 0.57 to 0.67 s for `plane`, 0.54 to 0.61 s against 0.56 to 0.71 s for `it`;
 * the same within the noise at 100,000; inert on a server, whose client runs no WebAssembly).
 */
export const REMATCH_V8_FLAGS = "--max-semi-space-size=8,--wasm-tiering-budget=50000000";

// The phase processes running now: an interrupted run stops them before dropping their database.
const runningPhases = new Set<Deno.ChildProcess>();

/** Stops the phase processes still running (a run stopped by SIGINT or SIGTERM) and waits. */
export async function stopRunningPhases(): Promise<void> {
  await Promise.allSettled([...runningPhases].map((child) => {
    try {
      child.kill("SIGKILL");
    } catch {
      // It has just ended.
    }
    return child.status;
  }));
}

/** The environment variable that hands a phase process its phase, as JSON. */
export const PHASE_ENV = "REMATCH_BENCH_PHASE";

/**
 * Runs one phase in a fresh Deno process (`<entrypoint> --phase`, the phase as JSON in
 * {@linkcode PHASE_ENV}) and returns its outcome.
 */
export async function runPhase<K extends PhaseSpec["kind"]>(
  hooks: BenchHooks,
  spec: PhaseSpec & { kind: K },
): Promise<PhaseOutcome<K>> {
  const entrypoint = hooks.entrypoint instanceof URL
    ? fileURLToPath(hooks.entrypoint)
    : hooks.entrypoint;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      CONFIG,
      `--v8-flags=--expose-gc,${REMATCH_V8_FLAGS}`,
      entrypoint,
      "--phase",
    ],
    // Not on the command line, which every user of the host can read (`ps`): the phase names
    // its database by URL, password included.
    env: { [PHASE_ENV]: JSON.stringify(spec) },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  runningPhases.add(child);
  let output: Deno.CommandOutput;
  try {
    output = await child.output();
  } finally {
    runningPhases.delete(child);
  }
  const stdout = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`bench phase ${spec.kind} failed (exit ${output.code}): ${stderr || stdout}`);
  }
  return JSON.parse(stdout.split("\n").at(-1)!) as PhaseOutcome<K>;
}

/** The child's side: runs the phase given as JSON and prints its outcome as one JSON line. */
export async function runPhaseFromArgs(
  json: string | undefined,
  hooks: Pick<BenchHooks, "baseline">,
): Promise<never> {
  try {
    json ??= Deno.env.get(PHASE_ENV);
    if (!json) throw new Error(`--phase needs the phase as JSON (argument or ${PHASE_ENV})`);
    const outcome = await executePhase(JSON.parse(json) as PhaseSpec, hooks);
    console.log(JSON.stringify(outcome));
    Deno.exit(0);
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    Deno.exit(1);
  }
}
