// Undoing a factor import (spec/history.md §2: `factors rollback --import N`): every factor the
// import changed goes back to how it was before it, as a new import of mode `rollback`.
import type { Database, Queryable } from "../db/connection.ts";
import {
  type FactorChanges,
  type FactorInsert,
  recordFactorImport,
  writeFactorChanges,
} from "../db/factors.ts";
import { lockSlice } from "../db/locks.ts";
import type { Classification, FactorValues } from "../handlers/types.ts";
import { getDataEntryType } from "../reference/enums.ts";
import { rematchInTransaction } from "../rematch/run.ts";
import { type LeftStale, leftStale } from "../rematch/state.ts";
import type { RematchResult } from "../rematch/types.ts";
import { currentActor } from "./actor.ts";
import { findFactorImport, inColumnOrder } from "./imports.ts";
import { transaction } from "../db/transaction.ts";

/** Conflicts and changes listed in a result or an error; the counts are never capped. */
export const MAX_LISTED = 100;

/** A factor's state: absent, or present with this id and values. */
export type FactorState = { readonly id: number; readonly values: FactorValues } | null;

/** A factor a later import changed after the import being rolled back. */
export interface RollbackConflict {
  readonly dataEntryType: string;
  readonly emissionTypeId: number;
  readonly classification: Classification;
  /** As the rolled-back import left it. */
  readonly leftByImport: FactorState;
  /** As it is now. */
  readonly current: FactorState;
  /** The later imports that changed this identity, oldest first. */
  readonly changedBy: readonly number[];
}

/** One factor a rollback writes (or, dry, would write). */
export interface RollbackChange {
  readonly dataEntryType: string;
  readonly emissionTypeId: number;
  readonly classification: Classification;
  readonly change: "inserted" | "updated" | "deleted";
  readonly before: FactorState;
  readonly after: FactorState;
}

/** What a rollback did. */
export interface RollbackResult {
  /** The rollback's own import (it can be rolled back in turn). */
  readonly importId: number;
  readonly rollbackOf: number;
  readonly year: number;
  readonly slices: readonly { dataEntryType: string; dataEntryTypeId: number; year: number }[];
  /** Factors the rolled-back import had changed. */
  readonly factors: number;
  /**
   * What the rollback wrote, as its import records it: a factor that (forced) took a restored
   * one's identity since is deleted to give way, and counted here.
   */
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
  /** Already as they were before the import. */
  readonly unchanged: number;
  /** Later changes overridden with `force` (the first {@linkcode MAX_LISTED}). */
  readonly conflicts: readonly RollbackConflict[];
  readonly conflictsCount: number;
  /** The first {@linkcode MAX_LISTED} changes, in the import's version order. */
  readonly changes: readonly RollbackChange[];
}

/** Thrown when later imports changed factors of the import (and `force` was not given). */
export class RollbackConflictError extends Error {
  override name = "RollbackConflictError";
  constructor(
    readonly importId: number,
    readonly conflicts: readonly RollbackConflict[],
    readonly conflictsCount: number,
  ) {
    const imports = [...new Set(conflicts.flatMap((c) => c.changedBy))].sort((a, b) => a - b);
    // A factor edited outside any import (by hand in SQL) has no later import to roll back.
    const byHand = conflicts.some((c) => c.changedBy.length === 0);
    const by = [
      ...(imports.length
        ? [`${imports.length === 1 ? "import" : "imports"} ${imports.join(", ")}`]
        : []),
      ...(byHand ? ["outside any import"] : []),
    ].join(" and ");
    const advice = imports.length
      ? `roll ${imports.length === 1 ? "it" : "them"} back first, newest first, or give --force`
      : "give --force";
    super(
      `import ${importId} cannot be rolled back: ${conflictsCount} of its factors ${
        conflictsCount === 1 ? "was" : "were"
      } changed since ${imports.length ? "by " : ""}${by} (${advice} to put import ${importId}'s ` +
        `factors back anyway, overriding those changes)`,
    );
  }
}

/** How to roll back. */
export interface RollbackOptions {
  /** The import to undo. */
  readonly importId: number;
  /** Override changes later imports made to the same factors. @default false */
  readonly force?: boolean;
  /** @default currentActor() */
  readonly actor?: string;
  /** The job running the rollback. */
  readonly jobId?: number;
  /** Fail with a SliceBusyError instead of waiting for a slice another holds. @default false */
  readonly noWait?: boolean;
}

