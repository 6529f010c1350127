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
