// Slice state (spec/rematch.md rules 16-18): what the last rematch of a (det, year) slice
// computed against, compared with the live rows to say whether the slice is current and, when
// it is not, how much of it a rematch must read again.
import { sameJson } from "../compute/emission_row.ts";
import type { Queryable } from "../db/connection.ts";
import { getHandler } from "../handlers/mod.ts";
import type {
  Classification,
  Factor,
  FactorValues,
  Handler,
  ReferenceKind,
} from "../handlers/types.ts";
import { ROLLUP_EMISSION_TYPE_IDS } from "../reference/emission_types.ts";
import {
  SETTING_DEFAULT_DIGESTS,
  settingDigests,
  UNREADABLE_SETTING,
} from "../compute/settings.ts";
import { type DataEntryType, type DetName, getDataEntryType } from "../reference/enums.ts";
import { MOVED_TO_ZERO, reportedKg } from "./module_stats.ts";
import type { RematchResult } from "./types.ts";
import { plural } from "../text/plural.ts";

/**
 * The revision of the compute code. A slice state recorded by another revision is not trusted:
 * bump it with any change of the code that can change what an entry computes to (a formula, a
 * lookup, the emission-type tree), so that every slice reads as stale and `rematch --stale`
 * recomputes them.
 */
export const COMPUTE_REVISION = 2;
// 2: a train station's natural key is matched case- and space-insensitively, and an airport's key
//    is an entry error (2026-11-29).

/**
 * How much of a slice a rematch reads: nothing (the slice is current), the entries using the
 * factors whose values changed plus the entries pending, or every entry.
 */
export type RematchScope = "none" | "targeted" | "full";

/** A factor as a slice state records it. */
export interface FactorFingerprint {
  readonly emissionTypeId: number;
  readonly classification: Classification;
  readonly values: FactorValues;
  /** The import that set its values (emission rows name it); absent counts as null. */
  readonly importId?: number | null;
}

/** Whether two fingerprints name different imports. */
function otherImport(a: FactorFingerprint, b: FactorFingerprint): boolean {
  return (a.importId ?? null) !== (b.importId ?? null);
}

/** A factor that differs between a slice state and the live set (absent on one side, or changed). */
export interface FactorDifference {
  readonly id: number;
  /** As recorded; undefined for a factor inserted since. */
  readonly before?: FactorFingerprint;
  /** As it is now; undefined for a factor deleted since. */
  readonly after?: FactorFingerprint;
}

/** What factor differences mean for a rematch. */
export interface FactorChanges {
  /** `none` (no difference that matters), `targeted` (value changes only) or `full`. */
  readonly scope: RematchScope;
  /** Why, in a few words (empty for `none`). */
  readonly reason: string;
  /** Factors whose only changes are existing numeric values of non-structural fields. */
  readonly valueChangedIds: readonly number[];
}

// Why a targeted rematch equals a full one. An entry's rows depend on the factor set through
// (a) which factors it gets: rule L (ids and classifications), the Strategy B selects (plane:
// category, cabin class and the haul band of the lowest-id factor per category, from the
// structural min/max_distance; train: country_code with the RoW fallback; embodied energy:
// building_name with the `default` fallback; headcount: the factor's emission type subtree),
// and (b) the values of the factors it got, read by its formulas, whose "none" depends only on
// whether a value is a number. A targeted change keeps ids, emission types, classifications,
// value keys, value types and structural values: every entry gets the same factors as before, and
// an entry none of whose factors changed computes what it computed before. Such an entry is found
// by what it stored: every formula that returns a row names its factor (headcount and embodied
// energy write one row per factor of the subtree or fallback; a rollup's leaves name every
// factor), and a JSON-link entry names its factor in `data.primary_factor_id` even when its
// formula returns none. An override's kg depends on no value. The stored rows of every entry
// not pending are what the recorded factors computed (entry writes on a stale slice, failures
// and module-restricted rematches mark entries pending), so the entries not read are right.

/**
 * Sorts factor differences into what a rematch must do: a factor inserted or deleted, a changed
 * emission type or classification, a value key added or removed, a structural value changed or
 * a value that is not a number on both sides all need the whole slice; changes of existing
 * numeric non-structural values need only the entries using those factors, and so does a factor
 * whose values another import set again (its rows name the import).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyFactorChanges } from "./state.ts";
 * const plane = (ef: number, max: number) => ({
 *   emissionTypeId: 50203,
 *   classification: { category: "short_haul", cabin_class: "economy" },
 *   values: { ef_kg_co2eq_per_km: ef, min_distance: 0, max_distance: max },
 * });
 * const structural = ["min_distance", "max_distance"];
 * const ef = classifyFactorChanges([{ id: 7, before: plane(0.1, 800), after: plane(0.2, 800) }], structural);
 * assert.deepEqual([ef.scope, ef.valueChangedIds], ["targeted", [7]]);
 * const band = classifyFactorChanges([{ id: 7, before: plane(0.1, 800), after: plane(0.1, 900) }], structural);
 * assert.equal(band.scope, "full");
 * assert.equal(band.reason, "factor 7: max_distance changed (a structural value)");
 * ```
 */
export function classifyFactorChanges(
  differences: readonly FactorDifference[],
  structuralValues: readonly string[],
): FactorChanges {
  let inserted = 0;
  let deleted = 0;
  const whole: string[] = [];
  const valueChangedIds: number[] = [];
  let reimported = 0;
  for (const { id, before, after } of differences) {
    if (!before) inserted++;
    else if (!after) deleted++;
    else {
      const why = wholeSliceChange(before, after, structuralValues);
      if (why) whole.push(`factor ${id}: ${why}`);
      else if (!sameJson(before.values, after.values)) valueChangedIds.push(id);
      else if (otherImport(before, after)) {
        valueChangedIds.push(id);
        reimported++;
      }
    }
  }
  if (inserted || deleted || whole.length) {
    const reasons = [
      ...(inserted ? [`${plural(inserted, "factor")} inserted`] : []),
      ...(deleted ? [`${plural(deleted, "factor")} deleted`] : []),
      ...(whole.length
        ? [whole[0] + (whole.length > 1 ? ` (and ${whole.length - 1} more)` : "")]
        : []),
    ];
    return { scope: "full", reason: reasons.join("; "), valueChangedIds };
  }
  if (valueChangedIds.length) {
    const changed = valueChangedIds.length - reimported;
    const reasons = [
      ...(changed ? [`${plural(changed, "factor")} changed in value`] : []),
      ...(reimported ? [`${plural(reimported, "factor")} set again by another import`] : []),
    ];
    return { scope: "targeted", reason: reasons.join("; "), valueChangedIds };
  }
  return { scope: "none", reason: "", valueChangedIds };
}

