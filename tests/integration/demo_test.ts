// `deno task demo` end to end on its own fresh embedded database.
import assert from "node:assert/strict";
import { runCommand } from "../../src/cli/command.ts";
import { demoCommand } from "../../src/cli/demo.ts";
import type { RematchResult } from "../../src/rematch/types.ts";

Deno.test({
  name: "demo: seeds, changes factors, rematches and reports per det",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const output: string[] = [];
    const log = console.log;
    console.log = (line: string) => output.push(line);
    let code: number;
    try {
      code = await runCommand(demoCommand, ["--units", "2", "--entries", "10", "--json"]);
    } finally {
      console.log = log;
    }
    assert.equal(code, 0);
    const { steps } = JSON.parse(output.join("\n")) as { steps: { rematch: RematchResult }[] };
    const byDet = Object.fromEntries(steps.map((s) => [s.rematch.dataEntryType, s.rematch]));
    assert.deepEqual(Object.keys(byDet), ["plane", "it", "member"]);
    // Every plane factor is 10 % higher in fixtures/demo/plane.csv: every flight scales exactly.
    assert.ok(
      Math.abs(byDet.plane.kgAfter - 1.1 * byDet.plane.kgBefore) < 1e-6 * byDet.plane.kgBefore,
    );
    assert.equal(byDet.plane.entries, 20);
    assert.equal(byDet.plane.recalculated, 20);
    // The it file withdraws factors: their entries are relinked or dropped, none fails.
    assert.equal(byDet.it.errors, 0);
    assert.ok(byDet.member.kgAfter > byDet.member.kgBefore);
  },
});

Deno.test({
  name: "demo: interrupted, it removes its temporary directory all the same",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "rematch-demo-test-" });
    try {
      const script = new URL("../../scripts/demo.ts", import.meta.url).pathname;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-q", "-A", script, "--units", "2", "--entries", "10"],
        env: { TMPDIR: tmp, DATABASE_URL: "" },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // Its database is open in its directory and it is seeding: stop it there.
      let stderr = "";
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      while (!stderr.includes("seeding")) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += value;
      }
      const seen = [...Deno.readDirSync(tmp)].some((e) => e.name.startsWith("rematch-demo-"));
      child.kill("SIGINT");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += value;
      }
      const ended = await child.status;
      assert.ok(seen, `the demo made its directory: ${stderr}`);
      assert.equal(ended.code, 130, stderr);
      assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), []);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("demo: a --data-dir that is not empty is a usage error (exit 2), and is left as it was", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rematch-demo-full-" });
  try {
    await Deno.writeTextFile(`${dir}/keep.txt`, "mine");
    const errors: string[] = [];
    const { error } = console;
    console.error = (...parts: unknown[]) => errors.push(parts.join(" "));
    let code: number;
    try {
      code = await runCommand(demoCommand, ["--data-dir", dir]);
    } finally {
      console.error = error;
    }
    assert.equal(code, 2, errors.join("\n"));
    assert.match(errors.join("\n"), /--data-dir: .* is not empty: the demo needs a fresh database/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["keep.txt"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
