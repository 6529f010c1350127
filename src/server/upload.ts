// Receiving a multipart form: text fields in memory (small), file parts streamed to disk under
// server-chosen names with a size limit. On any failure every file written is removed, so a
// refused upload (413, 415, 400) leaves nothing behind.
import { join } from "node:path";
import { MultipartError, readMultipart } from "./multipart.ts";

/** A file part written to disk. */
export interface ReceivedFile {
  /** The form field it came in. */
  readonly field: string;
  /** The client's file name (not sanitised: only shown, never used as a path). */
  readonly fileName: string;
  /** Where it was written: a server-chosen name inside the upload directory. */
  readonly path: string;
  readonly sizeBytes: number;
}

/** A received form. */
export interface ReceivedForm {
  readonly fields: ReadonlyMap<string, string>;
  readonly files: readonly ReceivedFile[];
  /** Removes the files from disk (call when they are stored or no longer needed). */
  discard(): Promise<void>;
}

/** Limits and places of {@linkcode receiveForm}. */
export interface ReceiveOptions {
  /** Where file parts are written (server-chosen names). */
  readonly dir: string;
  /** Fields whose parts must be files. */
  readonly fileFields: readonly string[];
  /** Bytes of one file. */
  readonly maxFileBytes: number;
  /** Files in the form. @default 10 */
  readonly maxFiles?: number;
  /** Bytes of one text field. @default 65536 */
  readonly maxFieldBytes?: number;
}

/** A file that is not a CSV: 415. */
export class UnsupportedFileError extends Error {
  override name = "UnsupportedFileError";
}

/**
 * Reads a multipart body: text fields into a map, file parts (only in `fileFields`, only `.csv`)
 * to disk. Throws {@linkcode MultipartError} (400, or 413 past a limit) or
 * {@linkcode UnsupportedFileError} (415), with every file written removed.
 */
export async function receiveForm(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  options: ReceiveOptions,
): Promise<ReceivedForm> {
  const maxFiles = options.maxFiles ?? 10;
  const maxFieldBytes = options.maxFieldBytes ?? 65_536;
  const fields = new Map<string, string>();
  const files: ReceivedFile[] = [];
  const discard = async () => {
    for (const file of files) await Deno.remove(file.path).catch(() => {});
  };
  try {
    await readMultipart(body, boundary, async (part, chunks) => {
      if (part.filename === undefined) {
        if (options.fileFields.includes(part.name)) {
          throw new MultipartError(`field ${part.name}: expected a file`);
        }
        // A field given twice is a mistake to name, not a value to pick (which one was meant?).
        if (fields.has(part.name)) {
          throw new MultipartError(`field ${part.name}: given twice (expected it once)`);
        }
        fields.set(part.name, await readField(part.name, chunks, maxFieldBytes));
        return;
      }
      if (!options.fileFields.includes(part.name)) {
        throw new MultipartError(
          `field ${part.name}: a file was sent where none is expected (files go in ${
            options.fileFields.join(" or ")
          })`,
        );
      }
      if (!/\.csv$/i.test(part.filename)) {
        throw new UnsupportedFileError(
          `field ${part.name}: "${part.filename}" is not a .csv file (only CSV files are accepted)`,
        );
      }
      if (files.length >= maxFiles) {
        // How the request is made, not how large it is: a 400.
        throw new MultipartError(
          maxFiles === 1
            ? `field ${part.name}: one file per request (this one sends more)`
            : `more than ${maxFiles} files in one request (send the others in another)`,
        );
      }
      const path = join(options.dir, `${crypto.randomUUID()}.part`);
      const record = { field: part.name, fileName: part.filename, path, sizeBytes: 0 };
      files.push(record);
      using file = await Deno.open(path, { write: true, createNew: true });
      for await (const chunk of chunks) {
        record.sizeBytes += chunk.byteLength;
        if (record.sizeBytes > options.maxFileBytes) {
          throw new MultipartError(
            `field ${part.name}: "${part.filename}" is larger than the ${options.maxFileBytes} ` +
              "bytes upload limit",
            413,
          );
        }
        let written = 0;
        while (written < chunk.byteLength) written += await file.write(chunk.subarray(written));
      }
    });
  } catch (error) {
    await discard();
    throw error;
  }
  return { fields, files, discard };
}

async function readField(
  name: string,
  chunks: AsyncIterable<Uint8Array>,
  limit: number,
): Promise<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let text = "";
  let size = 0;
  try {
    for await (const chunk of chunks) {
      size += chunk.byteLength;
      if (size > limit) throw new MultipartError(`field ${name}: longer than ${limit} bytes`, 413);
      text += decoder.decode(chunk, { stream: true });
    }
    return text + decoder.decode();
  } catch (error) {
    if (error instanceof MultipartError) throw error;
    throw new MultipartError(`field ${name}: not valid UTF-8 text`);
  }
}
