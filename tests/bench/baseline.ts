// The per-entry baseline of spec/performance.md, for the bench only (src/ never imports it): an
// honest transcription of the reference system's rematch. In one transaction, for each entry of
// the slice in turn: its own SQL queries for its factor and for the reference rows it names, the
// project's pure compute, a DELETE of its emission rows and an INSERT of the new ones.
//
// The factor queries follow what the reference did per entry before its caches: JSON-link dets
// resolve the entry's kind with one query; plane looks up its two airports, the haul bands and
// the (band, cabin) factor (four round trips per flight with the writes' DELETE/INSERT pair
// counted apart); the other FK-link dets read their (det, year) factors and reference data.
import {
  computeEntry,
  type ComputeInputs,
  LINK_KEY,
  validateEntryData,
} from "../../src/compute/compute_entry.ts";
import { createFactorLookup } from "../../src/compute/factor_set.ts";
import type { BaselineOptions, BaselineSummary } from "../../src/bench/phase.ts";
import type { Database, Queryable } from "../../src/db/connection.ts";
import { deleteEmissionsOf, insertEmissions } from "../../src/db/emissions.ts";
import { loadFactorSet } from "../../src/db/factors.ts";
import { loadReferenceData } from "../../src/db/reference.ts";
import { lockSlice } from "../../src/db/locks.ts";
import { sliceModuleIds } from "../../src/db/slice.ts";
import { getHandler } from "../../src/handlers/mod.ts";
import {
  EntryComputeError,
  type EntryData,
  type Factor,
  type Handler,
  type Location,
  type ReferenceData,
} from "../../src/handlers/types.ts";
import { ROLLUP_EMISSION_TYPE_IDS } from "../../src/reference/emission_types.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";
import { locationNaturalKey } from "../../src/reference/natural_key.ts";
import { refreshModuleStats } from "../../src/rematch/pg_store.ts";

const READ_CHUNK = 5000;
const NO_REFERENCE: ReferenceData = { locations: new Map(), rooms: new Map(), rates: new Map() };

/** Thrown to roll a sampled run back once it is timed. */
class Rollback extends Error {
  constructor(readonly summary: BaselineSummary) {
    super("baseline sample rolled back");
  }
}

interface FactorRow {
  id: number;
  data_entry_type_id: number;
  emission_type_id: number;
  year: number;
  classification: Factor["classification"];
  values: Factor["values"];
  import_id: number | null;
}

const toFactor = (r: FactorRow): Factor => ({
  id: r.id,
  dataEntryTypeId: r.data_entry_type_id,
  emissionTypeId: r.emission_type_id,
  year: r.year,
  classification: r.classification,
  values: r.values,
  // Emission meta names the import that set the factor's values (spec/history.md §1).
  importId: r.import_id,
});

/** One entry's inputs, fetched by its own queries; `statements` counts them. */
type InputsQuery = (
  tx: Queryable,
  data: EntryData,
  count: () => void,
) => Promise<{ factors: Factor[]; reference: ReferenceData }>;

function jsonLinkQuery(handler: Handler, detId: number, year: number): InputsQuery {
  const kindField = handler.kindField!;
  const codeField = handler.kindFieldOverride;
  return async (tx, data, count) => {
    const kind = data[kindField];
    const code = codeField ? data[codeField] : undefined;
    const link = data[LINK_KEY];
    let rows: FactorRow[] = [];
    count();
    if (kind !== undefined && kind !== null && String(kind) !== "") {
      rows = await tx<FactorRow[]>`
        select id, data_entry_type_id, emission_type_id, year, classification, "values", import_id
        from factors
        where data_entry_type_id = ${detId} and year = ${year}
          and (classification->>${kindField} = ${String(kind)}
            or (${codeField ?? null}::text is not null
              and classification->>${codeField ?? ""} = ${code == null ? null : String(code)}))
        order by id`;
    } else if (typeof link === "number") {
      rows = await tx<FactorRow[]>`
        select id, data_entry_type_id, emission_type_id, year, classification, "values", import_id
        from factors where id = ${link} and year = ${year}`;
    }
    const reference = handler.reference.length
      ? (count(), await loadReferenceData(tx, handler.reference, { years: [year] }))
      : NO_REFERENCE;
    return { factors: rows.map(toFactor), reference };
  };
}

function planeQuery(handler: Handler, detId: number, year: number): InputsQuery {
  return async (tx, data, count) => {
    const keys = [data.origin_iata, data.destination_iata].map((iata) =>
      locationNaturalKey({ transportMode: "plane", name: "", iataCode: String(iata) })
    );
    count();
    const airports = await tx<Location[]>`
      select id, transport_mode as "transportMode", name, iata_code as "iataCode",
        country_code as "countryCode", latitude, longitude, natural_key as "naturalKey"
      from locations where natural_key = any(${keys}::text[])`;
    const reference: ReferenceData = {
      ...NO_REFERENCE,
      locations: new Map(airports.map((a) => [a.naturalKey, { ...a }])),
    };
    // The haul bands: each category's band is set by its lowest-id factor.
    count();
    const bands = (await tx<FactorRow[]>`
      select id, data_entry_type_id, emission_type_id, year, classification, "values", import_id
      from factors
      where id in (
        select min(id) from factors where data_entry_type_id = ${detId} and year = ${year}
        group by classification->>'category')
      order by id`).map(toFactor);
    const pre = handler.preCompute!(data, reference, createFactorLookup(year, bands));
    if ("none" in pre) return { factors: bands, reference };
    count();
    const matched = (await tx<FactorRow[]>`
      select id, data_entry_type_id, emission_type_id, year, classification, "values", import_id
      from factors
      where data_entry_type_id = ${detId} and year = ${year}
        and classification->>'category' = ${String(pre.vars.haul_category)}
        and classification->>'cabin_class' = ${String(data.cabin_class)}
      order by id`).map(toFactor);
    const byId = new Map([...bands, ...matched].map((f) => [f.id, f]));
    return { factors: [...byId.values()], reference };
  };
}

