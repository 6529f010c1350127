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
      // What deno task sets: where it was started, and that it is deno task.
      const env = {
        DATABASE_URL: "",
        REMATCH_DATA_DIR: join(dir, "db"),
        INIT_CWD: here,
        npm_config_user_agent: "deno/2.9.6 npm/? deno/2.9.6 linux x86_64",
      };
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
      // Entries and factor files too; an export of factors is written there as well.
      // (The export is no entries file: read from here, it is refused for its columns.)
      const entries = await runScript("entries", ["import", "it.csv", "--det", "it"], env);
      assert.equal(entries.code, 1);
      assert.match(entries.err, /work\/it\.csv: missing required columns unit, year/);
      await Deno.writeTextFile(
        join(here, "train.csv"),
        "country_code,ef_kg_co2eq_per_km\nCH,0.01\n",
      );
      const factors = await runScript(
        "factors",
        ["import", "train.csv", "--det", "train", "--year", "2025"],
        env,
      );
      assert.equal(factors.code, 0, factors.err);
      const exportedFactors = await runScript(
        "factors",
        ["export", "--det", "train", "--year", "2025", "--output", "train-out.csv"],
        env,
      );
      assert.equal(exportedFactors.code, 0, exportedFactors.err);
      assert.match(await Deno.readTextFile(join(here, "train-out.csv")), /^country_code,/);
      // A relative REMATCH_DATA_DIR is taken from there too.
      const relative = await runScript("migrate", [], { ...env, REMATCH_DATA_DIR: "db2" });
      assert.equal(relative.code, 0, relative.err);
      assert.match(relative.err, new RegExp(`^database: embedded: ${join(here, "db2")}$`, "m"));
      assert.ok((await Deno.stat(join(here, "db2", "PG_VERSION"))).isFile);
      // An INIT_CWD that deno task did not set (npm's, or one left in the environment) is not
      // where a plain `deno run` was started: paths stay the process's.
      const plain = await runScript("rates", ["import", "rates.csv"], {
        ...env,
        npm_config_user_agent: "npm/10.0.0 node/v20",
      });
      assert.equal(plain.code, 1);
      assert.match(plain.err, /rates\.csv: cannot be read/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
