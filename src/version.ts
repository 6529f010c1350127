// The program's version, read from deno.json when the code is built or run, and its name.
import denoConfig from "../deno.json" with { type: "json" };

/** The package version (deno.json `version`). */
export const VERSION: string = denoConfig.version;
