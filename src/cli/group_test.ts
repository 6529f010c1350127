import assert from "node:assert/strict";
import { runMain } from "./main.ts";

async function quietly(argv: string[]): Promise<{ code: number; printed: string }> {
  const printed: string[] = [];
  const { log, error } = console;
  console.log = console.error = (...parts: unknown[]) => printed.push(parts.join(" "));
  try {
    return { code: await runMain(argv), printed: printed.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("command groups: the first argument picks the subcommand; none or an unknown one is a usage error", async () => {
  const help = await quietly(["factors", "--help"]);
  assert.equal(help.code, 0);
  for (const sub of ["import", "history", "diff", "export", "rollback"]) {
    assert.match(help.printed, new RegExp(`^  ${sub}\\b`, "m"));
  }
  const none = await quietly(["factors"]);
  assert.equal(none.code, 2);
  assert.match(none.printed, /expected a subcommand: import, history, diff, export, rollback/);
  const unknown = await quietly(["reports", "thaw", "--json"]);
  assert.equal(unknown.code, 2);
  assert.deepEqual(JSON.parse(unknown.printed).error.code, "usage");
  assert.match(unknown.printed, /unknown subcommand \\"thaw\\" \(expected freeze, unfreeze\)/);

  const sub = await quietly(["factors", "rollback", "--help"]);
  assert.equal(sub.code, 0);
  assert.match(sub.printed, /^Usage: deno task factors rollback --import N/);
  const history = await quietly(["rematch", "history", "--help"]);
  assert.match(history.printed, /^Usage: deno task rematch history/);
  // Anything else is the rematch itself.
  const rematch = await quietly(["rematch", "--help"]);
  assert.match(rematch.printed, /deno task rematch --det D --year Y/);
  const badFlag = await quietly(["factors", "diff", "--import", "x"]);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.printed, /--import: expected an import id/);
});

Deno.test("command groups: usage errors are one line with the closest subcommand; help and version", async () => {
  const typo = await quietly(["factors", "imprt", "x.csv"]);
  assert.equal(typo.code, 2);
  assert.equal(
    typo.printed,
    'factors: unknown subcommand "imprt" (did you mean import?) (expected import, history, ' +
      "diff, export, rollback); see deno task factors --help",
  );
  const none = await quietly(["reports"]);
  assert.equal(
    none.printed,
    "reports: expected a subcommand: freeze, unfreeze; see deno task reports --help",
  );
  // A subcommand's usage error names the subcommand's help.
  const bad = await quietly(["factors", "history", "--yaer", "2025"]);
  assert.equal(
    bad.printed,
    "factors history: unknown flag --yaer (did you mean --year?); see deno task factors history --help",
  );
  // help GROUP SUBCOMMAND is the subcommand's --help; --version works on a group too.
  const help = await quietly(["help", "factors", "rollback"]);
  assert.match(help.printed, /^Usage: deno task factors rollback --import N/);
  const version = await quietly(["factors", "--version"]);
  assert.equal(version.code, 0);
  assert.match(version.printed, /^rematch \S+ \(schema version \d+\)$/);
});

Deno.test("--help with --json: one JSON document holding the usage, for commands and groups", async () => {
  for (
    const [argv, command, start] of [
      [["status", "--help", "--json"], "status", /^Usage: deno task status/],
      [["help", "status", "--json"], "status", /^Usage: deno task status/],
      [
        ["factors", "rollback", "--help", "--json"],
        "factors rollback",
        /^Usage: deno task factors rollback/,
      ],
      [["factors", "--help", "--json"], "factors", /deno task factors/],
    ] as const
  ) {
    const run = await quietly([...argv]);
    assert.equal(run.code, 0, argv.join(" "));
    const document = JSON.parse(run.printed);
    assert.equal(document.command, command, argv.join(" "));
    assert.match(document.usage, start, argv.join(" "));
  }
});
