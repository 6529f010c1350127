// The handler table: one row per det. The engine finds rows here and never switches on a name.
import { type DataEntryType, getDataEntryType, listDataEntryTypes } from "../reference/enums.ts";
import { buildingHandlers } from "./buildings.ts";
import { equipmentHandlers } from "./equipment.ts";
import { externalHandlers } from "./external.ts";
import { headcountHandlers } from "./headcount.ts";
import { processEmissionHandlers } from "./process_emissions.ts";
import { purchaseHandlers } from "./purchase.ts";
import { travelHandlers } from "./travel.ts";
import type { Handler } from "./types.ts";

const ROWS: readonly Handler[] = [
  ...headcountHandlers,
  ...equipmentHandlers,
  ...travelHandlers,
  ...buildingHandlers,
  ...externalHandlers,
  ...processEmissionHandlers,
  ...purchaseHandlers,
];

const BY_DET = new Map(ROWS.map((h) => [h.det, h]));

/** The handler row of a det (by name or id); throws a RangeError for an unknown det. */
export function getHandler(det: string | number | DataEntryType): Handler {
  const type = typeof det === "object" ? det : getDataEntryType(det);
  const handler = BY_DET.get(type.name);
  if (!handler) throw new RangeError(`no handler for data entry type ${type.name}`);
  return handler;
}

/** Every handler row, in det id order. */
export function listHandlers(): readonly Handler[] {
  return listDataEntryTypes().flatMap((d) => BY_DET.get(d.name) ?? []);
}