// Why a change of one factor needs the whole slice, or undefined when only numeric values of
// non-structural fields changed.
function wholeSliceChange(
  before: FactorFingerprint,
  after: FactorFingerprint,
  structural: readonly string[],
): string | undefined {
  if (before.emissionTypeId !== after.emissionTypeId) {
    return `emission type ${before.emissionTypeId} → ${after.emissionTypeId}`;
  }
  if (!sameJson(before.classification, after.classification)) return "classification changed";
  const added = Object.keys(after.values).filter((k) => !(k in before.values));
  if (added.length) return `value ${added[0]} added`;
  const removed = Object.keys(before.values).filter((k) => !(k in after.values));
  if (removed.length) return `value ${removed[0]} removed`;
  for (const key of Object.keys(after.values)) {
    const [old, now] = [before.values[key], after.values[key]];
    if (sameJson(old, now)) continue;
    if (structural.includes(key)) return `${key} changed (a structural value)`;
    if (typeof old !== "number" || typeof now !== "number") return `${key} changed (not a number)`;
  }
  return undefined;
}

/** The differences between a recorded factor snapshot and a factor set read into memory. */
export function diffFactorSet(
  recorded: ReadonlyMap<number, FactorFingerprint>,
  live: readonly Factor[],
): FactorDifference[] {
  const differences: FactorDifference[] = [];
  const seen = new Set<number>();
  for (const f of live) {
    seen.add(f.id);
    const before = recorded.get(f.id);
    const after = fingerprintOf(f);
    if (
      !before || before.emissionTypeId !== after.emissionTypeId ||
      !sameJson(before.classification, after.classification) ||
      !sameJson(before.values, after.values) || otherImport(before, after)
    ) {
      differences.push({ id: f.id, before, after });
    }
  }
  for (const [id, before] of recorded) if (!seen.has(id)) differences.push({ id, before });
  return differences.sort((a, b) => a.id - b.id);
}

/**
 * {@linkcode diffFactorSet} restricted to `ids`: the differences among those factors, given the
 * recorded rows of those ids only (the others are known to be as recorded).
 */
export function diffFactorIds(
  recorded: ReadonlyMap<number, FactorFingerprint>,
  live: readonly Factor[],
  ids: readonly number[],
): FactorDifference[] {
  const wanted = new Set(ids);
  return diffFactorSet(
    new Map([...recorded].filter(([id]) => wanted.has(id))),
    live.filter((f) => wanted.has(f.id)),
  );
}

function fingerprintOf(f: Factor): FactorFingerprint {
  return {
    emissionTypeId: f.emissionTypeId,
    classification: f.classification,
    values: f.values,
    importId: f.importId ?? null,
  };
}

// ---- reading the recorded state and the live rows ---------------------------------------------

/** A rematch's counts as the slice state keeps them (the result without its lists). */
export type RematchSummary = Omit<
  RematchResult,
  "errorDetails" | "warnings" | "diff" | "affectedModuleIds" | "modules"
>;

/** The state the last rematch of the whole slice recorded. */
export interface RecordedState {
  readonly computeRevision: number;
  readonly referenceDigests: Readonly<Record<string, string>>;
  readonly rematchedAt: Date;
  readonly scope: "targeted" | "full";
  readonly summary: RematchSummary;
  /** The stamp of the factors the snapshot holds (null: recorded before migration 0014). */
  readonly factorStamp: string | null;
  /**
   * The slice's kg total (rollup rows excluded) as the recorded rematch left it; null when
   * unknown (an entry written or deleted since, or recorded before migration 0016).
   */
  readonly kgTotal: number | null;
}

/**
 * The factor snapshot of a slice's recorded state, by factor id (empty when none): all of it, or
 * the rows of `ids` only.
 */
export async function recordedFactors(
  sql: Queryable,
  dataEntryTypeId: number,
  year: number,
  ids?: readonly number[],
): Promise<Map<number, FactorFingerprint>> {
  const rows = await sql<
    {
      factor_id: number;
      emission_type_id: number;
      classification: Classification;
      values: FactorValues;
      import_id: number | null;
    }[]
  >`
    select factor_id, emission_type_id, classification, "values", import_id
    from slice_state_factors
    where data_entry_type_id = ${dataEntryTypeId} and year = ${year}
      ${ids ? sql`and factor_id = any(${[...ids]}::bigint[])` : sql``}`;
  return new Map(rows.map((r) => [r.factor_id, {
    emissionTypeId: r.emission_type_id,
    classification: r.classification,
    values: r.values,
    importId: r.import_id,
  }]));
}

// One digest per kind of reference data, as a scalar subquery: kept by the reference tables'
// triggers (migration 0013), the md5 of their rows in order, so that comparing costs an index probe
// whatever their size. A year without rates has the digest of no rows.
function digestOf(sql: Queryable, kind: ReferenceKind, year: number) {
  return kind === "rates"
    ? sql`coalesce((select digest from reference_digests where kind = 'rates' and year = ${year}),
        md5(''))`
    : sql`(select digest from reference_digests where kind = ${kind} and year = 0)`;
}

const REFERENCE_KINDS: readonly ReferenceKind[] = ["locations", "rates", "rooms"];

