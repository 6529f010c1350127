// Reading a slice for the rematch: one pass of a cursor over its entries, each with its stored
// rows, in chunks, one FETCH ahead of the caller. A row's meta is read only when the comparison
// needs it: the cursor leaves it out while the caller mostly needs none (most rows changed in
// another field), and reads it along while it mostly does (most rows unchanged).
import {
  type StoredEmissionRow,
  storedEmissionRow,
  storedRowOf,
  type StoredRowSelect,
} from "../db/emissions.ts";
import { type Queryable, type Sql, untilSent } from "../db/connection.ts";
import type { EntryData } from "../handlers/types.ts";
import type { SliceChunk, SliceEntry } from "./types.ts";
import { transaction } from "../db/transaction.ts";

/** A FETCH row: an entry with one of its stored rows (or none: `row_id` null). */
interface SliceRow extends StoredRowSelect {
  readonly id: number;
  readonly module_id: number;
  readonly data: string;
  readonly row_id: number | null;
}

/** What the slice reader needs to know of a cursor. */
interface Cursor {
  readonly name: string;
  readonly withMeta: boolean;
}

let cursors = 0;

// The share of a chunk's rows whose meta decided above which the cursor reads meta along, and
// below which it leaves it out (in between it keeps its way).
const READ_META_ABOVE = 0.5;
const SKIP_META_BELOW = 0.2;

/**
 * The slice in one pass: a cursor over its entries in id order (all of them, or only
 * `entryIds`), each joined to its stored rows (one index probe per entry, whatever else the table
 * holds), fetched `chunkSize` rows at a time. An entry's rows always come in the same chunk. The
 * next FETCH is sent before a chunk is handed over, so the server reads it while the caller
 * computes (and while the caller's writes, queued on the same connection, run). A cursor sees the
 * slice as it was when declared: the rematch's own writes never show up in it, and a cursor
 * declared later (to read meta along, or not) starts after the last entry handed over.
 */
