// The one entry of the bundle (`deno task bundle` → dist/rematch.js) and the binary (`deno task
// compile` → bin/rematch): every command as a subcommand. Commands registered in COMMANDS are
// listed by `help`, get `--version` and are named the way the program was started.
import { basename, relative } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type CommandSpec,
  commandSummary,
  currentProgram,
  EXIT,
  runCommand,
  setProgram,
  versionJson,
  versionLine,
} from "./command.ts";
import { type CommandGroup, groupSummaries, runGroup } from "./group.ts";
import { demoCommand } from "./demo.ts";
import { detsCommand } from "./dets.ts";
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
import { fitLine } from "./progress.ts";
import { pageWidth } from "./table.ts";
import { didYouMean } from "../text/did_you_mean.ts";

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
  dets: detsCommand,
};

/**
 * What `help` lists, in registration order, with one-line summaries: each command, and each
 * subcommand of a group (`factors import`, `factors history`, ...).
 */
export function commandList(): { name: string; summary: string }[] {
  return Object.entries(COMMANDS).flatMap(([name, command]) =>
    "subcommands" in command
      ? groupSummaries(command)
      : [{ name, summary: commandSummary(command) }]
  );
}

// deno-lint-ignore no-explicit-any
function run(command: CommandSpec<any> | CommandGroup, argv: string[]): Promise<number> {
  return "subcommands" in command ? runGroup(command, argv) : runCommand(command, argv);
}

/** The text of `help`: the commands, one line each, fitted to the page. */
export function helpText(): string {
  const program = currentProgram();
  const commands = [
    ...commandList(),
    { name: "help", summary: "this list; help COMMAND shows a command's flags" },
  ];
  const width = Math.max(...commands.map((c) => c.name.length));
  const page = pageWidth();
  return [
    versionLine(),
    "Recomputes stored emissions when emission factors change.",
    "",
    `Usage: ${program} <command> [arguments] [--help]`,
    "",
    "Commands:",
    ...commands.map((c) => fitLine(`  ${c.name.padEnd(width)}  ${c.summary}`, page + 1)),
    "",
    ...wrap(
      `\`${program} <command> --help\` shows a command's flags, --version the version. The ` +
        "database is DATABASE_URL (or --database-url), else an embedded PGlite database in " +
        "./.rematch/db (REMATCH_DATA_DIR).",
      page,
    ),
    ...(program === "deno task"
      ? ["", "In a checkout also: deno task test, bench, bundle (dist/rematch.js), compile."]
      : []),
  ].join("\n");
}

// Words in lines of at most `width` columns.
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= width) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines;
}

/**
 * How this entry was started, for usage texts: the binary's name when compiled, else
 * `deno run -A <script>` with the script as typed from the working directory. Whether it is the
 * compiled binary is Deno's to say (`Deno.build.standalone`), not the executable's name: a Deno
 * installed as `deno-2.9.6` or `/opt/deno2` runs the bundle all the same.
 */
export function startedAs(
  execPath: string = Deno.execPath(),
  standalone: boolean = Deno.build.standalone,
): string {
  if (standalone) return basename(execPath).replace(/\.exe$/, "");
  const main = Deno.mainModule;
  const script = main.startsWith("file:") ? relative(Deno.cwd(), fileURLToPath(main)) : main;
  return `deno run -A ${script}`;
}

/** Runs `<program> <command> ...` and returns the exit code. */
export async function runMain(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    console.error(helpText());
    return EXIT.usage;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    // `help factors import`, `help "factors import"` (as the list names it) and
    // `help factors import --json` are `factors import --help`; flags alone (`help --json`,
    // `help --help`) are the list, `help --version` the version.
    const words = rest.filter((w) => !w.startsWith("-")).flatMap((w) => w.trim().split(/\s+/));
    const json = rest.includes("--json");
    // `--help factors` is `help factors` too.
    const topic = words[0];
    if (topic !== undefined && COMMANDS[topic]) {
      return await run(COMMANDS[topic], [
        ...words.slice(1, 2),
        "--help",
        ...(json ? ["--json"] : []),
      ]);
    }
    if (topic !== undefined) return unknownCommand(topic, json);
    if (rest.includes("--version") || rest.includes("-V")) {
      console.log(json ? JSON.stringify(versionJson(), null, 2) : versionLine());
      return EXIT.ok;
    }
    const unknownFlag = rest.find((w) => !["--help", "-h", "--json"].includes(w));
    if (unknownFlag !== undefined) return unknownCommand(unknownFlag, json);
    console.log(
      json ? JSON.stringify({ ...versionJson(), commands: commandList() }, null, 2) : helpText(),
    );
    return EXIT.ok;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    console.log(rest.includes("--json") ? JSON.stringify(versionJson(), null, 2) : versionLine());
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) return unknownCommand(name, argv.includes("--json"));
  return await run(command, rest);
}

function unknownCommand(name: string, json: boolean): number {
  const known = [...Object.keys(COMMANDS), "help", "version"];
  const message = `unknown command "${name}"${didYouMean(name, known)}`;
  if (json) console.log(JSON.stringify({ error: { code: "usage", message } }, null, 2));
  else console.error(`rematch: ${message}; see ${currentProgram()} help`);
  return EXIT.usage;
}

if (import.meta.main) {
  setProgram(startedAs());
  Deno.exit(await runMain(Deno.args));
}
