// `deno task worker` stopped the way a terminal or a service manager stops it: the signal goes to
// the whole process group, so the worker gets it from the kernel and again from `deno task`, which
// hands it on. That is one stop (graceful), not the second signal that exits at once.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SETSID = ["/usr/bin/setsid", "/bin/setsid"].find((path) => existsSync(path));

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test({
    name: `deno task worker: ${signal} to its process group stops it gracefully (exit 0)`,
    ignore: Deno.build.os === "windows" || SETSID === undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "rematch-task-signal-" });
      // setsid: a process group of its own (deno task and the worker), as a terminal's job has.
      const child = new Deno.Command(SETSID!, {
        args: [Deno.execPath(), "task", "-q", "worker", "--log-format", "json"],
        cwd: ROOT,
        env: { NO_COLOR: "1", DATABASE_URL: "", REMATCH_DATA_DIR: join(dir, "db") },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const lines: string[] = [];
      let buffered = "";
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      try {
        while (!lines.some((l) => l.includes('"worker_started"'))) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += value;
          const parts = buffered.split("\n");
          buffered = parts.pop()!;
          lines.push(...parts);
        }
        if (!lines.some((l) => l.includes('"worker_started"'))) assert.fail(await stderr);
        Deno.kill(-child.pid, signal);
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          lines.push(...value.split("\n").filter((l) => l !== ""));
        }
        const status = await child.status;
        const events = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l).event);
        assert.ok(!events.includes("worker_killed"), lines.join("\n"));
        assert.ok(events.includes("worker_stopped"), lines.join("\n"));
        assert.equal(status.code, 0, lines.join("\n"));
      } finally {
        try {
          Deno.kill(-child.pid, "SIGKILL");
        } catch { /* already gone */ }
        await child.status;
        await stderr.catch(() => "");
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
