// Uploaded files, kept in the database in chunks so that a worker on any host can read them
// (the API only needs PostgreSQL in common with the workers). A request names an upload only by
// the server-chosen `uploads/<uuid>.csv`: nothing from a request ever names a path on disk.
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Queryable, Sql } from "../db/connection.ts";
import { FileError } from "../imports/file.ts";
import { utf8Pieces } from "../imports/csv.ts";
import { transaction } from "../db/transaction.ts";

/** Bytes per stored chunk: memory stays bounded by this while a file is stored or read. */
export const UPLOAD_CHUNK_BYTES = 1024 * 1024;

/** An upload as stored. */
export interface StoredUpload {
  readonly id: string;
  /** What a request names it by: `uploads/<id>.csv`. */
  readonly path: string;
  /** The name the client gave the file (sanitised). */
  readonly fileName: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  /** The file's first line (its header), without its line end. */
  readonly header: string;
}

/** How much of a file's start is kept to find its header line. */
const HEADER_BYTES = 64 * 1024;

const UPLOAD_PATH =
  /^uploads\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.csv$/;

/** The name a request gives an upload. */
export function uploadPath(id: string): string {
  return `uploads/${id}.csv`;
}

/**
 * The upload id a `file_path` names, or undefined when it is not of the server's own form
 * (`uploads/<uuid>.csv`): `../x`, `/etc/passwd` and every other text are refused unread.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseUploadPath } from "./uploads.ts";
 * assert.equal(
 *   parseUploadPath("uploads/0b6c6f1e-8f7a-4d4b-9a55-3c2d1e0f9a8b.csv"),
 *   "0b6c6f1e-8f7a-4d4b-9a55-3c2d1e0f9a8b",
 * );
 * assert.equal(parseUploadPath("../uploads/0b6c6f1e-8f7a-4d4b-9a55-3c2d1e0f9a8b.csv"), undefined);
 * assert.equal(parseUploadPath("/etc/passwd"), undefined);
 * ```
 */
export function parseUploadPath(path: string): string | undefined {
  return UPLOAD_PATH.exec(path)?.[1];
}

/**
 * A client's file name made safe to show and to write inside a directory of our own: the last
 * path segment, characters outside `A-Za-z0-9._-` replaced, at most 100 characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { safeFileName } from "./uploads.ts";
 * assert.equal(safeFileName("../../etc/plane v2.csv"), "plane_v2.csv");
 * assert.equal(safeFileName(".."), "upload.csv");
 * ```
 */
export function safeFileName(name: string): string {
  const last = name.split(/[\\/]/).pop() ?? "";
  const cleaned = last.replace(/[^A-Za-z0-9._-]/g, "_").slice(-100);
  return /^\.*$/.test(cleaned) ? "upload.csv" : cleaned;
}

/**
 * Stores a local file as an upload, streaming it in chunks in one transaction, and returns it.
 * A file that is not UTF-8 text, or holds nothing but blanks, is refused with a FileError naming
 * it, and nothing is stored: no import could read it.
 */
