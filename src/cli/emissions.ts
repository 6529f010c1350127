// `emissions export --det D --year Y`: every emission row of a (det, year) slice as CSV or JSON,
// streamed page by page (spec/interfaces.md §2); the export itself is src/db/emissions_export.ts.
import { z } from "zod";
import { basename, dirname, join, resolve } from "node:path";
import {
  checkOutputFile,
  defineCommand,
  EXIT,
  flag,
  onInterrupt,
  UsageError,
  userPath,
} from "./command.ts";
import { type EmissionExportFormat, exportEmissions } from "../db/emissions_export.ts";
import { type DataEntryType, findDataEntryType, unknownDataEntryType } from "../reference/enums.ts";

/** The validated arguments of `emissions export`. */
export interface EmissionsExportArgs {
  readonly det: DataEntryType;
  readonly year: number;
  readonly format: EmissionExportFormat;
  /** The file to write; standard output when absent. */
  readonly output?: string;
}

const USAGE = `Usage: deno task emissions export --det D --year Y [--format csv|json]
         [--output FILE] [--json] [--database-url URL]

Writes every emission row of one data entry type and year, ordered by entry id then emission
type: entry_id, module_id, unit_code, data_entry_type, emission_type_id, emission_type,
primary_factor_id, kg_co2eq, additional_value, scope.

  --det D          data entry type (name such as plane, or its id)
  --year Y         report year
  --format F       csv (with a header, default) or json (one array)
  --output FILE    write to FILE instead of standard output
  --json           print a JSON summary (needs --output: standard output carries the rows)

Exit codes: 0 done, 1 failed, 2 bad usage.`;

const schema = z.object({
  positionals: z.array(z.string()),
  det: z.string({ error: "is required (e.g. --det plane)" }),
  year: flag.year(),
  format: z.enum(["csv", "json"], { error: 'expected "csv" or "json"' }).default("csv"),
  output: z.string().min(1, "expected a file name").optional(),
}).transform((flags, ctx): EmissionsExportArgs => {
  if (flags.positionals.length !== 1 || flags.positionals[0] !== "export") {
    ctx.addIssue({
      code: "custom",
      path: ["positionals"],
      message: `expected "export" (got ${
        flags.positionals.length ? flags.positionals.map((p) => `"${p}"`).join(" ") : "nothing"
      })`,
    });
    return z.NEVER;
  }
  const det = findDataEntryType(flags.det);
  if (!det) {
    ctx.addIssue({
      code: "custom",
      path: ["det"],
      message: unknownDataEntryType(flags.det),
    });
    return z.NEVER;
  }
  return {
    det,
    year: flags.year,
    format: flags.format,
    output: flags.output === undefined ? undefined : userPath(flags.output),
  };
});

/** `emissions export --det D --year Y [--format csv|json] [--output FILE]` */
export const emissionsCommand = defineCommand({
  name: "emissions",
  summary: "every emission row of a slice, as CSV or JSON (export)",
  usage: USAGE,
  options: {
    det: { type: "string" },
    year: { type: "string" },
    format: { type: "string" },
    output: { type: "string" },
  },
  schema,
  access: "read",
  async run(args, context) {
    if (context.json && !args.output) {
      // Standard output carries the rows; a second JSON document would corrupt them.
      throw new UsageError(
        "--json needs --output FILE (without it the rows go to standard output)",
      );
    }
    if (args.output) await checkOutputFile(args.output, context.json);
    const db = await context.database();
    const slice = { det: args.det.id, year: args.year, format: args.format };
    let rows: number;
    // Where the rows go: the output, or through a link to its target (the link stays a link).
    let destination = args.output;
    // /dev/stdout, /proc/self/fd/N: the stream they stand for, written through as given.
    const stream = destination !== undefined && /^\/(dev|proc)\//.test(resolve(destination));
    if (
      destination && !stream && (await Deno.lstat(destination).catch(() => undefined))?.isSymlink
    ) {
      destination = await Deno.realPath(destination).catch(() =>
        resolve(dirname(args.output!), Deno.readLinkSync(args.output!))
      );
    }
    const existing = destination ? await Deno.stat(destination).catch(() => undefined) : undefined;
    if (destination && (stream || (existing && !existing.isFile))) {
      // A device or a pipe (/dev/stdout, >(gzip ...)) is written through, as given.
      using file = await Deno.open(destination, { write: true, create: true, truncate: !stream });
      rows = await exportEmissions(db, slice, file);
    } else if (destination) {
      // A file is written beside and renamed into place when whole: an export that fails or is
      // interrupted leaves it as it was (or absent), never cut short. The new one is created as
      // a new file would be (the umask's permissions), or with those of the file it replaces.
      const partial = join(
        dirname(resolve(destination)),
        `.${basename(destination)}.${crypto.randomUUID().slice(0, 8)}.partial`,
      );
      // Set before the file exists (a signal may come while it is being created).
      const forget = onInterrupt(() => Deno.removeSync(partial));
      try {
        {
          using file = await Deno.open(partial, { write: true, createNew: true, mode: 0o666 });
          if (existing?.mode != null) await Deno.chmod(partial, existing.mode & 0o7777);
          rows = await exportEmissions(db, slice, file);
        }
        await Deno.rename(partial, destination);
      } catch (error) {
        await Deno.remove(partial).catch(() => {});
        throw error;
      } finally {
        forget();
      }
    } else {
      try {
        rows = await exportEmissions(db, slice, Deno.stdout);
      } catch (error) {
        // The reader stopped early (`... | head`): what it wanted was written.
        if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
        return { exitCode: EXIT.ok, json: null, text: "" };
      }
    }
    const summary = {
      dataEntryType: args.det.name,
      year: args.year,
      format: args.format,
      rows,
      output: args.output ?? null,
    };
    return {
      exitCode: EXIT.ok,
      json: summary,
      // With the rows on standard output (or a stream standing for it), nothing else goes there.
      text: args.output && !stream
        ? `${rows} emission rows of ${args.det.name} ${args.year} written to ${args.output} (${args.format})`
        : "",
    };
  },
});
