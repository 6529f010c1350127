// The one way commands parse flags, open the database, print and exit (spec/interfaces.md §2).
import { dirname, isAbsolute, resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig["options"]>;
import { z } from "zod";
import {
  type Database,
  type DatabaseAccess,
  isConnectionLost,
  openDatabase,
  redactSecrets,
} from "../db/connection.ts";
import { yearProblem } from "../reference/years.ts";
import { findDataEntryType, unknownDataEntryType } from "../reference/enums.ts";
import { parseByteSize } from "../imports/file.ts";
import { SCHEMA_VERSION } from "../db/migrate.ts";
import { didYouMean } from "../text/did_you_mean.ts";
import { VERSION } from "../version.ts";
import { clearStatusLine } from "./progress.ts";

/** Exit codes: 0 done; 3 done with per-entry or per-row errors; 1 failed; 2 bad usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2, partial: 3 } as const;

/** A flag or argument error: printed as one line pointing at `--help`, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** What a command hands back to be printed. */
export interface CommandOutcome {
  /** 0, 1 or 3 (usage errors are thrown as {@linkcode UsageError}). */
  exitCode: number;
  /** The one JSON document printed with `--json`. */
  json: unknown;
  /** Human text printed otherwise. */
  text: string;
  /**
   * Print `text` on standard error rather than standard output: an error of a command whose
   * standard output carries data (`factors export`), which `> file` must not catch.
   */
  stderr?: boolean;
}

/** What a command receives besides its validated flags. */
export interface CommandContext {
  /**
   * Opens the selected database (once; closed by the runner). `maxConnections` sizes a server
   * pool (long-running commands: the HTTP server and workers).
   */
  database(options?: { maxConnections?: number }): Promise<Database>;
  /** True with `--json`. */
  json: boolean;
  /** True when stderr is a terminal (progress bars). */
  interactive: boolean;
  /** The `--database-url` flag when given (commands that make their own databases read it). */
  databaseUrl?: string;
}

/** One command: its flags, their validation and its body. */
export interface CommandSpec<T> {
  /** Command name as typed after `deno task` (e.g. `factors import`). */
  name: string;
  /**
   * One line for the command list of `help` (e.g. "apply pending migrations"). @default the
   * first sentence of the usage text's description
   */
  summary?: string;
  /**
   * The usage text shown by `--help`. Commands are named as `deno task <name>`: the runner
   * rewrites that to the way the program was started (see {@linkcode setProgram}).
   */
  usage: string;
  /** node:util parseArgs options, besides the common --help, --json and --database-url. */
  options: ParseArgsOptionsConfig;
  /** Validates `{...flags, positionals}` into the command's arguments. */
  schema: z.ZodType<T>;
  /**
   * `read` when the command (with these arguments) only reads: it then refuses a database
   * without the schema, or behind it, instead of migrating. @default "write"
   */
  access?: DatabaseAccess | ((args: T) => DatabaseAccess);
  /**
   * The command stops gracefully on SIGINT/SIGTERM itself (serve, worker): the runner then does
   * not exit at once on them. @default false
   */
  handlesStopSignals?: boolean;
  /** The command's body. */
  run(args: T, context: CommandContext): Promise<CommandOutcome>;
}

const COMMON_OPTIONS: ParseArgsOptionsConfig = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  json: { type: "boolean" },
  "database-url": { type: "string" },
  "connect-timeout": { type: "string" },
  "no-wait": { type: "boolean" },
};

/** The flags every command takes, shown after each command's own usage. */
export const COMMON_USAGE = `Every command also takes:
  --database-url URL       a PostgreSQL server (default: DATABASE_URL, else the embedded
                           database); a password belongs in DATABASE_URL or PGPASSWORD, not here
  --connect-timeout S      seconds per attempt to reach the server, 3 attempts
                           (default: REMATCH_CONNECT_TIMEOUT, else 10)
  --no-wait                fail at once when another command has the embedded database open
  --json                   print exactly one JSON document
  --help                   this text
  --version                the program's version and the schema version it needs`;

