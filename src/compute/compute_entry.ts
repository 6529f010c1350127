// The one compute path: entry data + the (det, year) factor set + reference data → emission
// rows. Pure: no I/O. The write path and the rematch both call it.
import { DEFAULT_WEEKS_PER_YEAR } from "./settings.ts";
import type { z } from "zod";
import {
  type ComputeVars,
  EntryComputeError,
  type EntryData,
  type Factor,
  type FactorLookup,
  type FormulaEnv,
  type Handler,
  type ReferenceData,
} from "../handlers/types.ts";
import { normalFormOf } from "../handlers/_fields.ts";
import { emissionTypeDepth, emissionTypeScope } from "../reference/emission_types.ts";
import { type EmissionRow, sharedJson } from "./emission_row.ts";
import { type JsonLinkResolution, resolveJsonLink } from "./json_link.ts";

/** The entry data key holding a user's kg override. */
export const OVERRIDE_KEY = "__kg_co2eq_override__";
/** The entry data key holding a JSON link's factor id. */
export const LINK_KEY = "primary_factor_id";

/** Inputs shared by every entry of a slice. */
export interface ComputeInputs {
  readonly year: number;
  readonly factors: FactorLookup;
  readonly reference: ReferenceData;
  /** @default 52 */
  readonly weeksPerYear?: number;
  /**
   * The digests of the reference data and settings these inputs hold (when read from a
   * database): what a state recorded with them, or a write vouched for by them, must name.
   */
  readonly referenceDigests?: Readonly<Record<string, string>>;
}

/** What computing one entry yields. */
export interface EntryComputation {
  /** The validated, normalised data, with `primary_factor_id` re-resolved for JSON links. */
  readonly data: EntryData;
  /** The rows the entry must have (possibly none). */
  readonly rows: readonly EmissionRow[];
  /** Non-fatal notes (e.g. a room or airport not found). */
  readonly warnings: readonly string[];
  /** True when rule L picked the lowest id among several equal matches. */
  readonly ambiguous: boolean;
}

/**
 * Validates and normalises entry data with the handler's schema; errors name the field. Data
 * already in the schema's normal form (as the product stores it) is checked by the schema's
 * predicate and returned as is; anything else goes through the zod parse.
 */
export function validateEntryData(handler: Handler, data: unknown): EntryData {
  if (normalFormOf(handler.entrySchema)?.(data)) return data as EntryData;
  // The parse would drop it (a JavaScript object's key of that name sets its prototype).
  if (typeof data === "object" && data !== null && Object.hasOwn(data, "__proto__")) {
    throw new EntryComputeError(
      "__proto__: not a name a field can have (the field would be lost); rename it",
    );
  }
  const parsed = handler.entrySchema.safeParse(data, { reportInput: true });
  if (!parsed.success) throw new EntryComputeError(describeIssues(parsed.error));
  return parsed.data;
}

/**
 * One line naming each invalid field, what was expected and, when the parse reported its input
 * (`reportInput`) and the message does not say it already, what it got.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { describeIssues } from "./compute_entry.ts";
 * const schema = z.object({ km: z.number({ error: "expected a number" }), to: z.string() });
 * const parsed = schema.safeParse({ km: "far" }, { reportInput: true });
 * assert.equal(
 *   describeIssues(parsed.error!),
 *   'km: expected a number, got "far"; to: Invalid input: expected string, received undefined',
 * );
 * const odd = schema.safeParse({ km: 10n, to: "x" }, { reportInput: true });
 * assert.equal(describeIssues(odd.error!), "km: expected a number, got 10");
 * const endless = schema.safeParse({ km: -Infinity, to: "x" }, { reportInput: true });
 * assert.equal(describeIssues(endless.error!), "km: expected a number, got -Infinity");
 * ```
 */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => {
    const field = i.path.length ? i.path.join(".") : "data";
    const input = (i as { input?: unknown }).input;
    // A value, not a whole object (a check across fields) nor a blank (the message says so).
    const said = input === undefined || input === "" || typeof input === "object" ||
      /\b(got|received)\b/.test(i.message);
    const got = said ? "" : `, got ${shown(input)}`;
    return `${field}: ${i.message}${got}`;
  }).join("; ");
}

