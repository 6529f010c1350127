// The embedded database: clean close, reopen right after, one process at a time; URL redaction.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseBusyError, openDatabase, redactDatabaseUrl } from "../../src/db/connection.ts";
import { SCHEMA_VERSION, schemaVersion } from "../../src/db/migrate.ts";

Deno.test({
  name:
    "embedded: a write survives close, the directory reopens at once, a second opener is refused",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "rematch-connection-" });
    const dataDir = join(dir, "db");
    try {
      const first = await openDatabase({ databaseUrl: "", dataDir, announce: false });
      assert.equal(first.kind, "embedded");
      assert.equal(await schemaVersion(first.sql), SCHEMA_VERSION);
      await first.sql`insert into units (code) values ('kept')`;
      await assert.rejects(
        () => openDatabase({ databaseUrl: "", dataDir, announce: false }),
        (e) => e instanceof DatabaseBusyError && /in use by process/.test(e.message),
      );
      await first.close();
      const second = await openDatabase({ databaseUrl: "", dataDir, announce: false });
      try {
        const rows = await second.sql<{ code: string }[]>`select code from units`;
        assert.deepEqual(rows.map((r) => r.code), ["kept"]);
      } finally {
        await second.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("redactDatabaseUrl: the password never shows", () => {
  assert.equal(
    redactDatabaseUrl("postgres://ops:s3cret@db.example:5432/carbon"),
    "postgres://ops@db.example:5432/carbon",
  );
  assert.equal(
    redactDatabaseUrl("postgres://postgres@127.0.0.1:5432/postgres"),
    "postgres://postgres@127.0.0.1:5432/postgres",
  );
  assert.doesNotMatch(redactDatabaseUrl("not a url s3cret"), /s3cret/);
});