interface VersionWithCurrent {
  factor_id: number;
  data_entry_type_id: number;
  year: number;
  emission_type_id: number;
  classification: Classification;
  change: "inserted" | "updated" | "deleted";
  values_before: FactorValues | null;
  values_after: FactorValues | null;
  import_id_before: number | null;
  last_seen_job_id_before: number | null;
  current_id: number | null;
  current_values: FactorValues | null;
  version_id: number;
  identity: string;
}

/**
 * What an import did to one factor identity: its versions in order. Mostly one; two when a forced
 * rollback gave the identity back to a restored id (the factor holding it deleted, then the old
 * one inserted). The state before the import is the first version's, the state it left the last's.
 */
interface IdentityChange {
  readonly first: VersionWithCurrent;
  readonly last: VersionWithCurrent;
}

/**
 * Rolls import `importId` back inside the caller's transaction, under the locks of its slices
 * (det id order): updated factors get their old values (and the import that had set them),
 * inserted ones are deleted, deleted ones come back with their old ids. Refused with
 * {@linkcode RollbackConflictError} when a later import changed one of those factors and the
 * change still stands, unless `force`. Recorded as an import of mode `rollback`.
 *
 * @example
 * ```ts ignore
 * import { rollbackImport } from "./rollback.ts";
 * import { transaction } from "../db/transaction.ts";
 * const result = await transaction(db.sql, (tx) => rollbackImport(tx, { importId: 3 }));
 * ```
 */
export async function rollbackImport(
  tx: Queryable,
  options: RollbackOptions,
): Promise<RollbackResult> {
  const recorded = await findFactorImport(tx, options.importId);
  const dets = [...recorded.dataEntryTypeIds].sort((a, b) => a - b);
  for (const det of dets) {
    await lockSlice(tx, det, recorded.year, {
      detName: getDataEntryType(det).name,
      noWait: options.noWait,
    });
  }
  // Each version with the factor that holds its identity now (a deleted factor may be back
  // under another id).
  const versions = await tx<VersionWithCurrent[]>`
    select v.id as version_id, v.factor_id, v.data_entry_type_id, v.year, v.emission_type_id,
      v.classification, v.change, v.values_before, v.values_after, v.import_id_before,
      v.last_seen_job_id_before, f.id as current_id, f."values" as current_values,
      concat_ws(' ', v.data_entry_type_id, v.year, v.emission_type_id, v.classification::text)
        as identity
    from factor_versions v
    left join factors f
      on f.data_entry_type_id = v.data_entry_type_id and f.year = v.year
        and f.emission_type_id = v.emission_type_id
        and f.classification::text = v.classification::text
    where v.import_id = ${recorded.id}
    order by v.id`;

  const byIdentity = new Map<string, { first: VersionWithCurrent; last: VersionWithCurrent }>();
  for (const v of versions) {
    const seen = byIdentity.get(v.identity);
    if (seen) seen.last = v;
    else byIdentity.set(v.identity, { first: v, last: v });
  }
  const changes: IdentityChange[] = [...byIdentity.values()];
  const leftBy = ({ last }: IdentityChange): FactorState =>
    last.values_after === null ? null : { id: last.factor_id, values: last.values_after };
  const current = ({ last: v }: IdentityChange): FactorState =>
    v.current_id === null ? null : { id: v.current_id, values: v.current_values! };
  const conflicting = changes.filter((c) => !sameState(leftBy(c), current(c)));
  const conflicts = await describeConflicts(tx, conflicting.map((c) => c.last));
  if (conflicting.length && !options.force) {
    throw new RollbackConflictError(recorded.id, conflicts, conflicting.length);
  }

  const inserts: FactorInsert[] = [];
  const updates: FactorChanges["updates"][number][] = [];
  const deletes: number[] = [];
  const listed: RollbackChange[] = [];
  let unchanged = 0;
  const counts = { inserted: 0, updated: 0, deleted: 0 };
  const note = (
    { first: v }: IdentityChange,
    change: RollbackChange["change"],
    before: FactorState,
    after: FactorState,
  ) => {
    counts[change]++;
    if (listed.length < MAX_LISTED) {
      listed.push({
        dataEntryType: getDataEntryType(v.data_entry_type_id).name,
        emissionTypeId: v.emission_type_id,
        classification: inColumnOrder(v.data_entry_type_id, v.classification),
        change,
        before,
        after,
      });
    }
  };
  for (const c of changes) {
    const v = c.first;
    const now = current(c);
    const wanted: FactorState = v.values_before === null
      ? null
      : { id: v.factor_id, values: v.values_before };
    if (wanted === null) {
      if (now === null) unchanged++;
      else {
        deletes.push(now.id);
        note(c, "deleted", now, null);
      }
      continue;
    }
    if (now !== null && now.id === wanted.id) {
      if (sameValues(now.values, wanted.values)) unchanged++;
      else {
        updates.push({ id: wanted.id, values: wanted.values, importId: v.import_id_before });
        note(c, "updated", now, wanted);
      }
      continue;
    }
    // Absent, or (forced) another factor took the identity: it gives way to the old id, a
    // deletion of its own (listed and counted, as the import records it).
    if (now !== null) {
      deletes.push(now.id);
      note(c, "deleted", now, null);
    }
    inserts.push({
      id: wanted.id,
      dataEntryTypeId: v.data_entry_type_id,
      emissionTypeId: v.emission_type_id,
      year: v.year,
      classification: v.classification,
      values: wanted.values,
      importId: v.import_id_before,
      lastSeenJobId: v.last_seen_job_id_before,
    });
    note(c, "inserted", null, wanted);
  }

  const importId = await recordFactorImport(tx, {
    year: recorded.year,
    dataEntryTypeIds: recorded.dataEntryTypeIds,
    moduleTypeId: recorded.moduleTypeId,
    mode: "rollback",
    source: `rollback of ${recorded.id}`,
    fileSha256: null,
    actor: options.actor ?? currentActor(),
    jobId: options.jobId ?? null,
    rollbackOf: recorded.id,
    rowsRead: changes.length,
    inserted: inserts.length,
    updated: updates.length,
    deleted: deletes.length,
    unchanged,
  });
  // last_seen_job_id names the job that last saw a factor in a file: a rollback leaves it, and a
  // factor it brings back has the one it had when it was deleted.
  await writeFactorChanges(tx, importId, { inserts, updates, deletes });
  await relinkRestoredFactors(tx, inserts.flatMap((f) => f.id === undefined ? [] : [f.id]));
  return {
    importId,
    rollbackOf: recorded.id,
    year: recorded.year,
    slices: dets.map((id) => ({
      dataEntryType: getDataEntryType(id).name,
      dataEntryTypeId: id,
      year: recorded.year,
    })),
    factors: changes.length,
    ...counts,
    unchanged,
    conflicts,
    conflictsCount: conflicting.length,
    changes: listed,
  };
}

