// Great-circle distances and the rounding the distance rules use.

/** Mean Earth radius in km (IUGG), used by every distance rule. */
export const EARTH_RADIUS_KM = 6371.0088;

/**
 * Haversine distance in km between two (lat, lon) points given in degrees.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { haversineKm } from "./geo.ts";
 * // Geneva airport → Paris CDG (the plane rule then adds 95 km: 503 km)
 * assert.equal(Math.round(haversineKm(46.2381, 6.109, 49.0097, 2.5479)), 408);
 * ```
 */
export function haversineKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(a)));
}

/**
 * Rounds to the nearest integer, ties to the even one (banker's rounding).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { roundHalfEven } from "./geo.ts";
 * assert.deepEqual([2.5, 3.5, 2.6, 2.4].map(roundHalfEven), [2, 4, 3, 2]);
 * ```
 */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
