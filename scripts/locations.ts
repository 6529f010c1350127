import { main } from "../src/cli/command.ts";
import { locationsCommand } from "../src/cli/reference.ts";

if (import.meta.main) await main(locationsCommand);
