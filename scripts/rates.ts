import { main } from "../src/cli/command.ts";
import { ratesCommand } from "../src/cli/reference.ts";

if (import.meta.main) await main(ratesCommand);
