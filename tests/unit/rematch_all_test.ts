// `rematch --all` without a database: each det's outcome, what is skipped, and the exit code.
import assert from "node:assert/strict";
import {
  allDetsExitCode,
  describeAllDets,
  describeAllDetsJson,
  type DetOutcome,
  rematchEachDet,
} from "../../src/cli/rematch.ts";
import { EXIT } from "../../src/cli/command.ts";
import type { RematchResult } from "../../src/rematch/types.ts";

function result(det: string, errors = 0): RematchResult {
  return {
    dataEntryType: det,
    dataEntryTypeId: 0,
    year: 2025,
    dryRun: false,
    entries: 1,
    recalculated: 1 - errors,
    unchanged: 0,
    relinked: 0,
    dropped: 0,
    errors,
    errorDetails: errors ? [{ dataEntryId: 7, error: "bad data" }] : [],
    warnings: [],
    emissionsInserted: 0,
    emissionsUpdated: 1,
    emissionsDeleted: 0,
    ambiguousMatches: 0,
    affectedModuleIds: [1],
    kgBefore: 1,
    kgAfter: 2,
    durationMs: 0,
    upToDate: false,
    scope: "full",
    scopeReason: "never rematched",
    entriesRead: 1,
    frozen: 0,
    frozenKgDelta: 0,
    modules: [{
      moduleId: 1,
      kgBefore: 1,
      kgAfter: 2,
      entriesChanged: 1,
      frozen: false,
      heldBack: 0,
      heldBackKg: 0,
    }],
  };
}

Deno.test("rematchEachDet: a failure is that det's outcome and the next det still runs", async () => {
  const ran: string[] = [];
  const outcomes = await rematchEachDet(
    ["member", "student", "it"],
    (det) => {
      ran.push(det);
      return det === "student"
        ? Promise.reject(new Error("slice student 2025 is busy"))
        : Promise.resolve(result(det));
    },
    () => Promise.resolve(true),
  );
  assert.deepEqual(ran, ["member", "student", "it"]);
  assert.deepEqual(
    outcomes.map((o) => [o.dataEntryType, o.status, o.status === "failed" ? o.error : ""]),
    [["member", "done", ""], ["student", "failed", "slice student 2025 is busy"], [
      "it",
      "done",
      "",
    ]],
  );
  assert.equal(allDetsExitCode(outcomes), EXIT.partial);
});

Deno.test("rematchEachDet: when the database stops answering after a failure, the rest is not run", async () => {
  const ran: string[] = [];
  const outcomes = await rematchEachDet(
    ["member", "student", "it", "plane"],
    (det) => {
      ran.push(det);
      return det === "student"
        ? Promise.reject(new Error("connection terminated"))
        : Promise.resolve(result(det));
    },
    () => Promise.resolve(false),
  );
  assert.deepEqual(ran, ["member", "student"]);
  assert.deepEqual(outcomes.map((o) => o.status), ["done", "failed", "skipped", "skipped"]);
  const json = describeAllDetsJson(2025, false, outcomes);
  assert.deepEqual(json.counts, { committed: 1, "dry-run": 0, failed: 1, skipped: 2 });
  assert.deepEqual(json.results[2], {
    status: "skipped",
    dataEntryType: "it",
    dataEntryTypeId: 11,
    year: 2025,
    error: "not run: the database stopped answering after student failed",
  });
  const text = describeAllDets(outcomes);
  assert.match(text, /^plane\s+not run\s+-/m);
  assert.match(text, /^student: failed, nothing of it written: connection terminated$/m);
  assert.match(text, /^1 committed, 1 failed, 2 not run/m);
  assert.equal(allDetsExitCode(outcomes), EXIT.partial);
});

Deno.test("allDetsExitCode: 0 all clean, 3 per-entry errors or a partial run, 1 only when nothing committed", () => {
  const done = (det: string, errors = 0): DetOutcome => ({
    dataEntryType: det,
    status: "done",
    result: result(det, errors),
  });
  const failed = (det: string): DetOutcome => ({
    dataEntryType: det,
    status: "failed",
    error: "x",
  });
  const skipped = (det: string): DetOutcome => ({
    dataEntryType: det,
    status: "skipped",
    error: "not run",
  });
  assert.equal(allDetsExitCode([done("member"), done("it")]), EXIT.ok);
  assert.equal(allDetsExitCode([done("member"), done("it", 1)]), EXIT.partial);
  assert.equal(allDetsExitCode([done("member"), failed("it")]), EXIT.partial);
  assert.equal(allDetsExitCode([failed("member"), failed("it")]), EXIT.failed);
  assert.equal(allDetsExitCode([]), EXIT.ok, "nothing to rematch (--stale, all current)");
  assert.equal(allDetsExitCode([failed("member"), skipped("it")]), EXIT.failed);
});
