import { main } from "../src/cli/command.ts";
import { entriesCommand } from "../src/cli/entries.ts";

if (import.meta.main) await main(entriesCommand);