// How the program was started: usage texts and hints name commands this way.
let program = "deno task";

/**
 * Says how the program was started, so that usage texts and hints name commands the way the
 * user typed them: `deno task` (the default: one script per command), `rematch` (the compiled
 * binary) or `deno run -A rematch.js` (the bundle). Entry points call it once, first.
 */
export function setProgram(name: string): void {
  program = name;
}

/** How the program was started (see {@linkcode setProgram}). */
export function currentProgram(): string {
  return program;
}

/**
 * A file path the user typed, as they meant it. `deno task` runs every task in the directory of
 * `deno.json`, whatever directory it was started from; it says which in `INIT_CWD`, and a relative
 * path is taken from there. Absolute paths, and every path given to the bundle or the binary
 * (which run where they are started), are used as given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { userPath } from "./command.ts";
 * assert.equal(userPath("/tmp/it.csv"), "/tmp/it.csv");
 * ```
 */
export function userPath(path: string): string {
  // deno task says it ran the task (npm_config_user_agent "deno/..."); an INIT_CWD left by npm or
  // by hand in the environment of a plain `deno run` is not where this command was started.
  const underDenoTask = /^deno\//.test(Deno.env.get("npm_config_user_agent") ?? "");
  const started = program === "deno task" && underDenoTask ? Deno.env.get("INIT_CWD") : undefined;
  if (!started || isAbsolute(path) || resolve(started) === Deno.cwd()) return path;
  return resolve(started, path);
}

/**
 * Refuses (a usage error naming `--output`) an output file the command cannot use, before any
 * work: with `json`, one that is standard output under another name (the JSON document goes
 * there); one whose directory does not exist or is no directory.
 */
export async function checkOutputFile(path: string, json: boolean): Promise<void> {
  if (json && await isStandardOutput(path)) {
    throw new UsageError(
      `--output: ${path} is standard output, which carries the JSON document with --json: ` +
        "name a file, or leave out --json",
    );
  }
  const directory = dirname(resolve(path));
  const info = await Deno.stat(directory).catch(() => undefined);
  if (!info?.isDirectory) {
    throw new UsageError(
      `--output: ${path} cannot be written: ${directory} ${
        info ? "is no directory" : "does not exist"
      }`,
    );
  }
}

/**
 * Whether `path` names this process's standard output (`/dev/stdout`, `/dev/fd/1`,
 * `/proc/self/fd/1`, or the very file standard output is redirected to): with `--json` standard
 * output carries the one JSON document, so nothing else may be written there. `/dev/null` is
 * never standard output here (nothing written to it is seen); false where it cannot be told.
 */
export async function isStandardOutput(path: string): Promise<boolean> {
  if (resolve(path) === "/dev/null") return false;
  try {
    const [target, stdout] = await Promise.all([Deno.stat(path), Deno.stat("/dev/stdout")]);
    return target.ino !== null && target.dev === stdout.dev && target.ino === stdout.ino;
  } catch {
    return false;
  }
}

/**
 * Rewrites `deno task <command>` in a text to the way the program was started.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nameProgram, setProgram } from "./command.ts";
 * setProgram("deno run -A rematch.js");
 * assert.equal(nameProgram("run `deno task migrate` first"), "run `deno run -A rematch.js migrate` first");
 * setProgram("deno task");
 * ```
 */
export function nameProgram(text: string): string {
  return program === "deno task" ? text : text.replaceAll(/\bdeno task (?=[a-z])/g, `${program} `);
}

/** `rematch 0.1.0 (schema version 3)`: what `--version` prints. */
export function versionLine(): string {
  return `rematch ${VERSION} (schema version ${SCHEMA_VERSION})`;
}

/** The `--json` document of `--version`. */
export function versionJson(): { name: string; version: string; schemaVersion: number } {
  return { name: "rematch", version: VERSION, schemaVersion: SCHEMA_VERSION };
}

/**
 * The one line a usage error prints: what is wrong, then where the help is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { usageErrorLine } from "./command.ts";
 * assert.equal(
 *   usageErrorLine("migrate", "migrate takes no arguments"),
 *   "migrate: migrate takes no arguments; see deno task migrate --help",
 * );
 * ```
 */
