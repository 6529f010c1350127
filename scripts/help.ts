// `deno task help [COMMAND]`: the commands, one line each (or one command's flags).
import { runMain } from "../src/cli/main.ts";

if (import.meta.main) Deno.exit(await runMain(["help", ...Deno.args]));
