import { z } from "zod";
import { defineCommand, EXIT } from "./command.ts";
import { applyMigrations, describeVersions } from "../db/migrate.ts";

/** `migrate`: applies pending migrations and prints the schema version. */
export const migrateCommand = defineCommand({
  name: "migrate",
  summary: "apply pending migrations, print the schema version",
  usage: `Usage: deno task migrate [--database-url URL] [--json]

Applies pending schema migrations (saying which on stderr) and prints the schema version.
Commands that write migrate on their own; commands that only read (emissions export) refuse a
database that is behind and ask for this one.`,
  options: {},
  schema: z.object({ positionals: z.array(z.string()).max(0, "migrate takes no arguments") }),
  access: "write",
  async run(_args, context) {
    const db = await context.database();
    // Opening for writing has migrated already; a database opened elsewhere is migrated here.
    const result = db.migrations ?? await applyMigrations(db.sql);
    return {
      exitCode: EXIT.ok,
      json: { database: db.kind, schemaVersion: result.version, applied: result.applied },
      text: result.applied.length
        ? `applied ${describeVersions(result.applied)}: schema version ${result.version}`
        : `schema version ${result.version} (up to date)`,
    };
  },
});