export function usageErrorLine(command: string, message: string): string {
  return `${command}: ${message.split("\n").join("; ")}; see ${program} ${command} --help`;
}

/**
 * The flag that takes one value and was given it twice (`--year 2025 --year 2024`: which one was
 * meant?), as a usage error's message; undefined when none was.
 */
function givenTwice(
  tokens: NonNullable<ReturnType<typeof parseArgs>["tokens"]>,
  options: ParseArgsOptionsConfig,
): string | undefined {
  const seen = new Map<string, string | undefined>();
  for (const token of tokens) {
    if (token.kind !== "option" || options[token.name]?.multiple) continue;
    if (options[token.name]?.type !== "string") continue;
    if (seen.has(token.name)) {
      const values = [seen.get(token.name), token.value].map((v) => JSON.stringify(v ?? ""));
      return `--${token.name} given twice (${values.join(" and ")}): give it once`;
    }
    seen.set(token.name, token.value);
  }
  return undefined;
}

/**
 * The one-line summary of a command: its `summary`, else the first sentence of its usage text's
 * description (the first paragraph not starting with "Usage").
 */
export function commandSummary(spec: { summary?: string; usage: string }): string {
  if (spec.summary) return spec.summary;
  const paragraph = spec.usage.split(/\n\s*\n/).map((p) => p.trim())
    .find((p) => p && !/^usage\b/i.test(p)) ?? "";
  const text = paragraph.replace(/\s+/g, " ");
  const sentence = /^(.*?[.:])(\s|$)/.exec(text)?.[1] ?? text;
  return sentence.replace(/[.:]$/, "").replace(/^./, (c) => c.toLowerCase());
}

const connectTimeoutFlag = z.string().regex(
  /^\d+(\.\d+)?$/,
  "expected a number of seconds (e.g. 10)",
)
  .transform(Number).refine((s) => s > 0, "expected a number of seconds above 0").optional();

/** Defines a command (identity function that keeps the argument type). */
export function defineCommand<T>(spec: CommandSpec<T>): CommandSpec<T> {
  return spec;
}

/** Turns a zod error into one line per problem naming the flag. */
export function describeZodError(error: z.ZodError, prefix = "--"): string {
  return error.issues.map((issue) => {
    const [head] = issue.path;
    const field = head === "positionals"
      ? "arguments: "
      : issue.path.length
      ? `${prefix}${issue.path.join(".")}: `
      : "";
    return `${field}${issue.message}`;
  }).join("\n");
}