// `'locations', (select md5(...)), 'rates', (...)`: the kinds the handler reads, for a
// `json_build_object` of their digests.
function digestPairsOf(sql: Queryable, handler: Handler, year: number) {
  return REFERENCE_KINDS.filter((k) => handler.reference.includes(k)).reduce(
    (pairs: ReturnType<typeof digestOf> | undefined, kind) => {
      const pair = sql`${kind}::text, ${digestOf(sql, kind, year)}`;
      return pairs ? sql`${pairs}, ${pair}` : pair;
    },
    undefined,
  ) ?? sql``;
}

/**
 * The digests of the reference data a slice's handler reads, as they are now (the kinds it reads
 * from the database; its settings are added by the caller that read them).
 */
export async function readReferenceDigests(
  sql: Queryable,
  handler: Handler,
  year: number,
): Promise<Record<string, string>> {
  const [row] = await sql<{ digests: Record<string, string> }[]>`
    select json_build_object(${digestPairsOf(sql, handler, year)}) as digests`;
  return row.digests;
}

/** What a comparison reads about a slice. */
interface SliceFacts {
  readonly recorded?: RecordedState;
  /** Factors that differ between the recorded snapshot and the live set. */
  readonly differences: readonly FactorDifference[];
  /** Live digests of the reference kinds the handler reads. */
  readonly digests: Record<string, string>;
  /** The live stamp of the slice's factors (migration 0014), null when it never had any. */
  readonly factorStamp: string | null;
  readonly pending: number;
  readonly failing: number;
}

// What a comparison needs in one statement, so that a current slice costs one round trip: the
// recorded state, the live reference digests and factor stamp, and whether any entry is marked at
// all. What a fresh session would spend planning and a current slice does not need comes from
// statements of their own, run only when it can matter: the pending entries (of `moduleIds`, or of
// the whole slice) when there are marks (0.9 ms of planning), and the factors that differ from the
// recorded snapshot when the stamp moved since the state was recorded, or was never recorded (1.5
// to 3 ms). Marks of the slice change only under its lock, which the caller holds.
async function readSliceFacts(
  sql: Queryable,
  handler: Handler,
  dataEntryTypeId: number,
  year: number,
  moduleIds?: readonly number[],
): Promise<SliceFacts> {
  type Recorded = Omit<RecordedState, "rematchedAt"> & { rematchedAt: string };
  const digestPairs = digestPairsOf(sql, handler, year);
  const [row] = await sql<
    {
      recorded: Recorded | null;
      marked: boolean;
      digests: Record<string, string>;
      factor_stamp: string | null;
    }[]
  >`
    select
      (select json_build_object('computeRevision', compute_revision,
          'referenceDigests', reference_digests, 'rematchedAt', rematched_at, 'scope', scope,
          'summary', summary, 'factorStamp', factor_stamp::text, 'kgTotal', kg_total)
        from slice_states where data_entry_type_id = ${dataEntryTypeId} and year = ${year})
        as recorded,
      ${factorStampOf(sql, dataEntryTypeId, year)} as factor_stamp,
      exists (select 1 from data_entry_pending) as marked,
      json_build_object(${digestPairs}) as digests`;
  const recorded = row.recorded
    ? { ...row.recorded, rematchedAt: new Date(row.recorded.rematchedAt) }
    : undefined;
  const facts = {
    recorded,
    differences: [],
    digests: { ...row.digests, ...settingDigests(handler.settings) },
    factorStamp: row.factor_stamp,
    ...(row.marked
      ? await pendingCounts(sql, dataEntryTypeId, year, moduleIds)
      : { pending: 0, failing: 0 }),
  };
  // Without a recorded state every factor would differ, and none of it is needed.
  if (!recorded) return facts;
  if (row.factor_stamp !== null && recorded.factorStamp === row.factor_stamp) return facts;
  // The differences and the stamp in one snapshot: the stamp recorded with them is never newer
  // than the factors they were computed from.
  return { ...facts, ...(await factorDifferences(sql, dataEntryTypeId, year)) };
}

/** The marked entries of the slice (of `moduleIds` only, when given), and of them the failing. */
async function pendingCounts(
  sql: Queryable,
  dataEntryTypeId: number,
  year: number,
  moduleIds?: readonly number[],
): Promise<Pick<SliceFacts, "pending" | "failing">> {
  // Driven by the marks (usually few), each probing its entry: a join would let the planner walk
  // every entry of the slice to probe the marks (40 ms at 50,000 entries, none marked).
  const [row] = await sql<{ pending: number; failing: number }[]>`
    select count(*)::int as pending,
      (count(*) filter (where p.reason = 'failed'))::int as failing
    from data_entry_pending p
    cross join lateral (
      select 1 from data_entries e
        join carbon_report_modules m on m.id = e.carbon_report_module_id
        join carbon_reports r on r.id = m.carbon_report_id
      where e.id = p.data_entry_id and e.data_entry_type_id = ${dataEntryTypeId}
        and r.year = ${year}
        ${moduleIds ? sql`and e.carbon_report_module_id = any(${[...moduleIds]}::bigint[])` : sql``}
      offset 0
    ) x`;
  return row;
}

