// In-memory factor sets and reference data for pure compute tests.
import { createFactorLookup } from "../../src/compute/factor_set.ts";
import { computeEntry, type EntryComputation } from "../../src/compute/compute_entry.ts";
import { getHandler } from "../../src/handlers/mod.ts";
import type {
  BuildingRoom,
  Classification,
  Factor,
  FactorValues,
  Location,
  ReferenceData,
} from "../../src/handlers/types.ts";
import { locationNaturalKey, rateKey, roomKey } from "../../src/reference/natural_key.ts";

export const YEAR = 2025;

let nextId = 1;
/** A factor of `det` for YEAR, typed by the det's own resolver. */
export function factor(
  det: string,
  classification: Classification,
  values: FactorValues,
  id = nextId++,
): Factor {
  const handler = getHandler(det);
  const emissionTypeId = handler.factorEmissionType(classification);
  if (emissionTypeId === undefined) {
    throw new Error(`test factor has no emission type: ${JSON.stringify(classification)}`);
  }
  return { id, dataEntryTypeId: 0, emissionTypeId, year: YEAR, classification, values };
}

export function airport(
  iata: string,
  latitude: number,
  longitude: number,
  country = "CH",
): Location {
  const naturalKey = locationNaturalKey({ transportMode: "plane", name: iata, iataCode: iata });
  return {
    id: 0,
    transportMode: "plane",
    name: iata,
    iataCode: iata,
    countryCode: country,
    latitude,
    longitude,
    naturalKey,
  };
}

export function station(
  name: string,
  country: string,
  latitude: number,
  longitude: number,
): Location {
  const naturalKey = locationNaturalKey({ transportMode: "train", name, countryCode: country });
  return {
    id: 0,
    transportMode: "train",
    name,
    iataCode: null,
    countryCode: country,
    latitude,
    longitude,
    naturalKey,
  };
}

export function reference(
  parts: { locations?: Location[]; rooms?: BuildingRoom[]; rates?: [number, string, number][] } =
    {},
): ReferenceData {
  return {
    locations: new Map((parts.locations ?? []).map((l) => [l.naturalKey, l])),
    rooms: new Map((parts.rooms ?? []).map((r) => [roomKey(r.buildingName, r.roomName), r])),
    rates: new Map((parts.rates ?? []).map(([y, c, r]) => [rateKey(y, c), r])),
  };
}

/** The airports of the plane vectors of spec/modules.md (GVA, CDG, LHR, JFK), in a new reference. */
export function specAirports(): ReferenceData {
  return reference({
    locations: [
      airport("GVA", 46.2381, 6.109),
      airport("CDG", 49.0097, 2.5479, "FR"),
      airport("LHR", 51.47, -0.4543, "GB"),
      airport("JFK", 40.6413, -73.7781, "US"),
    ],
  });
}

/** The stations of the train vectors of spec/modules.md, and `more`, in a new reference. */
export function specStations(...more: Location[]): ReferenceData {
  return reference({
    locations: [
      station("Geneva", "CH", 46.2104, 6.1428),
      station("Lausanne", "CH", 46.5167, 6.6322),
      station("Zürich", "CH", 47.3779, 8.5403),
      station("Paris", "FR", 48.8443, 2.3744),
      ...more,
    ],
  });
}

/** Computes one entry against the given factors and reference data. */
export function compute(
  det: string,
  data: Record<string, unknown>,
  factors: Factor[],
  ref: ReferenceData = reference(),
): EntryComputation {
  return computeEntry(getHandler(det), data, {
    year: YEAR,
    factors: createFactorLookup(YEAR, factors),
    reference: ref,
  });
}

/** Asserts a kg to 1e-9 relative. */
export function assertKg(actual: number, expected: number, what = "kg"): void {
  const tolerance = Math.max(Math.abs(expected), 1e-12) * 1e-9;
  if (Math.abs(actual - expected) > tolerance) {
    throw new Error(`${what}: expected ${expected}, got ${actual}`);
  }
}
