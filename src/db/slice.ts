// Reading a (det, year) slice's shared inputs: its factor set and the reference data its
// handler needs, each read once.
import type { ComputeInputs } from "../compute/compute_entry.ts";
import { createFactorLookup } from "../compute/factor_set.ts";
import { settingDigests, weeksPerYear } from "../compute/settings.ts";
import { sameJson } from "../compute/emission_row.ts";
import { readReferenceDigests } from "../rematch/state.ts";
import type { Handler } from "../handlers/types.ts";
import type { Queryable } from "./connection.ts";
import { loadFactorSet } from "./factors.ts";
import { loadReferenceData } from "./reference.ts";

/** The factor set and reference data of one (det, year) slice. */
export async function loadSliceInputs(
  tx: Queryable,
  handler: Handler,
  dataEntryTypeId: number,
  year: number,
): Promise<ComputeInputs> {
  const factors = await loadFactorSet(tx, dataEntryTypeId, year);
  // A reference import takes no slice lock: the data may change between statements. Read between
  // two reads of its digests that agree, the data is the one those digests name.
  const reads = handler.reference.length > 0;
  let digests: Record<string, string> = reads ? await readReferenceDigests(tx, handler, year) : {};
  for (let attempt = 1;; attempt++) {
    const reference = await loadReferenceData(tx, handler.reference, { years: [year] });
    const after = reads ? await readReferenceDigests(tx, handler, year) : digests;
    if (sameJson(after, digests)) {
      return {
        year,
        factors: createFactorLookup(year, factors),
        reference,
        // Read only where a formula uses it: a bad value fails the equipment slices only.
        weeksPerYear: handler.settings?.includes("weeks per year") ? weeksPerYear() : undefined,
        referenceDigests: { ...digests, ...settingDigests(handler.settings) },
      };
    }
    if (attempt === 5) {
      throw new Error(
        `the reference data of ${handler.det} ${year} changed 5 times while it was read`,
      );
    }
    digests = after;
  }
}

/** The carbon report modules of a (module type, year), optionally narrowed to `onlyIds`. */
export async function sliceModuleIds(
  tx: Queryable,
  moduleTypeId: number,
  year: number,
  onlyIds?: readonly number[],
): Promise<number[]> {
  const rows = onlyIds
    ? await tx<{ id: number }[]>`
      select m.id from carbon_report_modules m join carbon_reports r on r.id = m.carbon_report_id
      where m.module_type_id = ${moduleTypeId} and r.year = ${year} and m.id = any(${[
      ...onlyIds,
    ]}::bigint[])
      order by m.id`
    : await tx<{ id: number }[]>`
      select m.id from carbon_report_modules m join carbon_reports r on r.id = m.carbon_report_id
      where m.module_type_id = ${moduleTypeId} and r.year = ${year}
      order by m.id`;
  return rows.map((r) => r.id);
}