/** The slice's factors that differ from its recorded snapshot, with their live stamp. */
async function factorDifferences(
  sql: Queryable,
  dataEntryTypeId: number,
  year: number,
): Promise<Pick<SliceFacts, "differences" | "factorStamp">> {
  type Side = {
    et: number | null;
    cls: Classification | null;
    vals: FactorValues | null;
    imp: number | null;
  };
  const [row] = await sql<
    { differences: { id: number; before: Side; after: Side }[]; factor_stamp: string | null }[]
  >`
    select
      (select coalesce(json_agg(json_build_object('id', coalesce(f.id, s.factor_id),
          'before', json_build_object('et', s.emission_type_id, 'cls', s.classification,
            'vals', s."values", 'imp', s.import_id),
          'after', json_build_object('et', f.emission_type_id, 'cls', f.classification,
            'vals', f."values", 'imp', f.import_id)) order by coalesce(f.id, s.factor_id)),
          '[]'::json)
        from (select id, emission_type_id, classification, "values", import_id from factors
            where data_entry_type_id = ${dataEntryTypeId} and year = ${year}) f
          full join (select factor_id, emission_type_id, classification, "values", import_id
            from slice_state_factors
            where data_entry_type_id = ${dataEntryTypeId} and year = ${year}) s
          on s.factor_id = f.id
        where f.id is null or s.factor_id is null or f.emission_type_id <> s.emission_type_id
          or f.classification <> s.classification or f."values" <> s."values"
          or f.import_id is distinct from s.import_id) as differences,
      ${factorStampOf(sql, dataEntryTypeId, year)} as factor_stamp`;
  const side = (s: Side): FactorFingerprint | undefined =>
    s.et === null
      ? undefined
      : { emissionTypeId: s.et, classification: s.cls!, values: s.vals!, importId: s.imp };
  return {
    differences: row.differences.map((d) => ({
      id: d.id,
      before: side(d.before),
      after: side(d.after),
    })),
    factorStamp: row.factor_stamp,
  };
}

/** How the live factors and reference data of a slice compare with its recorded state. */
export interface InputsComparison {
  /** The recorded state, when the slice has one. */
  readonly recorded?: RecordedState;
  /** `none` when the inputs are as recorded, `targeted` for value changes only, else `full`. */
  readonly scope: RematchScope;
  readonly reason: string;
  /** Factors whose only changes are numeric non-structural values. */
  readonly valueChangedIds: readonly number[];
  /** The live reference digests, read before anything else of the slice. */
  readonly referenceDigests: Readonly<Record<string, string>>;
  /** The live stamp of the slice's factors, read before them (null: it never had any). */
  readonly factorStamp?: string | null;
  /** The factors that differ from the recorded snapshot, as the comparison read them. */
  readonly factorDifferences?: readonly FactorDifference[];
}

function compareFacts(handler: Handler, facts: SliceFacts): InputsComparison {
  const { recorded, digests, factorStamp } = facts;
  const base = {
    recorded,
    referenceDigests: digests,
    factorStamp,
    factorDifferences: facts.differences,
    valueChangedIds: [],
  };
  if (!recorded) return { ...base, scope: "full", reason: "never rematched" };
  if (recorded.computeRevision !== COMPUTE_REVISION) {
    return {
      ...base,
      scope: "full",
      reason:
        `recorded by compute revision ${recorded.computeRevision} (this code is ${COMPUTE_REVISION})`,
    };
  }
  const changedKinds = Object.keys(digests).filter((k) =>
    (recorded.referenceDigests[k] ?? SETTING_DEFAULT_DIGESTS[k]) !== digests[k]
  );
  const unreadable = changedKinds.filter((k) => digests[k].startsWith(UNREADABLE_SETTING));
  if (unreadable.length) {
    const why = unreadable.map((k) => digests[k].slice(UNREADABLE_SETTING.length));
    return { ...base, scope: "full", reason: why.join("; ") };
  }
  if (changedKinds.length) {
    return { ...base, scope: "full", reason: `${changedKinds.join(" and ")} changed` };
  }
  return { ...base, ...classifyFactorChanges(facts.differences, handler.structuralValues) };
}

/**
 * Compares the live factors and reference data of a slice with its recorded state; with `used`,
 * the reference data as some work read it (and computed with) instead of as it is now.
 */
export async function compareInputs(
  sql: Queryable,
  handler: Handler,
  dataEntryTypeId: number,
  year: number,
  used?: Readonly<Record<string, string>>,
): Promise<InputsComparison> {
  const facts = await readSliceFacts(sql, handler, dataEntryTypeId, year);
  return compareFacts(handler, used ? { ...facts, digests: { ...used } } : facts);
}

/** What a rematch of a slice (or of some of its modules) would read, and why. */
export interface SliceComparison extends InputsComparison {
  /** True when the factors and reference data are exactly as recorded. */
  readonly inputsMatch: boolean;
  /** Entries a rematch reads whatever changed: failing or not vouched for by the state. */
  readonly pendingEntries: number;
  /** Of those, the entries whose compute failed. */
  readonly failingEntries: number;
}

/**
 * Compares a slice with its recorded state: `none` when it is current (factors and reference
 * data as recorded, no entry pending), `targeted` when only factor values changed or entries are
 * pending, else `full` with the reason. With `moduleIds`, pending entries count in those modules
 * only (a module-restricted rematch).
 */
export async function compareSlice(
  sql: Queryable,
  handler: Handler,
  dataEntryTypeId: number,
  year: number,
  moduleIds?: readonly number[],
): Promise<SliceComparison> {
  const facts = await readSliceFacts(sql, handler, dataEntryTypeId, year, moduleIds);
  const inputs = compareFacts(handler, facts);
  const { pending, failing } = facts;
  const inputsMatch = inputs.scope === "none";
  const counts = { inputsMatch, pendingEntries: pending, failingEntries: failing };
  if (inputs.scope === "full" || (inputsMatch && pending === 0)) {
    return { ...inputs, ...counts, reason: inputs.reason || "current" };
  }
  const reasons = [
    ...(inputs.reason ? [inputs.reason] : []),
    ...(failing ? [`${plural(failing, "entry", "entries")} failing`] : []),
    ...(pending > failing ? [`${plural(pending - failing, "entry", "entries")} to recheck`] : []),
  ];
  return { ...inputs, ...counts, scope: "targeted", reason: reasons.join("; ") };
}

/**
 * `select p.data_entry_id as id` of the det's marked entries, driven by the marks, each probing
 * its entry (as the slice state's count does): joined, on a slice not yet analysed, the planner
 * walked the det's index over every entry to probe an empty table of marks (6 ms of a 1,000-entry
 * targeted rematch at 100,000 entries).
 */
