import { main } from "../src/cli/command.ts";
import { statusCommand } from "../src/cli/status.ts";

if (import.meta.main) await main(statusCommand);
