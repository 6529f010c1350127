import { main } from "../src/cli/command.ts";
import { rematchCommand } from "../src/cli/rematch.ts";

if (import.meta.main) await main(rematchCommand);