function marksOfDet(sql: Queryable, dataEntryTypeId: number) {
  return sql`
    select p.data_entry_id as id from data_entry_pending p
      cross join lateral (
        select 1 from data_entries e
        where e.id = p.data_entry_id and e.data_entry_type_id = ${dataEntryTypeId}
        offset 0
      ) x`;
}

/**
 * The candidates of a targeted rematch, in id order: the entries of the det with an emission
 * row or a JSON link naming one of `factorIds`, plus its pending ones, in any year or module
 * (the slice's cursor keeps to its modules). Found through the factor index and the JSON-link
 * index (index-only scans once vacuumed) and the marks.
 */
export async function targetCandidates(
  sql: Queryable,
  dataEntryTypeId: number,
  factorIds: readonly number[],
): Promise<number[]> {
  const ids = [...factorIds];
  const rows = await sql<{ id: number }[]>`
    select x.data_entry_id as id from data_entry_emissions x
    where x.primary_factor_id = any(${ids}::bigint[])
    union
    select l.id from data_entries l
    where l.data_entry_type_id = ${dataEntryTypeId} and l.json_link_factor_id is not null
      and l.json_link_factor_id = any(${ids}::bigint[]::numeric[])
    union
    ${marksOfDet(sql, dataEntryTypeId)}
    order by 1`;
  return rows.map((r) => r.id);
}

/**
 * The entries a targeted rematch of the (det, `year`) slice reads, in id order: its candidates
 * (see {@linkcode targetCandidates}) within the slice.
 */
export async function targetEntryIds(
  sql: Queryable,
  dataEntryTypeId: number,
  year: number,
  factorIds: readonly number[],
): Promise<number[]> {
  // Two steps, so that the (few) candidates found through the indexes drive the second one: as
  // one statement the planner tends to scan the whole slice to probe them.
  const candidates = await targetCandidates(sql, dataEntryTypeId, factorIds);
  if (candidates.length === 0) return [];
  const rows = await sql<{ id: number }[]>`
    select e.id from data_entries e
      join carbon_report_modules m on m.id = e.carbon_report_module_id
      join carbon_reports r on r.id = m.carbon_report_id and r.year = ${year}
    where e.id = any(${candidates}::bigint[]) and e.data_entry_type_id = ${dataEntryTypeId}
    order by e.id`;
  return rows.map((r) => r.id);
}

/** Ids of the det's entries marked pending, in id order. */
export async function pendingEntryIds(
  sql: Queryable,
  dataEntryTypeId: number,
): Promise<number[]> {
  const rows = await sql<{ id: number }[]>`${marksOfDet(sql, dataEntryTypeId)} order by 1`;
  return rows.map((r) => r.id);
}

// ---- writing the state ------------------------------------------------------------------------

/** What a rematch of the whole slice records, in its transaction, after its writes. */
export interface SliceStateRecord {
  readonly dataEntryTypeId: number;
  readonly year: number;
  readonly scope: "targeted" | "full";
  /** The reference digests read before the slice's inputs were loaded. */
  readonly referenceDigests: Readonly<Record<string, string>>;
  /**
   * The stamp of the slice's factors read before they were loaded: a write after that moves it
   * away from the recorded one, so the next comparison diffs the factors.
   */
  readonly factorStamp?: string | null;
  /** The factor set the rematch computed with. */
  readonly factors: readonly Factor[];
  /**
   * How the factor set differs from the snapshot recorded before (only those rows are rewritten);
   * undefined when there was none (every factor is written).
   */
  readonly differences?: readonly FactorDifference[];
  readonly summary: RematchSummary;
  /** The slice's kg total after the rematch (rollup rows excluded). */
  readonly kgTotal: number;
}

/**
 * Records a slice's state: the compute revision, the reference digests, the run's summary and
 * the factors exactly as the rematch read them (so a hand edit racing the rematch leaves the
 * slice stale rather than wrongly current).
 */
export async function recordSliceState(tx: Queryable, record: SliceStateRecord): Promise<void> {
  const { dataEntryTypeId: det, year } = record;
  await tx`
    insert into slice_states
      (data_entry_type_id, year, compute_revision, reference_digests, rematched_at, scope, summary,
       factor_stamp, kg_total)
    values (${det}, ${year}, ${COMPUTE_REVISION}, ${tx.json(record.referenceDigests)}, now(),
      ${record.scope}, ${tx.json(record.summary as unknown as Record<string, number>)},
      ${record.factorStamp ?? null}::bigint, ${record.kgTotal}::float8)
    on conflict (data_entry_type_id, year) do update set
      compute_revision = excluded.compute_revision, reference_digests = excluded.reference_digests,
      rematched_at = excluded.rematched_at, scope = excluded.scope, summary = excluded.summary,
      factor_stamp = excluded.factor_stamp, kg_total = excluded.kg_total`;
  const differences = record.differences ?? diffFactorSet(new Map(), record.factors);
  const gone = differences.filter((d) => d.before).map((d) => d.id);
  if (gone.length) {
    await tx`delete from slice_state_factors
      where data_entry_type_id = ${det} and year = ${year} and factor_id = any(${gone}::bigint[])`;
  }
  const now = differences.flatMap((d) => (d.after ? [{ id: d.id, ...d.after }] : []));
  if (now.length) {
    await tx`
      insert into slice_state_factors
        (data_entry_type_id, year, factor_id, emission_type_id, classification, "values",
          import_id)
      select ${det}, ${year}, u.id, u.et, u.cls::jsonb, u.vals::jsonb, u.imp
      from unnest(${now.map((f) => f.id)}::bigint[], ${now.map((f) => f.emissionTypeId)}::int[],
        ${now.map((f) => JSON.stringify(f.classification))}::text[],
        ${now.map((f) => JSON.stringify(f.values))}::text[],
        ${now.map((f) => f.importId ?? null)}::bigint[]) as u(id, et, cls, vals, imp)`;
  }
}

/**
 * The kg total of a slice's entries in `moduleIds` (rollup rows excluded), summed from its rows:
 * what a rematch reports when it reads only some entries, or none, and no recorded total holds.
 */
