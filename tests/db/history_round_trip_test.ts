// The round trip of issue 11: import v1, v2 (merge), v3 (replace); rolling back v3 then v2
// restores exactly v1's factors and, with --rematch, exactly the emissions of a database that
// only ever saw v1. Export --as-of each import equals the file imported; rollbacks that would
// undo a later import's work are refused unless --force.
import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { createTestDatabase, dbTest, runCli, runOn, useTestDatabase } from "../_harness.ts";
import type { Database } from "../../src/db/connection.ts";
import { factorsCommand } from "../../src/cli/factors.ts";
import { factorsExportCommand } from "../../src/cli/factors_export.ts";
import { factorsDiffCommand, factorsHistoryCommand } from "../../src/cli/factors_history.ts";
import { factorsRollbackCommand } from "../../src/cli/factors_rollback.ts";
import { rematchHistoryCommand } from "../../src/cli/rematch_history.ts";
import { factorSetAsOf } from "../../src/history/export.ts";
import { rollbackImport } from "../../src/history/rollback.ts";
import { importFactors } from "../../src/db/factors.ts";
import { transaction } from "../../src/db/transaction.ts";
import { parseCsv } from "../../src/imports/csv.ts";
import {
  createItEntries,
  emissionContent,
  factorRows,
  IT_FILE_HEADER,
  runJson,
  V1,
  V1_KEPT_BY_V2,
  V2,
  V3,
  withFiles,
} from "./_history.ts";

const testDb = useTestDatabase();

type Path = (name: string) => string;

function importArgs(path: Path, file: string, mode: "merge" | "replace", rematch = true) {
  return [
    "import",
    path(file),
    "--det",
    "it",
    "--year",
    "2025",
    "--mode",
    mode,
    ...(rematch ? ["--rematch"] : []),
  ];
}

async function importFile(db: Database, path: Path, file: string, mode: "merge" | "replace") {
  const run = await runJson(factorsCommand, db, importArgs(path, file, mode));
  assert.equal(run.exitCode, 0, run.text);
  return run.json.importId as number;
}

async function rollback(db: Database, importId: number, ...flags: string[]) {
  return await runJson(factorsRollbackCommand, db, [
    "rollback",
    "--import",
    String(importId),
    ...flags,
  ]);
}

/** A factor CSV as a set of rows: cells by column, blank cells dropped, numbers as numbers. */
function rowSet(csv: string): string[] {
  const records = parse(csv, { columns: true, skip_empty_lines: true }) as Record<
    string,
    string
  >[];
  return records.map((record) =>
    JSON.stringify(
      Object.entries(record)
        .filter(([, cell]) => cell.trim() !== "")
        .map(([column, cell]) => [column, Number.isFinite(Number(cell)) ? Number(cell) : cell])
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
    )
  ).sort();
}

async function exportCsv(db: Database, ...flags: string[]): Promise<string> {
  const run = await runJson(factorsExportCommand, db, [
    "export",
    "--det",
    "it",
    "--year",
    "2025",
    "--format",
    "csv",
    ...flags,
  ]);
  assert.equal(run.exitCode, 0, run.text);
  // Without --output the --json document is the export itself; rebuild its CSV from the rows.
  return [
    run.json.columns.join(","),
    ...run.json.rows.map((row: Record<string, unknown>) =>
      run.json.columns.map((c: string) => row[c] ?? "").join(",")
    ),
  ].join("\n");
}

