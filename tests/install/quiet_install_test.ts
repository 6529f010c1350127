// What a newcomer sees: a fresh copy of the checkout (no node_modules), `deno task demo` at once,
// and the distribution tasks that need nothing installed first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runDeno } from "../_deno.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
// What a clone holds that the commands need (tests, README and CI files left out).
const CHECKOUT = ["deno.json", "deno.lock", "mod.ts", "scripts", "src", "migrations", "fixtures"];

Deno.test("a fresh clone's first deno task demo: no package-manager lines, no warnings, no node_modules", async () => {
  const clone = await Deno.makeTempDir({ prefix: "rematch-clone-" });
  try {
    for (const item of CHECKOUT) {
      await new Deno.Command("cp", { args: ["-R", join(ROOT, item), clone] }).output();
    }
    const demo = await runDeno(["task", "demo", "--units", "1", "--entries", "2"], {
      cwd: clone,
      env: { DATABASE_URL: "" },
    });
    assert.equal(demo.code, 0, demo.err);
    assert.match(demo.out, /^plane\s/m);
    const chatter = demo.err.split("\n").filter((l) => /\b(Initialize|Warning|warning)\b/.test(l));
    assert.deepEqual(chatter, [], demo.err);
    assert.ok(!existsSync(join(clone, "node_modules")), "no node_modules directory");
    // Test-only packages are not in what a user installs.
    const lock = await Deno.readTextFile(join(clone, "deno.lock"));
    assert.doesNotMatch(lock, /testcontainers|dockerode|ssh2/);
  } finally {
    await Deno.remove(clone, { recursive: true });
  }
});

Deno.test("deno task test --help prints the help instead of running the suite", async () => {
  const help = await runDeno(["task", "test", "--help"], { cwd: ROOT });
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage: deno task test \[--no-checks\] \[PATH\.\.\.\]$/m);
  assert.doesNotMatch(help.out, /passed, \d+ failed/);
});

Deno.test("deno task compile without denort: one line naming what is missing and the bundle, no bin/", async () => {
  const hadBin = existsSync(join(ROOT, "bin"));
  const run = await runDeno(["task", "compile"], {
    cwd: ROOT,
    env: { DENORT_BIN: "/nonexistent/denort" },
  });
  assert.equal(run.code, 1);
  const lines = run.err.split("\n").filter((l) => l.startsWith("compile:"));
  assert.equal(lines.length, 1, run.err);
  assert.match(
    lines[0],
    /^compile: DENORT_BIN=\/nonexistent\/denort does not exist: point it at denort \S+ for \S+/,
  );
  assert.match(lines[0], /deno task bundle/);
  if (!hadBin) assert.ok(!existsSync(join(ROOT, "bin")), "no bin/ left behind");
});

Deno.test("deno task compile on a runtime that is not denort: refused, nothing left in bin/", async () => {
  const hadBin = existsSync(join(ROOT, "bin"));
  // deno compile accepts the deno binary itself as the runtime, and builds a copy of Deno.
  const run = await runDeno(["task", "compile"], {
    cwd: ROOT,
    env: { DENORT_BIN: Deno.execPath() },
  });
  assert.equal(run.code, 1, run.out);
  const lines = run.err.split("\n").filter((l) => l.startsWith("compile:"));
  assert.equal(lines.length, 1, run.err);
  assert.match(lines[0], /does not run as rematch \(its --version printed "deno \d/);
  assert.ok(!existsSync(join(ROOT, "bin", "rematch")), "no bin/rematch left behind");
  if (!hadBin) assert.ok(!existsSync(join(ROOT, "bin")), "no bin/ left behind");
});

Deno.test("every task runs deno run -q: Deno's download and diagnostic lines stay out of a command's output", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const tasks = Object.entries(config.tasks as Record<string, string>);
  assert.ok(tasks.length > 10);
  for (const [name, command] of tasks) {
    assert.match(command, /^deno run -q /, `task ${name}: ${command}`);
  }
});
