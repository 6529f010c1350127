// A worker killed mid-job (kill -9) leaves its job's working directory (an upload's copy among its
// files); the next worker to start on the host removes those whose process is gone.
import assert from "node:assert/strict";
import { join } from "node:path";
import { removeOrphanWorkDirs } from "../../src/jobs/worker.ts";

Deno.test({
  name: "job working directories of processes no longer running are removed; others are kept",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "rematch-work-dirs-" });
    try {
      // A process id that ran and ended.
      const child = new Deno.Command("true").spawn();
      const deadPid = child.pid;
      await child.status;
      const names = {
        dead: `rematch-job-7-p${deadPid}-a1b2`,
        own: `rematch-job-8-p${Deno.pid}-c3d4`,
        live: "rematch-job-9-p1-e5f6", // pid 1 always runs
        old: "rematch-job-10-0a0b", // no process id in its name: never removed
        other: "unrelated-p123",
      };
      for (const name of Object.values(names)) {
        await Deno.mkdir(join(root, name));
        await Deno.writeTextFile(join(root, name, "upload.csv"), "x");
      }
      assert.deepEqual(await removeOrphanWorkDirs(root), [names.dead]);
      const left = [...Deno.readDirSync(root)].map((e) => e.name).sort();
      assert.deepEqual(left, [names.live, names.old, names.own, names.other].sort());
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