dbTest(
  testDb,
  "round trip: rollback of v3 then v2 restores v1's factor rows and, with --rematch, the emissions of a database that only saw v1",
  async (db) => {
    await withFiles({ "v1.csv": V1, "v2.csv": V2, "v3.csv": V3 }, async (path) => {
      const v1 = await importFile(db, path, "v1.csv", "merge");
      const entries = [
        ...(await createItEntries(db, "U1")),
        ...(await createItEntries(db, "U2")),
      ];
      const factorsAfterV1 = await factorRows(db.sql);
      const emissionsAfterV1 = await emissionContent(db.sql);
      assert.equal(factorsAfterV1.length, 4);
      const v2 = await importFile(db, path, "v2.csv", "merge");
      const factorsAfterV2 = await factorRows(db.sql);
      const v3 = await importFile(db, path, "v3.csv", "replace");
      assert.deepEqual([v1, v2, v3], [1, 2, 3]);
      // v3 moved the emissions: the round trip has something to undo.
      assert.notDeepEqual(await emissionContent(db.sql), emissionsAfterV1);

      const undo3 = await rollback(db, v3, "--rematch");
      assert.equal(undo3.exitCode, 0, undo3.text);
      assert.deepEqual(
        [undo3.json.inserted, undo3.json.updated, undo3.json.deleted, undo3.json.unchanged],
        [1, 3, 1, 0],
        "Monitor comes back, three values return, Phone goes",
      );
      assert.deepEqual(await factorRows(db.sql), factorsAfterV2);

      const undo2 = await rollback(db, v2, "--rematch");
      assert.equal(undo2.exitCode, 0, undo2.text);
      assert.deepEqual([undo2.json.inserted, undo2.json.updated, undo2.json.deleted], [0, 1, 1]);
      // Ids, classification, values, and the import that set them: exactly v1's rows.
      assert.deepEqual(await factorRows(db.sql), factorsAfterV1);
      assert.deepEqual(
        [undo3.json.rematch[0].dataEntryType, undo2.json.rematch[0].dataEntryType],
        ["it", "it"],
      );

      // A database that only ever saw v1, with the same entries in the same order.
      const fresh = await createTestDatabase();
      try {
        assert.equal(await importFile(fresh.db, path, "v1.csv", "merge"), 1);
        const freshEntries = [
          ...(await createItEntries(fresh.db, "U1")),
          ...(await createItEntries(fresh.db, "U2")),
        ];
        assert.deepEqual(freshEntries, entries);
        assert.deepEqual(await factorRows(fresh.db.sql), factorsAfterV1);
        const expected = await emissionContent(fresh.db.sql);
        // Every entry with a v1 factor has its row; tablets and phones have none.
        assert.equal(expected.length, 8);
        assert.deepEqual(expected, emissionsAfterV1);
        assert.deepEqual(await emissionContent(db.sql), expected);
        // A rematch that finds no factor stores primary_factor_id null where a fresh entry has
        // none yet: the same link, spelled two ways.
        const data = (sql: Database["sql"]) =>
          sql<{ id: number; data: Record<string, unknown> }[]>`
            select id, data from data_entries order by id`.then((rows) =>
            rows.map(({ id, data: { primary_factor_id, ...rest } }) => ({
              id,
              data: primary_factor_id == null ? rest : { ...rest, primary_factor_id },
            }))
          );
        assert.deepEqual(await data(db.sql), await data(fresh.db.sql));
      } finally {
        await fresh.drop();
      }
    });
  },
);

