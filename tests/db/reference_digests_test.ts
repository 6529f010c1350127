// The reference digests a rematch compares (spec/rematch.md rule 16) are kept by the reference
// tables' triggers: after any write they are the md5 of the rows in order, as the rematch used to
// compute them on every run; the rematch reads the kept ones; and two transactions writing the
// same table leave the digest of both writes (server only: PGlite has one session).
import assert from "node:assert/strict";
import {
  dbTest,
  holdInTransaction,
  serverBackendExpected,
  untilSomeoneWaitsForALock,
  useTestDatabase,
} from "../_harness.ts";
import { sliceStatus } from "../../src/rematch/state.ts";
import type { Database, Queryable } from "../../src/db/connection.ts";
import { recalculateForDataEntryType, rematchInTransaction } from "../../src/rematch/run.ts";
import { createPgSliceStore } from "../../src/rematch/pg_store.ts";
import {
  createTestEntries,
  importFactorText,
  insertAirports,
  insertRates,
  PLANE_HEADER,
} from "../integration/_slice.ts";

const testDb = useTestDatabase();

/** The digests as computed from the tables now: what the kept ones must equal. */
async function liveDigests(sql: Queryable): Promise<Record<string, string | null>> {
  const [row] = await sql<Record<string, string | null>[]>`
    select
      (select md5(coalesce(string_agg(row(natural_key, transport_mode, name, iata_code,
        country_code, latitude, longitude)::text, e'\\n' order by natural_key), ''))
        from locations) as locations,
      (select md5(coalesce(string_agg(row(building_name, room_name, room_type,
        room_surface_square_meter)::text, e'\\n' order by building_name, room_name), ''))
        from building_rooms) as rooms,
      (select md5(coalesce(string_agg(row(currency, eur_per_unit)::text, e'\\n'
        order by currency), '')) from exchange_rates where year = 2024) as rates_2024,
      (select md5(coalesce(string_agg(row(currency, eur_per_unit)::text, e'\\n'
        order by currency), '')) from exchange_rates where year = 2025) as rates_2025`;
  return { ...row };
}

/** The kept digests, a year without rates taking the digest of no rows, as the rematch reads. */
async function keptDigests(sql: Queryable): Promise<Record<string, string | null>> {
  const [row] = await sql<Record<string, string | null>[]>`
    select
      (select digest from reference_digests where kind = 'locations' and year = 0) as locations,
      (select digest from reference_digests where kind = 'rooms' and year = 0) as rooms,
      coalesce((select digest from reference_digests where kind = 'rates' and year = 2024),
        md5('')) as rates_2024,
      coalesce((select digest from reference_digests where kind = 'rates' and year = 2025),
        md5('')) as rates_2025`;
  return { ...row };
}

dbTest(testDb, "every write to a reference table leaves its kept digest right", async (db) => {
  const writes: [string, (sql: Queryable) => Promise<unknown>][] = [
    ["airports inserted", () => insertAirports(db)],
    ["a location moved", (sql) =>
      sql`update locations set latitude = latitude + 0.5
      where iata_code = 'GVA'`],
    ["a location deleted", (sql) => sql`delete from locations where iata_code = 'LHR'`],
    ["rates of two years", () =>
      insertRates(db, [
        { year: 2024, currency: "USD", eurPerUnit: 0.9 },
        { year: 2025, currency: "USD", eurPerUnit: 0.92 },
        { year: 2025, currency: "CHF", eurPerUnit: 1.05 },
      ])],
    ["a year's rates gone", (sql) => sql`delete from exchange_rates where year = 2024`],
    ["a room", (sql) =>
      sql`insert into building_rooms (building_name, room_name, room_type,
      room_surface_square_meter) values ('BC', 'BC 410', 'office', 18.5)`],
    ["a room's type cleared", (sql) => sql`update building_rooms set room_type = null`],
    ["locations truncated", (sql) => sql`truncate locations`],
  ];
  // As migrated: the digests of what is there (nothing yet, or the harness's reference data).
  assert.deepEqual(await keptDigests(db.sql), await liveDigests(db.sql));
  for (const [what, write] of writes) {
    const before = await keptDigests(db.sql);
    await write(db.sql);
    const kept = await keptDigests(db.sql);
    assert.deepEqual(kept, await liveDigests(db.sql), `after: ${what}`);
    assert.notDeepEqual(kept, before, `${what}: a digest moved`);
  }
});

dbTest(testDb, "the rematch compares the kept digests, not the tables", async (db) => {
  await insertAirports(db);
  await importFactorText(
    db,
    "plane",
    2025,
    `${PLANE_HEADER}\nvery_short_haul,economy,0.1,1,0,800\n`,
  );
  await createTestEntries(db, "plane", 2025, [{
    origin_iata: "GVA",
    destination_iata: "CDG",
    cabin_class: "economy",
  }]);
  const rematch = () => recalculateForDataEntryType(db, { dataEntryType: "plane", year: 2025 });
  await rematch();
  assert.equal((await rematch()).scope, "none");
  // The tables unchanged, the kept digest changed: the rematch sees a reference change.
  await db.sql`update reference_digests set digest = 'changed' where kind = 'locations'`;
  const after = await rematch();
  assert.notEqual(after.scope, "none");
  assert.equal(after.errors, 0);
  assert.equal((await rematch()).scope, "none");
});

