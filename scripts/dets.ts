import { main } from "../src/cli/command.ts";
import { detsCommand } from "../src/cli/dets.ts";

if (import.meta.main) await main(detsCommand);