dbTest(
  testDb,
  "export --as-of each import equals the file imported (a merge keeps the rows it did not name)",
  async (db) => {
    await withFiles({ "v1.csv": V1, "v2.csv": V2, "v3.csv": V3 }, async (path) => {
      const v1 = await importFile(db, path, "v1.csv", "merge");
      const v2 = await importFile(db, path, "v2.csv", "merge");
      const v3 = await importFile(db, path, "v3.csv", "replace");
      assert.deepEqual(rowSet(await exportCsv(db, "--as-of", String(v1))), rowSet(V1));
      assert.deepEqual(
        rowSet(await exportCsv(db, "--as-of", String(v2))),
        rowSet(`${V2}${V1_KEPT_BY_V2.join("\n")}\n`),
      );
      assert.deepEqual(rowSet(await exportCsv(db, "--as-of", String(v3))), rowSet(V3));
      assert.deepEqual(rowSet(await exportCsv(db)), rowSet(V3), "now = after the last import");

      // A time reads as the last import at or before it (to the millisecond, as printed).
      const [{ created_at: afterV2 }] = await db.sql<{ created_at: Date }[]>`
        select created_at from factor_imports where id = ${v2}`;
      const atTime = await exportCsv(db, "--as-of", afterV2.toISOString());
      assert.deepEqual(rowSet(atTime), rowSet(await exportCsv(db, "--as-of", String(v2))));
      const before = await factorSetAsOf(db.sql, "it", 2025, { time: new Date("2000-01-01") });
      assert.deepEqual(before.factors, []);
      assert.deepEqual(before.asOf, { importId: null, time: "2000-01-01T00:00:00.000Z" });

      // The export is the import format: replacing the slice with it changes nothing.
      await withFiles({ "again.csv": await exportCsv(db, "--as-of", String(v3)) }, async (p) => {
        const again = await runJson(factorsCommand, db, importArgs(p, "again.csv", "replace"));
        assert.equal(again.exitCode, 0, again.text);
        assert.deepEqual(
          [again.json.inserted, again.json.updated, again.json.deleted, again.json.unchanged],
          [0, 0, 0, 5],
        );
      });

      const asOf = (
        value: string,
        det = "it",
        year = "2025",
      ) => ["export", "--det", det, "--year", year, "--as-of", value];
      const missing = await runJson(factorsExportCommand, db, asOf("99"));
      assert.equal(missing.exitCode, 1);
      assert.match(
        missing.json.error.message,
        /no factor import 99 \(factors history lists them\)$/,
      );
      const year = await runJson(factorsExportCommand, db, asOf("2026"));
      assert.equal(year.exitCode, 1);
      assert.match(
        year.json.error.message,
        /no factor import 2026 .*; for a time, write it in full \(e\.g\. 2026-01-01\)$/,
      );
      // An import of other slices has no place among this slice's.
      for (const [det, year] of [["plane", "2025"], ["it", "2024"]]) {
        const other = await runJson(factorsExportCommand, db, asOf(String(v2), det, year));
        assert.equal(other.exitCode, 1);
        assert.equal(
          other.json.error.message,
          `import ${v2} changed it 2025, not ${det} ${year}: give one of ${det} ${year}'s ` +
            `imports (factors history --det ${det} --year ${year} lists them)`,
        );
      }
      const huge = await runCli(factorsExportCommand, asOf("99999999999999999999"));
      assert.equal(huge.code, 2);
      assert.match(huge.err, /--as-of: expected an import id/);
    });
  },
);

dbTest(
  testDb,
  "rollback refuses when a later import changed the same factors, --force overrides, and nothing is written when refused",
  async (db) => {
    await withFiles({ "v1.csv": V1, "v2.csv": V2, "v3.csv": V3 }, async (path) => {
      await importFile(db, path, "v1.csv", "merge");
      const v2 = await importFile(db, path, "v2.csv", "merge");
      const v3 = await importFile(db, path, "v3.csv", "replace");
      const beforeRefusal = await factorRows(db.sql);
      const imports = async () =>
        (await db.sql`select count(*)::int as n from factor_imports`)[0].n;
      const importCount = await imports();

      const refused = await rollback(db, v2);
      assert.equal(refused.exitCode, 1);
      assert.equal(refused.json.error.code, "RollbackConflictError");
      // v2 updated Laptop/Standard and inserted Tablet; v3 changed both since.
      assert.equal(refused.json.conflictsCount, 2);
      assert.deepEqual(
        refused.json.conflicts.map((c: { classification: unknown; changedBy: number[] }) => [
          c.classification,
          c.changedBy,
        ]),
        [
          [{ equipment_class: "Laptop", sub_class: "Standard" }, [v3]],
          [{ equipment_class: "Tablet", sub_class: null }, [v3]],
        ],
      );
      assert.match(refused.json.error.message, /changed since by import 3.*--force/);
      assert.deepEqual(await factorRows(db.sql), beforeRefusal);
      assert.equal(await imports(), importCount, "a refused rollback records no import");

      const text = await runJson(factorsRollbackCommand, db, ["rollback", "--import", `${v2}`]);
      assert.match(text.text, /left by import 2/);

      const forced = await rollback(db, v2, "--force");
      assert.equal(forced.exitCode, 0, forced.text);
      assert.equal(forced.json.conflictsCount, 2);
      const after = await factorRows(db.sql);
      const laptop = after.find((f) =>
        JSON.stringify(f.classification) ===
          JSON.stringify({ sub_class: "Standard", equipment_class: "Laptop" })
      );
      assert.equal((laptop!.values as Record<string, number>).ef_kg_co2eq_per_kwh, 0.1);
      assert.equal(
        after.some((f) =>
          (f.classification as Record<string, string>).equipment_class === "Tablet"
        ),
        false,
        "v2 inserted Tablet: rolling v2 back deletes it",
      );

      // The same import cannot be rolled back twice: the first rollback changed its factors.
      const again = await rollback(db, v2);
      assert.equal(again.exitCode, 1);
      assert.deepEqual(
        [...new Set(again.json.conflicts.flatMap((c: { changedBy: number[] }) => c.changedBy))],
        [v3, forced.json.importId],
      );
    });
  },
);

