// Run as a process of its own by connection_test.ts (an uncaught error ends the process it happens
// in): postgres.js 3.4.9 writes the ROLLBACK of a transaction whose connection has closed on a
// socket it has already let go (see isDriverWriteAfterClose). With a database opened through the
// product, as `worker` and `serve` open theirs, the process survives it; `--bare` shows the race
// without the product (the process dies).
import postgres from "postgres";
import type net from "node:net";
import { connectSocket, openDatabase } from "../../src/db/connection.ts";

const [url, mode] = Deno.args;
const product = mode === "--bare"
  ? undefined
  : await openDatabase({ databaseUrl: url, announce: false });
const opened: net.Socket[] = [];
const sql = postgres(url, {
  max: 1,
  onnotice: () => {},
  socket: (target: never) => connectSocket(target, opened),
} as never);
const failed = await sql.begin(async (tx) => {
  await tx`select 1`;
  const slow = tx`select pg_sleep(0.5)`;
  // The connection goes, as with pg_terminate_backend or a server restart, mid-transaction.
  opened[0].destroy();
  await slow;
}).then(() => "committed", (error) => error.code);
console.log(`transaction: ${failed}`);
// The stray write runs on the event loop's next turns.
await new Promise((resolve) => setTimeout(resolve, 200));
console.log("alive");
await sql.end({ timeout: 1 });
await product?.close();
