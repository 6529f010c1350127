import assert from "node:assert/strict";
import {
  locationNaturalKey,
  normalizeKeyName,
  rateKey,
  roomKey,
  stationLookupKey,
} from "./natural_key.ts";

Deno.test("natural key: an airport with an IATA code is keyed by the code, upper case", () => {
  assert.equal(
    locationNaturalKey({
      transportMode: "plane",
      name: "Geneva",
      iataCode: " gva ",
      countryCode: "CH",
    }),
    "plane:GVA",
  );
  // The name and country play no part: renaming an airport keeps its key.
  assert.equal(
    locationNaturalKey({ transportMode: "plane", name: "Genève Cointrin", iataCode: "GVA" }),
    "plane:GVA",
  );
});

Deno.test("natural key: a station is keyed by lower-case country and normalised name", () => {
  assert.equal(
    locationNaturalKey({ transportMode: "train", name: "  St.   Gallen ", countryCode: "CH" }),
    "train:ch:st. gallen",
  );
  assert.equal(
    locationNaturalKey({
      transportMode: "train",
      name: "Zürich",
      iataCode: "ZLP",
      countryCode: "CH",
    }),
    "train:ch:zürich",
    "a station's IATA code is ignored",
  );
});

Deno.test("natural key: an airport without IATA code is keyed like a station, under plane", () => {
  assert.equal(
    locationNaturalKey({
      transportMode: "plane",
      name: "Sion  Airfield",
      iataCode: "",
      countryCode: "CH",
    }),
    "plane:ch:sion airfield",
  );
  assert.equal(
    locationNaturalKey({ transportMode: "plane", name: "Nowhere", iataCode: null }),
    "plane::nowhere",
  );
});

Deno.test("natural key: a station without country has an empty country segment", () => {
  assert.equal(locationNaturalKey({ transportMode: "train", name: "Basel" }), "train::basel");
  assert.equal(stationLookupKey(null, "BASEL"), "train::basel");
});

Deno.test("natural key: stationLookupKey finds a station whatever the case and spacing", () => {
  const stored = locationNaturalKey({ transportMode: "train", name: "Zürich", countryCode: "CH" });
  assert.equal(stationLookupKey("ch", " zürich "), stored);
  assert.equal(stationLookupKey(" CH", "ZÜRICH"), stored);
  // A decomposed "ü" (u + combining diaeresis) is the same name.
  assert.equal(stationLookupKey("CH", "Zu\u0308rich"), stored);
  assert.notEqual(stationLookupKey("DE", "Zürich"), stored);
});

Deno.test("natural key: any whitespace counts as one space", () => {
  assert.equal(normalizeKeyName("\tBiel/Bienne\u00a0 Nord\n"), "biel/bienne nord");
});

Deno.test("reference keys: rooms join names with NUL, rates lower-case the currency", () => {
  assert.equal(roomKey("BC", "BC 010"), "BC\u0000BC 010");
  assert.notEqual(roomKey("A B", "C"), roomKey("A", "B C"));
  assert.equal(rateKey(2025, " CHF "), "2025:chf");
});