export async function* readSlice(
  tx: Queryable,
  detId: number,
  moduleIds: readonly number[],
  chunkSize: number,
  entryIds?: readonly number[],
): AsyncGenerator<SliceChunk> {
  if (moduleIds.length === 0 || entryIds?.length === 0) return;
  const size = Math.max(1, Math.floor(chunkSize));
  await withoutJit(tx);
  const modules = [...moduleIds];
  const ids = entryIds ? [...entryIds] : undefined;
  // The entries in id order: the slice's, or the given ones that are in the slice. The given ones
  // drive, each probing its entry by primary key (`offset 0` keeps it a probe): left to itself, on
  // a slice not yet analysed, the planner walked the det's index over every entry of the slice to
  // pick out the given ones (20 to 30 ms for 1,000 of 100,000 entries, against 3 to 7).
  const entries = (afterId: number) =>
    ids
      ? tx`(select t.id from unnest(${ids}::bigint[]) as t(id) where t.id > ${afterId} order by t.id) t
        cross join lateral (
          select d.id, d.carbon_report_module_id, d.data from data_entries d
          where d.id = t.id and d.data_entry_type_id = ${detId}
            and d.carbon_report_module_id = any(${modules}::bigint[])
          offset 0
        ) d`
      : tx`data_entries d`;
  // Ordered by the driving ids (sorted above), so that no sort waits for the whole result.
  const slice = (afterId: number) =>
    ids ? tx`order by t.id` : tx`
      where d.data_entry_type_id = ${detId} and d.carbon_report_module_id = any(${modules}::bigint[])
        and d.id > ${afterId}
      order by d.id`;
  const open = (afterId: number, withMeta: boolean): Cursor => {
    const name = `rematch_slice_${++cursors}`;
    const meta = withMeta ? tx`e.meta::text` : tx`null::text`;
    // `offset 0` keeps the lateral subquery a per-entry index probe: a merge join would walk the
    // emission rows of every det.
    tx`
      declare ${tx(name)} no scroll cursor for
      select d.id, d.carbon_report_module_id as module_id, d.data::text as data,
        x.id as row_id, x.emission_type_id, x.primary_factor_id, x.kg_co2eq, x.additional_value,
        x.scope, x.meta
      from ${entries(afterId)}
      left join lateral (
        select e.id, e.emission_type_id, e.primary_factor_id, e.kg_co2eq, e.additional_value,
          e.scope, ${meta} as meta
        from data_entry_emissions e where e.data_entry_id = d.id offset 0
      ) x on true
      ${slice(afterId)}`.catch(() => {}); // A failure shows in the FETCH that follows.
    return { name, withMeta };
  };
  const fetch = (cursor: Cursor) => {
    const rows = tx.unsafe<SliceRow[]>(`fetch forward ${size} from ${cursor.name}`);
    // A failed FETCH is seen where it is awaited; until then it must not count as unhandled.
    rows.catch(() => {});
    return rows;
  };

  let cursor = open(0, true);
  let next = fetch(cursor);
  let held: SliceRow[] = [];
  let lastId = 0;
  // How much of the last chunk's meta decided, as the caller reported it.
  const usage = { rows: 0, decided: 0 };
  while (true) {
    let fetched: readonly SliceRow[] = await next;
    const from = cursor;
    const last = fetched.length < size;
    let rows: readonly SliceRow[] = held.length ? [...held, ...fetched] : fetched;
    held = [];
    if (!last && rows.length) {
      // The last entry's rows may go on in the next FETCH: it waits for them.
      const lastEntry = rows[rows.length - 1].id;
      let cut = rows.length;
      while (cut > 0 && rows[cut - 1].id === lastEntry) cut--;
      held = rows.slice(cut);
      rows = rows.slice(0, cut);
    }
    if (rows.length) lastId = rows[rows.length - 1].id;
    if (!last) {
      const share = usage.rows ? usage.decided / usage.rows : undefined;
      const withMeta = share === undefined
        ? cursor.withMeta
        : share > READ_META_ABOVE || (cursor.withMeta && share >= SKIP_META_BELOW);
      if (withMeta !== cursor.withMeta && rows.length) {
        // The rest of the slice from a new cursor; the entry held back is read again, whole.
        tx.unsafe(`close ${cursor.name}`).catch(() => {});
        cursor = open(lastId, withMeta);
        held = [];
      }
      next = fetch(cursor);
      // On its way before the chunk is handed over: the server reads while the caller computes.
      await untilSent();
    }
    // The FETCH rows are dropped before the chunk is handed over: only what the chunk holds stays
    // alive while it is computed.
    const chunk = rows.length ? chunkOf(tx, rows, from.withMeta, usage) : undefined;
    rows = fetched = [];
    if (chunk) yield chunk;
    if (last) break;
  }
  await tx.unsafe(`close ${cursor.name}`);
}

function chunkOf(
  tx: Queryable,
  rows: readonly SliceRow[],
  withMeta: boolean,
  usage: { rows: number; decided: number },
): SliceChunk {
  const entries: SliceEntry[] = [];
  const stored = new Map<number, StoredEmissionRow[]>();
  let entryRows: StoredEmissionRow[] | undefined;
  let rowCount = 0;
  for (const r of rows) {
    if (entries.length === 0 || entries[entries.length - 1].id !== r.id) {
      entries.push({ id: r.id, moduleId: r.module_id, data: JSON.parse(r.data) as EntryData });
      entryRows = undefined;
    }
    if (r.row_id === null) continue;
    rowCount++;
    const row = storedRowOf(r.row_id, r.id, r, withMeta);
    if (entryRows) entryRows.push(row);
    else stored.set(r.id, entryRows = [row]);
  }
  // Rows in id order within an entry, as the comparison pairs them.
  for (const list of stored.values()) if (list.length > 1) list.sort((a, b) => a.id - b.id);
  return {
    entries,
    stored,
    async needMeta(decided) {
      usage.rows = rowCount;
      usage.decided = decided.length;
      const missing = decided.filter((r) => r.metaText === undefined);
      if (missing.length === 0) return;
      const metas = await tx<{ id: number; meta: string | null }[]>`
        select id, meta::text as meta from data_entry_emissions
        where id = any(${missing.map((r) => r.id)}::bigint[])`;
      const byId = new Map(metas.map((m) => [m.id, m.meta]));
      for (const entryId of new Set(missing.map((r) => r.dataEntryId))) {
        const list = stored.get(entryId)!;
        list.forEach((row, i) => {
          const meta = byId.get(row.id);
          if (row.metaText === undefined && meta !== undefined) {
            list[i] = storedEmissionRow({ ...columnsOf(row), metaText: meta });
          }
        });
      }
    },
  };
}

