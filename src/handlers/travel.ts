// Professional travel: plane (20) and train (21), FK links re-derived from locations each time.
import { nameTable } from "../text/names.ts";
import { haversineKm, roundHalfEven } from "../compute/geo.ts";
import {
  locationNaturalKey,
  normalizeKeyName,
  stationLookupKey,
} from "../reference/natural_key.ts";
import {
  entryObject,
  lowerEnum,
  normalFormOf,
  numberWithDefault,
  optionalText,
  requiredText,
  withNormalForm,
} from "./_fields.ts";
import { fixedType, num, varNum, whereOrFallback } from "./_formulas.ts";
import {
  type Classification,
  type Computation,
  EntryComputeError,
  type EntryData,
  type Factor,
  type FactorLookup,
  type Handler,
  type Location,
  type ReferenceData,
} from "./types.ts";

// In normal form when already upper-cased.
const isUpper = (v: unknown) => typeof v === "string" && v.toUpperCase() === v;
const upperCode = () => {
  const text = requiredText();
  const isText = normalFormOf(text)!;
  return withNormalForm(text.transform((s) => s.toUpperCase()), (v) => isText(v) && isUpper(v));
};
const optionalUpperCode = () => {
  const text = optionalText();
  const isText = normalFormOf(text)!;
  return withNormalForm(
    text.transform((s) => s?.toUpperCase()),
    (v) => isText(v) && (v === undefined || isUpper(v)),
  );
};

const PLANE_CABIN_TYPES: Readonly<Record<string, number>> = nameTable({
  first: 50201,
  business: 50202,
  economy: 50203,
});
/** Added to every flight's great-circle distance (km): take-off, landing and routing. */
const PLANE_DETOUR_KM = 95;

interface HaulBand {
  readonly category: string;
  readonly min: number;
  readonly max: number;
}

/** Haul bands of the year's plane factors: one per category, set by its lowest-id factor. */
export function haulBands(set: FactorLookup): readonly HaulBand[] {
  return set.memo("plane:haul-bands", (factors) => {
    const bands = new Map<string, HaulBand>();
    for (const f of factors) {
      const category = f.classification.category;
      if (!category || bands.has(category)) continue;
      bands.set(category, {
        category,
        min: num(f.values, "min_distance") ?? -Infinity,
        max: num(f.values, "max_distance") ?? Infinity,
      });
    }
    return [...bands.values()].sort((
      a,
      b,
    ) => (a.category < b.category ? -1 : a.category > b.category ? 1 : 0));
  });
}

/** The first band (in category-name order) with min ≤ km < max, or undefined. */
export function hauledBand(set: FactorLookup, oneTripKm: number): string | undefined {
  return haulBands(set).find((b) => oneTripKm >= b.min && oneTripKm < b.max)?.category;
}

const plane: Handler = {
  det: "plane",
  link: "fk",
  entrySchema: entryObject({
    origin_iata: upperCode(),
    destination_iata: upperCode(),
    cabin_class: lowerEnum(["economy", "business", "first"]),
    number_of_trips: numberWithDefault(1, { min: 1, int: true }),
    user_institutional_id: optionalText(),
    departure_date: optionalText(),
    note: optionalText(),
  }),
  factorColumns: {
    classification: ["category", "cabin_class"],
    values: ["ef_kg_co2eq_per_km", "rfi_adjustment", "min_distance", "max_distance"],
    required: [
      "category",
      "cabin_class",
      "ef_kg_co2eq_per_km",
      "rfi_adjustment",
      "min_distance",
      "max_distance",
    ],
    enums: { cabin_class: ["economy", "business", "first"] },
  },
  factorEmissionType: (c: Classification) => PLANE_CABIN_TYPES[String(c.cabin_class)],
  reference: ["locations"],
  // The haul bands decide which factor a flight takes.
  structuralValues: ["min_distance", "max_distance"],
  preCompute(data, reference, set) {
    const route = planeRoute(reference, String(data.origin_iata), String(data.destination_iata));
    if ("missing" in route) {
      return { none: true, warning: `airport ${route.missing} not found in locations` };
    }
    const oneTrip = route.oneTrip;
    const haul = hauledBand(set, oneTrip);
    if (!haul) {
      return {
        none: true,
        // A year without any plane factor says so (no year stands in for another).
        warning: set.factors.length === 0
          ? `no plane factors for ${set.year} (a year's factors are not taken from another year)`
          : `no haul band of the year's plane factors covers ${oneTrip} km`,
      };
    }
    return {
      vars: {
        distance_one_trip_km: oneTrip,
        distance_km: oneTrip * Number(data.number_of_trips),
        haul_category: haul,
      },
    };
  },
  computations: (data) => planeComputations(String(data.cabin_class)),
};

