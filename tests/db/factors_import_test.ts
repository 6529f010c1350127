import assert from "node:assert/strict";
import { join } from "node:path";
import { dbTest, onDatabase, runCaptured, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import {
  type FactorImportInput,
  FactorImportRejected,
  importFactors,
  loadFactorSet,
} from "../../src/db/factors.ts";
import { FileError, parseCsv } from "../../src/imports/csv.ts";
import { factorsCommand } from "../../src/cli/factors.ts";

const testDb = useTestDatabase();

const IT = { dataEntryTypeId: 11 };
const HEADER =
  "equipment_class,sub_class,active_power_w,standby_power_w,active_usage_hours_per_week," +
  "standby_usage_hours_per_week,ef_kg_co2eq_per_kwh";

function input(
  text: string,
  options: Partial<Omit<FactorImportInput, "table">> = {},
): FactorImportInput {
  const file = options.file ?? "it.csv";
  return { file, table: parseCsv(file, text), year: 2025, target: IT, ...options };
}

function importIn(db: Database, value: FactorImportInput) {
  return db.sql.begin((tx) => importFactors(tx, value));
}

async function factorRows(db: Database) {
  const rows = await db.sql<
    {
      id: number;
      data_entry_type_id: number;
      year: number;
      classification: unknown;
      values: unknown;
    }[]
  >`select id, data_entry_type_id, year, classification, "values" from factors order by id`;
  return rows.map((r) => ({ ...r }));
}

async function insertEmission(db: Database, factorId: number): Promise<number> {
  const [unit] = await db.sql<{ id: number }[]>`
    insert into units (code, name) values ('U1', 'Unit 1') returning id`;
  const [report] = await db.sql<{ id: number }[]>`
    insert into carbon_reports (unit_id, year) values (${unit.id}, 2025) returning id`;
  const [module] = await db.sql<{ id: number }[]>`
    insert into carbon_report_modules (carbon_report_id, module_type_id)
    values (${report.id}, 4) returning id`;
  const [entry] = await db.sql<{ id: number }[]>`
    insert into data_entries (carbon_report_module_id, data_entry_type_id, data)
    values (${module.id}, 11, ${db.sql.json({ name: "old laptop", equipment_class: "Desktop" })})
    returning id`;
  const [emission] = await db.sql<{ id: number }[]>`
    insert into data_entry_emissions
      (data_entry_id, emission_type_id, primary_factor_id, kg_co2eq, scope)
    values (${entry.id}, 80200, ${factorId}, 12.5, 2) returning id`;
  return emission.id;
}

dbTest(testDb, "factors import: merge inserts, then updates in place keeping ids", async (db) => {
  const first = await importIn(
    db,
    input(`${HEADER}
Laptop,Standard,100,10,40,128,0.2
Laptop,,60,2,40,128,0.2
Desktop,,120,5,40,128,0.2
`),
  );
  assert.deepEqual(
    { ...first, rowErrors: undefined, changes: undefined },
    {
      importId: 1,
      rowsRead: 3,
      inserted: 3,
      updated: 0,
      unchanged: 0,
      deleted: 0,
      keptStale: 0,
      rowErrors: undefined,
      rowErrorsCount: 0,
      slices: [{ dataEntryType: "it", dataEntryTypeId: 11, year: 2025 }],
      changes: undefined,
    },
  );
  assert.deepEqual(
    first.changes.map((c) => [c.dataEntryType, c.before, c.inserted, c.listed.inserted.length]),
    [["it", 0, 3, 3]],
  );
  assert.deepEqual(first.changes[0].listed.inserted[1], {
    row: 2,
    line: 3,
    emissionTypeId: 80200,
    classification: { equipment_class: "Laptop", sub_class: null },
  });
  const before = await factorRows(db);
  assert.deepEqual(before[1].classification, { equipment_class: "Laptop", sub_class: null });

  const second = await importIn(
    db,
    input(`${HEADER}
Desktop,,120,5,40,128,0.2
Laptop,Standard,100,10,40,128,0.1
Laptop,,60,2,40,128,0.2
`),
  );
  assert.deepEqual(
    [second.inserted, second.updated, second.unchanged, second.keptStale],
    [0, 1, 2, 0],
  );
  assert.deepEqual(second.changes[0].listed.updated, [{
    id: before[0].id,
    row: 2,
    line: 3,
    emissionTypeId: 80200,
    classification: { equipment_class: "Laptop", sub_class: "Standard" },
  }]);
  assert.deepEqual(second.changes[0].listed.unchanged.map((u) => [u.id, u.line]), [
    [before[2].id, 2],
    [before[1].id, 4],
  ]);
  const after = await factorRows(db);
  assert.deepEqual(after.map((r) => r.id), before.map((r) => r.id));
  assert.equal((after[0].values as Record<string, number>).ef_kg_co2eq_per_kwh, 0.1);
  assert.deepEqual(after.slice(1), before.slice(1));

  const set = await loadFactorSet(db.sql, 11, 2025);
  assert.deepEqual(set.map((f) => f.id), before.map((r) => r.id));
  assert.deepEqual(set[0], {
    id: before[0].id,
    dataEntryTypeId: 11,
    emissionTypeId: 80200,
    year: 2025,
    classification: { equipment_class: "Laptop", sub_class: "Standard" },
    values: {
      active_power_w: 100,
      standby_power_w: 10,
      active_usage_hours_per_week: 40,
      standby_usage_hours_per_week: 128,
      ef_kg_co2eq_per_kwh: 0.1,
    },
    // The second import set its values.
    importId: second.importId,
  });
  assert.deepEqual(await loadFactorSet(db.sql, 11, 2024), []);
});

dbTest(
  testDb,
  "factors import: values compare as numbers; a value key missing or extra is a change",
  async (db) => {
    await importIn(db, input(`${HEADER}\nLaptop,,60,2,40,128,0.2\nDesktop,,120,5,40,128,0.2\n`));
    // Other spellings of the same numbers change nothing.
    const same = await importIn(
      db,
      input(`${HEADER}\nLaptop,,60.0,2,40,128,0.20\nDesktop,,1.2e2,5.,40,128,.2\n`),
    );
    assert.deepEqual([same.inserted, same.updated, same.unchanged], [0, 0, 2]);
    // The stored values lose a key (Laptop) and gain one (Desktop): the file's values differ.
    await db.sql`
      update factors set "values" = case classification->>'equipment_class'
        when 'Laptop' then "values" - 'standby_power_w'
        else "values" || '{"extra": 1}'::jsonb end`;
    const back = await importIn(
      db,
      input(`${HEADER}\nLaptop,,60,2,40,128,0.2\nDesktop,,120,5,40,128,0.2\n`),
    );
    assert.deepEqual([back.inserted, back.updated, back.unchanged], [0, 2, 0]);
    const rows = await factorRows(db);
    for (const row of rows) {
      assert.deepEqual(Object.keys(row.values as object).sort(), [
        "active_power_w",
        "active_usage_hours_per_week",
        "ef_kg_co2eq_per_kwh",
        "standby_power_w",
        "standby_usage_hours_per_week",
      ]);
    }
  },
);

dbTest(testDb, "factors import: last_seen_job_id marks every factor of the file", async (db) => {
  await importIn(db, input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`));
  const [{ updated_at: stamped }] = await db.sql`select updated_at from factors`;
  const result = await importIn(
    db,
    input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.2\nLaptop,,60,2,40,128,0.2\n`, { jobId: 7 }),
  );
  assert.deepEqual([result.inserted, result.updated, result.unchanged], [1, 0, 1]);
  const rows = await db.sql`select last_seen_job_id, updated_at from factors order by id`;
  assert.deepEqual(rows.map((r) => r.last_seen_job_id), [7, 7]);
  assert.deepEqual(rows[0].updated_at, stamped);
});