dbTest(
  testDb,
  "a forced rollback lists and counts the factor that gives way to a restored id, as its import records it",
  async (db) => {
    const files = {
      "a.csv": `${IT_FILE_HEADER}\nit,Monitor,,25,1,40,128,0.1\nit,Desktop,,120,5,40,128,0.1\n`,
      // Replace: Monitor deleted (1 of 2), Phone inserted.
      "b.csv": `${IT_FILE_HEADER}\nit,Desktop,,120,5,40,128,0.1\nit,Phone,,5,1,40,128,0.3\n`,
      // Monitor comes back under a new id.
      "c.csv": `${IT_FILE_HEADER}\nit,Monitor,,25,1,40,128,0.5\n`,
    };
    await withFiles(files, async (path) => {
      await importFile(db, path, "a.csv", "merge");
      const [monitor] = await db.sql<{ id: number }[]>`
        select id::int from factors where classification->>'equipment_class' = 'Monitor'`;
      const b = await importFile(db, path, "b.csv", "replace");
      await importFile(db, path, "c.csv", "merge");
      const ids = async (name: string) =>
        (await db.sql<{ id: number }[]>`
          select id::int from factors where classification->>'equipment_class' = ${name}`)
          .map((r) => r.id);
      const [newMonitor] = await ids("Monitor");
      const [phone] = await ids("Phone");
      assert.notEqual(newMonitor, monitor.id);

      const forced = await rollback(db, b, "--force");
      assert.equal(forced.exitCode, 0, forced.text);
      // Phone deleted; Monitor back under its old id, the one import c made giving way.
      assert.deepEqual(
        [forced.json.factors, forced.json.inserted, forced.json.updated, forced.json.deleted],
        [2, 1, 0, 2],
      );
      const [recorded] = await db.sql`
        select inserted, updated, deleted from factor_imports where id = ${forced.json.importId}`;
      assert.deepEqual({ ...recorded }, { inserted: 1, updated: 0, deleted: 2 });
      type Listed = {
        change: string;
        before: { id: number; values: Record<string, number> } | null;
        after: { id: number; values: Record<string, number> } | null;
      };
      const listed = (forced.json.changes as Listed[]).map((c) => [
        c.change,
        c.before?.id ?? null,
        c.before?.values.ef_kg_co2eq_per_kwh ?? null,
        c.after?.id ?? null,
        c.after?.values.ef_kg_co2eq_per_kwh ?? null,
      ]);
      const byFactor = (x: unknown[], y: unknown[]) =>
        `${x[0]}${x[1] ?? x[3]}`.localeCompare(`${y[0]}${y[1] ?? y[3]}`);
      assert.deepEqual(
        listed.sort(byFactor),
        [
          ["deleted", newMonitor, 0.5, null, null],
          ["deleted", phone, 0.3, null, null],
          ["inserted", null, null, monitor.id, 0.1],
        ].sort(byFactor),
      );
      assert.deepEqual(await ids("Monitor"), [monitor.id]);
      assert.deepEqual(await ids("Phone"), []);
      const text = await rollback(db, forced.json.importId, "--dry-run");
      assert.match(
        text.text,
        /2 factors changed by import \d+; the rollback would insert 2, update 0, delete 1/,
      );
      // A factor edited by hand has no later import to roll back first: the refusal says so.
      await db.sql`update factors set "values" = "values" || '{"ef_kg_co2eq_per_kwh": 9}'
        where id = ${monitor.id}`;
      const refused = await rollback(db, forced.json.importId);
      assert.equal(refused.exitCode, 1);
      assert.equal(
        refused.json.error.message,
        `import ${forced.json.importId} cannot be rolled back: 1 of its factors was changed since ` +
          `outside any import (give --force to put import ${forced.json.importId}'s factors back ` +
          "anyway, overriding those changes)",
      );
    });
  },
);

