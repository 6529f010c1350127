// `deno task test`: fmt, lint and type checks, then the test suite, ending with one plain line
// `N passed, N failed` read from Deno's JUnit report. Arguments name test paths (default: all).
import { join } from "node:path";
import { checkToolArgs } from "./_args.ts";

async function run(args: string[]): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "inherit" })
    .spawn();
  return (await child.status).code;
}

const USAGE = `Usage: deno task test [--no-checks] [PATH...]

Runs deno fmt --check, deno lint and deno check ., then the tests (all of them, or those under
the PATHs), and ends with one line: N passed, N failed.

  --no-checks   skip fmt, lint and check

The database the tests use: TEST_DATABASE_URL or DATABASE_URL (one database per test file on
that server), else a Docker engine (a postgres:15 container), else embedded PGlite per test file;
REMATCH_TEST_BACKEND=embedded forces embedded.`;

checkToolArgs("test", USAGE, { flags: ["--no-checks"], positionals: true });
const paths = Deno.args.filter((a) => !a.startsWith("-"));
const skipChecks = Deno.args.includes("--no-checks");
if (!skipChecks) {
  for (const step of [["fmt", "--check"], ["lint"], ["check", "."]]) {
    const code = await run(step);
    if (code !== 0) {
      console.error(`deno ${step.join(" ")} failed`);
      console.log("0 passed, 1 failed");
      Deno.exit(1);
    }
  }
}

const reportDir = await Deno.makeTempDir({ prefix: "rematch-junit-" });
const report = join(reportDir, "junit.xml");
const code = await run(["test", "-A", "--doc", "--parallel", `--junit-path=${report}`, ...paths]);
let passed = 0;
let failed = 0;
try {
  const xml = await Deno.readTextFile(report);
  for (const match of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const body = match[2] ?? "";
    if (/<(failure|error)\b/.test(body)) failed++;
    else if (!/<skipped\b/.test(body)) passed++;
  }
} catch {
  // No report means the runner died before writing one.
}
await Deno.remove(reportDir, { recursive: true }).catch(() => {});
if (code !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(code === 0 && failed === 0 ? 0 : 1);
