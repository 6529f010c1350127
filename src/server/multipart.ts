// A streaming multipart/form-data reader (RFC 7578): parts are handed over one at a time as byte
// streams, so an upload is never held whole in memory (Request.formData() would hold it).

/** A malformed body, or one beyond a limit: the request is answered 400 or 413. */
export class MultipartError extends Error {
  override name = "MultipartError";
  constructor(message: string, readonly status: 400 | 413 = 400) {
    super(message);
  }
}

/** One part's headers. */
export interface PartHeaders {
  /** The form field name (`Content-Disposition: form-data; name="..."`). */
  readonly name: string;
  /** The file name, for a file part. */
  readonly filename?: string;
  readonly contentType?: string;
}

/** Limits of {@linkcode readMultipart}. */
export interface MultipartLimits {
  /** Bytes of one part's header block. @default 16384 */
  readonly headerBytes?: number;
  /** Parts in the body. @default 20 */
  readonly parts?: number;
}

/**
 * The boundary of a `multipart/form-data` content type, or undefined when the type is another
 * or has none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { multipartBoundary } from "./multipart.ts";
 * assert.equal(multipartBoundary('multipart/form-data; boundary="abc"'), "abc");
 * assert.equal(multipartBoundary("application/json"), undefined);
 * ```
 */
export function multipartBoundary(contentType: string | null | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\s*(;|$)/i.test(contentType.trim())) return undefined;
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  return match ? (match[1] ?? match[2]) : undefined;
}

const CRLF = new Uint8Array([13, 10]);
const encoder = new TextEncoder();

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0];
  const last = haystack.length - needle.length;
  for (
    let i = haystack.indexOf(first, from);
    i !== -1 && i <= last;
    i = haystack.indexOf(first, i + 1)
  ) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

// Buffered reads over the body stream.
class ByteReader {
  #buffer: Uint8Array = new Uint8Array(0);
  #done = false;
  constructor(readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  get buffered(): Uint8Array {
    return this.#buffer;
  }

  consume(n: number): Uint8Array {
    const taken = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return taken;
  }

  /** Reads more; false at the end of the body. */
  async fill(): Promise<boolean> {
    if (this.#done) return false;
    const { value, done } = await this.reader.read();
    if (done) {
      this.#done = true;
      return false;
    }
    this.#buffer = concat(this.#buffer, value);
    return true;
  }
}

/**
 * Reads a multipart body part by part. `onPart` receives each part's headers and its body as a
 * stream of chunks, which it must read to the end (or throw); text fields are small parts read
 * the same way. Throws {@linkcode MultipartError} for a malformed body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readMultipart } from "./multipart.ts";
 * const body = '--b\r\nContent-Disposition: form-data; name="year"\r\n\r\n2025\r\n--b--\r\n';
 * const fields: string[] = [];
 * await readMultipart(new Blob([body]).stream(), "b", async (part, chunks) => {
 *   let text = "";
 *   for await (const chunk of chunks) text += new TextDecoder().decode(chunk);
 *   fields.push(`${part.name}=${text}`);
 * });
 * assert.deepEqual(fields, ["year=2025"]);
 * ```
 */
export async function readMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  onPart: (part: PartHeaders, chunks: AsyncIterable<Uint8Array>) => Promise<void>,
  limits: MultipartLimits = {},
): Promise<void> {
  const headerLimit = limits.headerBytes ?? 16_384;
  const partLimit = limits.parts ?? 20;
  const reader = new ByteReader(body.getReader());
  const dashBoundary = encoder.encode(`--${boundary}`);
  // Inside a body, the delimiter is CRLF + "--" + boundary.
  const delimiter = concat(CRLF, dashBoundary);
  try {
    // The preamble (usually empty) runs up to the first dash-boundary.
    const first = await scanFor(reader, dashBoundary, 64 * 1024, "the first boundary");
    reader.consume(first + dashBoundary.length);
    for (let parts = 0;; parts++) {
      // After a boundary: "--" ends the body, else CRLF starts a part.
      while (reader.buffered.length < 2) {
        if (!(await reader.fill())) throw new MultipartError("the body ends inside a boundary");
      }
      const after = reader.consume(2);
      if (after[0] === 45 && after[1] === 45) return;
      if (after[0] !== 13 || after[1] !== 10) {
        throw new MultipartError("a boundary is not followed by a line break");
      }
      if (parts >= partLimit) throw new MultipartError(`more than ${partLimit} parts`, 413);
      const headerEnd = await scanFor(
        reader,
        encoder.encode("\r\n\r\n"),
        headerLimit,
        "the end of a part's headers",
      );
      const headers = parseHeaders(new TextDecoder().decode(reader.consume(headerEnd)));
      reader.consume(4);
      let finished = false;
      const chunks = partBody(reader, delimiter, () => {
        finished = true;
      });
      await onPart(headers, chunks);
      // Whatever the handler left unread is skipped.
      if (!finished) { for await (const _ of partBody(reader, delimiter, () => {})) { /* skip */ } }
      reader.consume(delimiter.length);
    }
  } finally {
    await reader.reader.cancel().catch(() => {});
  }
}

// Position of `needle` in the buffer, reading more as needed, never buffering more than `limit`.
async function scanFor(
  reader: ByteReader,
  needle: Uint8Array,
  limit: number,
  what: string,
): Promise<number> {
  let from = 0;
  for (;;) {
    const at = indexOf(reader.buffered, needle, from);
    if (at !== -1) return at;
    from = Math.max(0, reader.buffered.length - needle.length + 1);
    if (reader.buffered.length > limit) {
      throw new MultipartError(`${what} was not found within ${limit} bytes`);
    }
    if (!(await reader.fill())) throw new MultipartError(`the body ends before ${what}`);
  }
}

// A part's bytes up to (not including) the next delimiter; bytes that may start the delimiter
// are held back until the next read tells.
async function* partBody(
  reader: ByteReader,
  delimiter: Uint8Array,
  onEnd: () => void,
): AsyncGenerator<Uint8Array> {
  for (;;) {
    const at = indexOf(reader.buffered, delimiter);
    if (at !== -1) {
      if (at > 0) yield reader.consume(at).slice();
      onEnd();
      return;
    }
    const safe = reader.buffered.length - delimiter.length + 1;
    if (safe > 0) yield reader.consume(safe).slice();
    if (!(await reader.fill())) throw new MultipartError("the body ends inside a part");
  }
}

function parseHeaders(block: string): PartHeaders {
  let name: string | undefined;
  let filename: string | undefined;
  let contentType: string | undefined;
  for (const line of block.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon === -1) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === "content-type") contentType = value;
    if (key !== "content-disposition") continue;
    if (!/^form-data\s*(;|$)/i.test(value)) {
      throw new MultipartError(`a part's Content-Disposition is "${value}", not form-data`);
    }
    name = parameter(value, "name");
    filename = parameter(value, "filename");
  }
  if (name === undefined) {
    throw new MultipartError("a part has no Content-Disposition name");
  }
  return { name, filename, contentType };
}

function parameter(header: string, key: string): string | undefined {
  const match = new RegExp(`;\\s*${key}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`, "i").exec(header);
  if (!match) return undefined;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, "$1") : match[2];
}
