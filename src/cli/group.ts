// Commands with subcommands (`factors import|history|...`, `reports freeze|unfreeze`): the first
// argument picks the subcommand, which parses the whole argument list as any command does.
import { z } from "zod";
import {
  type CommandSpec,
  commandSummary,
  EXIT,
  nameProgram,
  runCommand,
  usageErrorLine,
  versionJson,
  versionLine,
} from "./command.ts";
import { didYouMean } from "../text/did_you_mean.ts";

/** A command made of subcommands. */
export interface CommandGroup {
  /** Command name as typed after `deno task` (e.g. `factors`). */
  readonly name: string;
  /** Shown by `--help` and when no (or an unknown) subcommand is given. */
  readonly usage: string;
  // deno-lint-ignore no-explicit-any
  readonly subcommands: Readonly<Record<string, CommandSpec<any>>>;
  /** Runs when the first argument names no subcommand (`rematch --det D ...`). */
  // deno-lint-ignore no-explicit-any
  readonly fallback?: CommandSpec<any>;
}

/** Defines a command group (identity function). */
export function defineGroup(group: CommandGroup): CommandGroup {
  return group;
}

/**
 * Runs the subcommand named by `argv[0]` with the whole of `argv` (each subcommand checks its
 * own name); the fallback, when there is one, for anything else. Returns the exit code.
 */
export async function runGroup(group: CommandGroup, argv: string[]): Promise<number> {
  const [first] = argv;
  const sub = first === undefined ? undefined : group.subcommands[first];
  if (sub) return await runCommand(sub, argv);
  if (group.fallback) return await runCommand(group.fallback, argv);
  const wantsJson = argv.includes("--json");
  if (first === "--help" || first === "-h") {
    const usage = nameProgram(group.usage);
    console.log(wantsJson ? JSON.stringify({ command: group.name, usage }, null, 2) : usage);
    return EXIT.ok;
  }
  if (first === "--version") {
    console.log(wantsJson ? JSON.stringify(versionJson(), null, 2) : versionLine());
    return EXIT.ok;
  }
  const names = Object.keys(group.subcommands);
  const message = first === undefined || first.startsWith("-")
    ? `expected a subcommand: ${names.join(", ")}`
    : `unknown subcommand "${first}"${didYouMean(first, names)} (expected ${names.join(", ")})`;
  if (wantsJson) console.log(JSON.stringify({ error: { code: "usage", message } }, null, 2));
  else console.error(usageErrorLine(group.name, message));
  return EXIT.usage;
}

/**
 * The lines `help` lists for a group: the group itself when it runs something without a
 * subcommand (its fallback), then each subcommand, each with its one-line summary.
 */
export function groupSummaries(group: CommandGroup): { name: string; summary: string }[] {
  return [
    ...(group.fallback ? [{ name: group.name, summary: commandSummary(group.fallback) }] : []),
    ...Object.entries(group.subcommands).map(([name, spec]) => ({
      name: `${group.name} ${name}`,
      summary: commandSummary(spec),
    })),
  ];
}

/** Runs the group as the main module and exits with its code. */
export async function mainGroup(group: CommandGroup): Promise<never> {
  Deno.exit(await runGroup(group, Deno.args));
}

/**
 * The positionals of a subcommand that takes no other argument: exactly its name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { subcommandOnly } from "./group.ts";
 * assert.ok(subcommandOnly("history").safeParse(["history"]).success);
 * assert.ok(!subcommandOnly("history").safeParse(["history", "extra"]).success);
 * ```
 */
export function subcommandOnly(name: string) {
  return z.array(z.string()).superRefine((p, ctx) => {
    if (p.length === 1 && p[0] === name) return;
    ctx.addIssue({
      code: "custom",
      message: `expected "${name}" and flags only (got ${
        p.length ? p.map((x) => `"${x}"`).join(" ") : "nothing"
      })`,
    });
  });
}