async function describeConflicts(
  tx: Queryable,
  conflicting: readonly VersionWithCurrent[],
): Promise<RollbackConflict[]> {
  const shown = conflicting.slice(0, MAX_LISTED);
  if (shown.length === 0) return [];
  const later = await tx<{ version_id: number; imports: number[] }[]>`
    select v.id as version_id, array_agg(distinct l.import_id order by l.import_id) as imports
    from factor_versions v
    join factor_versions l
      on l.data_entry_type_id = v.data_entry_type_id and l.year = v.year
        and l.emission_type_id = v.emission_type_id
        and l.classification::text = v.classification::text
        and l.import_id > v.import_id
    where v.id = any(${shown.map((v) => v.version_id)}::bigint[])
    group by v.id`;
  const byVersion = new Map(later.map((r) => [r.version_id, r.imports]));
  return shown.map((v) => ({
    dataEntryType: getDataEntryType(v.data_entry_type_id).name,
    emissionTypeId: v.emission_type_id,
    classification: inColumnOrder(v.data_entry_type_id, v.classification),
    leftByImport: v.values_after === null ? null : { id: v.factor_id, values: v.values_after },
    current: v.current_id === null ? null : { id: v.current_id, values: v.current_values! },
    // A factor edited outside any import has no later version to name.
    changedBy: byVersion.get(v.version_id) ?? [],
  }));
}

function sameState(a: FactorState, b: FactorState): boolean {
  if (a === null || b === null) return a === b;
  return a.id === b.id && sameValues(a.values, b.values);
}

// Values as PostgreSQL compares jsonb: key order does not matter.
function sameValues(a: FactorValues, b: FactorValues): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => k in b && a[k] === b[k]);
}

