// What the entry write path refuses before writing (unique member ids, data the database cannot
// store, bad years and overrides) and how a source key turns a create into an update.
import assert from "node:assert/strict";
import { dbTest, useTestDatabase } from "../_harness.ts";
import type { Database, Queryable } from "../../src/db/connection.ts";
import { createEntries, deleteEntry, type NewEntry, updateEntry } from "../../src/db/entries.ts";
import { MAX_JSON_DEPTH } from "../../src/db/storable.ts";
import { upsertRooms } from "../../src/db/reference.ts";
import { EntryComputeError } from "../../src/handlers/types.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { emissionRows, entryData, importFactorText, IT_HEADER } from "../integration/_slice.ts";

const testDb = useTestDatabase();

const MEMBER = getDataEntryType("member");
const IT = getDataEntryType("it");
const LAPTOP = { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" };

function create(db: Database, inputs: NewEntry[]) {
  return db.sql.begin((tx) => createEntries(tx, inputs));
}

const member = (id: string | undefined, unitCode = "U1", year = 2025): NewEntry => ({
  unitCode,
  year,
  det: MEMBER,
  data: id === undefined ? { fte: 1 } : { user_institutional_id: id, fte: 1 },
});

const it = (data: unknown, extra: Partial<NewEntry> = {}): NewEntry => ({
  unitCode: "U1",
  year: 2025,
  det: IT,
  data,
  ...extra,
});

async function entryCount(db: Database): Promise<number> {
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from data_entries`;
  return n;
}

// ---- member user_institutional_id: unique per module (spec/modules.md) -----------------------

dbTest(
  testDb,
  "member ids: a second member with the same id in a module is refused",
  async (db) => {
    const first = await create(db, [member("42"), member("42"), member(" 43 "), member("43")]);
    assert.equal(first.created, 2);
    const [a, , c] = first.ids;
    assert.deepEqual(first.rejected, [
      {
        index: 1,
        message:
          `user_institutional_id: "42" is already used in this module by entry ${a} (it must be unique per module)`,
        conflictingEntryId: a,
      },
      {
        index: 3,
        message:
          `user_institutional_id: "43" is already used in this module by entry ${c} (it must be unique per module)`,
        conflictingEntryId: c,
      },
    ]);

    // Against stored entries too; other modules (another unit, another year) are free; members
    // without an id (or a blank one) never clash.
    const second = await create(db, [
      member("42"),
      member("42", "U2"),
      member("42", "U1", 2024),
      member(undefined),
      member(undefined),
      member(""),
      member(""),
    ]);
    assert.deepEqual(second.rejected.map((p) => [p.index, p.conflictingEntryId]), [[0, a]]);
    assert.equal(second.created, 6);

    // An update to a taken id throws and changes nothing; keeping one's own id is fine.
    const before = await entryData(db.sql, c!);
    await assert.rejects(
      db.sql.begin((tx) => updateEntry(tx, c!, { user_institutional_id: "42", fte: 0.5 })),
      (e) =>
        e instanceof EntryComputeError &&
        e.message === `user_institutional_id: "42" is already used in this module by entry ${a} ` +
            "(it must be unique per module)",
    );
    assert.deepEqual(await entryData(db.sql, c!), before);
    await db.sql.begin((tx) => updateEntry(tx, a!, { user_institutional_id: "42", fte: 0.5 }));
    assert.equal((await entryData(db.sql, a!)).fte, 0.5);
  },
);

dbTest(testDb, "member ids: the schema refuses a duplicate written around the code", async (db) => {
  const { ids: [id] } = await create(db, [member("42")]);
  await assert.rejects(
    db.sql`insert into data_entries (carbon_report_module_id, data_entry_type_id, data)
      select carbon_report_module_id, 1, '{"user_institutional_id": "42", "fte": 1}'
      from data_entries where id = ${id!}`,
    /data_entries_member_user_institutional_id_key/,
  );
  // Students carry no such id: the index is for members only.
  await db.sql`insert into data_entries (carbon_report_module_id, data_entry_type_id, data)
    select carbon_report_module_id, 2, '{"user_institutional_id": "42", "fte": 1}'
    from data_entries where id = ${id!}`;
  assert.equal(await entryCount(db), 2);
});

dbTest(
  testDb,
  "member ids: inputs apply in order, an update giving up an id frees it",
  async (db) => {
    const keyed = (id: string, key: string) => ({ ...member(id), sourceKey: key });
    await create(db, [keyed("42", "ada"), keyed("43", "bob")]);
    // ada moves to 44, then a new member takes 42: fine. bob cannot take 44 (ada has it now).
    const result = await create(db, [keyed("44", "ada"), member("42"), keyed("44", "bob")]);
    assert.deepEqual([result.updated, result.created], [1, 1]);
    assert.deepEqual(result.rejected.map((p) => [p.index, p.conflictingEntryId]), [[
      2,
      result.ids[0],
    ]]);
  },
);

// ---- data the database cannot store (issue 7 item 13) ---------------------------------------

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) value = { deeper: value };
  return value;
}

dbTest(
  testDb,
  "storable: NUL, bad Unicode, deep nesting and oversized data are refused per entry",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const result = await create(db, [
      it({ ...LAPTOP, note: "a\u0000b" }),
      it({ ...LAPTOP, "bad\u0000key": 1 }),
      it({ ...LAPTOP, tags: ["ok", "\ud800"] }),
      it({ ...LAPTOP, extra: nested(MAX_JSON_DEPTH) }),
      it({ ...LAPTOP, note: "x".repeat(1_100_000) }),
      it({ ...LAPTOP, ratio: Infinity }),
      it(LAPTOP, { unitCode: "U\u00001" }),
      it(LAPTOP, { unitCode: "U".repeat(257) }),
      it(LAPTOP, { sourceKey: "k\u0000" }),
      it({ ...LAPTOP, serial: 10n }),
      it(LAPTOP),
    ]);
    assert.deepEqual(result.rejected.map((p) => [p.index, p.message]), [
      [0, "note: contains a NUL character (\\u0000), which PostgreSQL cannot store"],
      [
        1,
        '"bad\\u0000key": the key contains a NUL character (\\u0000), which PostgreSQL cannot store',
      ],
      [
        2,
        "tags[1]: contains an unpaired UTF-16 surrogate (not valid Unicode), which PostgreSQL cannot store",
      ],
      [
        3,
        `extra${".deeper".repeat(MAX_JSON_DEPTH - 1)}: nested deeper than ${MAX_JSON_DEPTH} levels`,
      ],
      [4, result.rejected[4].message],
      [5, "ratio: Infinity is not a finite number (JSON cannot hold it)"],
      [6, "unit: contains a NUL character (\\u0000), which PostgreSQL cannot store"],
      [7, "unit: is 257 characters long; at most 256"],
      [8, "source_key: contains a NUL character (\\u0000), which PostgreSQL cannot store"],
      [9, "serial: 10n is a bigint (JSON cannot hold it)"],
    ]);
    assert.match(result.rejected[4].message, /^data: is 11\d{5} bytes as JSON; at most 1048576$/);
    assert.equal(result.created, 1, "the good entry is written");
    assert.equal(await entryCount(db), 1);

    // An update is checked the same way and writes nothing.
    const [id] = result.ids.slice(-1);
    await assert.rejects(
      db.sql.begin((tx) => updateEntry(tx, id!, { ...LAPTOP, note: "\u0000" })),
      (e) => e instanceof EntryComputeError && /^note: contains a NUL character/.test(e.message),
    );
    assert.equal((await entryData(db.sql, id!)).note, undefined);
  },
);

dbTest(
  testDb,
  "storable: data nested as deep as the limit is stored by this database",
  async (db) => {
    // Level 1 is the data object itself: MAX_JSON_DEPTH - 1 more levels below `extra`.
    const result = await create(db, [it({ ...LAPTOP, extra: nested(MAX_JSON_DEPTH - 1) })]);
    assert.deepEqual(result.rejected, []);
    const data = await entryData(db.sql, result.ids[0]!);
    assert.deepEqual(data.extra, nested(MAX_JSON_DEPTH - 1));
  },
);

dbTest(
  testDb,
  "update and delete: an id no entry has is a RangeError, and the transaction goes on",
  async (db) => {
    for (const id of [999_999, 1.5, NaN, Infinity]) {
      for (
        const write of [
          (tx: Queryable) => updateEntry(tx, id, LAPTOP),
          (tx: Queryable) => deleteEntry(tx, id),
        ]
      ) {
        const after = await db.sql.begin(async (tx) => {
          await assert.rejects(
            () => write(tx),
            (e) =>
              e instanceof RangeError && e.message.startsWith(`data entry ${id} does not exist`),
          );
          const [row] = await tx<{ ok: number }[]>`select 1 as ok`;
          return row.ok;
        });
        assert.equal(after, 1, `id ${id}`);
      }
    }
  },
);

// ---- years and overrides ---------------------------------------------------------------------

dbTest(testDb, "year: an entry outside 1990..2100 is refused", async (db) => {
  const result = await create(db, [
    it(LAPTOP, { year: 0 }),
    it(LAPTOP, { year: 1989 }),
    it(LAPTOP, { year: 2101 }),
    it(LAPTOP, { year: 2025.5 }),
    it(LAPTOP, { year: 1990 }),
  ]);
  assert.deepEqual(result.rejected.map((p) => p.message), [
    "year: expected a year between 1990 and 2100, got 0",
    "year: expected a year between 1990 and 2100, got 1989",
    "year: expected a year between 1990 and 2100, got 2101",
    "year: expected a year between 1990 and 2100, got 2025.5",
  ]);
  assert.equal(result.created, 1);
});

dbTest(testDb, "override: a numeric text is the number; blank or null means none", async (db) => {
  await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
  const result = await create(db, [
    it({ ...LAPTOP, __kg_co2eq_override__: " 42 " }),
    it({ ...LAPTOP, __kg_co2eq_override__: "" }),
    it({ ...LAPTOP, __kg_co2eq_override__: null }),
    it({ ...LAPTOP, __kg_co2eq_override__: "lots" }),
    // Decimal text only, as every numeric field: Number() would read these as 16, 5 and 15.
    it({ ...LAPTOP, __kg_co2eq_override__: "0x10" }),
    it({ ...LAPTOP, __kg_co2eq_override__: "0b101" }),
    it({ ...LAPTOP, __kg_co2eq_override__: " 0o17" }),
    // A JSON number beyond a double's range arrives as Infinity: named so, not as null.
    it({ ...LAPTOP, __kg_co2eq_override__: Infinity }),
    it({ ...LAPTOP, __kg_co2eq_override__: "1e309" }),
  ]);
  const expected = (got: string) =>
    `__kg_co2eq_override__: expected a finite decimal number of kg CO2-eq, got ${got}`;
  assert.deepEqual(result.rejected, [
    { index: 3, message: expected('"lots"') },
    { index: 4, message: expected('"0x10"') },
    { index: 5, message: expected('"0b101"') },
    { index: 6, message: expected('" 0o17"') },
    { index: 7, message: expected("Infinity") },
    { index: 8, message: expected('"1e309"') },
  ]);
  const [overridden, blank, none] = result.ids as number[];
  assert.equal((await entryData(db.sql, overridden)).__kg_co2eq_override__, 42);
  const rows = await emissionRows(db.sql, [overridden]);
  assert.deepEqual(rows.map((r) => [r.kg_co2eq, r.primary_factor_id, r.meta]), [[42, null, {
    override: true,
  }]]);
  for (const id of [blank, none]) {
    assert.equal("__kg_co2eq_override__" in await entryData(db.sql, id), false);
    // Computed as usual: the spec's it vector with ef 0.1.
    assert.ok(Math.abs((await emissionRows(db.sql, [id]))[0].kg_co2eq - 27.456) < 1e-9);
  }
});

// ---- source keys (issue 7 item 17) -----------------------------------------------------------

dbTest(
  testDb,
  "source key: the same key in a module updates its entry, or leaves it unchanged",
  async (db) => {
    await importFactorText(db, "it", 2025, `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`);
    const first = await create(db, [it(LAPTOP, { sourceKey: "L1" }), it(LAPTOP)]);
    assert.deepEqual([first.created, first.updated, first.unchanged], [2, 0, 0]);
    const [id] = first.ids;
    const rows = await emissionRows(db.sql, [id!]);

    const again = await create(db, [it(LAPTOP, { sourceKey: " L1 " })]);
    assert.deepEqual([again.created, again.updated, again.unchanged], [0, 0, 1]);
    assert.deepEqual(again.outcomes, ["unchanged"]);
    assert.deepEqual(again.ids, [id]);
    assert.deepEqual(await emissionRows(db.sql, [id!]), rows, "nothing rewritten");

    const changed = await create(db, [
      it({ ...LAPTOP, active_usage_hours_per_week: 20 }, { sourceKey: "L1" }),
    ]);
    assert.deepEqual([changed.created, changed.updated, changed.ids[0]], [0, 1, id]);
    // 20 h × 100 W + 128 h × 10 W, × 52 / 1000 × 0.1
    const [row] = await emissionRows(db.sql, [id!]);
    assert.ok(Math.abs(row.kg_co2eq - 3280 * 52 / 1000 * 0.1) < 1e-9);
    assert.equal(await entryCount(db), 2);

    // Keys are per module: another unit's L1 is another entry.
    const elsewhere = await create(db, [it(LAPTOP, { sourceKey: "L1", unitCode: "U2" })]);
    assert.equal(elsewhere.created, 1);
  },
);

dbTest(
  testDb,
  "source key: a key of another det, or given twice in one call, is refused",
  async (db) => {
    const { ids: [id] } = await create(db, [it(LAPTOP, { sourceKey: "K" })]);
    const result = await create(db, [
      { ...it(LAPTOP, { sourceKey: "K" }), det: getDataEntryType("scientific") },
      it(LAPTOP, { sourceKey: "N" }),
      it(LAPTOP, { sourceKey: "N" }),
    ]);
    assert.deepEqual(result.rejected, [
      {
        index: 0,
        message:
          `source_key: "K" already names entry ${id}, a it entry of this module (this one is scientific)`,
        conflictingEntryId: id,
      },
      {
        index: 2,
        message:
          'source_key: "N" is also the key of input 1 of this write (one entry per key and module)',
      },
    ]);
    assert.equal(result.created, 1);
  },
);

dbTest(testDb, "source key: an updated room keeps its companion in step", async (db) => {
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
  const room = (surface?: number): NewEntry => ({
    unitCode: "U1",
    year: 2025,
    det: getDataEntryType("building"),
    sourceKey: "room-1",
    data: {
      building_name: "BC",
      room_name: "BC 010",
      room_type: "office",
      ...(surface === undefined ? {} : { room_surface_square_meter: surface }),
    },
  });
  const companions = async () =>
    (await db.sql<{ id: number; data: Record<string, unknown> }[]>`
      select id, data from data_entries where data_entry_type_id = 32 order by id`).map((r) => ({
      ...r,
    }));
  const { ids: [id], companionsCreated } = await create(db, [room(50)]);
  assert.equal(companionsCreated, 1);
  const [companion] = await companions();

  const updated = await create(db, [room(20)]);
  assert.deepEqual([updated.updated, updated.companionsUpdated], [1, 1]);
  const [after] = await companions();
  assert.equal(after.id, companion.id, "the companion keeps its id");
  assert.deepEqual(after.data, {
    building_name: "BC",
    room_surface_square_meter: 20,
    data_entry_id: id,
  });
  // 20 m² × 100 kg/m²
  assert.equal((await emissionRows(db.sql, [after.id]))[0].kg_co2eq, 2000);

  const unchanged = await create(db, [room(20)]);
  assert.deepEqual([unchanged.unchanged, unchanged.companionsUpdated], [1, 0]);

  const removed = await create(db, [room()]);
  assert.deepEqual([removed.updated, removed.companionsDeleted], [1, 1]);
  assert.deepEqual(await companions(), []);
  const back = await create(db, [room(30)]);
  assert.deepEqual([back.updated, back.companionsCreated], [1, 1]);
  assert.equal((await companions())[0].data.room_surface_square_meter, 30);
});

dbTest(
  testDb,
  "source key: a compute error on update stores the new data without emissions",
  async (db) => {
    // An import run again must end as a first import would: the new data, no emission rows.
    await db
      .sql`insert into exchange_rates (year, currency, eur_per_unit) values (2025, 'usd', 0.9)`;
    await importFactorText(
      db,
      "services",
      2025,
      "purchase_institutional_code,purchase_additional_code,currency,ef_kg_co2eq_per_currency\n55000000,,eur,0.5\n",
    );
    const purchase = (currency: string): NewEntry => ({
      unitCode: "U1",
      year: 2025,
      det: getDataEntryType("services"),
      sourceKey: "P1",
      data: { purchase_institutional_code: "55000000", total_spent_amount: 100, currency },
    });
    const { ids: [id] } = await create(db, [purchase("usd")]);
    // 100 usd × 0.9 eur/usd × 0.5 kg/eur
    assert.ok(Math.abs((await emissionRows(db.sql, [id!]))[0].kg_co2eq - 45) < 1e-9);
    const result = await create(db, [purchase("gbp")]);
    assert.deepEqual([result.updated, result.computeErrors.length], [1, 1]);
    assert.match(result.computeErrors[0].message, /gbp/);
    assert.deepEqual(result.withoutEmissions, [0]);
    assert.equal((await entryData(db.sql, id!)).currency, "gbp");
    assert.deepEqual(await emissionRows(db.sql, [id!]), []);
  },
);
