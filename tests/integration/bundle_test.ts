// The bundle as an ops host gets it: dist/rematch.js copied alone into an empty directory, run
// with nothing but Deno. On a server backend it migrates a fresh database, imports factors and
// entries, rematches and serves the API; on the embedded backend the same runs on a PGlite
// directory, which the bundle loads from npm on first use (it does not carry PGlite).
import assert from "node:assert/strict";
import postgres from "postgres";
import { join } from "node:path";
import { buildBundle } from "../../scripts/bundle.ts";
import { MIGRATION_FILES, SCHEMA_VERSION } from "../../src/db/migrate.ts";
import { type DenoRun, runDeno } from "../_deno.ts";
import { serverBackendExpected } from "../_harness.ts";
import { IT_HEADER } from "./_slice.ts";
import denoConfig from "../../deno.json" with { type: "json" };

function bundleRunner(host: string, env: Record<string, string>) {
  return async (...args: string[]): Promise<DenoRun> => {
    const run = await runDeno(["run", "-A", "rematch.js", ...args], { cwd: host, env });
    return { code: run.code, out: run.out.trim(), err: run.err.trim() };
  };
}

// A fresh, empty database on the test server, dropped afterwards: the bundle migrates it.
async function freshServerDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const server = Deno.env.get("TEST_DATABASE_URL") ?? Deno.env.get("DATABASE_URL")!;
  const name = `rematch_bundle_${crypto.randomUUID().slice(0, 8)}`;
  const admin = postgres(server, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

Deno.test({
  name: "bundle: copied alone to an empty directory, it migrates, imports, rematches and serves",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "rematch-bundle-" });
    const server = serverBackendExpected() ? await freshServerDatabase() : undefined;
    try {
      const build = join(dir, "build");
      const host = join(dir, "host");
      await Deno.mkdir(host);
      await buildBundle(join(build, "rematch.js"));
      await Deno.copyFile(join(build, "rematch.js"), join(host, "rematch.js"));
      await Deno.remove(build, { recursive: true });
      const env: Record<string, string> = server
        ? { DATABASE_URL: server.url }
        : { DATABASE_URL: "", REMATCH_DATA_DIR: join(host, "db") };
      const rematch = bundleRunner(host, env);

      // Commands named the way the bundle was started; versions from deno.json and migrations.
      const help = await rematch("help");
      assert.equal(help.code, 0, help.err);
      assert.match(help.out, /^Usage: deno run -A rematch\.js <command>/m);
      const version = await rematch("--version");
      assert.equal(version.out, `rematch ${denoConfig.version} (schema version ${SCHEMA_VERSION})`);
      const typo = await rematch("rematch", "--det", "it", "--yaer", "2025");
      assert.equal(typo.code, 2);
      assert.equal(
        typo.err,
        "rematch: unknown flag --yaer (did you mean --year?); see deno run -A rematch.js rematch --help",
      );

      // No cache and no registry: the demo (embedded alone) says so, naming no server as a way out.
      const offline = await runDeno(["run", "-A", "--cached-only", "rematch.js", "demo"], {
        cwd: host,
        env: { DENO_DIR: join(dir, "empty-cache"), DATABASE_URL: "" },
      });
      assert.equal(offline.code, 1, offline.err);
      assert.match(
        offline.err,
        /^demo: the embedded database \(npm:@electric-sql\/pglite\) cannot be loaded here .*: the demo runs on it alone;/m,
      );
      assert.doesNotMatch(offline.err, /DATABASE_URL/);

      const migrate = await rematch("migrate", "--json");
      assert.equal(migrate.code, 0, migrate.err);
      assert.deepEqual(
        JSON.parse(migrate.out).applied,
        MIGRATION_FILES.map((f) => Number(f.slice(0, 4))),
      );
      assert.equal(JSON.parse(migrate.out).schemaVersion, SCHEMA_VERSION);

      // One laptop: (100 W × 40 h + 10 W × 128 h) a week × 52 weeks = 274.56 kWh a year.
      await Deno.writeTextFile(
        join(host, "it_v1.csv"),
        `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.1\n`,
      );
      await Deno.writeTextFile(
        join(host, "it_v2.csv"),
        `${IT_HEADER}\nLaptop,Standard,100,10,40,128,0.2\n`,
      );
      await Deno.writeTextFile(
        join(host, "laptop.jsonl"),
        JSON.stringify({
          unit: "U1",
          year: 2025,
          data_entry_type: "it",
          data: { name: "laptop", equipment_class: "Laptop", sub_class: "Standard" },
        }) + "\n",
      );
      const v1 = await rematch(
        "factors",
        "import",
        "it_v1.csv",
        "--year",
        "2025",
        "--det",
        "it",
        "--json",
      );
      assert.equal(v1.code, 0, v1.err);
      assert.equal(JSON.parse(v1.out).inserted, 1);
      const entries = await rematch("entries", "import", "laptop.jsonl", "--json");
      assert.equal(entries.code, 0, entries.err);
      assert.equal(JSON.parse(entries.out).created, 1);
      const v2 = await rematch(
        "factors",
        "import",
        "it_v2.csv",
        "--year",
        "2025",
        "--det",
        "It",
        "--json",
      );
      assert.equal(v2.code, 0, v2.err);
      assert.equal(JSON.parse(v2.out).updated, 1);

      const result = await rematch("rematch", "--det", "IT", "--year", "2025", "--json");
      assert.equal(result.code, 0, result.err);
      const doc = JSON.parse(result.out);
      assert.equal(doc.dataEntryType, "it");
      assert.equal(doc.entries, 1);
      assert.equal(doc.emissionsUpdated, 1);
      assert.ok(Math.abs(doc.kgBefore - 274.56 * 0.1) < 1e-9, String(doc.kgBefore));
      assert.ok(Math.abs(doc.kgAfter - 274.56 * 0.2) < 1e-9, String(doc.kgAfter));
      // The human table, within 80 columns, says what was written: one row updated in place.
      const table = await rematch("rematch", "--det", "it", "--year", "2025", "--full");
      assert.equal(table.code, 0, table.err);
      for (const line of table.out.split("\n")) assert.ok(line.length <= 80, line);

      // serve: the HTTP API answers from the bundle too, and stops on SIGTERM.
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      listener.close();
      const serve = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "rematch.js", "serve", "--port", String(port)],
        cwd: host,
        env: { NO_COLOR: "1", ...env },
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        let health: { ok?: boolean; schemaVersion?: number } = {};
        for (let i = 0; i < 200 && !health.ok; i++) {
          health = await fetch(`http://127.0.0.1:${port}/healthz`)
            .then((r) => r.json())
            .catch(() => new Promise((r) => setTimeout(() => r({}), 100)));
        }
        assert.equal(health.ok, true);
        assert.equal(health.schemaVersion, SCHEMA_VERSION);
      } finally {
        serve.kill("SIGTERM");
        await serve.status;
      }

      // The seed's fixtures travel inside the bundle: it seeds another year from the file alone.
      const seed = await rematch(
        "seed",
        "--units",
        "1",
        "--entries",
        "2",
        "--year",
        "2024",
        "--json",
      );
      assert.equal(seed.code, 0, seed.err);
      const seeded = JSON.parse(seed.out);
      assert.ok(seeded.factorFiles.length >= 13, JSON.stringify(seeded.factorFiles));
      assert.ok(seeded.factorFiles.every((f: { file: string }) => f.file.includes("/2024/")));
      assert.ok(seeded.entriesGenerated > 0 && seeded.emissionsInserted > 0, seed.out);
    } finally {
      await server?.drop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