dbTest(
  testDb,
  "history lists imports newest first with their runs; diff shows old → new; a dry-run rollback writes nothing",
  async (db) => {
    await withFiles({ "v1.csv": V1, "v2.csv": V2 }, async (path) => {
      const v1 = await importFile(db, path, "v1.csv", "merge");
      const v2run = await runJson(factorsCommand, db, importArgs(path, "v2.csv", "merge", false));
      const v2 = v2run.json.importId as number;
      const history = await runJson(factorsHistoryCommand, db, ["history", "--det", "it"]);
      assert.deepEqual(
        history.json.imports.map((i: { id: number; mode: string; source: string }) => [
          i.id,
          i.mode,
          i.source,
        ]),
        [[v2, "merge", path("v2.csv")], [v1, "merge", path("v1.csv")]],
      );
      const [second, first] = history.json.imports;
      assert.deepEqual(
        [second.rowsRead, second.inserted, second.updated, second.deleted, second.unchanged],
        [3, 1, 1, 0, 1],
      );
      assert.match(second.fileSha256, /^[0-9a-f]{64}$/);
      const bytes = new TextEncoder().encode(V2);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      assert.equal(
        second.fileSha256,
        Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
      );
      // v1 ran with --rematch; v2 did not.
      assert.deepEqual(first.runs.map((r: { trigger: string }) => r.trigger), ["import"]);
      assert.deepEqual(second.runs, []);
      const other = await runJson(factorsHistoryCommand, db, ["history", "--det", "plane"]);
      assert.deepEqual(other.json.imports, []);

      const diff = await runJson(factorsDiffCommand, db, ["diff", "--import", String(v2)]);
      assert.equal(diff.exitCode, 0);
      assert.equal(diff.json.changesCount, 2);
      assert.deepEqual(
        diff.json.changes.map((c: { change: string; changedKeys: string[] }) => [
          c.change,
          c.changedKeys,
        ]),
        [["updated", ["ef_kg_co2eq_per_kwh"]], ["inserted", [
          "active_power_w",
          "active_usage_hours_per_week",
          "ef_kg_co2eq_per_kwh",
          "standby_power_w",
          "standby_usage_hours_per_week",
        ]]],
      );
      const { text } = await runOn(factorsDiffCommand, db, ["diff", "--import", String(v2)]);
      // At 80 columns the classification may be cut; the change of values is shown whole.
      assert.match(
        text,
        /^updated +\d+ +it +equipment_class=Laptop \S+ +ef_kg_co2eq_per_kwh 0\.1 → 0\.2$/m,
      );

      const factorsBefore = await factorRows(db.sql);
      const importsBefore = await db.sql`select id from factor_imports order by id`;
      const dry = await rollback(db, v2, "--dry-run", "--rematch");
      assert.equal(dry.exitCode, 0, dry.text);
      assert.equal(dry.json.dryRun, true);
      assert.equal(dry.json.importId, null);
      assert.deepEqual([dry.json.updated, dry.json.deleted], [1, 1]);
      assert.equal(dry.json.rematch[0].dryRun, true);
      assert.deepEqual(await factorRows(db.sql), factorsBefore);
      assert.deepEqual(await db.sql`select id from factor_imports order by id`, importsBefore);
      assert.deepEqual(
        (await db.sql`select count(*)::int as n from rematch_runs`)[0].n,
        1,
        "only v1's run",
      );
    });
  },
);

