// The flags of the checkout's own tools (test, bundle, compile): `--help` prints their usage, any
// other flag they do not take is a usage error (exit 2), as for every command of the program.

/** What a tool takes besides `--help`. */
export interface ToolArgs {
  /** Flags it takes (e.g. `--no-checks`). */
  readonly flags?: readonly string[];
  /** Whether it takes arguments that are not flags (e.g. test paths). */
  readonly positionals?: boolean;
}

/**
 * Exits after printing `usage` on `--help`/`-h`, or one line naming what is wrong (exit 2);
 * returns the arguments otherwise.
 */
export function checkToolArgs(
  name: string,
  usage: string,
  takes: ToolArgs = {},
  args: readonly string[] = Deno.args,
): readonly string[] {
  if (args.some((a) => a === "--help" || a === "-h")) {
    console.log(usage);
    Deno.exit(0);
  }
  const wrong = args.find((a) => a.startsWith("-") && !takes.flags?.includes(a));
  const extra = takes.positionals ? undefined : args.find((a) => !a.startsWith("-"));
  if (wrong !== undefined || extra !== undefined) {
    const problem = wrong !== undefined
      ? `unknown flag ${wrong}`
      : `takes no arguments (got ${JSON.stringify(extra)})`;
    console.error(`${name}: ${problem}; see deno task ${name} --help`);
    Deno.exit(2);
  }
  return args;
}
