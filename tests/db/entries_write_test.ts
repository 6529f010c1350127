// The write path: create, update and delete compute emissions in the same transaction and keep
// the embodied-energy companion of a building entry in step.
import assert from "node:assert/strict";
import { dbTest, serverBackendExpected, useTestDatabase } from "../_harness.ts";
import { createEntries, deleteEntry, ensureModules, updateEntry } from "../../src/db/entries.ts";
import { lockSlice } from "../../src/db/locks.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { refreshModuleStats } from "../../src/rematch/pg_store.ts";
import { upsertRooms } from "../../src/db/reference.ts";
import { EntryComputeError } from "../../src/handlers/types.ts";
import { recalculateForDataEntryType } from "../../src/rematch/run.ts";
import {
  createTestEntries,
  emissionRows,
  entryData,
  importFactorText,
  IT_HEADER,
} from "../integration/_slice.ts";
import type { Database, Queryable } from "../../src/db/connection.ts";

const testDb = useTestDatabase();
const near = (a: number, b: number) => Math.abs(a - b) <= Math.abs(b) * 1e-9;
const IT = getDataEntryType("it");

async function companions(db: Database) {
  return (await db.sql<{ id: number; data: Record<string, unknown> }[]>`
    select id, data from data_entries where data_entry_type_id = 32 order by id`).map((r) => ({
    ...r,
  }));
}

async function buildingSetup(db: Database) {
  await db.sql.begin((tx) =>
    upsertRooms(tx, [{
      buildingName: "BC",
      roomName: "BC 010",
      roomType: "office",
      surfaceSquareMeter: 10,
    }])
  );
  await importFactorText(
    db,
    "building_embodied_energy",
    2025,
    "building_name,category,ef_kgco2eq_per_m2\nBC,new-tech,100\n",
  );
}

const room = { building_name: "BC", room_name: "BC 010", room_type: "office" };

dbTest(
  testDb,
  "companion: a building entry with a surface creates its embodied-energy entry",
  async (db) => {
    await buildingSetup(db);
    const [id] = await createTestEntries(db, "building", 2025, [{
      ...room,
      room_surface_square_meter: 50,
    }]);
    const [companion] = await companions(db);
    assert.deepEqual(companion.data, {
      building_name: "BC",
      room_surface_square_meter: 50,
      data_entry_id: id,
    });
    const rows = await emissionRows(db.sql, [companion.id]);
    assert.equal(rows.length, 1);
    assert.ok(near(rows[0].kg_co2eq, 5000));
    assert.equal(rows[0].emission_type_id, 60300);
  },
);

dbTest(
  testDb,
  "companion: updating the surface updates it, removing it deletes it, adding recreates",
  async (db) => {
    await buildingSetup(db);
    const [id] = await createTestEntries(db, "building", 2025, [{
      ...room,
      room_surface_square_meter: 50,
    }]);
    await db.sql.begin((tx) => updateEntry(tx, id, { ...room, room_surface_square_meter: 20 }));
    const [updated] = await companions(db);
    assert.equal(updated.data.room_surface_square_meter, 20);
    assert.ok(near((await emissionRows(db.sql, [updated.id]))[0].kg_co2eq, 2000));
    await db.sql.begin((tx) => updateEntry(tx, id, room));
    assert.deepEqual(await companions(db), []);
    await db.sql.begin((tx) => updateEntry(tx, id, { ...room, room_surface_square_meter: 30 }));
    const [again] = await companions(db);
    assert.equal(again.data.data_entry_id, id);
    assert.ok(near((await emissionRows(db.sql, [again.id]))[0].kg_co2eq, 3000));
  },
);

dbTest(testDb, "companion: deleting the building entry deletes its companion", async (db) => {
  await buildingSetup(db);
  const [id, other] = await createTestEntries(db, "building", 2025, [
    { ...room, room_surface_square_meter: 50 },
    { ...room, room_surface_square_meter: 5 },
  ]);
  await db.sql.begin((tx) => deleteEntry(tx, id));
  const left = await companions(db);
  assert.deepEqual(left.map((c) => c.data.data_entry_id), [other]);
  const [n] = await db.sql`select count(*) as n from data_entries where id = ${id}`;
  assert.equal(n.n, 0);
});