function wholeSetQuery(handler: Handler, detId: number, year: number): InputsQuery {
  return async (tx, _data, count) => {
    count();
    const factors = await loadFactorSet(tx, detId, year);
    if (!handler.reference.length) return { factors, reference: NO_REFERENCE };
    count();
    return {
      factors,
      reference: await loadReferenceData(tx, handler.reference, { years: [year] }),
    };
  };
}

function inputsQueryFor(handler: Handler, detId: number, year: number): InputsQuery {
  if (handler.link === "json" && handler.kindField) return jsonLinkQuery(handler, detId, year);
  if (handler.det === "plane") return planeQuery(handler, detId, year);
  return wholeSetQuery(handler, detId, year);
}

function leafKg(rows: readonly { emissionTypeId: number; kgCo2eq: number }[]): number {
  let kg = 0;
  for (const r of rows) if (!ROLLUP_EMISSION_TYPE_IDS.has(r.emissionTypeId)) kg += r.kgCo2eq;
  return kg;
}

async function runInTransaction(
  tx: Queryable,
  options: BaselineOptions,
): Promise<BaselineSummary> {
  const det = getDataEntryType(options.dataEntryType);
  const handler = getHandler(det);
  const { year } = options;
  let statements = 0;
  const count = () => void statements++;
  const inputsOf = inputsQueryFor(handler, det.id, year);

  count();
  await lockSlice(tx, det.id, year);
  count();
  const modules = await sliceModuleIds(tx, det.moduleTypeId, year);
  const limit = options.limit ?? Infinity;
  let entries = 0;
  let errors = 0;
  let kgAfter = 0;
  let emissionsWritten = 0;
  const touched = new Set<number>();
  let afterId = 0;
  while (entries < limit) {
    count();
    const chunk = await tx<{ id: number; module_id: number; data: EntryData }[]>`
      select id, carbon_report_module_id as module_id, data from data_entries
      where data_entry_type_id = ${det.id} and carbon_report_module_id = any(${modules}::bigint[])
        and id > ${afterId}
      order by id limit ${Math.min(READ_CHUNK, limit - entries)}`;
    if (chunk.length === 0) break;
    afterId = chunk[chunk.length - 1].id;
    for (const entry of chunk) {
      entries++;
      let computed;
      try {
        const data = validateEntryData(handler, entry.data);
        const { factors, reference } = await inputsOf(tx, data, count);
        const inputs: ComputeInputs = {
          year,
          factors: createFactorLookup(year, factors),
          reference,
        };
        computed = computeEntry(handler, data, inputs);
      } catch (error) {
        if (!(error instanceof EntryComputeError)) throw error;
        // Left as it was: its old rows still count in the slice's kg.
        errors++;
        count();
        const old = await tx<{ emissionTypeId: number; kgCo2eq: number }[]>`
          select emission_type_id as "emissionTypeId", kg_co2eq as "kgCo2eq"
          from data_entry_emissions where data_entry_id = ${entry.id}`;
        kgAfter += leafKg(old);
        continue;
      }
      touched.add(entry.module_id);
      if (
        handler.link === "json" &&
        (entry.data[LINK_KEY] ?? null) !== (computed.data[LINK_KEY] ?? null)
      ) {
        count();
        const data = tx.json(computed.data as Parameters<Queryable["json"]>[0]);
        await tx`update data_entries set data = ${data}, updated_at = now() where id = ${entry.id}`;
      }
      count();
      await deleteEmissionsOf(tx, [entry.id]);
      if (computed.rows.length) {
        count();
        emissionsWritten += await insertEmissions(
          tx,
          computed.rows.map((row) => ({ dataEntryId: entry.id, row })),
        );
      }
      kgAfter += leafKg(computed.rows);
    }
  }
  count();
  await refreshModuleStats(tx, [...touched].sort((a, b) => a - b));
  return { entries, errors, kgAfter, emissionsWritten, statements };
}

/**
 * The per-entry baseline over a (det, year) slice, or its first `limit` entries, in one
 * transaction that commits when `commit` is set and rolls back otherwise.
 */
export async function perEntryBaseline(
  db: Database,
  options: BaselineOptions,
): Promise<BaselineSummary> {
  try {
    return await db.sql.begin(async (tx) => {
      const summary = await runInTransaction(tx, options);
      if (!options.commit) throw new Rollback(summary);
      return summary;
    });
  } catch (error) {
    if (error instanceof Rollback) return error.summary;
    throw error;
  }
}