dbTest(
  testDb,
  "factors import: merge keeps factors absent from the file and counts them",
  async (db) => {
    await importIn(
      db,
      input(`${HEADER}
Laptop,Standard,100,10,40,128,0.2
Desktop,,120,5,40,128,0.2
Server,,300,100,40,128,0.2
`),
    );
    // Another det and another year are not part of the slice.
    await importIn(
      db,
      input(`${HEADER}\nMicroscope,,500,50,40,128,0.2\n`, { target: { dataEntryTypeId: 10 } }),
    );
    await importIn(db, input(`${HEADER}\nTablet,,10,1,40,128,0.2\n`, { year: 2024 }));

    const result = await importIn(db, input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`));
    assert.deepEqual([result.unchanged, result.keptStale, result.deleted], [1, 2, 0]);
    assert.equal((await factorRows(db)).length, 5);
  },
);

dbTest(
  testDb,
  "factors import: replace deletes absent factors and their emissions lose the factor",
  async (db) => {
    await importIn(
      db,
      input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.2\nDesktop,,120,5,40,128,0.2\n`),
    );
    await importIn(db, input(`${HEADER}\nTablet,,10,1,40,128,0.2\n`, { year: 2024 }));
    const [desktop] = await db.sql<{ id: number }[]>`
      select id from factors where classification->>'equipment_class' = 'Desktop'`;
    const emissionId = await insertEmission(db, desktop.id);

    const result = await importIn(
      db,
      input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.3\nLaptop,,60,2,40,128,0.2\n`, {
        mode: "replace",
      }),
    );
    assert.deepEqual(
      [result.inserted, result.updated, result.unchanged, result.deleted, result.keptStale],
      [1, 1, 0, 1, 0],
    );
    const remaining = await factorRows(db);
    assert.deepEqual(
      remaining.map((r) => [r.year, (r.classification as Record<string, string>).equipment_class]),
      [[2025, "Laptop"], [2024, "Tablet"], [2025, "Laptop"]],
    );
    const emissions = await db.sql`
      select id, primary_factor_id, kg_co2eq from data_entry_emissions`;
    assert.deepEqual(emissions.map((r) => ({ ...r })), [
      { id: emissionId, primary_factor_id: null, kg_co2eq: 12.5 },
    ]);
  },
);

dbTest(testDb, "factors import: a module file touches the dets it names", async (db) => {
  // Det names are case-insensitive, in the routing column too.
  const text = `equipment_category,${HEADER}
IT,Laptop,Standard,100,10,40,128,0.2
Scientific,Microscope,,500,50,40,128,0.2
`;
  await importIn(db, input(`${HEADER}\nSpare,,1,1,1,1,1\n`, { target: { dataEntryTypeId: 12 } }));
  const merged = await importIn(db, input(text, { target: { moduleTypeId: 4 } }));
  assert.equal(merged.inserted, 2);
  assert.deepEqual(merged.slices.map((s) => s.dataEntryType), ["scientific", "it"]);
  assert.equal(merged.keptStale, 0);

  // Replacing the module deletes every factor of `other` (1 of 1): refused without force.
  await assert.rejects(
    () => importIn(db, input(text, { target: { moduleTypeId: 4 }, mode: "replace" })),
    (error) => {
      assert.ok(error instanceof FactorImportRejected);
      assert.equal(error.reason, "mass-delete");
      assert.match(error.message, /other 2025: 1 of 1 factor \(equipment_class: Spare\)/);
      return true;
    },
  );
  const replaced = await importIn(
    db,
    input(text, { target: { moduleTypeId: 4 }, mode: "replace", force: true }),
  );
  assert.deepEqual(replaced.slices.map((s) => s.dataEntryType), ["scientific", "it", "other"]);
  assert.deepEqual([replaced.unchanged, replaced.deleted], [2, 1]);
  const dets = await db.sql`select data_entry_type_id from factors order by data_entry_type_id`;
  assert.deepEqual(dets.map((r) => r.data_entry_type_id), [10, 11]);
});

dbTest(testDb, "factors import: good rows are written and bad rows reported", async (db) => {
  const result = await importIn(
    db,
    input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.2\nDesktop,,abc,5,40,128,0.2\n`),
  );
  assert.equal(result.inserted, 1);
  assert.equal(result.rowErrorsCount, 1);
  assert.deepEqual(result.rowErrors[0], {
    row: 2,
    line: 3,
    column: "active_power_w",
    message: '"abc" is not a number (expected a finite number ≥ 0)',
  });
});

