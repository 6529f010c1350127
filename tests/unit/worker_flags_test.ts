// The timings `worker` and `serve` share: a heartbeat slower than half the stale timeout would let
// any worker's sweep hand a running job to another, so it is refused before anything starts.
import assert from "node:assert/strict";
import { runCli } from "../_harness.ts";
import { workerCommand } from "../../src/cli/worker.ts";
import { serveCommand } from "../../src/cli/serve.ts";

Deno.test("worker and serve refuse a heartbeat slower than half the stale timeout (exit 2)", async () => {
  const run = (name: string, argv: string[]) =>
    name === "worker" ? runCli(workerCommand, argv) : runCli(serveCommand, argv);
  for (const name of ["worker", "serve"]) {
    const cases: [string[], RegExp][] = [
      [
        ["--heartbeat", "40"],
        /--heartbeat: a heartbeat every 40 s needs a stale timeout of at least 80 s \(twice as long\), not 60 s/,
      ],
      [
        ["--stale-timeout", "5"],
        /--stale-timeout: a heartbeat every 5 s needs a stale timeout of at least 10 s \(twice as long\), not 5 s/,
      ],
      [["--heartbeat", "2", "--stale-timeout", "3"], /--heartbeat: .* at least 4 s/],
    ];
    for (const [argv, message] of cases) {
      const ran = await run(name, argv);
      assert.equal(ran.code, 2, `${name} ${argv.join(" ")}: ${ran.err}`);
      assert.match(ran.err, message);
    }
  }
  // An API-only server runs no heartbeat: its stale timeout is only what recover goes by. (Its
  // flags pass; it then fails on the unreachable database instead, exit 1.)
  const apiOnly = await run("serve", ["--concurrency", "0", "--stale-timeout", "5"]);
  assert.equal(apiOnly.code, 1, apiOnly.err);
});

Deno.test("worker and serve refuse timings a timer cannot hold, chunks and counts out of range (exit 2)", async () => {
  const run = (name: string, argv: string[]) =>
    name === "worker" ? runCli(workerCommand, argv) : runCli(serveCommand, argv);
  for (const name of ["worker", "serve"]) {
    const cases: [string[], RegExp][] = [
      // 2^31 ms would fire at once: a poll every 25 days would be a poll without pause.
      [["--poll-interval", "2200000"], /--poll-interval: at most 2147483 seconds/],
      [["--grace", "2200000"], /--grace: at most 2147483 seconds/],
      [
        ["--heartbeat", "2200000", "--stale-timeout", "4400000"],
        /--heartbeat: at most 2147483 seconds/,
      ],
      [["--chunk-size", "100001"], /--chunk-size: at most 100000/],
      [["--chunk-size", "99999999999999999999"], /--chunk-size: too large/],
      [["--concurrency", "1001"], /--concurrency: at most 1000/],
    ];
    for (const [argv, message] of cases) {
      const ran = await run(name, argv);
      assert.equal(ran.code, 2, `${name} ${argv.join(" ")}: ${ran.err}`);
      assert.match(ran.err, message, `${name} ${argv.join(" ")}`);
    }
  }
});
