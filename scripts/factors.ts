import { main } from "../src/cli/command.ts";
import { factorsCommand } from "../src/cli/factors.ts";

if (import.meta.main) await main(factorsCommand);
