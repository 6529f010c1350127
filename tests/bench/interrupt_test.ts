// A bench run stopped by SIGINT (Ctrl-C) or SIGTERM in the middle of a phase drops the database
// it created, stops its phase process and exits 130 / 143 (spec/performance.md: a dedicated
// database per run, not one per interrupted run left on the server).
import assert from "node:assert/strict";
import postgres from "postgres";
import { serverBackendExpected } from "../_harness.ts";

const script = new URL("../../scripts/bench.ts", import.meta.url).pathname;

function serverUrl(): string | undefined {
  if (!serverBackendExpected()) return undefined;
  return Deno.env.get("TEST_DATABASE_URL") ?? Deno.env.get("DATABASE_URL");
}

async function exists(target: string, url: string | undefined): Promise<boolean> {
  if (!url) return await Deno.stat(target).then(() => true, () => false);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`select 1 from pg_database where datname = ${target}`;
    return rows.length > 0;
  } finally {
    await sql.end();
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`bench stopped by ${signal} during a phase drops its database`, async () => {
    const url = serverUrl();
    const env: Record<string, string> = { DATABASE_URL: url ?? "" };
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        script,
        "--entries",
        "200",
        "--det",
        "it",
        "--change",
        "none",
        "--import-rows",
        "0",
        "--server-only",
      ],
      env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let err = "";
    let ended = false;
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    try {
      // The case's database exists and a timed phase runs in its own process.
      while (!/write floor A/.test(err)) {
        const { value, done } = await reader.read();
        if (done) break;
        err += value;
      }
      const named = /it 200: database (?:embedded: )?(\S+)/.exec(err)?.[1];
      assert.ok(named, err);
      // The database's name (server) or its directory (embedded).
      const target = url ? new URL(named).pathname.slice(1) : named.replace(/\/db$/, "");
      assert.ok(await exists(target, url), `${target} exists while the run goes on`);
      child.kill(signal);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        err += value;
      }
      const status = await child.status;
      ended = true;
      assert.equal(status.code, signal === "SIGINT" ? 130 : 143, err);
      assert.match(err, /databases dropped/);
      assert.equal(await exists(target, url), false, `${target} left behind:\n${err}`);
    } finally {
      if (!ended) {
        child.kill("SIGKILL");
        await child.status;
      }
      await child.stdout.cancel();
    }
  });
}
