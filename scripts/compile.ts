// `deno task compile`: bin/rematch, one executable from the bundle's entry (src/cli/main.ts).
//
// `deno compile` glues the program onto `denort`, Deno's runtime without its tooling, which it
// takes from DENORT_BIN or downloads from Deno's release server (then keeps in DENO_DIR). Where
// neither is possible this says so in one line, creates nothing, and points at the bundle.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { VERSION } from "../src/version.ts";
import { checkToolArgs } from "./_args.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUTPUT = "bin/rematch";
const BUNDLE_HINT = "meanwhile `deno task bundle` builds dist/rematch.js, which runs wherever " +
  "Deno does (deno run -A rematch.js help)";

/** Where `deno compile` gets denort from, or why it cannot. */
export type DenortSource =
  | { readonly ok: true; readonly from: string }
  | { readonly ok: false; readonly problem: string };

/** Deno's cache directory (DENO_DIR, else the platform's default). */
function denoDir(): string {
  const set = Deno.env.get("DENO_DIR");
  if (set) return set;
  if (Deno.build.os === "windows") return join(Deno.env.get("LOCALAPPDATA") ?? homedir(), "deno");
  if (Deno.build.os === "darwin") return join(homedir(), "Library", "Caches", "deno");
  return join(Deno.env.get("XDG_CACHE_HOME") ?? join(homedir(), ".cache"), "deno");
}

/**
 * Finds denort for this Deno: DENORT_BIN (which must exist), else the archive a previous compile
 * left in DENO_DIR, else the release server if it answers within `timeoutMs`.
 */
export async function findDenort(timeoutMs = 5000): Promise<DenortSource> {
  const version = Deno.version.deno;
  const archive = `denort-${Deno.build.target}.zip`;
  const wanted = `denort ${version} for ${Deno.build.target}`;
  const bin = Deno.env.get("DENORT_BIN");
  if (bin) {
    return existsSync(bin) ? { ok: true, from: `DENORT_BIN=${bin}` } : {
      ok: false,
      problem: `DENORT_BIN=${bin} does not exist: point it at ${wanted} (from ${archive} of ` +
        `the Deno ${version} release)`,
    };
  }
  const cached = join(denoDir(), "dl", "release", `v${version}`, archive);
  if (existsSync(cached)) return { ok: true, from: cached };
  const url = `https://dl.deno.land/release/v${version}/${archive}`;
  try {
    const response = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    if (response.ok) return { ok: true, from: url };
    return {
      ok: false,
      problem: `${url} answered ${response.status}: set DENORT_BIN to ${wanted}`,
    };
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return {
      ok: false,
      problem: `no ${wanted}: DENORT_BIN is not set, none is cached in ${denoDir()} and ` +
        `${url} cannot be reached (${reason}); set DENORT_BIN to a denort binary (from ` +
        `${archive} of the Deno ${version} release)`,
    };
  }
}

const USAGE = `Usage: deno task compile

Builds bin/rematch, one executable with every command (bin/rematch help), with \`deno compile\`.
That needs denort, Deno's runtime for compiled programs, of this Deno's version: DENORT_BIN, else
one a previous compile left in Deno's cache, else Deno's release server. Without any, it says so
and builds nothing:
${BUNDLE_HINT}.`;

if (import.meta.main) {
  checkToolArgs("compile", USAGE);
  const denort = await findDenort();
  if (!denort.ok) {
    console.error(`compile: ${denort.problem}; ${BUNDLE_HINT}`);
    Deno.exit(1);
  }
  const hadBin = existsSync(join(ROOT, "bin"));
  // The rematch's V8 flags, as in the tasks of deno.json (see REMATCH_V8_FLAGS in src/bench/phase.ts).
  const v8 = "--v8-flags=--max-semi-space-size=8,--wasm-tiering-budget=50000000";
  const args = ["compile", "-A", v8, "--quiet", "--output", OUTPUT, "src/cli/main.ts"];
  const compiled = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT }).output();
  if (!compiled.success) {
    // deno compile makes bin/ before it fails: leave nothing behind.
    if (!hadBin) await Deno.remove(join(ROOT, "bin"), { recursive: true }).catch(() => {});
    console.error(`compile: deno compile failed (denort from ${denort.from}); ${BUNDLE_HINT}`);
    Deno.exit(1);
  }
  // deno compile takes any binary as denort: check that the result is this program.
  const ran = await new Deno.Command(join(ROOT, OUTPUT), { args: ["--version"] }).output()
    .catch((error: Error) => ({ success: false, stdout: new TextEncoder().encode(error.message) }));
  const said = new TextDecoder().decode(ran.stdout).trim();
  if (!ran.success || !said.startsWith(`rematch ${VERSION} `)) {
    await Deno.remove(join(ROOT, OUTPUT)).catch(() => {});
    if (!hadBin) await Deno.remove(join(ROOT, "bin"), { recursive: true }).catch(() => {});
    console.error(
      `compile: the binary built on denort from ${denort.from} does not run as rematch (its ` +
        `--version printed ${JSON.stringify(said.split("\n")[0])}): is it Deno's denort ` +
        `${Deno.version.deno}? ${BUNDLE_HINT}`,
    );
    Deno.exit(1);
  }
  console.log(`${OUTPUT}: ./${OUTPUT} help`);
}