/** Runs a command with argv and returns the process exit code. */
export async function runCommand<T>(spec: CommandSpec<T>, argv: string[]): Promise<number> {
  const wantsJson = argv.includes("--json");
  // Every password the command line or the environment names is kept out of what is printed.
  const urls = argv.filter((arg, i) => argv[i - 1] === "--database-url" || arg.includes("://"));
  const redact = (text: string) => redactSecrets(text, urls);
  let db: Database | undefined;
  const stopSignals = spec.handlesStopSignals ? () => {} : listenForSignals(spec.name, wantsJson);
  try {
    const options = { ...COMMON_OPTIONS, ...spec.options };
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        options,
        allowPositionals: true,
        strict: true,
        tokens: true,
      });
    } catch (error) {
      throw new UsageError(describeParseError(error, options));
    }
    const values = parsed.values as Record<string, unknown>;
    const twice = givenTwice(parsed.tokens, options);
    if (twice && !values.help) throw new UsageError(twice);
    if (values.help) {
      const usage = nameProgram(`${spec.usage}\n\n${COMMON_USAGE}`);
      // With --json, as every answer: one document (the usage as its text).
      console.log(wantsJson ? JSON.stringify({ command: spec.name, usage }, null, 2) : usage);
      return EXIT.ok;
    }
    if (values.version) {
      console.log(wantsJson ? JSON.stringify(versionJson(), null, 2) : versionLine());
      return EXIT.ok;
    }
    const {
      help: _help,
      version: _version,
      json: _json,
      "database-url": databaseUrl,
      "connect-timeout": connectTimeoutText,
      "no-wait": noWait,
      ...flags
    } = values;
    // A command that declares --no-wait itself (rematch: the slice lock) also receives it.
    if ("no-wait" in spec.options && noWait !== undefined) flags["no-wait"] = noWait;
    const timeout = connectTimeoutFlag.safeParse(connectTimeoutText);
    if (!timeout.success) {
      throw new UsageError(describeZodError(timeout.error).replace(/^/, "--connect-timeout: "));
    }
    const checked = spec.schema.safeParse({ ...flags, positionals: parsed.positionals });
    if (!checked.success) throw new UsageError(describeZodError(checked.error));
    const access = typeof spec.access === "function"
      ? spec.access(checked.data)
      : spec.access ?? "write";
    const context: CommandContext = {
      json: wantsJson,
      interactive: Deno.stderr.isTerminal(),
      databaseUrl: databaseUrl as string | undefined,
      async database(options) {
        // A relative REMATCH_DATA_DIR is the user's, as a file path is (the default, unset, stays
        // the checkout's ./.rematch/db).
        const dataDir = Deno.env.get("REMATCH_DATA_DIR");
        db ??= await openDatabase({
          databaseUrl: databaseUrl as string | undefined,
          ...(dataDir ? { dataDir: userPath(dataDir) } : {}),
          access,
          connectTimeout: timeout.data,
          wait: !noWait,
          maxConnections: options?.maxConnections,
        });
        return db;
      },
    };
    const outcome = await spec.run(checked.data, context);
    stopSignals();
    clearStatusLine();
    if (wantsJson) console.log(JSON.stringify(redactJson(outcome.json, redact), null, 2));
    // Hints in the text (`bring them up to date: deno task rematch ...`) name the program as
    // started; the JSON keeps them as data.
    else if (outcome.text && outcome.stderr) console.error(redact(nameProgram(outcome.text)));
    else if (outcome.text) console.log(redact(nameProgram(outcome.text)));
    return outcome.exitCode;
  } catch (error) {
    stopSignals();
    const usage = error instanceof UsageError;
    let message = nameProgram(redact(error instanceof Error ? error.message : String(error)));
    // Lost once open (a server restarted, a session terminated): say what it means for the work.
    const lost = db !== undefined && isConnectionLost(error);
    if (lost) {
      message = `the connection to the database was lost (${message}): the server rolled back ` +
        "the transaction in progress; what the command committed before stays (a commit under " +
        "way when the connection went may have gone through)";
    }
    if (wantsJson) {
      console.log(
        JSON.stringify(
          {
            error: {
              code: usage ? "usage" : lost ? "ConnectionLostError" : errorCode(error),
              message,
            },
          },
          null,
          2,
        ),
      );
    } else {
      clearStatusLine();
      console.error(usage ? usageErrorLine(spec.name, message) : `${spec.name}: ${message}`);
    }
    return usage ? EXIT.usage : EXIT.failed;
  } finally {
    stopSignals();
    await db?.close();
  }
}

/** Exit codes of a command stopped by a signal (128 + the signal's number). */
export const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

// What to undo on the way out when a signal ends the command (the process exits at once, so no
// `finally` runs): a temporary directory, a partly written file.
const interruptCleanups = new Set<() => void>();

/**
 * Runs `cleanup` (synchronous: the process exits right after) if SIGINT or SIGTERM ends the
 * command before the returned function is called.
 */
export function onInterrupt(cleanup: () => void): () => void {
  interruptCleanups.add(cleanup);
  return () => interruptCleanups.delete(cleanup);
}

