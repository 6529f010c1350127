import { main } from "../src/cli/command.ts";
import { workerCommand } from "../src/cli/worker.ts";

if (import.meta.main) await main(workerCommand);
