// The keys of reference data: a location's natural key (spec/domain.md §3, locations) and the map
// keys of ReferenceData. Imports store them; pre-computes look reference rows up with them.

/** What a location's natural key is derived from. */
export interface LocationIdentity {
  readonly transportMode: "plane" | "train";
  readonly name: string;
  readonly iataCode?: string | null;
  readonly countryCode?: string | null;
}

/**
 * A name as keys compare it: Unicode NFC (so a composed and a decomposed "ü" agree), trimmed,
 * inner whitespace collapsed to one space, lower case.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalizeKeyName } from "./natural_key.ts";
 * assert.equal(normalizeKeyName("  Biel /\u00a0 Bienne "), "biel / bienne");
 * ```
 */
export function normalizeKeyName(name: string): string {
  return name.normalize("NFC").trim().replace(/\s+/g, " ").toLowerCase();
}

/**
 * The natural key of a location: `plane:{IATA upper}` for an airport with an IATA code,
 * `train:{country lower}:{name normalised}` for a station (the IATA code of a station plays no
 * part). An airport without an IATA code gets `plane:{country lower}:{name normalised}`: it
 * cannot collide with an IATA key (those never hold a second colon), and the plane pre-compute,
 * which finds airports by IATA only, never reaches it. A missing country is an empty segment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { locationNaturalKey } from "./natural_key.ts";
 * const key = (transportMode: "plane" | "train", name: string, iataCode: string | null) =>
 *   locationNaturalKey({ transportMode, name, iataCode, countryCode: "CH" });
 * assert.equal(key("plane", "Geneva", "gva"), "plane:GVA");
 * assert.equal(key("train", " Zürich  HB ", null), "train:ch:zürich hb");
 * assert.equal(key("plane", "Sion Airfield", null), "plane:ch:sion airfield");
 * ```
 */
export function locationNaturalKey(location: LocationIdentity): string {
  const iata = location.iataCode?.trim().toUpperCase();
  if (location.transportMode === "plane" && iata) return `plane:${iata}`;
  return `${location.transportMode}:${countrySegment(location.countryCode)}:${
    normalizeKeyName(location.name)
  }`;
}

/**
 * The natural key under which the station named `name` in `countryCode` is stored, so that the
 * train pre-compute finds a station by (country, name) case-insensitively with one map lookup.
 * Equal to `locationNaturalKey` of that station.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { locationNaturalKey, stationLookupKey } from "./natural_key.ts";
 * assert.equal(
 *   stationLookupKey("ch", " zürich "),
 *   locationNaturalKey({ transportMode: "train", name: "Zürich", countryCode: "CH" }),
 * );
 * ```
 */
export function stationLookupKey(countryCode: string | null | undefined, name: string): string {
  return locationNaturalKey({ transportMode: "train", name, countryCode });
}

/**
 * The key of a room in `ReferenceData.rooms`: building and room names joined by NUL, compared
 * exactly (rooms are unique on the pair as stored).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { roomKey } from "./natural_key.ts";
 * assert.equal(roomKey("BC", "BC 010"), "BC\u0000BC 010");
 * ```
 */
export function roomKey(buildingName: string, roomName: string): string {
  return `${buildingName}\u0000${roomName}`;
}

/**
 * The key of an exchange rate in `ReferenceData.rates`: `year:currency`, currency lower case.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rateKey } from "./natural_key.ts";
 * assert.equal(rateKey(2025, "CHF"), "2025:chf");
 * ```
 */
export function rateKey(year: number, currency: string): string {
  return `${year}:${currency.trim().toLowerCase()}`;
}

function countrySegment(countryCode: string | null | undefined): string {
  return (countryCode ?? "").trim().toLowerCase();
}
