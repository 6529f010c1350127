// The one way an import reads its file: regular files only, and never more than a size limit, so
// that `/dev/zero`, a FIFO or a runaway file fails at once with a message instead of hanging or
// filling memory.
import { nameTable } from "../text/names.ts";
import v8 from "node:v8";

/** A file-level problem: nothing of the file may be written. */
export class FileError extends Error {
  override name = "FileError";
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
  }
}

/** The size limit of an import file when neither the caller nor the environment sets one. */
export const DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024;

/** The environment variable that sets the default size limit (e.g. `1GiB`). */
export const MAX_FILE_SIZE_ENV = "REMATCH_MAX_FILE_SIZE";

/** Options of {@linkcode readImportFile} and {@linkcode openImportFile}. */
export interface ImportFileOptions {
  /**
   * Files larger than this many bytes are refused.
   * @default the size in `REMATCH_MAX_FILE_SIZE`, else {@linkcode DEFAULT_MAX_FILE_BYTES}
   */
  readonly maxBytes?: number;
}

const UNITS: Readonly<Record<string, number>> = nameTable({
  "": 1,
  b: 1,
  byte: 1,
  bytes: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
});

/**
 * Parses a size such as `1048576`, `512k`, `300MiB` or `2GB` into bytes (units are binary:
 * k = 1024, case-insensitive); undefined when the text is not such a size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseByteSize } from "./file.ts";
 * assert.equal(parseByteSize("300MiB"), 300 * 1024 * 1024);
 * assert.equal(parseByteSize("2g"), 2 * 1024 ** 3);
 * assert.equal(parseByteSize("10 apples"), undefined);
 * ```
 */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = UNITS[match[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Number(match[1]) * unit;
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

/**
 * A byte count as a person reads it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeBytes } from "./file.ts";
 * assert.equal(describeBytes(256 * 1024 * 1024), "256 MiB");
 * assert.equal(describeBytes(1536), "1.5 KiB");
 * assert.equal(describeBytes(10), "10 bytes");
 * ```
 */
export function describeBytes(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} byte${bytes === 1 ? "" : "s"}`;
}

/**
 * Bytes of memory that reading one byte of a CSV file whole may take, at most: the text, its
 * records and its rows' objects (measured at 20 to 47 for factor and entry files of 10 to 80 MB).
 */
const MEMORY_PER_FILE_BYTE = 64;

/**
 * The largest file this process reads whole: a 64th of its JavaScript heap's limit, which Deno
 * sizes from the memory of the machine or container (about 65 MiB where that is 4 GiB, as on a
 * machine of 16 GB or more). Factor, reference and CSV entry files are read whole; a larger one
 * would end the process out of memory instead of being refused.
 */
export function wholeFileLimit(): number {
  return Math.floor(v8.getHeapStatistics().heap_size_limit / MEMORY_PER_FILE_BYTE);
}

/** A file too large for this process to read whole (see {@linkcode wholeFileLimit}). */
export class FileTooLargeToReadError extends FileError {
  override name = "FileTooLargeToReadError";
}

/**
 * Throws a {@linkcode FileTooLargeToReadError} when a file of `size` bytes is more than this
 * process can read whole.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkWholeFileSize, wholeFileLimit } from "./file.ts";
 * checkWholeFileSize("small.csv", 1024);
 * assert.throws(() => checkWholeFileSize("big.csv", wholeFileLimit() + 1), /read whole/);
 * ```
 */
export function checkWholeFileSize(path: string, size: number): void {
  const limit = wholeFileLimit();
  if (size <= limit) return;
  const heap = v8.getHeapStatistics().heap_size_limit;
  const neededMiB = Math.ceil((size * MEMORY_PER_FILE_BYTE) / 1024 ** 2);
  throw new FileTooLargeToReadError(
    path,
    `is ${describeBytes(size)}: a CSV file is read whole, and this process reads one of at most ` +
      `${describeBytes(limit)} (a ${MEMORY_PER_FILE_BYTE}th of its ${describeBytes(heap)} heap) ` +
      `without running out of memory: split it (entries also go as JSON lines, read as they ` +
      `come), or run with a larger heap (DENO_V8_FLAGS=--max-old-space-size=${neededMiB})`,
  );
}

/** The limit in force: the caller's, else the environment's, else the default. */
export function maxFileBytes(options: ImportFileOptions = {}): number {
  if (options.maxBytes !== undefined) return options.maxBytes;
  let configured: string | undefined;
  try {
    configured = Deno.env.get(MAX_FILE_SIZE_ENV);
  } catch {
    // No permission to read the environment: the default applies.
  }
  if (configured === undefined || configured.trim() === "") return DEFAULT_MAX_FILE_BYTES;
  const bytes = parseByteSize(configured);
  if (bytes === undefined) {
    throw new RangeError(
      `${MAX_FILE_SIZE_ENV}=${JSON.stringify(configured)}: expected a size such as 512MiB or 1GiB`,
    );
  }
  return bytes;
}

function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a named pipe (FIFO)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

function checkInfo(path: string, info: Deno.FileInfo, limit: number): void {
  if (!info.isFile) {
    throw new FileError(path, `is ${kindOf(info)}: an import reads a regular file only`);
  }
  if (info.size > limit) {
    throw tooLarge(path, `is ${describeBytes(info.size)}`, limit, info.size);
  }
}

function tooLarge(path: string, what: string, limit: number, needed: number): FileError {
  const suggestion = `${Math.ceil(needed / 1024 ** 2)}MiB`;
  return new FileError(
    path,
    `${what}, above the ${describeBytes(limit)} limit for an import file ` +
      `(raise it with --max-file-size, e.g. --max-file-size ${suggestion})`,
  );
}

/**
 * Checks, without opening it, that `path` is a regular file within the size limit; throws a
 * {@linkcode FileError} saying what it is otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkImportFile } from "./file.ts";
 * await assert.rejects(() => checkImportFile("/tmp"), /is a directory/);
 * ```
 */
export async function checkImportFile(
  path: string,
  options: ImportFileOptions = {},
): Promise<void> {
  const limit = maxFileBytes(options);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw new FileError(path, `cannot be read: ${(error as Error).message}`);
  }
  checkInfo(path, info, limit);
}

/**
 * Opens an import file as a stream of its bytes. Refuses, before opening it, anything but a
 * regular file (opening a FIFO would wait for a writer) and a file above the size limit; the
 * stream itself fails with a {@linkcode FileError} if the file grows past the limit while it is
 * read. `whole`: the caller holds it whole, and a file beyond {@linkcode wholeFileLimit} is refused
 * too ({@linkcode FileTooLargeToReadError}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FileError, openImportFile } from "./file.ts";
 * await assert.rejects(() => openImportFile("/dev/zero"), FileError);
 * ```
 */
export async function openImportFile(
  path: string,
  options: ImportFileOptions = {},
  whole = false,
): Promise<ReadableStream<Uint8Array>> {
  const limit = maxFileBytes(options);
  await checkImportFile(path, { maxBytes: limit });
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw new FileError(path, `cannot be read: ${(error as Error).message}`);
  }
  try {
    // The path may have been swapped between the check and the open: check what was opened.
    const info = await file.stat();
    checkInfo(path, info, limit);
    // To be read whole (within the import limit): beyond what fits in memory, refused unread.
    if (whole) checkWholeFileSize(path, info.size);
  } catch (error) {
    file.close();
    throw error;
  }
  let total = 0;
  return file.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        total += chunk.byteLength;
        if (total > limit) {
          controller.error(tooLarge(path, "grew while it was read", limit, 2 * limit));
        } else controller.enqueue(chunk);
      },
    }),
  );
}

/**
 * Reads a whole import file (see {@linkcode openImportFile} for what is refused).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readImportFile } from "./file.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "a,b\n1,2\n");
 * assert.equal((await readImportFile(path)).byteLength, 8);
 * await assert.rejects(() => readImportFile(path, { maxBytes: 4 }), /above the 4 bytes limit/);
 * await Deno.remove(path);
 * ```
 */
export async function readImportFile(
  path: string,
  options: ImportFileOptions = {},
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of await openImportFile(path, options, true)) {
      chunks.push(chunk);
      size += chunk.byteLength;
    }
  } catch (error) {
    if (error instanceof FileError) throw error;
    throw new FileError(path, `cannot be read: ${(error as Error).message}`);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}
