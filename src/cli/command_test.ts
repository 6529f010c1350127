import assert from "node:assert/strict";
import { z } from "zod";
import {
  type CommandSpec,
  commandSummary,
  defineCommand,
  EXIT,
  flag,
  isStandardOutput,
  runCommand,
  setProgram,
  UsageError,
} from "./command.ts";
import { SCHEMA_VERSION } from "../db/migrate.ts";
import denoConfig from "../../deno.json" with { type: "json" };
import { emissionsCommand } from "./emissions.ts";
import { factorsExportCommand } from "./factors_export.ts";

// A command that needs no database: it echoes its arguments.
const echo = defineCommand({
  name: "echo",
  usage: `Usage: deno task echo --det D --year Y [--all] [--json]

Says which det and year it was given.`,
  options: { det: { type: "string" }, year: { type: "string" }, all: { type: "boolean" } },
  schema: z.object({
    det: flag.det(),
    year: flag.year(),
    all: z.boolean().optional(),
    positionals: z.array(z.string()).max(0, "echo takes flags only"),
  }),
  run(args) {
    if (args.all) throw new UsageError("--all is not for echo");
    return Promise.resolve({ exitCode: EXIT.ok, json: args, text: `${args.det} ${args.year}` });
  },
});

// deno-lint-ignore no-explicit-any
async function run(argv: string[], program = "deno task", command: CommandSpec<any> = echo) {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => out.push(parts.join(" "));
  console.error = (...parts: unknown[]) => err.push(parts.join(" "));
  setProgram(program);
  try {
    const code = await runCommand(command, argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    setProgram("deno task");
    console.log = log;
    console.error = error;
  }
}

Deno.test("usage errors: one line saying what is wrong and where the help is, exit 2", async () => {
  const cases: [string[], string][] = [
    [["--det", "plane"], "echo: --year: is required (e.g. --year 2025)"],
    [["--det", "plane", "--year", "25"], "echo: --year: expected a 4-digit year"],
    [["--det", "plane", "--yaer", "2025"], "echo: unknown flag --yaer (did you mean --year?)"],
    [["--det", "plane", "--year"], "echo: --year expects a value"],
    [["--det", "plane", "--year", "2025", "--all=yes"], "echo: --all takes no value"],
    [["--det", "plane", "--year", "2025", "extra"], "echo: arguments: echo takes flags only"],
    [["--det", "plane", "--year", "2025", "--all"], "echo: --all is not for echo"],
    [
      ["--det", "plane", "--year", "2025", "--year", "2024"],
      'echo: --year given twice ("2025" and "2024"): give it once',
    ],
    [
      ["--det=it", "--det", "plane", "--year", "2025"],
      'echo: --det given twice ("it" and "plane"): give it once',
    ],
  ];
  for (const [argv, start] of cases) {
    const result = await run(argv);
    assert.equal(result.code, EXIT.usage, argv.join(" "));
    assert.equal(result.out, "");
    assert.equal(result.err.split("\n").length, 1, `${argv.join(" ")}: ${result.err}`);
    assert.equal(result.err, `${start}; see deno task echo --help`);
  }
  const ambiguous = await run(["--year", "--det", "plane"]);
  assert.match(
    ambiguous.err,
    /^echo: --year expects a value \(one starting with "-" is given as --year=-VALUE\); see/,
  );
  // A flag without a value given twice is no question: the same either way.
  assert.equal(
    (await run(["--det", "it", "--year", "2025", "--all", "--all"])).err,
    "echo: --all is not for echo; see deno task echo --help",
  );
  // Two problems at once: still one line.
  const two = await run(["--det", "laptop"]);
  assert.equal(two.err.split("\n").length, 1);
  assert.match(two.err, /--det: unknown data entry type "laptop".*; --year: is required/);
});

Deno.test("det names: any case; a bad one gets the closest names and the list of valid ones", async () => {
  assert.equal((await run(["--det", "PLANE", "--year", "2025"])).out, "plane 2025");
  assert.equal((await run(["--det", "Train", "--year", "2025"])).out, "train 2025");
  assert.equal((await run(["--det", "20", "--year", "2025"])).out, "plane 2025");
  const typo = await run(["--det", "plnae", "--year", "2025"]);
  assert.equal(typo.code, EXIT.usage);
  assert.match(
    typo.err,
    /^echo: --det: unknown data entry type "plnae" \(did you mean plane\?\): expected one of member, student, scientific, it, .*, additional_purchases or an id; see/,
  );
  const far = await run(["--det", "laptop", "--year", "2025"]);
  assert.match(far.err, /unknown data entry type "laptop": expected one of member, /);
});

Deno.test("usage texts and hints name the program the way it was started", async () => {
  const bundle = await run(["--help"], "deno run -A rematch.js");
  assert.equal(bundle.code, EXIT.ok);
  assert.match(bundle.out, /^Usage: deno run -A rematch\.js echo --det D --year Y/);
  assert.doesNotMatch(bundle.out, /deno task/);
  const binary = await run(["--bogus"], "rematch");
  assert.equal(binary.err, "echo: unknown flag --bogus; see rematch echo --help");
  const tasks = await run(["--help"]);
  assert.match(tasks.out, /^Usage: deno task echo /);
  // Hints in a command's text output too (not in its JSON).
  const hint = defineCommand({
    ...echo,
    run: () =>
      Promise.resolve({
        exitCode: EXIT.ok,
        json: { command: "deno task rematch --stale" },
        text: "bring them up to date: deno task rematch --stale",
      }),
  });
  setProgram("rematch");
  const { log } = console;
  const printed: string[] = [];
  console.log = (line: string) => printed.push(line);
  try {
    await runCommand(hint, ["--det", "it", "--year", "2025"]);
    await runCommand(hint, ["--det", "it", "--year", "2025", "--json"]);
  } finally {
    console.log = log;
    setProgram("deno task");
  }
  assert.equal(printed[0], "bring them up to date: rematch rematch --stale");
  assert.deepEqual(JSON.parse(printed[1]), { command: "deno task rematch --stale" });
});

Deno.test("--version on every command: package version and schema version, text or JSON", async () => {
  const text = await run(["--version"]);
  assert.equal(text.code, EXIT.ok);
  assert.equal(text.out, `rematch ${denoConfig.version} (schema version ${SCHEMA_VERSION})`);
  const json = await run(["--version", "--json"]);
  assert.deepEqual(JSON.parse(json.out), {
    name: "rematch",
    version: denoConfig.version,
    schemaVersion: SCHEMA_VERSION,
  });
});

Deno.test("a usage error with --json is one JSON document, nothing on stderr", async () => {
  const result = await run(["--det", "plane", "--yaer", "2025", "--json"]);
  assert.equal(result.code, EXIT.usage);
  assert.equal(result.err, "");
  assert.deepEqual(JSON.parse(result.out), {
    error: { code: "usage", message: "unknown flag --yaer (did you mean --year?)" },
  });
});

Deno.test("commandSummary: the summary, else the first sentence of the usage description", () => {
  assert.equal(commandSummary(echo), "says which det and year it was given");
  assert.equal(commandSummary({ ...echo, summary: "echo back" }), "echo back");
});

Deno.test("integer flags: a number too large to be exact is a usage error, not a database error", () => {
  const limit = flag.int("--limit");
  assert.equal(limit.parse("20"), 20);
  const huge = limit.safeParse("99999999999999999999");
  assert.equal(huge.success, false);
  assert.match(huge.error!.issues[0].message, /too large/);
});

Deno.test("an outcome's text goes to stderr when it says so (an error of a command whose stdout is data)", async () => {
  const failing = defineCommand({
    ...echo,
    run: () =>
      Promise.resolve({
        exitCode: EXIT.failed,
        json: { error: { code: "NotFound", message: "no such thing" } },
        text: "echo: no such thing",
        stderr: true,
      }),
  });
  const text = await run(["--det", "it", "--year", "2025"], "deno task", failing);
  assert.deepEqual(text, { code: EXIT.failed, out: "", err: "echo: no such thing" });
  const json = await run(["--det", "it", "--year", "2025", "--json"], "deno task", failing);
  assert.equal(json.code, EXIT.failed);
  assert.equal(JSON.parse(json.out).error.code, "NotFound");
  assert.equal(json.err, "");
});

Deno.test("--json with --output naming standard output: a usage error, before any database", async () => {
  assert.equal(await isStandardOutput("/dev/stdout"), true);
  assert.equal(await isStandardOutput("/dev/null"), false);
  const file = await Deno.makeTempFile({ prefix: "rematch-stdout-" });
  try {
    assert.equal(await isStandardOutput(file), false);
  } finally {
    await Deno.remove(file);
  }
  const nowhere = ["--database-url", "postgres://nobody@127.0.0.1:1/none"];
  // deno-lint-ignore no-explicit-any
  const cases: [CommandSpec<any>, string[]][] = [
    [emissionsCommand, ["export", "--det", "it", "--year", "2025"]],
    [factorsExportCommand, ["export", "--det", "it", "--year", "2025"]],
  ];
  for (const [command, argv] of cases) {
    for (const output of ["/dev/stdout", "/proc/self/fd/1"]) {
      const { code, out } = await run(
        [...argv, "--output", output, "--json", ...nowhere],
        "deno task",
        command,
      );
      assert.equal(code, EXIT.usage, `${command.name} --output ${output}`);
      const document = JSON.parse(out);
      assert.equal(document.error.code, "usage");
      assert.match(document.error.message, /--output: .* is standard output/);
    }
  }
});

Deno.test("--output in a directory that does not exist: a usage error naming it, before any database", async () => {
  const nowhere = ["--database-url", "postgres://nobody@127.0.0.1:1/none"];
  const file = await Deno.makeTempFile({ prefix: "rematch-not-a-dir-" });
  try {
    // deno-lint-ignore no-explicit-any
    const cases: [CommandSpec<any>, string[]][] = [
      [emissionsCommand, ["export", "--det", "it", "--year", "2025"]],
      [factorsExportCommand, ["export", "--det", "it", "--year", "2025"]],
    ];
    for (const [command, argv] of cases) {
      for (
        const [output, message] of [
          ["/nonexistent-rematch-dir/x.csv", /does not exist/],
          [`${file}/x.csv`, /is no directory/],
        ] as const
      ) {
        const { code, err } = await run(
          [...argv, "--output", output, ...nowhere],
          "deno task",
          command,
        );
        assert.equal(code, EXIT.usage, `${command.name} --output ${output}: ${err}`);
        assert.match(err, new RegExp(`--output: ${output} cannot be written: `));
        assert.match(err, message);
        assert.doesNotMatch(err, /partial/);
      }
    }
  } finally {
    await Deno.remove(file);
  }
});
