import assert from "node:assert/strict";
import { DEFAULT_CHUNK } from "../rematch/recalculate.ts";
import { WORKER_USAGE } from "./worker.ts";

Deno.test("worker usage: --chunk-size names the chunk size a rematch uses when none is given", () => {
  const line = WORKER_USAGE.split("\n").find((l) => l.includes("--chunk-size"));
  assert.ok(line, "a --chunk-size line");
  const named = Number(/\(default (\d+)\)/.exec(line)?.[1]);
  assert.equal(named, DEFAULT_CHUNK);
});
