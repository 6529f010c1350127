import { main } from "../src/cli/command.ts";
import { migrateCommand } from "../src/cli/migrate.ts";

if (import.meta.main) await main(migrateCommand);
