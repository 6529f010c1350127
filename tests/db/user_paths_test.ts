// `deno task` runs every task in the directory of deno.json: a relative path the user typed is
// taken from where the task was started (INIT_CWD), for files read and files written.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runScript } from "./_connection.ts";

Deno.test({
  name: "deno task: relative file paths are the user's directory's, reading and writing",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "rematch-user-paths-" });
    try {
      const here = join(dir, "work");
      await Deno.mkdir(here);
      await Deno.writeTextFile(
        join(here, "rates.csv"),
        "year,currency,eur_per_unit\n2025,chf,1.07\n",
      );
      // As `deno task` starts a task from `here`: INIT_CWD says so, the process runs in the
      // checkout (runScript's working directory).
      const env = { DATABASE_URL: "", REMATCH_DATA_DIR: join(dir, "db"), INIT_CWD: here };
      const imported = await runScript("rates", ["import", "rates.csv", "--json"], env);
      assert.equal(imported.code, 0, imported.err);
      assert.equal(JSON.parse(imported.out).inserted, 1);
      const exported = await runScript("emissions", [
        "export",
        "--det",
        "it",
        "--year",
        "2025",
        "--output",
        "it.csv",
        "--json",
      ], env);
      assert.equal(exported.code, 0, exported.err);
      assert.equal(JSON.parse(exported.out).output, join(here, "it.csv"));
      assert.match(await Deno.readTextFile(join(here, "it.csv")), /^entry_id,/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