dbTest(
  testDb,
  "emission meta names the import that set each factor's values",
  async (db) => {
    await withFiles({ "v1.csv": V1, "v2.csv": V2 }, async (path) => {
      const v1 = await importFile(db, path, "v1.csv", "merge");
      const [laptop, , desktop] = await createItEntries(db, "U1");
      const importIds = async (entryId: number) =>
        (await db.sql<{ ids: number[] }[]>`
          select array_agg((u ->> 'import_id')::bigint) as ids
          from data_entry_emissions x, jsonb_array_elements(x.meta -> 'factors_used') u
          where x.data_entry_id = ${entryId}`)[0].ids;
      assert.deepEqual(await importIds(laptop), [v1]);
      // v2 updates Laptop/Standard and leaves Desktop's values as they were.
      const v2 = await importFile(db, path, "v2.csv", "merge");
      assert.deepEqual(await importIds(laptop), [v2]);
      assert.deepEqual(await importIds(desktop), [v1]);
    });
  },
);

dbTest(
  testDb,
  "a rollback brings a deleted factor back with the job that last saw it in a file",
  async (db) => {
    const importIt = (text: string, mode: "merge" | "replace", jobId: number) =>
      transaction(db.sql, (tx) =>
        importFactors(tx, {
          file: "it.csv",
          table: parseCsv("it.csv", text),
          year: 2025,
          target: { dataEntryTypeId: 11 },
          mode,
          jobId,
          force: true,
        }));
    await importIt(V1, "merge", 42);
    const seen = async () =>
      (await db.sql<{ id: number; job: number | null }[]>`
        select id, last_seen_job_id::int as job from factors where year = 2025 order by id`)
        .map((r) => [r.id, r.job]);
    const before = await seen();
    assert.deepEqual(before.map(([, job]) => job), [42, 42, 42, 42]);
    // Only Laptop/Standard stays: the other three are deleted.
    const replaced = await importIt(
      `${IT_FILE_HEADER}\nit,Laptop,Standard,100,10,40,128,0.1\n`,
      "replace",
      43,
    );
    assert.equal(replaced.deleted, 3);
    await transaction(
      db.sql,
      (tx) => rollbackImport(tx, { importId: replaced.importId!, jobId: 44 }),
    );
    const after = new Map(await seen() as [number, number | null][]);
    for (const [id, job] of before.slice(1)) {
      assert.equal(after.get(id as number), job, `factor ${id}`);
    }
  },
);

Deno.test("--import takes an import id, and says so of anything else (exit 2)", async () => {
  const commands: [(argv: string[]) => ReturnType<typeof runCli>, string][] = [
    [(argv) => runCli(factorsRollbackCommand, argv), "rollback"],
    [(argv) => runCli(factorsDiffCommand, argv), "diff"],
    [(argv) => runCli(rematchHistoryCommand, argv), "history"],
  ];
  for (const [run, head] of commands) {
    for (
      const [value, message] of [
        ["abc", /--import: expected an import id \(a positive integer; factors history/],
        ["99999999999999999999", /--import: expected an import id .*too large/],
      ]
    ) {
      const ran = await run([head, "--import", value as string]);
      assert.equal(ran.code, 2, `${head} ${value}: ${ran.err}`);
      assert.match(ran.err, message as RegExp);
    }
  }
});