/**
 * Gives the emission rows computed from these factors back their link, now that the factors are
 * back under their old ids: deleting a factor set the link of its rows to null (spec/domain.md
 * §3), and a frozen module's rows are never relinked by a rematch, which writes nothing of them
 * (spec/history.md §4). A row names its factor in `meta.factors_used`; a rollup row names the
 * least factor of its entry's other rows, as the compute gives it.
 */
async function relinkRestoredFactors(tx: Queryable, factorIds: readonly number[]): Promise<void> {
  if (factorIds.length === 0) return;
  const relinked = await tx<{ entry: number }[]>`
    update data_entry_emissions x
    set primary_factor_id = (x.meta -> 'factors_used' -> 0 ->> 'id')::bigint
    where x.primary_factor_id is null
      and jsonb_typeof(x.meta -> 'factors_used' -> 0 -> 'id') = 'number'
      and (x.meta -> 'factors_used' -> 0 ->> 'id')::bigint = any(${[...factorIds]}::bigint[])
    returning x.data_entry_id as entry`;
  const entries = [...new Set(relinked.map((r) => r.entry))];
  if (entries.length === 0) return;
  await tx`
    update data_entry_emissions r set primary_factor_id = l.least
    from (
      select data_entry_id, min(primary_factor_id) as least from data_entry_emissions
      where data_entry_id = any(${entries}::bigint[]) and (meta ->> 'is_rollup') is null
      group by 1
    ) l
    where r.data_entry_id = l.data_entry_id and r.primary_factor_id is null
      and (r.meta ->> 'is_rollup') = 'true'`;
}

/** What {@linkcode runRollback} does besides the rollback. */
export interface RunRollbackOptions extends RollbackOptions {
  /** Recompute the slices in the same transaction. @default false */
  readonly rematch?: boolean;
  /** Do it all, report it, and roll it back. @default false */
  readonly dryRun?: boolean;
}

/** What {@linkcode runRollback} did (or, dry, would do). */
export interface RollbackOutcome {
  readonly rollback: RollbackResult;
  /** One result per slice, with `rematch`. */
  readonly rematch?: readonly RematchResult[];
  /**
   * Without `rematch`: the rollback's slices it left stale, and the command that brings them up
   * to date (seen from inside its transaction, dry runs too).
   */
  readonly leftStale?: LeftStale;
  readonly dryRun: boolean;
}

class DryRunRollback extends Error {
  constructor(readonly outcome: RollbackOutcome) {
    super("dry run");
  }
}

/**
 * The rollback in its own transaction, with its slices' rematch in the same one when asked
 * (runs recorded with trigger `rollback`); `dryRun` reports everything and writes nothing.
 * The command line, the job runner and the HTTP API all call this.
 *
 * @example
 * ```ts ignore
 * import { runRollback } from "./rollback.ts";
 * const { rollback, rematch } = await runRollback(db, { importId: 3, rematch: true });
 * ```
 */
export async function runRollback(
  db: Pick<Database, "sql">,
  options: RunRollbackOptions,
): Promise<RollbackOutcome> {
  const dryRun = options.dryRun ?? false;
  try {
    return await transaction(db.sql, async (tx) => {
      const rollback = await rollbackImport(tx, options);
      let rematch: RematchResult[] | undefined;
      let stale: LeftStale | undefined;
      if (!options.rematch) {
        stale = await leftStale(tx, {
          year: rollback.slices[0]?.year,
          dataEntryTypeIds: rollback.slices.map((s) => s.dataEntryTypeId),
        });
      } else {
        rematch = [];
        for (const slice of rollback.slices) {
          const result = await rematchInTransaction(tx, {
            dataEntryType: slice.dataEntryTypeId,
            year: slice.year,
            run: {
              trigger: "rollback",
              importId: rollback.importId,
              actor: options.actor,
              jobId: options.jobId,
            },
          });
          rematch.push(dryRun ? { ...result, dryRun: true } : result);
        }
      }
      const outcome: RollbackOutcome = { rollback, rematch, leftStale: stale, dryRun };
      if (dryRun) throw new DryRunRollback(outcome);
      return outcome;
    }) as RollbackOutcome;
  } catch (error) {
    if (error instanceof DryRunRollback) return error.outcome;
    throw error;
  }
}
