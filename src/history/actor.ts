// Who did it: the name recorded on imports, rematch runs and freezes (spec/history.md §1).
import { userInfo } from "node:os";

/** The environment variable naming the actor of command-line work. */
export const ACTOR_ENV = "REMATCH_ACTOR";

/**
 * The actor of a write: the API token's name when the request carried one, else
 * `REMATCH_ACTOR`, else the operating-system user, else `"unknown"` (never empty).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { currentActor } from "./actor.ts";
 * assert.equal(currentActor({ tokenName: "ops-upload" }), "ops-upload");
 * assert.ok(currentActor().length > 0);
 * ```
 */
export function currentActor(options: { tokenName?: string } = {}): string {
  const token = options.tokenName?.trim();
  if (token) return token;
  const fromEnv = readEnv(ACTOR_ENV)?.trim();
  if (fromEnv) return fromEnv;
  return osUser() ?? "unknown";
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    // Without --allow-env the variable cannot be read: fall through to the OS user.
    return undefined;
  }
}

function osUser(): string | undefined {
  try {
    return userInfo().username || undefined;
  } catch {
    return readEnv("USER") || readEnv("USERNAME") || undefined;
  }
}
