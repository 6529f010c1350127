import { main } from "../src/cli/command.ts";
import { seedCommand } from "../src/cli/seed.ts";

if (import.meta.main) await main(seedCommand);
