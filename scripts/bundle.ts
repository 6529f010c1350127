// `deno task bundle`: dist/rematch.js, one JavaScript file with every command and the
// migrations (`deno bundle` of src/cli/main.ts), for hosts that have Deno and nothing else.
//
// The embedded database (PGlite: WebAssembly and data files it finds beside its own module) is
// left out: the bundle imports it from npm, pinned to deno.json's version, only when a command
// runs without DATABASE_URL. Against a server it is never loaded.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import denoConfig from "../deno.json" with { type: "json" };

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Packages the bundle loads from npm on use instead of carrying them. */
const LOADED_ON_USE = ["@electric-sql/pglite", "@electric-sql/pglite-socket"] as const;

/** Builds the bundle at `output` (relative to the checkout) and returns its size in bytes. */
export async function buildBundle(output = "dist/rematch.js"): Promise<number> {
  const target = join(ROOT, output);
  await Deno.mkdir(dirname(target), { recursive: true });
  const args = [
    "bundle",
    "--quiet",
    "--platform",
    "deno",
    ...LOADED_ON_USE.flatMap((name) => ["--external", name]),
    "--output",
    target,
    join(ROOT, "src/cli/main.ts"),
  ];
  const built = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stderr: "piped" })
    .output();
  if (!built.success) {
    throw new Error(`deno bundle failed:\n${new TextDecoder().decode(built.stderr).trim()}`);
  }
  let text = await Deno.readTextFile(target);
  const imports: Record<string, string> = denoConfig.imports;
  for (const name of LOADED_ON_USE) {
    // `import("@electric-sql/pglite")` has no import map to resolve it beside a lone file.
    const bare = `import("${name}")`;
    if (!text.includes(bare)) {
      throw new Error(`the bundle has no ${bare} to point at npm: did connection.ts change?`);
    }
    text = text.replaceAll(bare, `import("${imports[name]}")`);
  }
  const header = `// rematch ${denoConfig.version}: deno run -A rematch.js help\n`;
  await Deno.writeTextFile(target, header + text);
  return (await Deno.stat(target)).size;
}

if (import.meta.main) {
  try {
    const size = await buildBundle();
    console.log(
      `dist/rematch.js (${(size / 1024 / 1024).toFixed(1)} MiB): copy it anywhere Deno runs, ` +
        "then: deno run -A rematch.js help",
    );
  } catch (error) {
    console.error(`bundle: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}