function columnsOf(row: StoredEmissionRow) {
  return {
    id: row.id,
    dataEntryId: row.dataEntryId,
    emissionTypeId: row.emissionTypeId,
    primaryFactorId: row.primaryFactorId,
    kgCo2eq: row.kgCo2eq,
    additionalValue: row.additionalValue,
    scope: row.scope,
  };
}

/**
 * {@linkcode readSlice} (of the whole slice, or of `entryIds`) on a session of its own
 * (`reader`), in the snapshot of the transaction `tx`: the server reads the next chunks while `tx` writes the previous ones, on
 * two backends instead of one after the other (a full change of 100,000 `plane` entries in a fresh
 * process took 2.09 to 2.37 s against 2.44 to 2.93 s, five alternated pairs; of 10,000 `it`
 * entries, the same within the noise). The reader's transaction (repeatable read, read
 * only) imports `tx`'s snapshot, exported under the slice lock: it sees the slice as a cursor of
 * `tx` declared then would, except for what `tx` itself wrote before, so the caller must not have
 * written the slice's entries or rows in `tx` (a rematch that runs in a transaction of its own).
 * When `reader` cannot give a session, `tx` reads the slice itself, as {@linkcode readSlice}.
 */
export async function* readSliceBeside(
  tx: Queryable,
  reader: Sql,
  detId: number,
  moduleIds: readonly number[],
  chunkSize: number,
  entryIds?: readonly number[],
): AsyncGenerator<SliceChunk> {
  if (moduleIds.length === 0 || entryIds?.length === 0) return;
  const [{ snapshot }] = await tx<
    { snapshot: string }[]
  >`select pg_export_snapshot() as snapshot`;
  // The reader's transaction runs in a callback of `begin`, which fails as soon as its
  // connection is lost (a statement sent on a connection already gone would never be answered,
  // and the rematch would wait forever with its own transaction open): its chunks are handed over
  // here one at a time, each taken before the next is asked for, as from the cursor itself.
  const waiting: SliceChunk[] = [];
  let started = false;
  let ended = false;
  let failure: unknown;
  let stopped = false;
  let wake: (() => void) | undefined;
  let taken: (() => void) | undefined;
  const producer = transaction(
    reader,
    "isolation level repeatable read read only",
    async (session) => {
      started = true;
      await session.unsafe(`set transaction snapshot '${snapshot.replace(/'/g, "''")}'`);
      for await (const chunk of readSlice(session, detId, moduleIds, chunkSize, entryIds)) {
        if (stopped) break;
        waiting.push(chunk);
        const next = new Promise<void>((resolve) => taken = resolve);
        wake?.();
        await next;
        if (stopped) break;
      }
    },
  ).then(
    () => {
      ended = true;
      wake?.();
    },
    (error) => {
      failure = error;
      ended = true;
      wake?.();
    },
  );
  try {
    while (true) {
      const chunk = waiting.shift();
      if (chunk) {
        // Resumed when the next chunk is asked for; if none is (the caller stopped), in finally.
        yield chunk;
        const resume = taken;
        taken = undefined;
        resume?.();
        continue;
      }
      if (ended) break;
      await new Promise<void>((resolve) => wake = resolve);
      wake = undefined;
    }
  } finally {
    stopped = true;
    taken?.();
    await producer;
  }
  if (failure === undefined) return;
  // No second session to be had (the server's connection limit, say): the transaction reads.
  if (!started) {
    yield* readSlice(tx, detId, moduleIds, chunkSize, entryIds);
    return;
  }
  throw failure;
}

/**
 * Turns JIT compilation off for the rest of the transaction. Without column statistics (the
 * server's autovacuum may never have analyzed a fresh slice) the planner prices a per-entry index
 * probe at thousands of rows, and a rematch's reads then cost "millions": over `jit_above_cost`,
 * compiled for 0.1 to 0.3 s each, to run in milliseconds.
 */
export async function withoutJit(tx: Queryable): Promise<void> {
  await tx`set local jit = off`;
}
