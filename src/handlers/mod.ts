// The handler table: one row per det. The engine finds rows here and never switches on a name.
import { type DataEntryType, getDataEntryType, listDataEntryTypes } from "../reference/enums.ts";
import type { Handler } from "./types.ts";

const ROWS: readonly Handler[] = [];

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