dbTest(
  testDb,
  "two transactions writing locations at once leave the digest of both",
  async (db) => {
    await insertAirports(db);
    let firstWrote!: () => void;
    const wrote = new Promise<void>((done) => firstWrote = done);
    let releaseFirst!: () => void;
    const release = new Promise<void>((done) => releaseFirst = done);
    const first = db.sql.begin(async (tx) => {
      await tx`update locations set latitude = latitude + 1 where iata_code = 'GVA'`;
      firstWrote();
      await release;
    });
    await wrote;
    // The second writes while the first holds the kind's lock: its trigger waits, then computes
    // after the first committed.
    const second = db.sql.begin((tx) =>
      tx`update locations set longitude = longitude + 1 where iata_code = 'CDG'`
    );
    await new Promise((done) => setTimeout(done, 200));
    releaseFirst();
    await Promise.all([first, second]);
    assert.deepEqual(await keptDigests(db.sql), await liveDigests(db.sql));
  },
  { ignore: !serverBackendExpected() },
);

/** Plane 2025 factors: GVA–CDG (503 km) takes the first band's ef, GVA–LHR the second's. */
const planeFactors = (short: number) =>
  `${PLANE_HEADER}\nvery_short_haul,economy,${short},1,0,800\n` +
  "short_haul,economy,0.2,1,800,10000\n";
const FLIGHT = { origin_iata: "GVA", destination_iata: "CDG", cabin_class: "economy" };

/** CDG moved north by `degrees` (through the table, as a locations import writes it). */
async function moveCdg(sql: Queryable, degrees: number): Promise<void> {
  await sql`update locations set latitude = latitude + ${degrees} where iata_code = 'CDG'`;
}

/** The plane 2025 slice is what a forced full rematch computes: it would change nothing. */
async function assertSliceRight(db: Database, message?: string): Promise<void> {
  const check = await recalculateForDataEntryType(db, {
    dataEntryType: "plane",
    year: 2025,
    full: true,
    dryRun: true,
  });
  assert.deepEqual(
    [check.emissionsUpdated, check.emissionsInserted, check.emissionsDeleted],
    [0, 0, 0],
    message,
  );
}

dbTest(
  testDb,
  "an entry written while the reference data changes, even back again, is read by the next rematch",
  async (db) => {
    await insertAirports(db);
    await importFactorText(db, "plane", 2025, planeFactors(0.1));
    await createTestEntries(db, "plane", 2025, [FLIGHT]);
    const rematch = () => recalculateForDataEntryType(db, { dataEntryType: "plane", year: 2025 });
    await rematch();
    // CDG moves: the slice is stale. An entry write computes with the moved CDG, then waits
    // (for the slice state's row, held here) while CDG moves back as recorded.
    await moveCdg(db.sql, 1);
    const held = await holdInTransaction(
      db,
      (tx) =>
        tx`select 1 from slice_states where data_entry_type_id = 20 and year = 2025 for update`,
    );
    const writing = createTestEntries(db, "plane", 2025, [FLIGHT]);
    await untilSomeoneWaitsForALock(db);
    await moveCdg(db.sql, -1);
    await held.release();
    const [written] = await writing;
    // Computed with other reference data than the recorded one: the slice is not current.
    const [status] = await sliceStatus(db.sql, { year: 2025, dataEntryTypeId: 20 });
    assert.notEqual(status.state, "current", status.reason);
    const next = await rematch();
    assert.ok(next.entriesRead >= 1);
    // Now the slice is what a full rematch computes, the written entry included.
    await assertSliceRight(db, `entry ${written}`);
  },
  { ignore: !serverBackendExpected() },
);

dbTest(
  testDb,
  "a targeted rematch that read reference data changed since its comparison leaves the slice stale",
  async (db) => {
    await insertAirports(db);
    await importFactorText(db, "plane", 2025, planeFactors(0.1));
    await createTestEntries(db, "plane", 2025, [FLIGHT, { ...FLIGHT, destination_iata: "LHR" }]);
    await recalculateForDataEntryType(db, { dataEntryType: "plane", year: 2025 });
    // One factor's value changes: a targeted rematch. While it reads its inputs, CDG moves and
    // moves back (two reference imports, each committed): it computes with the moved CDG.
    await importFactorText(db, "plane", 2025, planeFactors(0.15));
    const result = await db.sql.begin((tx) => {
      const store = createPgSliceStore(tx);
      return rematchInTransaction(tx, { dataEntryType: "plane", year: 2025 }, {
        ...store,
        async loadInputs(handler, detId, year) {
          await moveCdg(db.sql, 1);
          const inputs = await store.loadInputs(handler, detId, year);
          await moveCdg(db.sql, -1);
          return inputs;
        },
      });
    });
    assert.equal(result.scope, "targeted");
    // The data is back as compared, but the rows it wrote are not what it says: not current.
    const [status] = await sliceStatus(db.sql, { year: 2025, dataEntryTypeId: 20 });
    assert.match(status.label, /^stale: full \(locations changed\)/);
    await recalculateForDataEntryType(db, { dataEntryType: "plane", year: 2025 });
    await assertSliceRight(db);
  },
  { ignore: !serverBackendExpected() },
);