// One list per cabin class, built on first use (no list and closures per entry).
const planeComputationsByCabin = new Map<string, readonly Computation[]>();
function planeComputations(cabin: string): readonly Computation[] {
  let list = planeComputationsByCabin.get(cabin);
  if (!list) {
    list = [{
      emissionTypeId: PLANE_CABIN_TYPES[cabin],
      source: {
        kind: "query",
        select: (vars, set) =>
          set.where("category", String(vars.haul_category)).filter((f) =>
            f.classification.cabin_class === vars.cabin_class
          ),
      },
      formula(vars, factor) {
        const ef = num(factor.values, "ef_kg_co2eq_per_km");
        const distance = varNum(vars, "distance_km");
        if (ef === undefined || distance === undefined) return null;
        const rfi = num(factor.values, "rfi_adjustment") ?? 1;
        return {
          kg: distance * ef * rfi,
          additionalValue: distance,
          meta: {
            distance_km: distance,
            distance_one_trip_km: vars.distance_one_trip_km,
            haul_category: vars.haul_category,
            rfi_adjustment: rfi,
          },
        };
      },
    }];
    planeComputationsByCabin.set(cabin, list);
  }
  return list;
}

function distanceKm(a: Location, b: Location): number {
  return haversineKm(a.latitude, a.longitude, b.latitude, b.longitude);
}

/** A flight's one-trip distance (km), or the code of its airport that the locations lack. */
type PlaneRoute = { readonly oneTrip: number } | { readonly missing: string };

// Per set of locations (one per slice read), each route once, by origin then destination code:
// a slice's flights take the same routes many times.
const planeRoutes = new WeakMap<
  ReadonlyMap<string, Location>,
  Map<string, Map<string, PlaneRoute>>
>();

function planeRoute(reference: ReferenceData, origin: string, destination: string): PlaneRoute {
  let byOrigin = planeRoutes.get(reference.locations);
  if (!byOrigin) planeRoutes.set(reference.locations, byOrigin = new Map());
  let byDestination = byOrigin.get(origin);
  if (!byDestination) byOrigin.set(origin, byDestination = new Map());
  let route = byDestination.get(destination);
  if (!route) {
    const airport = (iata: string) =>
      reference.locations.get(
        locationNaturalKey({ transportMode: "plane", name: "", iataCode: iata }),
      );
    const from = airport(origin);
    const to = airport(destination);
    route = !from || !to
      ? { missing: !from ? origin : destination }
      : { oneTrip: roundHalfEven(roundHalfEven(distanceKm(from, to)) + PLANE_DETOUR_KM) };
    byDestination.set(destination, route);
  }
  return route;
}

const TRAIN_CABIN_TYPES: Readonly<Record<string, number>> = nameTable({
  first: 50101,
  second: 50102,
});
/** Rail routes run longer than the great circle. */
const TRAIN_DETOUR_FACTOR = 1.2;
const HOME_COUNTRY = "CH";
/** Country code of the factor that stands in for countries without their own. */
export const REST_OF_WORLD = "RoW";