dbTest(testDb, "factors import: strict with a bad row writes nothing", async (db) => {
  await importIn(db, input(`${HEADER}\nServer,,300,100,40,128,0.2\n`));
  const before = await factorRows(db);
  await assert.rejects(
    () =>
      importIn(
        db,
        input(`${HEADER}\nLaptop,Standard,100,10,40,128,0.2\nDesktop,,120,-5,40,128,0.2\n`, {
          strict: true,
          mode: "replace",
        }),
      ),
    (error) => {
      assert.ok(error instanceof FactorImportRejected);
      assert.equal(error.reason, "strict");
      assert.equal(error.result.rowErrorsCount, 1);
      assert.equal(error.result.rowErrors[0].column, "standby_power_w");
      assert.match(error.message, /it\.csv: rejected, nothing written: 1 row error with --strict/);
      assert.match(error.message, /first: line 3, column standby_power_w: -5 is negative/);
      return true;
    },
  );
  assert.deepEqual(await factorRows(db), before);
});

dbTest(testDb, "factors import: a file-level error writes nothing", async (db) => {
  await importIn(db, input(`${HEADER}\nServer,,300,100,40,128,0.2\n`));
  const before = await factorRows(db);
  await assert.rejects(
    () =>
      importIn(
        db,
        input("equipment_class,active_power_w\nLaptop,100\n", { mode: "replace" }),
      ),
    (error) => error instanceof FileError && /missing required columns/.test(error.message),
  );
  assert.deepEqual(await factorRows(db), before);
});