export async function sliceKgTotal(
  sql: Queryable,
  dataEntryTypeId: number,
  moduleIds: readonly number[],
): Promise<number> {
  if (moduleIds.length === 0) return 0;
  const [row] = await sql<{ kg: number | null }[]>`
    select sum(x.kg_co2eq) as kg
    from data_entries d join data_entry_emissions x on x.data_entry_id = d.id
    where d.data_entry_type_id = ${dataEntryTypeId}
      and d.carbon_report_module_id = any(${[...moduleIds]}::bigint[])
      and x.emission_type_id <> all(${[...ROLLUP_EMISSION_TYPE_IDS]}::int[])`;
  return row.kg ?? 0;
}

/** Records the kg total of a slice that has a state (summed by a rematch that found it current). */
export async function recordSliceKgTotal(
  sql: Queryable,
  dataEntryTypeId: number,
  year: number,
  kg: number,
): Promise<void> {
  await sql`update slice_states set kg_total = ${kg}::float8
    where data_entry_type_id = ${dataEntryTypeId} and year = ${year}`;
}

/**
 * Moves the recorded kg totals of these slices by what entry writes or deletes changed in them
 * (rollup rows excluded); a slice without a recorded total keeps none.
 */
export async function shiftSliceKgTotals(
  sql: Queryable,
  shifts: readonly {
    readonly dataEntryTypeId: number;
    readonly year: number;
    readonly kg: number;
  }[],
): Promise<void> {
  // One shift per slice: an UPDATE joined to two rows of one slice would apply only one of them.
  const bySlice = new Map<string, { dataEntryTypeId: number; year: number; kg: number }>();
  for (const s of shifts) {
    const key = `${s.dataEntryTypeId}:${s.year}`;
    const at = bySlice.get(key);
    if (at) at.kg += s.kg;
    else bySlice.set(key, { ...s });
  }
  const moved = [...bySlice.values()].filter((s) => s.kg !== 0);
  if (moved.length === 0) return;
  // Moved as module stats are (see `movedSum`): kept as summed (reports round it, see
  // `reportedKg`), and 0 where the move took away what there was (0.3 - 0.1 - 0.2 leaves 2.8e-17
  // in floats).
  await sql`update slice_states s set kg_total = case
      when abs(s.kg_total + w.kg) <= ${MOVED_TO_ZERO}::float8 * greatest(abs(s.kg_total), abs(w.kg))
      then 0 else s.kg_total + w.kg end
    from unnest(${moved.map((s) => s.dataEntryTypeId)}::int[], ${
    moved.map((s) => s.year)
  }::int[], ${moved.map((s) => s.kg)}::float8[]) as w(det, year, kg)
    where s.data_entry_type_id = w.det and s.year = w.year and s.kg_total is not null`;
}

/**
 * The kg (rollup rows excluded) of each of these entries' rows, by entry id (none for an entry
 * without rows): what deleting them takes off their slices' totals. The statement is queued on the
 * connection before this returns (not a microtask later, as an awaited query in an async function
 * would be), so that a delete queued after it runs after it.
 */
export function entriesKg(
  sql: Queryable,
  entryIds: readonly number[],
): Promise<Map<number, number>> {
  if (entryIds.length === 0) return Promise.resolve(new Map());
  const rows = sql<{ id: number; kg: number }[]>`
    select data_entry_id as id, sum(kg_co2eq) as kg from data_entry_emissions
    where data_entry_id = any(${[...entryIds]}::bigint[])
      and emission_type_id <> all(${[...ROLLUP_EMISSION_TYPE_IDS]}::int[])
    group by 1`.execute();
  return rows.then((found) => new Map(found.map((r) => [r.id, r.kg])));
}

/**
 * Forgets the recorded kg totals of these slices (a rematch of some of their modules rewrote rows
 * without reading the rest): the next rematch that needs one sums its slice.
 */
export async function forgetSliceKgTotals(
  sql: Queryable,
  slices: readonly { readonly dataEntryTypeId: number; readonly year: number }[],
): Promise<void> {
  if (slices.length === 0) return;
  await sql`update slice_states s set kg_total = null
    from unnest(${slices.map((s) => s.dataEntryTypeId)}::int[], ${
    slices.map((s) => s.year)
  }::int[]) as w(det, year)
    where s.data_entry_type_id = w.det and s.year = w.year and s.kg_total is not null`;
}

/** A slice's factor stamp (migration 0014) as a scalar subquery: text, null when it has none. */
function factorStampOf(sql: Queryable, dataEntryTypeId: number, year: number) {
  return sql`(select stamp::text from slice_factor_stamps
    where data_entry_type_id = ${dataEntryTypeId} and year = ${year})`;
}

/** The live stamp of a slice's factors, null when it never had any. */
export async function liveFactorStamp(
  sql: Queryable,
  dataEntryTypeId: number,
  year: number,
): Promise<string | null> {
  const [row] = await sql<{ stamp: string | null }[]>`
    select ${factorStampOf(sql, dataEntryTypeId, year)} as stamp`;
  return row.stamp;
}

/**
 * Records that the slice's factors at `stamp` are the ones its state holds: after a comparison, in
 * the same snapshot as that stamp, found no factor differing (an import of identical values, a
 * state recorded before migration 0014), so that the next comparison skips them again.
 */
export async function recordFactorStamp(
  tx: Queryable,
  dataEntryTypeId: number,
  year: number,
  stamp: string,
): Promise<void> {
  await tx`update slice_states set factor_stamp = ${stamp}::bigint
    where data_entry_type_id = ${dataEntryTypeId} and year = ${year}`;
}

/** Changes to the pending marks of entries. */
export interface EntryMarks {
  /** Entries whose compute failed, with the error. */
  readonly failed?: readonly { readonly id: number; readonly error: string }[];
  /** Entries the slice state vouches for again: their marks go. */
  readonly cleared?: readonly number[];
  /** Entries computed against inputs the slice state does not record. */
  readonly unvouched?: {
    readonly reason: "written" | "rematched";
    readonly ids: readonly number[];
  };
  /** Entries that computed again: a `failed` mark of theirs becomes `rematched`. */
  readonly noLongerFailing?: readonly number[];
}