// Each end's fields, named once.
const STATION_FIELDS = {
  origin: {
    naturalKey: "origin_natural_key",
    countryCode: "origin_country_code",
    name: "origin_name",
  },
  destination: {
    naturalKey: "destination_natural_key",
    countryCode: "destination_country_code",
    name: "destination_name",
  },
} as const;

/** What the stations of a set of locations were found by so far: (country, name), or name. */
interface StationsFound {
  readonly byCountry: Map<string, Map<string, Location | undefined>>;
  readonly byName: Map<string, readonly Location[]>;
  /** Stations by normalised name across all countries, built for the first entry without a country. */
  index?: Map<string, Location[]>;
}

// Per set of locations (one per slice read): a slice's journeys name the same stations many times,
// and each name is normalised once.
const stationsFound = new WeakMap<ReadonlyMap<string, Location>, StationsFound>();
function stationsFoundIn(reference: ReferenceData): StationsFound {
  let found = stationsFound.get(reference.locations);
  if (!found) {
    found = { byCountry: new Map(), byName: new Map() };
    stationsFound.set(reference.locations, found);
  }
  return found;
}

// The one-trip distance of each pair of stations, found once.
const trainTrips = new WeakMap<Location, Map<Location, number>>();
function trainOneTrip(origin: Location, destination: Location): number {
  let byDestination = trainTrips.get(origin);
  if (!byDestination) trainTrips.set(origin, byDestination = new Map());
  let km = byDestination.get(destination);
  if (km === undefined) {
    km = roundHalfEven(roundHalfEven(distanceKm(origin, destination)) * TRAIN_DETOUR_FACTOR);
    byDestination.set(destination, km);
  }
  return km;
}

// Stations by normalised name across all countries, for entries that give no country code.
function stationNameIndex(locations: ReadonlyMap<string, Location>): Map<string, Location[]> {
  const index = new Map<string, Location[]>();
  for (const location of locations.values()) {
    if (location.transportMode !== "train") continue;
    const key = normalizeKeyName(location.name);
    index.set(key, [...(index.get(key) ?? []), location]);
  }
  return index;
}

/**
 * The station a natural key names (`train:{country}:{name}`), its country and name compared as
 * stored keys compare them (case- and space-insensitively). A key of another kind of location (an
 * airport's `plane:GVA`) is an error naming the field.
 */
function stationByNaturalKey(
  reference: ReferenceData,
  field: string,
  key: string,
): Location | undefined {
  const [mode, country, ...name] = key.split(":");
  if (mode.trim().toLowerCase() !== "train" || name.length === 0) {
    throw new EntryComputeError(
      `${field}: "${key}" is not a train station's key (expected train:{country code}:{name})`,
    );
  }
  return reference.locations.get(stationLookupKey(country, name.join(":")));
}

/**
 * A station by natural key, else by (country, name), else — no country given — by name across
 * all countries, where several matches are a per-entry error naming them.
 */
function findStation(
  reference: ReferenceData,
  end: "origin" | "destination",
  data: EntryData,
): Location | undefined {
  const fields = STATION_FIELDS[end];
  const naturalKey = data[fields.naturalKey];
  const countryCode = data[fields.countryCode];
  const name = String(data[fields.name]);
  if (naturalKey) return stationByNaturalKey(reference, fields.naturalKey, String(naturalKey));
  const found = stationsFoundIn(reference);
  if (countryCode) {
    const country = String(countryCode);
    let byName = found.byCountry.get(country);
    if (!byName) found.byCountry.set(country, byName = new Map());
    if (byName.has(name)) return byName.get(name);
    const station = reference.locations.get(stationLookupKey(country, name));
    byName.set(name, station);
    return station;
  }
  let matches = found.byName.get(name);
  if (!matches) {
    found.index ??= stationNameIndex(reference.locations);
    matches = found.index.get(normalizeKeyName(name)) ?? [];
    found.byName.set(name, matches);
  }
  if (matches.length > 1) {
    throw new EntryComputeError(
      `${end}_name: station "${name}" is ambiguous, ${matches.length} stations match: ${
        matches.map((m) => m.naturalKey).sort().join(", ")
      }; give ${end}_country_code or ${end}_natural_key`,
    );
  }
  return matches[0];
}

