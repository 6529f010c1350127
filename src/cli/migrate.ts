import { z } from "zod";
import { defineCommand, EXIT } from "./command.ts";
import { applyMigrations } from "../db/migrate.ts";

/** `migrate`: applies pending migrations and prints the schema version. */
export const migrateCommand = defineCommand({
  name: "migrate",
  usage: `Usage: deno task migrate [--database-url URL] [--json]

Applies pending schema migrations and prints the schema version.`,
  options: {},
  schema: z.object({ positionals: z.array(z.string()).max(0, "migrate takes no arguments") }),
  async run(_args, context) {
    const db = await context.database();
    // openDatabase already migrated; this reports what is there and is a no-op.
    const result = await applyMigrations(db.sql);
    return {
      exitCode: EXIT.ok,
      json: { database: db.kind, schemaVersion: result.version },
      text: `schema version ${result.version}`,
    };
  },
});