/**
 * Applies pending marks (a few statements, none for an empty list), inside the caller's
 * transaction. Its statements are sent together and answered together: the connection runs them
 * in order, and none is left to send once the first is answered. (Sent one after another, a
 * statement that followed a failure elsewhere in the rematch, its transaction already rolled back,
 * ran on its own and was committed.)
 */
export async function markEntries(tx: Queryable, marks: EntryMarks): Promise<void> {
  const statements: PromiseLike<unknown>[] = [];
  if (marks.cleared?.length) {
    statements.push(tx`delete from data_entry_pending where data_entry_id = any(${[
      ...marks.cleared,
    ]}::bigint[])`);
  }
  if (marks.noLongerFailing?.length) {
    statements.push(tx`update data_entry_pending set reason = 'rematched', error = null,
        noted_at = now()
      where data_entry_id = any(${[...marks.noLongerFailing]}::bigint[]) and reason = 'failed'`);
  }
  const upserts = [
    ...(marks.failed ?? []).map((f) => ({ id: f.id, reason: "failed", error: f.error })),
    ...(marks.unvouched?.ids ?? []).map((id) => ({
      id,
      reason: marks.unvouched!.reason,
      error: null,
    })),
  ];
  if (upserts.length) {
    statements.push(tx`
      insert into data_entry_pending as p (data_entry_id, reason, error)
      select * from unnest(${upserts.map((u) => u.id)}::bigint[],
        ${upserts.map((u) => u.reason)}::text[], ${upserts.map((u) => u.error)}::text[])
      on conflict (data_entry_id) do update set reason = excluded.reason, error = excluded.error,
        noted_at = now()
      where (p.reason, p.error) is distinct from (excluded.reason, excluded.error)`);
  }
  // A statement of postgres.js is sent when first awaited: all of them here, in this order.
  await Promise.all(statements);
}

/** An entry the write path just stored (created, updated, or left as it was). */
export interface WrittenEntry {
  readonly id: number;
  readonly det: DataEntryType;
  readonly year: number;
  /** Its compute error, when it failed. */
  readonly error?: string;
  /** A newly created entry (it has no mark to clear). */
  readonly fresh: boolean;
  /**
   * The digests of the reference data (and settings) it was computed with: a reference import
   * takes no slice lock, so the data may have changed, even back, while the write ran.
   */
  readonly referenceDigests?: Readonly<Record<string, string>>;
}

/**
 * Keeps the pending marks true after an entry write (under the slice locks): a failed entry is
 * marked; an entry computed with its slice's inputs as recorded (or nothing is recorded) is
 * vouched for; one computed while the slice is stale, or with reference data other than the
 * recorded one, is marked `written`, so the next rematch reads it whatever the inputs then are
 * (they may have changed back).
 */
export async function noteWrittenEntries(
  tx: Queryable,
  entries: readonly WrittenEntry[],
): Promise<void> {
  const failed: { id: number; error: string }[] = [];
  const cleared: number[] = [];
  const written: number[] = [];
  const bySlice = new Map<string, WrittenEntry[]>();
  for (const e of entries) {
    if (e.error !== undefined) {
      failed.push({ id: e.id, error: e.error });
      continue;
    }
    const key = `${e.det.id}:${e.year}`;
    const slice = bySlice.get(key);
    if (slice) slice.push(e);
    else bySlice.set(key, [e]);
  }
  for (const slice of bySlice.values()) {
    const { det, year, referenceDigests } = slice[0];
    // Vouched for only when computed with the inputs the state records: the factors cannot change
    // under the slice lock the writer holds, the reference data can.
    const inputs = await compareInputs(tx, getHandler(det), det.id, year, referenceDigests);
    const vouched = !inputs.recorded || inputs.scope === "none";
    for (const e of slice) {
      if (!vouched) written.push(e.id);
      else if (!e.fresh) cleared.push(e.id);
    }
  }
  await markEntries(tx, { failed, cleared, unvouched: { reason: "written", ids: written } });
}

// ---- status -----------------------------------------------------------------------------------

/** A slice's standing: what `status` lists and `rematch --stale` acts on. */
export interface SliceStatus {
  readonly dataEntryType: DetName;
  readonly dataEntryTypeId: number;
  readonly year: number;
  /** Entries of the slice. */
  readonly entries: number;
  /** Factors of (det, year) now. */
  readonly factors: number;
  /** Slice total in kg CO2-eq, rollup rows excluded (when asked for). */
  readonly kg?: number;
  readonly state: "current" | "stale" | "never rematched";
  /** What a rematch would do now. */
  readonly scope: RematchScope;
  /** Why it is not current (`current` when it is). */
  readonly reason: string;
  /** Factors changed in value only (a targeted rematch reads their users). */
  readonly changedFactors: number;
  /** Entries a rematch would read: about, for a targeted one. */
  readonly entriesToRead: number;
  readonly pendingEntries: number;
  readonly failingEntries: number;
  /** The last rematch that recorded the slice's state. */
  readonly lastRematch?: {
    readonly at: string;
    readonly scope: "targeted" | "full";
    readonly summary: RematchSummary;
  };
  /** `current`, `stale: targeted (N factors, about M entries)`, `stale: full (why)`, `never rematched`. */
  readonly label: string;
}

/** Which slices {@linkcode sliceStatus} looks at. */
export interface SliceStatusOptions {
  /** Only this year. @default every year with entries */
  readonly year?: number;
  /** Only this det (id). @default every det with entries */
  readonly dataEntryTypeId?: number;
  /** Add each slice's kg total (reads every emission row of the slices). @default false */
  readonly kg?: boolean;
}

