// What a jsonb or text column can hold, checked before any write so that a bad value becomes a
// line error naming its field instead of a PostgreSQL error that aborts the whole transaction.
// Measured on PostgreSQL 15 (max_stack_depth 2MB): jsonb refuses "\u0000" ("unsupported Unicode
// escape sequence") and unpaired surrogates, and parsing nests about 12,000 objects deep before
// "stack depth limit exceeded"; btree index rows hold at most 2,704 bytes.

/** Entry data nests at most this deep (the data object itself is level 1). */
export const MAX_JSON_DEPTH = 32;

/** Entry data takes at most this many bytes as UTF-8 JSON (1 MiB). */
export const MAX_ENTRY_DATA_BYTES = 1_048_576;

/** Unit codes and source keys are indexed: at most this many characters. */
export const MAX_KEY_TEXT_LENGTH = 256;

// Why a string cannot be stored as PostgreSQL text (or inside jsonb), or undefined.
function stringProblem(value: string): string | undefined {
  if (value.includes("\u0000")) {
    return "contains a NUL character (\\u0000), which PostgreSQL cannot store";
  }
  if (!value.isWellFormed()) {
    return "contains an unpaired UTF-16 surrogate (not valid Unicode), which PostgreSQL cannot store";
  }
  return undefined;
}

/**
 * Why `value` cannot be stored in an indexed text column (NUL, invalid Unicode, longer than
 * {@linkcode MAX_KEY_TEXT_LENGTH}), or undefined when it can.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyTextProblem } from "./storable.ts";
 * assert.equal(keyTextProblem("U1"), undefined);
 * assert.match(keyTextProblem("U\u00001")!, /NUL/);
 * ```
 */
export function keyTextProblem(value: string): string | undefined {
  if (value.length > MAX_KEY_TEXT_LENGTH) {
    return `is ${value.length} characters long; at most ${MAX_KEY_TEXT_LENGTH}`;
  }
  return stringProblem(value);
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function childPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  const name = IDENTIFIER.test(key) ? key : JSON.stringify(key);
  return path ? `${path}.${name}` : name;
}

function walk(value: unknown, path: string, depth: number, maxDepth: number): string | undefined {
  const where = path || "data";
  if (typeof value === "string") {
    const problem = stringProblem(value);
    return problem && `${where}: ${problem}`;
  }
  if (typeof value === "number") {
    return Number.isFinite(value)
      ? undefined
      : `${where}: ${value} is not a finite number (JSON cannot hold it)`;
  }
  // JSON.stringify throws on a bigint: refused here, per entry, rather than failing the write.
  if (typeof value === "bigint") return `${where}: ${value}n is a bigint (JSON cannot hold it)`;
  if (value === null || typeof value !== "object") return undefined;
  if (depth > maxDepth) return `${where}: nested deeper than ${maxDepth} levels`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = walk(value[i], childPath(path, i), depth + 1, maxDepth);
      if (problem) return problem;
    }
    return undefined;
  }
  for (const [key, child] of Object.entries(value)) {
    const keyProblem = stringProblem(key);
    if (keyProblem) return `${childPath(path, key)}: the key ${keyProblem}`;
    const problem = walk(child, childPath(path, key), depth + 1, maxDepth);
    if (problem) return problem;
  }
  return undefined;
}

/** Limits of {@linkcode jsonStorageProblem}. */
export interface JsonStorageLimits {
  /** @default MAX_JSON_DEPTH */
  readonly maxDepth?: number;
  /** @default MAX_ENTRY_DATA_BYTES */
  readonly maxBytes?: number;
}

/**
 * Why a JSON object cannot be stored as jsonb, naming the field at fault (`field: problem`), or
 * undefined when it can: a NUL character or an unpaired surrogate in any string or key, a number
 * JSON cannot hold (or a bigint), nesting deeper than `maxDepth`, more than `maxBytes` as UTF-8
 * JSON.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jsonStorageProblem } from "./storable.ts";
 * assert.equal(jsonStorageProblem({ name: "laptop", tags: ["a"] }), undefined);
 * assert.equal(
 *   jsonStorageProblem({ note: "a\u0000b" }),
 *   "note: contains a NUL character (\\u0000), which PostgreSQL cannot store",
 * );
 * assert.equal(
 *   jsonStorageProblem({ a: { b: { c: 1 } } }, { maxDepth: 2 }),
 *   "a.b: nested deeper than 2 levels",
 * );
 * ```
 */
export function jsonStorageProblem(
  value: Record<string, unknown>,
  limits: JsonStorageLimits = {},
): string | undefined {
  const problem = walk(value, "", 1, limits.maxDepth ?? MAX_JSON_DEPTH);
  if (problem) return problem;
  const maxBytes = limits.maxBytes ?? MAX_ENTRY_DATA_BYTES;
  const text = JSON.stringify(value);
  // A UTF-16 unit takes at most 3 UTF-8 bytes: most values need no encoding to be measured.
  if (text.length * 3 <= maxBytes) return undefined;
  const bytes = new TextEncoder().encode(text).length;
  return bytes > maxBytes ? `data: is ${bytes} bytes as JSON; at most ${maxBytes}` : undefined;
}
