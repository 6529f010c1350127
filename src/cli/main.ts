// The single binary (`deno task compile` → ./bin/rematch): every task as a subcommand.
import { type CommandSpec, runCommand } from "./command.ts";
import { type CommandGroup, runGroup } from "./group.ts";
import { demoCommand } from "./demo.ts";
import { emissionsCommand } from "./emissions.ts";
import { entriesCommand } from "./entries.ts";
import { factorsGroup } from "./factors.ts";
import { migrateCommand } from "./migrate.ts";
import { referenceImportCommand } from "./reference.ts";
import { rematchGroup } from "./rematch_history.ts";
import { reportsGroup } from "./reports.ts";
import { seedCommand } from "./seed.ts";
import { statusCommand } from "./status.ts";
import { serveCommand } from "./serve.ts";
import { workerCommand } from "./worker.ts";

// deno-lint-ignore no-explicit-any
const COMMANDS: Record<string, CommandSpec<any> | CommandGroup> = {
  demo: demoCommand,
  migrate: migrateCommand,
  rematch: rematchGroup,
  status: statusCommand,
  seed: seedCommand,
  factors: factorsGroup,
  reports: reportsGroup,
  entries: entriesCommand,
  emissions: emissionsCommand,
  locations: referenceImportCommand("locations"),
  rooms: referenceImportCommand("rooms"),
  rates: referenceImportCommand("rates"),
  serve: serveCommand,
  worker: workerCommand,
};

const USAGE = `Usage: rematch <command> [arguments] [--help]

Commands: ${Object.keys(COMMANDS).join(", ")}`;

/** Runs `rematch <command> ...` and returns the exit code. */
export async function runMain(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`rematch: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  return "subcommands" in command ? await runGroup(command, rest) : await runCommand(command, rest);
}

if (import.meta.main) Deno.exit(await runMain(Deno.args));