export async function storeUpload(
  sql: Sql,
  local: {
    path: string;
    fileName: string;
    actor: string | null;
    /**
     * Checks the header line (of the file named as stored) before anything is committed: a throw
     * stores nothing.
     */
    checkHeader?: (header: string, fileName: string) => void;
  },
): Promise<StoredUpload> {
  const id = crypto.randomUUID();
  const fileName = safeFileName(local.fileName);
  const hash = createHash("sha256");
  const decode = utf8Pieces(fileName, local.path);
  let head = "";
  let blank = true;
  const read = (text: string) => {
    if (head.length < HEADER_BYTES) head += text.slice(0, HEADER_BYTES - head.length);
    if (blank && /[^\s\uFEFF,]/.test(text)) blank = false;
  };
  let size = 0;
  let sha256 = "";
  await transaction(sql, async (tx) => {
    await tx`insert into uploads (id, file_name, size_bytes, sha256, actor)
      values (${id}, ${fileName}, 0, '', ${local.actor})`;
    using file = await Deno.open(local.path, { read: true });
    let seq = 0;
    for await (const chunk of chunked(file.readable, UPLOAD_CHUNK_BYTES)) {
      hash.update(chunk);
      size += chunk.byteLength;
      read(await decode(chunk));
      await tx`insert into upload_chunks (upload_id, seq, data)
        values (${id}, ${seq++}, ${Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)})`;
    }
    read(await decode());
    if (blank) throw new FileError(fileName, "is empty (expected a header row)");
    local.checkHeader?.(headerLine(head), fileName);
    sha256 = hash.digest("hex");
    await tx`update uploads set size_bytes = ${size}, sha256 = ${sha256} where id = ${id}`;
  });
  return { id, path: uploadPath(id), fileName, sizeBytes: size, sha256, header: headerLine(head) };
}

/**
 * The first line of a text, as the CSV reader takes its header: BOM and lines of blanks and commas
 * before it left out, without its line end.
 */
function headerLine(text: string): string {
  const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\n|\r/);
  return lines.find((line) => /[^\s,]/.test(line)) ?? "";
}

/** The header line of a stored upload (from its first chunk). */
export async function uploadHeader(sql: Queryable, id: string): Promise<string> {
  const [first] = await sql<{ data: Uint8Array }[]>`
    select substring(data from 1 for ${HEADER_BYTES}) as data from upload_chunks
    where upload_id = ${id} and seq = 0`;
  return headerLine(first ? new TextDecoder().decode(first.data) : "");
}

/** Regroups a byte stream into chunks of exactly `size` bytes (the last one shorter). */
async function* chunked(
  stream: ReadableStream<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  let pending = new Uint8Array(size);
  let filled = 0;
  for await (const part of stream) {
    let at = 0;
    while (at < part.byteLength) {
      const take = Math.min(size - filled, part.byteLength - at);
      pending.set(part.subarray(at, at + take), filled);
      filled += take;
      at += take;
      if (filled === size) {
        yield pending;
        pending = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield pending.subarray(0, filled);
}

/** An upload's row, or undefined. */
export async function findUpload(
  sql: Queryable,
  id: string,
): Promise<{ id: string; file_name: string; size_bytes: number } | undefined> {
  const [row] = await sql<{ id: string; file_name: string; size_bytes: number }[]>`
    select id, file_name, size_bytes from uploads where id = ${id}`;
  return row;
}

/**
 * Writes an upload into `dir` under its (sanitised) file name, chunk by chunk, and returns the
 * local path. Throws when the upload is gone.
 */
export async function materialiseUpload(sql: Sql, id: string, dir: string): Promise<string> {
  const upload = await findUpload(sql, id);
  if (!upload) throw new Error(`upload ${uploadPath(id)} no longer exists`);
  const path = join(dir, safeFileName(upload.file_name));
  using file = await Deno.open(path, { write: true, createNew: true });
  for (let seq = 0;; seq++) {
    const [chunk] = await sql<{ data: Uint8Array }[]>`
      select data from upload_chunks where upload_id = ${id} and seq = ${seq}`;
    if (!chunk) break;
    let written = 0;
    while (written < chunk.data.byteLength) {
      written += await file.write(chunk.data.subarray(written));
    }
  }
  return path;
}

/**
 * Deletes uploads older than `maxAgeSeconds` that no waiting or running job still needs.
 * Returns how many went.
 */
export async function deleteExpiredUploads(sql: Queryable, maxAgeSeconds: number): Promise<number> {
  const rows = await sql`
    delete from uploads u
    where u.created_at < clock_timestamp() - make_interval(secs => ${maxAgeSeconds})
      and not exists (
        select 1 from data_ingestion_jobs j
        where j.state <> 'FINISHED' and j.meta->'input'->>'upload_id' = u.id::text)
    returning id`;
  return rows.length;
}
