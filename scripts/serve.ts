import { main } from "../src/cli/command.ts";
import { serveCommand } from "../src/cli/serve.ts";

if (import.meta.main) await main(serveCommand);
