import { main } from "../src/cli/command.ts";
import { emissionsCommand } from "../src/cli/emissions.ts";

if (import.meta.main) await main(emissionsCommand);
