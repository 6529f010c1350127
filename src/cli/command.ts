// The one way commands parse flags, open the database, print and exit (spec/interfaces.md §2).
import { parseArgs, type ParseArgsConfig } from "node:util";

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig["options"]>;
import { z } from "zod";
import {
  type Database,
  type DatabaseAccess,
  openDatabase,
  redactSecrets,
} from "../db/connection.ts";
import { yearProblem } from "../reference/years.ts";
import { parseByteSize } from "../imports/file.ts";

/** Exit codes: 0 done; 3 done with per-entry or per-row errors; 1 failed; 2 bad usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2, partial: 3 } as const;

/** A flag or argument error: printed with the command's usage line, exit code 2. */
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
  /** The usage text shown by `--help` and after a usage error. */
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
  --help                   this text`;

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
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        options: { ...COMMON_OPTIONS, ...spec.options },
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const values = parsed.values as Record<string, unknown>;
    if (values.help) {
      console.log(`${spec.usage}\n\n${COMMON_USAGE}`);
      return EXIT.ok;
    }
    const {
      help: _help,
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
        db ??= await openDatabase({
          databaseUrl: databaseUrl as string | undefined,
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
    if (wantsJson) console.log(JSON.stringify(redactJson(outcome.json, redact), null, 2));
    else if (outcome.text) console.log(redact(outcome.text));
    return outcome.exitCode;
  } catch (error) {
    stopSignals();
    const usage = error instanceof UsageError;
    const message = redact(error instanceof Error ? error.message : String(error));
    if (wantsJson) {
      console.log(
        JSON.stringify({ error: { code: usage ? "usage" : errorCode(error), message } }, null, 2),
      );
    } else {
      console.error(`${spec.name}: ${message}`);
      if (usage) console.error(`\n${spec.usage}`);
    }
    return usage ? EXIT.usage : EXIT.failed;
  } finally {
    stopSignals();
    await db?.close();
  }
}

/** Exit codes of a command stopped by a signal (128 + the signal's number). */
export const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

// While a command runs, SIGINT and SIGTERM end it with one line saying what became of its work.
// Exiting drops the connections, so PostgreSQL (or PGlite, at its next start) rolls back the
// transaction in progress; transactions committed before stay. Returns the undo.
function listenForSignals(name: string, json: boolean): () => void {
  const listeners: [Deno.Signal, () => void][] = [];
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const listener = () => {
      const message = `interrupted by ${signal}: the transaction in progress was rolled back ` +
        "(nothing of it is committed; work committed before it stays)";
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

function errorCode(error: unknown): string {
  return error instanceof Error && error.name !== "Error" ? error.name : "failed";
}

/** Runs the command as the main module and exits with its code. */
export async function main<T>(spec: CommandSpec<T>): Promise<never> {
  Deno.exit(await runCommand(spec, Deno.args));
}

/** zod helpers for flags shared by several commands. */
export const flag = {
  /** An integer flag given as text (e.g. `--year 2025`). */
  int: (name: string) =>
    z.string({ error: `expected an integer for ${name}` }).regex(/^-?\d+$/, `expected an integer`)
      .transform(Number),
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
