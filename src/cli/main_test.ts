import assert from "node:assert/strict";
import { runMain } from "./main.ts";

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

Deno.test("binary: every task is a subcommand; unknown or missing commands are usage errors", async () => {
  const help = await quietly(() => runMain(["--help"]));
  assert.equal(help.code, 0);
  for (
    const name of [
      "demo",
      "migrate",
      "seed",
      "rematch",
      "factors",
      "entries",
      "emissions",
      "locations",
      "rooms",
      "rates",
      "serve",
      "worker",
    ]
  ) {
    assert.match(help.printed, new RegExp(`\\b${name}\\b`));
  }
  assert.equal((await quietly(() => runMain([]))).code, 2);
  const unknown = await quietly(() => runMain(["recalc"]));
  assert.equal(unknown.code, 2);
  assert.match(unknown.printed, /unknown command "recalc"/);
  const sub = await quietly(() => runMain(["rematch", "--help"]));
  assert.equal(sub.code, 0);
  assert.match(sub.printed, /deno task rematch --det D --year Y/);
});