// A value in a message: as JSON (a number JSON cannot hold, or a bigint, as itself), cut short
// past 40 characters.
function shown(value: unknown): string {
  let text: string | undefined;
  if (typeof value !== "bigint" && (typeof value !== "number" || Number.isFinite(value))) {
    try {
      text = JSON.stringify(value);
    } catch {
      // A value JSON cannot print: as text below.
    }
  }
  text ??= String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/**
 * Computes an entry's emission rows per spec/modules.md. Throws EntryComputeError for a
 * per-entry failure (invalid data, ambiguous factors, missing exchange rate). An override entry
 * gets its one override row whatever its factors, and its JSON link resolved like any other.
 */
export function computeEntry(
  handler: Handler,
  rawData: unknown,
  inputs: ComputeInputs,
): EntryComputation {
  let data = validateEntryData(handler, rawData);
  const computations = handler.computations(data);
  const overridden = data[OVERRIDE_KEY] !== undefined;
  if (overridden) {
    const kg = data[OVERRIDE_KEY];
    if (typeof kg !== "number" || !Number.isFinite(kg)) {
      throw new EntryComputeError(
        `${OVERRIDE_KEY}: expected a finite number, got ${JSON.stringify(kg)}`,
      );
    }
  }

  // The link is resolved for override entries too, so that none keeps naming a deleted factor.
  let ambiguous = false;
  const warnings: string[] = [];
  if (handler.link === "json" && handler.kindField && handler.kindField in data) {
    let resolved: JsonLinkResolution;
    try {
      resolved = resolveJsonLink(handler, data, inputs.factors);
    } catch (error) {
      // An override's kg does not depend on its factor: an ambiguity unlinks it, never fails it.
      if (!overridden || !(error instanceof EntryComputeError)) throw error;
      resolved = { factorId: null, ambiguous: false };
      warnings.push(`override kept, factor link left empty: ${error.message}`);
    }
    ambiguous = resolved.ambiguous;
    if ((data[LINK_KEY] ?? null) !== resolved.factorId) {
      data = { ...data, [LINK_KEY]: resolved.factorId };
    }
  }

  if (overridden) {
    const typeId = computations[0].emissionTypeId;
    const row: EmissionRow = {
      emissionTypeId: typeId,
      primaryFactorId: null,
      kgCo2eq: data[OVERRIDE_KEY] as number,
      additionalValue: null,
      scope: emissionTypeScope(typeId),
      meta: { override: true },
    };
    return { data, rows: [row], warnings, ambiguous };
  }

  const linkedId = data[LINK_KEY];
  const linked = handler.link === "json" && typeof linkedId === "number"
    ? inputs.factors.byId(linkedId)
    : undefined;

  let vars: ComputeVars = { ...data, _year: inputs.year };
  if (handler.preCompute) {
    const pre = handler.preCompute(data, inputs.reference, inputs.factors);
    if ("none" in pre) {
      return { data, rows: [], warnings: pre.warning ? [pre.warning] : [], ambiguous };
    }
    vars = { ...vars, ...pre.vars };
  }

  const env: FormulaEnv = {
    year: inputs.year,
    reference: inputs.reference,
    weeksPerYear: inputs.weeksPerYear ?? DEFAULT_WEEKS_PER_YEAR,
  };
  const leaves: EmissionRow[] = [];
  for (const computation of computations) {
    const factors: readonly Factor[] = computation.source.kind === "link"
      ? (linked ? [linked] : [])
      : computation.source.select(vars, inputs.factors);
    for (const factor of factors) {
      const result = computation.formula(vars, factor, env);
      if (!result) continue;
      if (!Number.isFinite(result.kg)) {
        throw new EntryComputeError(`computed kg is not a finite number (factor ${factor.id})`);
      }
      const typeId = deeperType(computation.emissionTypeId, factor.emissionTypeId);
      leaves.push({
        emissionTypeId: typeId,
        primaryFactorId: factor.id,
        kgCo2eq: result.kg,
        additionalValue: result.additionalValue ?? null,
        scope: emissionTypeScope(typeId),
        meta: { factors_used: factorsUsed(factor), ...result.meta },
      });
    }
  }
  return { data, rows: withRollup(handler, leaves), warnings: [], ambiguous };
}

// The import id traces the numbers to the upload that set them (spec/history.md §1).
function factorUsed(factor: Factor): Record<string, unknown> {
  return factor.importId === undefined
    ? { id: factor.id, values: factor.values }
    : { id: factor.id, import_id: factor.importId, values: factor.values };
}

const factorsUsedOf = new WeakMap<Factor, readonly unknown[]>();

// One `factors_used` list per factor, frozen and shared by every row computed from it: its JSON
// is then compared and sent once per factor rather than once per row (see `sharedJson`).
function factorsUsed(factor: Factor): readonly unknown[] {
  let list = factorsUsedOf.get(factor);
  if (!list) {
    list = sharedJson(Object.freeze([Object.freeze(factorUsed(factor))]));
    factorsUsedOf.set(factor, list);
  }
  return list;
}

// The stored type is the deeper of the computation's and the factor's; a tie keeps the computation's.
function deeperType(computationType: number, factorType: number): number {
  return emissionTypeDepth(factorType) > emissionTypeDepth(computationType)
    ? factorType
    : computationType;
}

function withRollup(handler: Handler, leaves: EmissionRow[]): EmissionRow[] {
  if (handler.rollupEmissionTypeId === undefined || leaves.length <= 1) return leaves;
  const factorIds = leaves.map((r) => r.primaryFactorId).filter((id): id is number => id !== null);
  return [...leaves, {
    emissionTypeId: handler.rollupEmissionTypeId,
    primaryFactorId: factorIds.length ? Math.min(...factorIds) : null,
    kgCo2eq: leaves.reduce((sum, r) => sum + r.kgCo2eq, 0),
    additionalValue: null,
    scope: null,
    meta: { is_rollup: true },
  }];
}
