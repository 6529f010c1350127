// The checkout's own tools (bundle, compile, test) take --help and refuse what they do not take
// with exit 2 before doing anything, as every command of the program does (spec/interfaces.md §2).
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runDeno } from "../_deno.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const script = (name: string) => join(ROOT, "scripts", `${name}.ts`);

Deno.test("bundle, compile and test print their usage on --help and build nothing", async () => {
  for (const [name, says] of [["bundle", /dist\/rematch\.js/], ["compile", /bin\/rematch/]]) {
    // Run from an empty directory with DENORT_BIN pointing nowhere: a build would fail there.
    const run = await runDeno(["run", "-A", script(name as string), "--help"], {
      env: { DENORT_BIN: "/nonexistent/denort" },
    });
    assert.equal(run.code, 0, `${name}: ${run.err}`);
    assert.match(run.out, new RegExp(`^Usage: deno task ${name}\n`));
    assert.match(run.out, says as RegExp);
    assert.equal(run.err, "");
  }
  const test = await runDeno(["run", "-A", script("test"), "--help"]);
  assert.equal(test.code, 0);
  assert.match(test.out, /^Usage: deno task test \[--no-checks\] \[PATH\.\.\.\]/);
});

Deno.test("bundle, compile and test refuse a flag or argument they do not take (exit 2)", async () => {
  const cases: [string, string, string][] = [
    ["bundle", "--bogus", "bundle: unknown flag --bogus; see deno task bundle --help"],
    ["bundle", "out.js", 'bundle: takes no arguments (got "out.js"); see deno task bundle --help'],
    ["compile", "--target", "compile: unknown flag --target; see deno task compile --help"],
    ["test", "--nope", "test: unknown flag --nope; see deno task test --help"],
  ];
  for (const [name, arg, line] of cases) {
    const run = await runDeno(["run", "-A", script(name), arg], {
      env: { DENORT_BIN: "/nonexistent/denort" },
    });
    assert.equal(run.code, 2, `${name} ${arg}: ${run.err}`);
    assert.equal(run.err.trim(), line);
    assert.equal(run.out, "");
  }
});
