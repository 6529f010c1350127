// Bearer tokens of the HTTP API (spec/interfaces.md §4): `REMATCH_API_TOKENS` holds
// comma-separated `name:secret` pairs (a bare secret is named `api`); the name is the actor
// recorded for what the request does. Secrets are compared in constant time.
import { createHash, timingSafeEqual } from "node:crypto";
import { currentActor } from "../history/actor.ts";

/** One configured token. */
export interface ApiToken {
  readonly name: string;
  /** SHA-256 of the secret: equal lengths for the constant-time compare. */
  readonly digest: Uint8Array;
}

/** A malformed `REMATCH_API_TOKENS`. */
export class TokenConfigError extends Error {
  override name = "TokenConfigError";
}

function digest(secret: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(secret, "utf8").digest());
}

/**
 * Parses `REMATCH_API_TOKENS`: `name:secret` pairs separated by commas, split at the first colon;
 * a pair without a colon is a secret named `api`. Blank text means no tokens.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseApiTokens } from "./auth.ts";
 * assert.deepEqual(parseApiTokens("ci:abc, ops:d:e").map((t) => t.name), ["ci", "ops"]);
 * assert.deepEqual(parseApiTokens("s3cret").map((t) => t.name), ["api"]);
 * assert.throws(() => parseApiTokens("ci:"), /token 1 \(ci\) has an empty secret/);
 * ```
 */
export function parseApiTokens(text: string | undefined): ApiToken[] {
  if (!text || !text.trim()) return [];
  return text.split(",").map((pair, index) => {
    const trimmed = pair.trim();
    const colon = trimmed.indexOf(":");
    const name = colon === -1 ? "api" : trimmed.slice(0, colon).trim();
    const secret = colon === -1 ? trimmed : trimmed.slice(colon + 1).trim();
    if (!name) throw new TokenConfigError(`REMATCH_API_TOKENS: token ${index + 1} has no name`);
    if (!secret) {
      throw new TokenConfigError(
        `REMATCH_API_TOKENS: token ${index + 1} (${name}) has an empty secret`,
      );
    }
    return { name, digest: digest(secret) };
  });
}

/**
 * The name of the token an `Authorization` header carries, or undefined when it carries none of
 * them. Every token is compared, each in constant time, so the time taken says nothing about
 * which secret (or how much of one) matched.
 */
export function authenticate(
  header: string | null | undefined,
  tokens: readonly ApiToken[],
): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  if (!match) return undefined;
  const presented = digest(match[1]);
  let found: string | undefined;
  for (const token of tokens) {
    if (timingSafeEqual(presented, token.digest) && found === undefined) found = token.name;
  }
  return found;
}

/**
 * True for a loopback host: `localhost`, `127.0.0.0/8` or `::1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopbackHost } from "./auth.ts";
 * assert.equal(isLoopbackHost("127.0.0.1"), true);
 * assert.equal(isLoopbackHost("[::1]"), true);
 * assert.equal(isLoopbackHost("0.0.0.0"), false);
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return bare === "localhost" || bare === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/**
 * Why a request must be refused by a server without tokens (loopback only), or undefined. Loopback
 * alone does not keep out a web page in the operator's browser: its form posts reach the server
 * (with the page's `Origin`), and a name of the page's pointed at 127.0.0.1 reaches it too (with
 * that name as `Host`). So the host must be a loopback one, and an origin, when sent, as well.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crossSiteRequest } from "./auth.ts";
 * assert.equal(crossSiteRequest("127.0.0.1:8000", undefined), undefined);
 * assert.equal(crossSiteRequest("localhost:8000", "http://localhost:5173"), undefined);
 * assert.match(crossSiteRequest("127.0.0.1:8000", "https://evil.example")!, /origin/);
 * assert.match(crossSiteRequest("rebind.evil.example:8000", undefined)!, /host/);
 * assert.equal(crossSiteRequest(undefined, undefined), undefined); // HTTP/1.0, no browser
 * ```
 */
export function crossSiteRequest(
  host: string | undefined,
  origin: string | undefined,
): string | undefined {
  const why = "without REMATCH_API_TOKENS the API answers only requests to a loopback host, " +
    "sent from no web page but a loopback one (another page could otherwise drive it; behind a " +
    "proxy, configure tokens or have it send Host: 127.0.0.1)";
  // No Host at all (HTTP/1.0) is no browser's request.
  if (host !== undefined) {
    const hostName = hostOfAuthority(host);
    if (hostName === undefined || !isLoopbackHost(hostName)) {
      return `host ${JSON.stringify(host)} refused: ${why}`;
    }
  }
  if (origin === undefined) return undefined;
  let originHost: string | undefined;
  try {
    originHost = new URL(origin).hostname;
  } catch {
    // `null` (a sandboxed page, a file) or nonsense: not a loopback origin.
  }
  if (originHost === undefined || originHost === "" || !isLoopbackHost(originHost)) {
    return `origin ${JSON.stringify(origin)} refused: ${why}`;
  }
  return undefined;
}

// The host of a Host header (`name`, `name:port`, `[v6]:port`), or undefined when it is none.
function hostOfAuthority(authority: string): string | undefined {
  try {
    const { hostname } = new URL(`http://${authority.trim()}`);
    return hostname || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Who a request acts as (spec/history.md §1): its token's name, else `REMATCH_ACTOR`, else the
 * OS user running the server.
 */
export function requestActor(tokenName: string | undefined): string {
  return currentActor({ tokenName });
}