dbTest(
  testDb,
  "update: a new value recomputes; an invalid update throws and changes nothing",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const base = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };
    const [id] = await createTestEntries(db, "it", 2025, [base]);
    await db.sql.begin((tx) => updateEntry(tx, id, { ...base, active_usage_hours_per_week: 20 }));
    // 20 h × 100 W + 128 h × 10 W = 3280 Wh/week × 52 / 1000 × 0.1
    assert.ok(near((await emissionRows(db.sql, [id]))[0].kg_co2eq, 3280 * 52 / 1000 * 0.1));
    const data = await entryData(db.sql, id);
    const rows = await emissionRows(db.sql, [id]);
    await assert.rejects(
      () =>
        db.sql.begin((tx) =>
          updateEntry(tx, id, {
            ...base,
            active_usage_hours_per_week: 100,
            standby_usage_hours_per_week: 100,
          })
        ),
      (e) => e instanceof EntryComputeError && /standby_usage_hours_per_week/.test(e.message),
    );
    assert.deepEqual(await entryData(db.sql, id), data);
    assert.deepEqual(await emissionRows(db.sql, [id]), rows);
  },
);

// ---- slice locks (spec/rematch.md §2 rule 12) ------------------------------------------------

const LAPTOP = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };

/** The (det, year) advisory lock requests of other sessions, granted or waiting. */
async function sliceLockRequests(db: Database) {
  // lockSlice takes pg_advisory_xact_lock(310000 + det, year): classid and objid in pg_locks;
  // advisory locks are per database, and other test files run on other databases in parallel.
  return (await db.sql<{ det: number; year: number; granted: boolean; pid: number }[]>`
    select classid::int - 310000 as det, objid::int as year, granted, pid from pg_locks
    where locktype = 'advisory' and objsubid = 2 and classid between 310000 and 310100
      and database = (select oid from pg_database where datname = current_database())
    order by pid, det`).map((r) => ({ ...r }));
}

/** Polls until a session waits for the lock of (det, year); fails after about 10 s. */
async function untilWaiting(db: Database, det: number, year: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const requests = await sliceLockRequests(db);
    if (requests.some((r) => !r.granted && r.det === det && r.year === year)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`nobody waits for slice ${det} ${year}`);
}

/** Holds the lock of these slices in another transaction until `release` is called. */
async function holdSlices(db: Database, slices: [number, number][]) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const done = db.sql.begin(async (tx) => {
    for (const [det, year] of slices) await lockSlice(tx, det, year);
    locked();
    await released;
  });
  await isLocked;
  return {
    async release() {
      release();
      await done;
    },
  };
}

/** Runs `write` in a transaction that fails instead of waiting for any lock. */
function withoutWaiting<T>(db: Database, write: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.sql.begin(async (tx) => {
    await tx`set local lock_timeout = '2s'`;
    return await write(tx);
  }) as Promise<T>;
}

/** Starts `write` and tells whether it has finished yet. */
function track<T>(promise: Promise<T>) {
  const state = { finished: false, promise };
  promise.then(() => (state.finished = true), () => (state.finished = true));
  return state;
}

const onServer = { ignore: !serverBackendExpected() };