/**
 * The one answer to "which slices need a rematch, and how much of each": every (det, year) with
 * entries, in det then year order, compared with its recorded state as a rematch would compare
 * it (spec/rematch.md rule 18).
 *
 * @example
 * ```ts ignore
 * import { sliceStatus } from "./state.ts";
 * const stale = (await sliceStatus(db.sql, { year: 2025 })).filter((s) => s.state !== "current");
 * ```
 */
export async function sliceStatus(
  sql: Queryable,
  options: SliceStatusOptions = {},
): Promise<SliceStatus[]> {
  const { year, dataEntryTypeId: det } = options;
  // A fresh fragment per query: `and r.year = ...`, `and e.data_entry_type_id = ...`.
  const filter = () =>
    sql`${year === undefined ? sql`` : sql`and r.year = ${year}`}
      ${det === undefined ? sql`` : sql`and e.data_entry_type_id = ${det}`}`;
  const slices = await sql<{ det: number; year: number; entries: number }[]>`
    select e.data_entry_type_id as det, r.year, count(*)::int as entries
    from data_entries e join carbon_report_modules m on m.id = e.carbon_report_module_id
      join carbon_reports r on r.id = m.carbon_report_id
    where true ${filter()}
    group by 1, 2 order by 1, 2`;
  const factorCounts = await sql<{ det: number; year: number; n: number }[]>`
    select data_entry_type_id as det, year, count(*)::int as n from factors
    where year is not null group by 1, 2`;
  const key = (d: number, y: number) => `${d}:${y}`;
  const factors = new Map(factorCounts.map((f) => [key(f.det, f.year), f.n]));
  const kg = new Map<string, number>();
  if (options.kg) {
    const totals = await sql<{ det: number; year: number; kg: number }[]>`
      select e.data_entry_type_id as det, r.year, sum(x.kg_co2eq) as kg
      from data_entry_emissions x join data_entries e on e.id = x.data_entry_id
        join carbon_report_modules m on m.id = e.carbon_report_module_id
        join carbon_reports r on r.id = m.carbon_report_id
      where x.emission_type_id <> all(${[...ROLLUP_EMISSION_TYPE_IDS]}::int[]) ${filter()}
      group by 1, 2`;
    for (const t of totals) kg.set(key(t.det, t.year), reportedKg(t.kg));
  }

  const statuses: SliceStatus[] = [];
  for (const slice of slices) {
    const type = getDataEntryType(slice.det);
    const comparison = await compareSlice(sql, getHandler(type), slice.det, slice.year);
    const entriesToRead = comparison.scope === "full"
      ? slice.entries
      : comparison.scope === "targeted"
      ? (await targetEntryIds(sql, slice.det, slice.year, comparison.valueChangedIds)).length
      : 0;
    const recorded = comparison.recorded;
    const state = !recorded ? "never rematched" : comparison.scope === "none" ? "current" : "stale";
    statuses.push({
      dataEntryType: type.name,
      dataEntryTypeId: type.id,
      year: slice.year,
      entries: slice.entries,
      factors: factors.get(key(slice.det, slice.year)) ?? 0,
      ...(options.kg ? { kg: kg.get(key(slice.det, slice.year)) ?? 0 } : {}),
      state,
      scope: comparison.scope,
      reason: comparison.reason,
      changedFactors: comparison.valueChangedIds.length,
      entriesToRead,
      pendingEntries: comparison.pendingEntries,
      failingEntries: comparison.failingEntries,
      ...(recorded
        ? {
          lastRematch: {
            at: recorded.rematchedAt.toISOString(),
            scope: recorded.scope,
            summary: recorded.summary,
          },
        }
        : {}),
      label: state === "never rematched"
        ? state
        : comparison.scope === "none"
        ? "current"
        : comparison.scope === "targeted"
        ? `stale: targeted (${plural(comparison.valueChangedIds.length, "factor")}, about ${
          plural(entriesToRead, "entry", "entries")
        })`
        : `stale: full (${comparison.reason})`,
    });
  }
  return statuses;
}

/** The command that brings these slices up to date (one slice, one year, or every year). */
export function rematchCommandFor(
  slices: readonly { dataEntryType: string; year: number }[],
): string {
  if (slices.length === 1) {
    return `deno task rematch --det ${slices[0].dataEntryType} --year ${slices[0].year}`;
  }
  const years = [...new Set(slices.map((s) => s.year))];
  return years.length === 1
    ? `deno task rematch --stale --year ${years[0]}`
    : "deno task rematch --stale";
}

/** Slices left stale, and the command that brings them up to date. */
export interface LeftStale {
  readonly slices: readonly SliceStatus[];
  /** `deno task rematch ...`, or null when every slice is current. */
  readonly command: string | null;
}

/**
 * The slices with entries that are not current among those a change may have touched: the
 * given dets (of one year, or of some years), or every det whose handler reads a kind of
 * reference data. What an import without `--rematch` reports at its end.
 */
export async function leftStale(
  sql: Queryable,
  touched: {
    readonly year?: number;
    /** Of these years only (exchange rates: the years the file gave rates for). */
    readonly years?: readonly number[];
    readonly dataEntryTypeIds?: readonly number[];
    readonly referenceKind?: ReferenceKind;
  },
): Promise<LeftStale> {
  const dets = touched.dataEntryTypeIds;
  if (dets?.length === 0 || touched.years?.length === 0) return { slices: [], command: null };
  const only = dets?.length === 1 ? dets[0] : undefined;
  const year = touched.year ?? (touched.years?.length === 1 ? touched.years[0] : undefined);
  const slices = (await sliceStatus(sql, { year, dataEntryTypeId: only })).filter((s) =>
    s.state !== "current" && (!dets || dets.includes(s.dataEntryTypeId)) &&
    (!touched.years || touched.years.includes(s.year)) &&
    (!touched.referenceKind ||
      getHandler(s.dataEntryTypeId).reference.includes(touched.referenceKind))
  );
  return { slices, command: slices.length ? rematchCommandFor(slices) : null };
}