/** CH when both ends are in CH, else the destination's country, else the origin's, else RoW. */
export function trainCountry(origin: string | null, destination: string | null): string {
  if (origin === HOME_COUNTRY && destination === HOME_COUNTRY) return HOME_COUNTRY;
  if (destination && destination !== HOME_COUNTRY) return destination;
  if (origin && origin !== HOME_COUNTRY) return origin;
  return REST_OF_WORLD;
}

function trainFactors(vars: Record<string, unknown>, set: FactorLookup): readonly Factor[] {
  return whereOrFallback(set, "country_code", vars.country_code, REST_OF_WORLD);
}

const train: Handler = {
  det: "train",
  link: "fk",
  entrySchema: entryObject({
    origin_name: requiredText(),
    destination_name: requiredText(),
    origin_country_code: optionalUpperCode(),
    destination_country_code: optionalUpperCode(),
    origin_natural_key: optionalText(),
    destination_natural_key: optionalText(),
    cabin_class: lowerEnum(["first", "second"]),
    // ≥ 1 and not necessarily whole (spec/modules.md's train row; a flight's is an integer).
    number_of_trips: numberWithDefault(1, { min: 1 }),
    user_institutional_id: optionalText(),
    departure_date: optionalText(),
    note: optionalText(),
  }),
  factorColumns: {
    classification: ["country_code"],
    // Stations' country codes are stored in capitals.
    cellChecks: {
      country_code: (code) =>
        code === REST_OF_WORLD
          ? undefined
          : code.toUpperCase() === REST_OF_WORLD.toUpperCase()
          ? `"${code}" is not allowed (the rest of the world is written ${REST_OF_WORLD})`
          : code === code.toUpperCase()
          ? undefined
          : `"${code}" is not allowed (expected a country code in capitals, e.g. CH, or ` +
            `${REST_OF_WORLD}: journeys look their country up in capitals)`,
    },
    values: ["ef_kg_co2eq_per_km"],
    required: ["country_code", "ef_kg_co2eq_per_km"],
  },
  factorEmissionType: fixedType(50100),
  reference: ["locations"],
  // Country and RoW fallback are chosen by classification only.
  structuralValues: [],
  preCompute(data, reference) {
    const origin = findStation(reference, "origin", data);
    const destination = findStation(reference, "destination", data);
    if (!origin || !destination) {
      const missing = !origin ? data.origin_name : data.destination_name;
      return { none: true, warning: `station ${missing} not found in locations` };
    }
    const oneTrip = trainOneTrip(origin, destination);
    return {
      vars: {
        distance_one_trip_km: oneTrip,
        distance_km: oneTrip * Number(data.number_of_trips),
        country_code: trainCountry(origin.countryCode, destination.countryCode),
      },
    };
  },
  computations: (data) => [{
    emissionTypeId: TRAIN_CABIN_TYPES[String(data.cabin_class)],
    source: { kind: "query", select: trainFactors },
    formula(vars, factor) {
      const ef = num(factor.values, "ef_kg_co2eq_per_km");
      const distance = varNum(vars, "distance_km");
      if (ef === undefined || distance === undefined) return null;
      return {
        kg: distance * ef,
        additionalValue: distance,
        meta: {
          distance_km: distance,
          distance_one_trip_km: vars.distance_one_trip_km,
          // The country the route resolved to, and the factor's (RoW when it stood in).
          country_code: vars.country_code,
          factor_country_code: factor.classification.country_code,
        },
      };
    },
  }],
};

/** Plane and train. */
export const travelHandlers: readonly Handler[] = [plane, train];