dbTest(testDb, "factors import: an empty replace is refused unless allowEmpty", async (db) => {
  await importIn(db, input(`${HEADER}\nServer,,300,100,40,128,0.2\n`));
  const before = await factorRows(db);
  await assert.rejects(
    () => importIn(db, input(`${HEADER}\n`, { mode: "replace" })),
    (error) => {
      assert.ok(error instanceof FactorImportRejected);
      assert.equal(error.reason, "empty-replace");
      assert.match(error.message, /no data rows.*delete all 1 factor of it 2025.*--allow-empty/);
      return true;
    },
  );
  assert.deepEqual(await factorRows(db), before);
  // allowEmpty alone is enough: emptying the slice is what was asked for.
  const result = await importIn(db, input(`${HEADER}\n`, { mode: "replace", allowEmpty: true }));
  assert.deepEqual([result.rowsRead, result.deleted], [0, 1]);
  assert.deepEqual(await factorRows(db), []);
});

dbTest(testDb, "factors CLI: exit codes 0, 3, 1 and 2", async (db) => {
  const dir = await Deno.makeTempDir({ prefix: "rematch-factors-csv-" });
  const command = onDatabase(factorsCommand, db);
  try {
    const good = join(dir, "good.csv");
    const partial = join(dir, "partial.csv");
    const broken = join(dir, "broken.csv");
    await Deno.writeTextFile(good, `${HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`);
    await Deno.writeTextFile(
      partial,
      `${HEADER}\nLaptop,Standard,100,10,40,128,0.3\nDesktop,,abc,5,40,128,0.2\n`,
    );
    await Deno.writeTextFile(broken, "equipment_class,active_power_w\nLaptop,100\n");
    const common = ["--year", "2025"];

    const ok = await runCaptured(command, ["import", good, "--det", "it", "--json", ...common]);
    assert.equal(ok.code, 0, ok.err);
    const okJson = JSON.parse(ok.out);
    assert.deepEqual([okJson.inserted, okJson.rowErrorsCount], [1, 0]);

    const strict = await runCaptured(command, [
      "import",
      partial,
      "--det",
      "11",
      "--strict",
      ...common,
    ]);
    assert.equal(strict.code, 1, strict.err);
    assert.match(strict.out, /rejected, nothing written: 1 row error with --strict/);
    assert.match(strict.out, /line 3, column active_power_w: "abc" is not a number/);

    const some = await runCaptured(command, ["import", partial, "--det", "it", ...common]);
    assert.equal(some.code, 3, some.err);
    assert.match(some.out, /2 rows read, 0 inserted, 1 updated, 0 unchanged/);
    assert.match(some.out, /1 updated/);
    assert.match(some.out, /line 3, column active_power_w: "abc" is not a number/);

    const fileError = await runCaptured(command, ["import", broken, "--det", "it", ...common]);
    assert.equal(fileError.code, 1);
    assert.match(fileError.err, /broken\.csv: missing required columns/);

    const missing = await runCaptured(command, [
      "import",
      join(dir, "absent.csv"),
      "--det",
      "it",
      ...common,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /absent\.csv: cannot be read/);

    const usages: [string[], RegExp][] = [
      [["import", good, "--det", "it"], /--year: is required/],
      [["import", good, "--year", "2025"], /exactly one of --det or --module/],
      [["import", good, "--year", "2025", "--det", "it", "--module", "equipment"], /exactly one/],
      [
        ["import", good, "--year", "2025", "--det", "laptop"],
        /--det: unknown data entry type "laptop"/,
      ],
      [
        ["import", good, "--year", "2025", "--module", "headcount"],
        /--module: module headcount has no routing column/,
      ],
      [
        ["import", good, "--year", "2025", "--det", "it", "--mode", "upsert"],
        /--mode: expected "merge" or "replace"/,
      ],
      [["export", good, "--year", "2025", "--det", "it"], /arguments: expected "import FILE"/],
      [["import", good, "--year", "25", "--det", "it"], /--year: expected a 4-digit year/],
      [
        ["import", good, "--year", "2025", "--det", "it", "--max-file-size", "lots"],
        /--max-file-size: expected a size such as 512MiB/,
      ],
    ];
    for (const [argv, message] of usages) {
      const usage = await runCaptured(command, argv);
      assert.equal(usage.code, 2, argv.join(" "));
      assert.match(usage.err, message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

dbTest(
  testDb,
  "factors import: a file of several write chunks keeps file order, versions and values",
  async (db) => {
    // 12,345 rows: more than one statement's worth (10,000), the last chunk partial.
    const rows = 12_345;
    const csv = (ef: (i: number) => string) =>
      [
        HEADER,
        ...Array.from({ length: rows }, (_, i) => `Class ${i},Model ${i},${i},1,40,128,${ef(i)}`),
      ]
        .join("\n") + "\n";
    const fresh = await importIn(db, input(csv(() => "0.2")));
    assert.deepEqual([fresh.inserted, fresh.updated, fresh.unchanged], [rows, 0, 0]);
    // New ids follow the file's order across the chunks, each with its own values.
    const stored = await db.sql<{ id: number; cls: string; power: number }[]>`
      select id, classification->>'equipment_class' as cls,
        ("values"->>'active_power_w')::int as power
      from factors order by id`;
    assert.equal(stored.length, rows);
    stored.forEach((f, i) => {
      assert.equal(f.cls, `Class ${i}`);
      assert.equal(f.power, i);
    });
    const versions = async (importId: number) =>
      await db.sql<{ factor_id: number; change: string; before: string; after: string }[]>`
        select factor_id, change, values_before->>'ef_kg_co2eq_per_kwh' as before,
          values_after->>'ef_kg_co2eq_per_kwh' as after
        from factor_versions where import_id = ${importId} order by id`;
    const inserted = await versions(fresh.importId!);
    assert.deepEqual(inserted.map((v) => v.factor_id), stored.map((f) => f.id));
    assert.ok(inserted.every((v) => v.change === "inserted" && v.after === "0.2"));

    // Every value changed, each by its own amount: updated in place in every chunk.
    const ef = (i: number) => `0.${String(i + 1).padStart(5, "0")}`;
    const changed = await importIn(db, input(csv(ef)));
    assert.deepEqual([changed.inserted, changed.updated, changed.unchanged], [0, rows, 0]);
    const updated = await versions(changed.importId!);
    assert.deepEqual(updated.map((v) => v.factor_id), stored.map((f) => f.id));
    for (const i of [0, 9_999, 10_000, rows - 1]) {
      assert.deepEqual(
        { change: updated[i].change, before: updated[i].before, after: Number(updated[i].after) },
        { change: "updated", before: "0.2", after: Number(ef(i)) },
      );
    }
    const [{ wrong }] = await db.sql<{ wrong: number }[]>`
      select count(*)::int as wrong from factors f
      join factor_versions v on v.factor_id = f.id and v.import_id = ${changed.importId!}
      where f."values" <> v.values_after or f.import_id <> ${changed.importId!}`;
    assert.equal(wrong, 0);

    // The same file again: nothing written, every factor unchanged.
    const again = await importIn(db, input(csv(ef)));
    assert.deepEqual([again.inserted, again.updated, again.unchanged], [0, 0, rows]);
    assert.equal((await versions(again.importId!)).length, 0);
  },
);
