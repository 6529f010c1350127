// Rule L of spec/modules.md: resolving an entry's JSON link against the (det, year) set.
import {
  EntryComputeError,
  type EntryData,
  type Factor,
  type FactorLookup,
  type Handler,
} from "../handlers/types.ts";

/** The resolved factor id (or null) and whether several factors matched equally. */
export interface JsonLinkResolution {
  readonly factorId: number | null;
  readonly ambiguous: boolean;
}

function present(value: unknown): value is string {
  return value !== undefined && value !== null && String(value) !== "";
}

const NONE: JsonLinkResolution = { factorId: null, ambiguous: false };

/**
 * Resolves the factor an entry links to: the plain kind → subkind → kind-only rule, or the
 * override-key-first rule when the handler has a `kindFieldOverride`. Throws EntryComputeError
 * for an ambiguity the override rule cannot settle.
 */
export function resolveJsonLink(
  handler: Handler,
  data: EntryData,
  set: FactorLookup,
): JsonLinkResolution {
  const kindField = handler.kindField;
  if (!kindField) return NONE;
  const kind = data[kindField];
  if (!present(kind)) return NONE;
  // The resolution depends on the set and on two values of the entry only (its kind, and its
  // subkind or code): a slice's entries that share them resolve once. An ambiguity is not kept
  // (it throws, and is rare).
  const second = handler.kindFieldOverride ?? handler.subkindField;
  const secondValue = second === undefined ? undefined : data[second];
  const kindText = String(kind);
  const byKind = resolutionsOf(set, handler);
  let bySecond = byKind.get(kindText);
  if (!bySecond) byKind.set(kindText, bySecond = new Map());
  const key = present(secondValue) ? String(secondValue) : ABSENT;
  let resolution = bySecond.get(key);
  if (!resolution) {
    const ofKind = set.where(kindField, kindText);
    resolution = handler.kindFieldOverride
      ? resolveOverrideFirst(handler.kindFieldOverride, kindField, kindText, data, ofKind, set)
      : resolvePlain(handler.subkindField, data, ofKind);
    bySecond.set(key, resolution);
  }
  return resolution;
}

/** The key of an entry whose subkind or code is absent (no string can equal it). */
const ABSENT = Symbol("absent");

type Resolutions = Map<string, Map<string | symbol, JsonLinkResolution>>;

const resolutions = new WeakMap<FactorLookup, WeakMap<Handler, Resolutions>>();

/** The resolutions found so far in `set` for `handler`'s entries, by kind, then subkind or code. */
function resolutionsOf(set: FactorLookup, handler: Handler): Resolutions {
  let byHandler = resolutions.get(set);
  if (!byHandler) resolutions.set(set, byHandler = new WeakMap());
  let found = byHandler.get(handler);
  if (!found) byHandler.set(handler, found = new Map());
  return found;
}

function resolvePlain(
  subkindField: string | undefined,
  data: EntryData,
  ofKind: readonly Factor[],
): JsonLinkResolution {
  if (!subkindField) return pickLowest(ofKind);
  const subkind = data[subkindField];
  if (!present(subkind)) {
    return pickLowest(ofKind.filter((f) => f.classification[subkindField] == null));
  }
  const exact = pickLowest(
    ofKind.filter((f) => f.classification[subkindField] === String(subkind)),
  );
  if (exact.factorId !== null) return exact;
  return pickLowest(ofKind.filter((f) => f.classification[subkindField] == null));
}

function pickLowest(candidates: readonly Factor[]): JsonLinkResolution {
  if (candidates.length === 0) return NONE;
  return { factorId: candidates[0].id, ambiguous: candidates.length > 1 };
}

function resolveOverrideFirst(
  codeField: string,
  kindField: string,
  kind: string,
  data: EntryData,
  ofKind: readonly Factor[],
  set: FactorLookup,
): JsonLinkResolution {
  const code = data[codeField];
  if (present(code)) {
    const withCode = set.where(codeField, String(code));
    if (withCode.length === 1) return { factorId: withCode[0].id, ambiguous: false };
    if (withCode.length > 1) {
      const sameKind = withCode.filter((f) => f.classification[kindField] === kind);
      if (sameKind.length === 1) return { factorId: sameKind[0].id, ambiguous: false };
      throw ambiguity(`${codeField} "${code}"`, sameKind.length ? sameKind : withCode);
    }
  }
  if (ofKind.length <= 1) return pickLowest(ofKind);
  const average = ofKind.filter((f) => !present(f.classification[codeField]));
  if (average.length === 1) return { factorId: average[0].id, ambiguous: false };
  throw ambiguity(`${kindField} "${kind}"`, average.length ? average : ofKind);
}

function ambiguity(what: string, factors: readonly Factor[]): EntryComputeError {
  return new EntryComputeError(
    `Ambiguous factor data: ${factors.length} factors match ${what} (ids ${
      factors.map((f) => f.id).join(", ")
    })`,
  );
}
