// Every import command refuses what is not a regular file, and files above the size limit,
// before it reads them or opens the database: a FIFO must not hang, /dev/zero must not fill
// memory. Those commands run without a reachable database, so a refusal also proves that nothing
// was written. The last test shows entries CSV files share the one CSV reader's row checks.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  dbTest,
  NO_DATABASE,
  onDatabase,
  runCaptured,
  runCli,
  useTestDatabase,
} from "../_harness.ts";
import { runScript } from "./_connection.ts";
import type { CommandSpec } from "../../src/cli/command.ts";
import { entriesCommand } from "../../src/cli/entries.ts";
import { factorsCommand } from "../../src/cli/factors.ts";
import { locationsCommand, ratesCommand, roomsCommand } from "../../src/cli/reference.ts";

const testDb = useTestDatabase();

interface ImportCommand {
  readonly name: string;
  // deno-lint-ignore no-explicit-any
  readonly spec: CommandSpec<any>;
  /** Arguments after the file. */
  readonly extra: readonly string[];
  /** The file name suffix the command needs to accept the file. */
  readonly suffix: string;
}

const COMMANDS: readonly ImportCommand[] = [
  {
    name: "factors",
    spec: factorsCommand,
    extra: ["--det", "it", "--year", "2025"],
    suffix: ".csv",
  },
  { name: "locations", spec: locationsCommand, extra: [], suffix: ".csv" },
  { name: "rooms", spec: roomsCommand, extra: [], suffix: ".csv" },
  { name: "rates", spec: ratesCommand, extra: [], suffix: ".csv" },
  { name: "entries (JSON lines)", spec: entriesCommand, extra: [], suffix: ".jsonl" },
  { name: "entries (CSV)", spec: entriesCommand, extra: ["--det", "it"], suffix: ".csv" },
];

/** Fails instead of hanging when a command waits on its file. */
async function withinSeconds<T>(seconds: number, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${seconds} s`)), seconds * 1000);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("import commands refuse a FIFO, /dev/zero and a directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rematch-import-files-" });
  try {
    for (const command of COMMANDS) {
      const fifo = join(dir, `pipe${command.suffix}`);
      const zero = join(dir, `zero${command.suffix}`);
      const folder = join(dir, `folder${command.suffix}`);
      await Deno.remove(fifo).catch(() => {});
      const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assert.ok(made.success, "mkfifo failed");
      await Deno.symlink("/dev/zero", zero).catch(() => {});
      await Deno.mkdir(folder, { recursive: true });
      const cases: [string, RegExp][] = [
        [fifo, /is a named pipe \(FIFO\): an import reads a regular file only/],
        [zero, /is a character device: an import reads a regular file only/],
        [folder, /is a directory: an import reads a regular file only/],
      ];
      for (const [path, message] of cases) {
        const run = await withinSeconds(
          10,
          runCli(command.spec, ["import", path, ...command.extra]),
        );
        assert.equal(run.code, 1, `${command.name} ${path}: ${run.err}`);
        assert.match(run.err, message, command.name);
        assert.ok(run.err.includes(path), `${command.name}: the message names the file`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("import commands refuse a file above the size limit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rematch-import-files-" });
  try {
    for (const command of COMMANDS) {
      // Sparse: 300 MiB by its size, no disk used. Above the 256 MiB default of every command.
      const large = join(dir, `large${command.suffix}`);
      await Deno.writeTextFile(large, "");
      await Deno.truncate(large, 300 * 1024 * 1024);
      const run = await runCli(command.spec, ["import", large, ...command.extra]);
      assert.equal(run.code, 1, `${command.name}: ${run.err}`);
      assert.match(
        run.err,
        /large\.\w+: is 300 MiB, above the 256 MiB limit for an import file \(raise it with --max-file-size, e\.g\. --max-file-size 300MiB\)/,
        command.name,
      );
    }
    // Every import command takes a lower limit too, with --max-file-size.
    for (const command of COMMANDS) {
      const small = join(dir, `small${command.suffix}`);
      await Deno.writeTextFile(small, "year,currency,eur_per_unit\n2025,chf,1.05\n");
      const run = await runCli(command.spec, [
        "import",
        small,
        ...command.extra,
        "--max-file-size",
        "16",
      ]);
      assert.equal(run.code, 1, `${command.name}: ${run.err}`);
      assert.match(run.err, /small\.\w+: is 41 bytes, above the 16 bytes limit/, command.name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

dbTest(
  testDb,
  "an entries CSV goes through the same reader: unstorable rows are row errors",
  async (db) => {
    const dir = await Deno.makeTempDir({ prefix: "rematch-import-files-" });
    try {
      const path = join(dir, "it.csv");
      await Deno.writeTextFile(
        path,
        "unit,year,name,equipment_class\nU1,2025,laptop,Laptop\nU1,2025,lap\u0000top,Laptop\n" +
          "U1,2025,desk,Desktop,extra\n",
      );
      const run = await runCaptured(onDatabase(entriesCommand, db), [
        "import",
        path,
        "--det",
        "it",
        "--json",
      ]);
      assert.equal(run.code, 3, run.err);
      const result = JSON.parse(run.out);
      assert.deepEqual([result.created, result.rejectedCount], [1, 2]);
      const messages = result.errors.map((e: { message: string }) => e.message).join("\n");
      assert.match(messages, /name: contains a NUL character/);
      assert.match(messages, /has 5 cells but the header has 4 columns/);
      const names = await db.sql`select data->>'name' as name from data_entries`;
      assert.deepEqual(names.map((r) => r.name), ["laptop"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("imports that read their file whole refuse one their process could not hold, naming its heap", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rematch-import-files-" });
  try {
    // 64 MiB of old space (the young generation's size follows the machine's memory): a heap of
    // 160 MiB at most, so files of more than 2.5 MiB at most are refused.
    const env = { DENO_V8_FLAGS: "--max-old-space-size=64" };
    const scripts: [string, string, string[]][] = [
      ["factors", ".csv", ["--det", "it", "--year", "2025"]],
      ["locations", ".csv", []],
      ["entries", ".csv", ["--det", "it"]],
    ];
    for (const [script, suffix, extra] of scripts) {
      const big = join(dir, `big${suffix}`);
      await Deno.writeTextFile(big, "");
      await Deno.truncate(big, 3 * 1024 * 1024);
      const run = await runScript(script, ["import", big, ...extra, ...NO_DATABASE], env);
      assert.equal(run.code, 1, `${script}: ${run.err}`);
      assert.match(
        run.err,
        /big\.csv: is 3 MiB: a CSV file is read whole, and this process reads one of at most [\d.]+ [KM]iB \(a 64th of its [\d.]+ MiB heap\) without running out of memory: split it .*DENO_V8_FLAGS=--max-old-space-size=192\)/,
        script,
      );
    }
    // JSON lines are read as they come: no such limit (this file fails on its first line).
    const lines = join(dir, "big.jsonl");
    await Deno.writeTextFile(lines, "");
    await Deno.truncate(lines, 3 * 1024 * 1024);
    const streamed = await runScript("entries", ["import", lines, ...NO_DATABASE], env);
    assert.doesNotMatch(streamed.err, /read whole/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