dbTest(
  testDb,
  "locks: create, update and delete wait while another transaction holds their slice",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const [id, other] = await createTestEntries(db, "it", 2025, [LAPTOP, LAPTOP]);

    const writes: [string, (tx: Queryable) => Promise<unknown>][] = [
      [
        "create",
        (tx) => createEntries(tx, [{ unitCode: "U1", year: 2025, det: IT, data: LAPTOP }]),
      ],
      ["update", (tx) => updateEntry(tx, id, { ...LAPTOP, active_usage_hours_per_week: 20 })],
      ["delete", (tx) => deleteEntry(tx, other)],
    ];
    for (const [what, write] of writes) {
      const holder = await holdSlices(db, [[11, 2025]]);
      const writing = track(db.sql.begin(write));
      try {
        await untilWaiting(db, 11, 2025);
        assert.equal(writing.finished, false, `${what} must wait for the slice lock`);
      } finally {
        await holder.release();
        await writing.promise;
      }
    }
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from data_entries`;
    assert.equal(n, 2, "one created, one deleted");
    // 20 h × 100 W + 128 h × 10 W, × 52 / 1000, ef 0.1: computed after the lock was granted.
    assert.ok(near((await emissionRows(db.sql, [id]))[0].kg_co2eq, 3280 * 52 / 1000 * 0.1));
  },
  onServer,
);

dbTest(
  testDb,
  "locks: a write does not wait for other slices (another det, another year)",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const [id] = await createTestEntries(db, "it", 2025, [LAPTOP]);
    const holder = await holdSlices(db, [[10, 2025], [11, 2024], [12, 2025]]);
    try {
      await withoutWaiting(
        db,
        (tx) => createEntries(tx, [{ unitCode: "U1", year: 2025, det: IT, data: LAPTOP }]),
      );
      await withoutWaiting(db, (tx) => updateEntry(tx, id, LAPTOP));
      await withoutWaiting(db, (tx) => deleteEntry(tx, id));
    } finally {
      await holder.release();
    }
    // The guard is real: the same write on a held slice fails instead of waiting.
    const held = await holdSlices(db, [[11, 2025]]);
    try {
      await assert.rejects(
        withoutWaiting(
          db,
          (tx) => createEntries(tx, [{ unitCode: "U1", year: 2025, det: IT, data: LAPTOP }]),
        ),
        /lock timeout/,
      );
    } finally {
      await held.release();
    }
  },
  onServer,
);

dbTest(
  testDb,
  "locks: every slice a write touches, companions included, in ascending det id order",
  async (db) => {
    await buildingSetup(db);
    const [id] = await createTestEntries(db, "building", 2025, [{
      ...room,
      room_surface_square_meter: 50,
    }]);
    // Updating a room touches its companion's slice (embodied energy, det 32) too.
    const companionHeld = await holdSlices(db, [[32, 2025]]);
    const update = track(
      db.sql.begin((tx) => updateEntry(tx, id, { ...room, room_surface_square_meter: 20 })),
    );
    try {
      await untilWaiting(db, 32, 2025);
      assert.equal(update.finished, false);
    } finally {
      await companionHeld.release();
      await update.promise;
    }

    // it (11) and building (30, companion 32) in one call: with 30 held, the writer holds 11
    // and waits for 30, and has not asked for 32 yet.
    const held = await holdSlices(db, [[30, 2025]]);
    const create = track(db.sql.begin((tx) =>
      createEntries(tx, [
        { unitCode: "U1", year: 2025, det: getDataEntryType("building"), data: room },
        { unitCode: "U1", year: 2025, det: IT, data: LAPTOP },
      ])
    ));
    try {
      await untilWaiting(db, 30, 2025);
      const requests = await sliceLockRequests(db);
      const writer = requests.find((r) => !r.granted)!.pid;
      assert.deepEqual(
        requests.filter((r) => r.pid === writer).map((r) => [r.det, r.granted]),
        [[11, true], [30, false]],
      );
    } finally {
      await held.release();
    }
    const result = await create.promise;
    assert.equal(result.created, 2);
  },
  onServer,
);

// ---- module stats (spec/rematch.md §2 rule 15) -----------------------------------------------

const MEMBER_FACTORS =
  "headcount_category,headcount_class,headcount_subclass,unit,number_of_unit_per_fte,ef_kg_co2eq_per_unit\n" +
  "food,vegetarian,,meal,100,1\nwaste,incineration,,kg,50,0.5\ncommuting,public_transport,,km,200,0.2\n";

async function moduleStats(db: Database) {
  return (await db.sql<{ module_type_id: number; stats: Record<string, unknown> | null }[]>`
    select module_type_id, stats from carbon_report_modules order by id`).map((r) => ({ ...r }));
}

dbTest(
  testDb,
  "stats: create, update and delete refresh their module's stats, rollup rows excluded",
  async (db) => {
    await importFactorText(db, "member", 2025, MEMBER_FACTORS);
    // The spec's member vector: fte 1 → food 100, waste 25, commuting 40 (rollup 165).
    const [a] = await createTestEntries(db, "member", 2025, [{ name: "Ada", fte: 1 }]);
    let [stats] = await moduleStats(db);
    assert.deepEqual(stats.stats, {
      scope1: 0,
      scope2: 0,
      scope3: 165,
      total: 165,
      by_emission_type: { "10001": 100, "20001": 25, "30004": 40 },
      entry_count: 1,
    });

    const [b] = await createTestEntries(db, "member", 2025, [{ name: "Bob", fte: 0.5 }]);
    [stats] = await moduleStats(db);
    assert.equal(stats.stats!.total, 165 + 82.5);
    assert.equal(stats.stats!.entry_count, 2);

    await db.sql.begin((tx) => updateEntry(tx, a, { name: "Ada", fte: 0.2 }));
    [stats] = await moduleStats(db);
    // 0.2 × 165 + 0.5 × 165
    assert.ok(near(stats.stats!.total as number, 0.7 * 165));
    assert.ok(near(stats.stats!.scope3 as number, 0.7 * 165));

    await db.sql.begin((tx) => deleteEntry(tx, b));
    [stats] = await moduleStats(db);
    assert.ok(near(stats.stats!.total as number, 0.2 * 165));
    assert.equal(stats.stats!.entry_count, 1);
    assert.equal("40000" in (stats.stats!.by_emission_type as object), false);

    await db.sql.begin((tx) => deleteEntry(tx, a));
    [stats] = await moduleStats(db);
    assert.deepEqual(stats.stats, {
      scope1: 0,
      scope2: 0,
      scope3: 0,
      total: 0,
      by_emission_type: {},
      entry_count: 0,
    });
  },
);

dbTest(
  testDb,
  "stats: a room and its companion count in the buildings module; rollups excluded",
  async (db) => {
    await buildingSetup(db);
    await createTestEntries(db, "building", 2025, [{ ...room, room_surface_square_meter: 50 }]);
    const [stats] = await moduleStats(db);
    // The room has no building factors here, so only the companion's 50 m² × 100 kg/m² counts.
    assert.equal(stats.stats!.entry_count, 2);
    assert.equal(stats.stats!.total, 5000);
    assert.deepEqual(stats.stats!.by_emission_type, { "60300": 5000 });
  },
);

dbTest(testDb, "stats: a new module starts with the stats a sum of no rows gives", async (db) => {
  const ids = await db.sql.begin((tx) =>
    ensureModules(tx, [{ unitCode: "U9", year: 2025, moduleTypeId: IT.moduleTypeId }])
  );
  const [id] = [...ids.values()];
  const read = async () => {
    const [m] = await db.sql<{ stats: unknown; computed: boolean }[]>`
      select stats, stats_computed_at is not null as computed from carbon_report_modules
      where id = ${id}`;
    return { ...m };
  };
  const created = await read();
  assert.equal(created.computed, true);
  await db.sql.begin((tx) => refreshModuleStats(tx, [id]));
  assert.deepEqual(created.stats, (await read()).stats);
});

dbTest(
  testDb,
  "stats: a write moves its modules' stats by what it changed; one that skips them leaves them to be summed again",
  async (db) => {
    await importFactorText(db, "member", 2025, MEMBER_FACTORS);
    await createTestEntries(db, "member", 2025, [{ name: "Ada", fte: 1 }]);
    // A stored total no sum of rows gives: the next write adds its change to it.
    await db.sql`update carbon_report_modules set stats = jsonb_set(stats, '{total}', '1000')`;
    await createTestEntries(db, "member", 2025, [{ name: "Bob", fte: 0.5 }]);
    let [stats] = await moduleStats(db);
    assert.deepEqual([stats.stats!.total, stats.stats!.entry_count], [1000 + 82.5, 2]);
    // Written without its stats: they are marked as not computed ...
    const member = getDataEntryType("member");
    await db.sql.begin((tx) =>
      createEntries(
        tx,
        [{ unitCode: "U1", year: 2025, det: member, data: { name: "Cy", fte: 1 } }],
        {
          refreshStats: false,
        },
      )
    );
    const [{ computed }] = await db.sql<{ computed: string | null }[]>`
      select stats_computed_at::text as computed from carbon_report_modules`;
    assert.equal(computed, null);
    // ... and the next write sums the module again: 165 + 82.5 + 165 + 82.5.
    await createTestEntries(db, "member", 2025, [{ name: "Dan", fte: 0.5 }]);
    [stats] = await moduleStats(db);
    assert.deepEqual([stats.stats!.total, stats.stats!.entry_count], [495, 4]);
  },
);

dbTest(
  testDb,
  "stats: after creates, updates by key and companions, every module's stats equal a sum of its rows",
  async (db) => {
    await importFactorText(db, "member", 2025, MEMBER_FACTORS);
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    await buildingSetup(db);
    const member = getDataEntryType("member");
    const building = getDataEntryType("building");
    const write = (round: number) =>
      db.sql.begin((tx) =>
        createEntries(
          tx,
          Array.from({ length: 30 }, (_, i) => {
            const unitCode = `U${i % 4}`;
            const sourceKey = `k${i}`;
            const year = 2025;
            if (i % 3 === 0) {
              return {
                unitCode,
                year,
                sourceKey,
                det: member,
                data: { name: `M${i}`, fte: (i + round) % 4 / 4 },
              };
            }
            if (i % 3 === 1) {
              return {
                unitCode,
                year,
                sourceKey,
                det: IT,
                data: { ...LAPTOP, active_usage_hours_per_week: 20 + ((i * round) % 30) },
              };
            }
            return {
              unitCode,
              year,
              sourceKey,
              det: building,
              data: { ...room, room_surface_square_meter: 10 + ((i + round) % 7) * 5 },
            };
          }),
        )
      );
    await write(0); // created
    await write(1); // the same keys: updated (some unchanged)
    await write(2);
    const stored = await db.sql<{ id: number; stats: Record<string, unknown> }[]>`
      select id, stats from carbon_report_modules order by id`;
    await db.sql.begin((tx) => refreshModuleStats(tx, stored.map((m) => m.id)));
    const summed = await db.sql<{ id: number; stats: Record<string, unknown> }[]>`
      select id, stats from carbon_report_modules order by id`;
    assert.ok(stored.length >= 8, `${stored.length} modules`);
    stored.forEach((m, i) => {
      const a = m.stats;
      const b = summed[i].stats;
      assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
      assert.equal(a.entry_count, b.entry_count, `module ${m.id}`);
      for (const key of ["scope1", "scope2", "scope3", "total"]) {
        assert.ok(
          Math.abs((a[key] as number) - (b[key] as number)) <= 1e-9,
          `module ${m.id} ${key}`,
        );
      }
      const types = (s: Record<string, unknown>) => s.by_emission_type as Record<string, number>;
      assert.deepEqual(
        Object.keys(types(a)).sort(),
        Object.keys(types(b)).sort(),
        `module ${m.id}`,
      );
      for (const t of Object.keys(types(b))) {
        assert.ok(Math.abs(types(a)[t] - types(b)[t]) <= 1e-9, `module ${m.id} type ${t}`);
      }
    });
  },
);

// ---- bulk writes --------------------------------------------------------------------------------

dbTest(
  testDb,
  "bulk: a call of several insert chunks writes every entry and row, updates by key included",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const entry = (i: number, data: Record<string, unknown>) => ({
      unitCode: `U${i % 3}`,
      year: 2025,
      det: IT,
      sourceKey: `k${i}`,
      data,
    });
    const first = await db.sql.begin((tx) =>
      createEntries(tx, Array.from({ length: 6 }, (_, i) => entry(i, LAPTOP)))
    );
    assert.equal(first.created, 6);

    // 2,500 inputs: the first 6 name the entries above (3 changed, 3 as they are), two of the new
    // ones cannot be computed (100 active hours + the factor's 128 standby exceed the week).
    const failing = new Set([1500, 2400]);
    const inputs = Array.from({ length: 2500 }, (_, i) =>
      entry(
        i,
        failing.has(i)
          ? { ...LAPTOP, active_usage_hours_per_week: 100 }
          : i < 3
          ? { ...LAPTOP, active_usage_hours_per_week: 20 }
          : LAPTOP,
      ));
    const result = await db.sql.begin((tx) => createEntries(tx, inputs));
    assert.deepEqual(
      [result.created, result.updated, result.unchanged, result.rejected.length],
      [2494, 3, 3, 0],
    );
    assert.deepEqual(result.ids.slice(0, 6), first.ids);
    assert.deepEqual(result.computeErrors.map((e) => e.index), [1500, 2400]);
    assert.deepEqual(result.withoutEmissions, [1500, 2400]);
    assert.deepEqual([result.emissionsInserted, result.emissionsDeleted], [2492 + 3, 3]);

    // Each entry's stored row, from the database: 20 or 40 active hours a week at 100 W, the
    // factor's 128 standby hours at 10 W, 52 weeks, 0.1 kg/kWh.
    const kg = (activeHours: number) => (activeHours * 100 + 128 * 10) * 52 / 1000 * 0.1;
    const stored = await db.sql<{ id: number; kg: number[] }[]>`
      select e.id, coalesce(array_agg(x.kg_co2eq) filter (where x.id is not null), '{}') as kg
      from data_entries e left join data_entry_emissions x on x.data_entry_id = e.id
      group by e.id`;
    const byId = new Map(stored.map((r) => [Number(r.id), r.kg]));
    assert.equal(byId.size, 2500);
    inputs.forEach((_, i) => {
      const rows = byId.get(result.ids[i]!)!;
      if (failing.has(i)) return assert.deepEqual(rows, [], `input ${i}`);
      assert.equal(rows.length, 1, `input ${i}`);
      assert.ok(near(rows[0], kg(i < 3 ? 20 : 40)), `input ${i}: ${rows[0]}`);
    });
  },
);

dbTest(
  testDb,
  "companions written and deleted move their slice's recorded kg total",
  async (db) => {
    await buildingSetup(db);
    const [id, other] = await createTestEntries(db, "building", 2025, [
      { ...room, room_surface_square_meter: 50 },
      { ...room, room_surface_square_meter: 5 },
    ]);
    // The embodied slice's state, with its total: 50 m² and 5 m² × 100 kg.
    await recalculateForDataEntryType(db, {
      dataEntryType: "building_embodied_energy",
      year: 2025,
    });
    const total = async () =>
      (await db.sql<{ kg: number | null }[]>`
        select kg_total as kg from slice_states where data_entry_type_id = 32 and year = 2025`)[0]
        .kg;
    assert.ok(near((await total())!, 5500));
    await db.sql.begin((tx) => updateEntry(tx, id, { ...room, room_surface_square_meter: 20 }));
    assert.ok(near((await total())!, 2500), "companion updated: 20 m² + 5 m²");
    await db.sql.begin((tx) => updateEntry(tx, id, room));
    assert.ok(near((await total())!, 500), "companion deleted with the surface");
    await db.sql.begin((tx) => deleteEntry(tx, other));
    assert.equal(await total(), 0, "companion deleted with its building");
  },
);

dbTest(testDb, "a unit code is trimmed: ' U1 ' is unit U1, as in the imports", async (db) => {
  const laptop = { name: "laptop", equipment_class: "Laptop" };
  await db.sql.begin((tx) =>
    createEntries(tx, [
      { unitCode: "U1", year: 2025, det: IT, data: laptop },
      { unitCode: " U1 ", year: 2025, det: IT, data: laptop },
    ])
  );
  const units = await db.sql<{ code: string; entries: number }[]>`
    select u.code, count(e.id)::int as entries from units u
      join carbon_reports r on r.unit_id = u.id
      join carbon_report_modules m on m.carbon_report_id = r.id
      join data_entries e on e.carbon_report_module_id = m.id
    group by u.code`;
  assert.deepEqual(units.map((u) => ({ ...u })), [{ code: "U1", entries: 2 }]);
});
