import assert from "node:assert/strict";
import { commandList, runMain, startedAs } from "./main.ts";
import { setProgram } from "./command.ts";
import { listDets } from "./dets.ts";
import { SCHEMA_VERSION } from "../db/migrate.ts";
import denoConfig from "../../deno.json" with { type: "json" };

async function quietly(fn: () => Promise<number>): Promise<{ code: number; printed: string }> {
  const printed: string[] = [];
  const { log, error } = console;
  console.log = console.error = (...parts: unknown[]) => printed.push(parts.join(" "));
  try {
    return { code: await fn(), printed: printed.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

// Tasks that are tools of a checkout, not commands of the program.
const CHECKOUT_TASKS = new Set(["test", "bench", "bundle", "compile", "help"]);

Deno.test("help: every command registered, one line each, within 80 columns", async () => {
  const help = await quietly(() => runMain(["help"]));
  assert.equal(help.code, 0);
  const lines = help.printed.split("\n");
  for (const { name, summary } of commandList()) {
    const line = lines.find((l) => l.startsWith(`  ${name} `));
    assert.ok(line, `${name} is listed`);
    assert.ok(summary.length > 0, `${name} has a summary`);
    assert.match(line, new RegExp(`^  ${name} +\\S`));
  }
  for (const line of lines) assert.ok(line.length <= 80, line);
  // Every task that runs a command of the program is a subcommand of the bundle and binary
  // (a group by its subcommands: factors import, factors history, ...).
  const listed = commandList().map((c) => c.name);
  for (const task of Object.keys(denoConfig.tasks)) {
    if (CHECKOUT_TASKS.has(task)) continue;
    assert.ok(listed.some((n) => n === task || n.startsWith(`${task} `)), `task ${task} is listed`);
  }
  assert.ok(listed.includes("factors import") && listed.includes("rematch history"));
  assert.equal((await quietly(() => runMain(["--help"]))).printed, help.printed);
  // Nothing at all: the list, as a usage error.
  const nothing = await quietly(() => runMain([]));
  assert.equal(nothing.code, 2);
  assert.match(nothing.printed, /^Commands:$/m);
});

Deno.test("help names the program the way it was started", async () => {
  setProgram("deno run -A rematch.js");
  try {
    const help = await quietly(() => runMain(["help"]));
    assert.match(
      help.printed,
      /^Usage: deno run -A rematch\.js <command> \[arguments\] \[--help\]$/m,
    );
    const sub = await quietly(() => runMain(["help", "rematch"]));
    assert.equal(sub.code, 0);
    assert.match(sub.printed, /^ {2}deno run -A rematch\.js rematch --det D --year Y/m);
  } finally {
    setProgram("deno task");
  }
});

Deno.test("unknown command: one line with the closest names, exit 2", async () => {
  const typo = await quietly(() => runMain(["rematc"]));
  assert.equal(typo.code, 2);
  assert.equal(
    typo.printed,
    'rematch: unknown command "rematc" (did you mean rematch?); see deno task help',
  );
  const far = await quietly(() => runMain(["frobnicate"]));
  assert.equal(far.printed, 'rematch: unknown command "frobnicate"; see deno task help');
  const json = await quietly(() => runMain(["statsu", "--json"]));
  assert.deepEqual(JSON.parse(json.printed), {
    error: { code: "usage", message: 'unknown command "statsu" (did you mean status?)' },
  });
});

Deno.test("help takes the common flags, and a command as the list names it", async () => {
  const list = (await quietly(() => runMain(["help"]))).printed;
  const asHelp = await quietly(() => runMain(["help", "--help"]));
  assert.deepEqual(asHelp, { code: 0, printed: list });
  const json = await quietly(() => runMain(["help", "--json"]));
  assert.equal(json.code, 0);
  const doc = JSON.parse(json.printed);
  assert.equal(doc.schemaVersion, SCHEMA_VERSION);
  assert.deepEqual(doc.commands, commandList());
  const version = await quietly(() => runMain(["help", "--version"]));
  assert.deepEqual(version, {
    code: 0,
    printed: `rematch ${denoConfig.version} (schema version ${SCHEMA_VERSION})`,
  });
  // `help "factors import"` (one argument, as `help` lists it) is `help factors import`.
  const quoted = await quietly(() => runMain(["help", "factors import"]));
  const words = await quietly(() => runMain(["help", "factors", "import"]));
  assert.equal(quoted.code, 0);
  assert.deepEqual(quoted, words);
  assert.match(words.printed, /factors import FILE/);
  // `--help factors import` and `-h factors` are help on that command, as `help` would give.
  assert.deepEqual(await quietly(() => runMain(["--help", "factors", "import"])), words);
  const factors = await quietly(() => runMain(["-h", "factors"]));
  assert.equal(factors.code, 0);
  assert.deepEqual(factors, await quietly(() => runMain(["help", "factors"])));
  const bogus = await quietly(() => runMain(["help", "--bogus"]));
  assert.equal(bogus.code, 2);
  assert.match(bogus.printed, /unknown command "--bogus"/);
});

Deno.test("--version and version: the package and schema versions", async () => {
  const expected = `rematch ${denoConfig.version} (schema version ${SCHEMA_VERSION})`;
  for (const argv of [["--version"], ["version"], ["migrate", "--version"]]) {
    const run = await quietly(() => runMain(argv));
    assert.equal(run.code, 0);
    assert.equal(run.printed, expected);
  }
});

Deno.test("dets: every det with its id, module and link kind", async () => {
  const table = await quietly(() => runMain(["dets"]));
  assert.equal(table.code, 0);
  const rows = table.printed.split("\n").slice(2);
  assert.equal(rows.length, 21);
  assert.match(table.printed, /^plane\s+20\s+professional_travel\s+2\s+fk$/m);
  assert.match(table.printed, /^it\s+11\s+equipment\s+4\s+json$/m);
  const json = await quietly(() => runMain(["dets", "--json"]));
  const dets = JSON.parse(json.printed);
  assert.deepEqual(dets, listDets());
  assert.deepEqual(dets.find((d: { name: string }) => d.name === "building_embodied_energy"), {
    name: "building_embodied_energy",
    id: 32,
    module: "buildings",
    moduleTypeId: 3,
    link: "fk",
  });
});

Deno.test("startedAs: a Deno not named deno runs the bundle as deno run, a compiled binary by its name", () => {
  assert.match(startedAs("/opt/deno-2.9.6", false), /^deno run -A /);
  assert.match(startedAs("/usr/bin/deno", false), /^deno run -A /);
  assert.equal(startedAs("/srv/bin/rematch", true), "rematch");
  assert.equal(startedAs("/srv/bin/rematch.exe", true), "rematch");
});
