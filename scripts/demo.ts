import { main } from "../src/cli/command.ts";
import { demoCommand } from "../src/cli/demo.ts";

if (import.meta.main) await main(demoCommand);