// While a command runs, SIGINT and SIGTERM end it with one line saying what became of its work.
// Exiting drops the connections, so PostgreSQL (or PGlite, at its next start) rolls back the
// transaction in progress; transactions committed before stay. Returns the undo.
function listenForSignals(name: string, json: boolean): () => void {
  const listeners: [Deno.Signal, () => void][] = [];
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const listener = () => {
      const message = `interrupted by ${signal}: the transaction in progress was rolled back ` +
        "(nothing of it is committed; work committed before it stays)";
      clearStatusLine();
      for (const cleanup of interruptCleanups) {
        try {
          cleanup();
        } catch {
          // Best effort: the exit and its message matter more.
        }
      }
      if (json) console.log(JSON.stringify({ error: { code: "interrupted", message } }));
      else console.error(`${name}: ${message}`);
      Deno.exit(SIGNAL_EXIT[signal]);
    };
    try {
      Deno.addSignalListener(signal, listener);
      listeners.push([signal, listener]);
    } catch {
      // a platform without this signal
    }
  }
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  };
}

// Every string of the JSON document, redacted; taken from its JSON form, so what is redacted is
// exactly what would have been printed.
function redactJson(value: unknown, redact: (text: string) => string): unknown {
  const text = JSON.stringify(value);
  return text === undefined
    ? value
    : JSON.parse(text, (_key, item) => typeof item === "string" ? redact(item) : item);
}

// node:util's parse errors, said the way the rest of the usage errors are, with the closest
// known flag when one is close.
function describeParseError(error: unknown, options: ParseArgsOptionsConfig): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  const flags = Object.entries(options).flatMap(([name, option]) => [
    `--${name}`,
    ...(option.short ? [`-${option.short}`] : []),
  ]);
  const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && unknown) {
    return `unknown flag ${unknown}${didYouMean(unknown, flags)}`;
  }
  const missing = /^Option '(-\S+)(?:, (--\S+))? <value>' argument missing/.exec(message);
  if (missing) return `${missing[2] ?? missing[1]} expects a value`;
  const ambiguous = /^Option '(-\S+)' argument is ambiguous/.exec(message);
  if (ambiguous) {
    return `${ambiguous[1]} expects a value (one starting with "-" is given as ${
      ambiguous[1]
    }=-VALUE)`;
  }
  const extra = /^Option '(-\S+)(?:, (--\S+))?' does not take an argument/.exec(message);
  if (extra) return `${extra[2] ?? extra[1]} takes no value`;
  return message;
}

function errorCode(error: unknown): string {
  return error instanceof Error && error.name !== "Error" ? error.name : "failed";
}

/** Runs the command as the main module (`deno task <name>`) and exits with its code. */
export async function main<T>(spec: CommandSpec<T>): Promise<never> {
  Deno.exit(await runCommand(spec, Deno.args));
}

/** zod helpers for flags shared by several commands. */
export const flag = {
  /** An integer flag given as text (e.g. `--year 2025`). */
  int: (name: string) =>
    z.string({ error: `expected an integer for ${name}` }).regex(/^-?\d+$/, `expected an integer`)
      .transform(Number)
      // 99999999999999999999 is no count anyone means (it reached the database as one).
      .refine(Number.isSafeInteger, "too large"),
  /**
   * A data entry type by name (any case) or id; gives its name. An unknown one is refused with
   * the closest names and the list of valid ones.
   */
  det: () =>
    z.string().transform((value, ctx) => {
      const det = findDataEntryType(value);
      if (!det) {
        ctx.addIssue({ code: "custom", message: unknownDataEntryType(value) });
        return z.NEVER;
      }
      return det.name as string;
    }),
  /** A year in MIN_YEAR..MAX_YEAR (`src/reference/years.ts`). */
  year: () =>
    z.string({ error: "is required (e.g. --year 2025)" }).regex(
      /^\d{4}$/,
      "expected a 4-digit year",
    )
      .transform(Number).superRefine((value, ctx) => {
        const problem = yearProblem(value);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }),
  /** A size in bytes, with an optional binary unit (e.g. `--max-file-size 1GiB`). */
  byteSize: () =>
    z.string().transform((value, ctx) => {
      const bytes = parseByteSize(value);
      if (bytes === undefined) {
        ctx.addIssue({
          code: "custom",
          message: `expected a size such as 512MiB, 2GiB or a number of bytes, got "${value}"`,
        });
        return z.NEVER;
      }
      return bytes;
    }),
};
