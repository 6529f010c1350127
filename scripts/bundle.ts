// `deno task bundle`: dist/rematch.js, one JavaScript file with every command and the
// migrations (`deno bundle` of src/cli/main.ts), for hosts that have Deno and nothing else.
//
// The embedded database (PGlite: WebAssembly and data files it finds beside its own module) is
// left out: the bundle imports it from npm, pinned to deno.json's version, only when a command
// runs without DATABASE_URL. Against a server it is never loaded.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import denoConfig from "../deno.json" with { type: "json" };
import { checkToolArgs } from "./_args.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Packages the bundle loads from npm on use instead of carrying them. */
const LOADED_ON_USE = ["@electric-sql/pglite", "@electric-sql/pglite-socket"] as const;

/** Builds the bundle at `target` (default: dist/rematch.js of the checkout); returns its size. */
export async function buildBundle(target = join(ROOT, "dist", "rematch.js")): Promise<number> {
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
  const specifiers: string[] = [];
  LOADED_ON_USE.forEach((name, i) => {
    // `import("@electric-sql/pglite")` has no import map to resolve it beside a lone file. The
    // npm specifier goes through a constant: Deno resolves (and fetches) a literal one when the
    // program starts, a computed one only when the import runs.
    const bare = `import("${name}")`;
    if (!text.includes(bare)) {
      throw new Error(`the bundle has no ${bare} to point at npm: did connection.ts change?`);
    }
    text = text.replaceAll(bare, `import(LOADED_ON_USE_${i})`);
    specifiers.push(`const LOADED_ON_USE_${i} = ${JSON.stringify(imports[name])};`);
  });
  const header = `// rematch ${denoConfig.version}: deno run -A rematch.js help`;
  await Deno.writeTextFile(target, [header, ...specifiers, text].join("\n"));
  return (await Deno.stat(target)).size;
}

const USAGE = `Usage: deno task bundle

Builds dist/rematch.js: one JavaScript file with every command and the migrations, for hosts that
have Deno and nothing else (deno run -A rematch.js help). The embedded database is loaded from npm
when a command first runs without DATABASE_URL; against a server it is never loaded.`;

if (import.meta.main) {
  checkToolArgs("bundle", USAGE);
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
