// The emission rows the compute produces and the rematch compares and writes.

/** One computed emission row (before it is stored). */
export interface EmissionRow {
  readonly emissionTypeId: number;
  readonly primaryFactorId: number | null;
  readonly kgCo2eq: number;
  readonly additionalValue: number | null;
  readonly scope: number | null;
  readonly meta: Record<string, unknown>;
}

/** True when two rows need no rewrite: same fields and the same meta as JSON (key order aside). */
export function sameRow(a: EmissionRow, b: EmissionRow): boolean {
  return a.emissionTypeId === b.emissionTypeId && a.primaryFactorId === b.primaryFactorId &&
    a.kgCo2eq === b.kgCo2eq && a.additionalValue === b.additionalValue && a.scope === b.scope &&
    sameJson(a.meta, b.meta);
}

/** Equality as JSON would serialise: key order ignored, undefined-valued keys absent. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((value, i) => sameJson(value, b[i]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left).filter((k) => left[k] !== undefined);
  if (keys.length !== Object.keys(right).filter((k) => right[k] !== undefined).length) return false;
  return keys.every((k) => sameJson(left[k], right[k]));
}

/** A stored row that can be rewritten in place. */
export interface IdentifiedRow extends EmissionRow {
  readonly id: number;
}

/**
 * How to bring stored rows to the computed ones: `null` when the shapes differ (the entry's rows
 * are replaced), else the in-place updates (empty when the rows, compared as multisets, are
 * already right). The shape is the number of rows of each emission type: rows are paired within
 * a type, identical rows first, so a change of shape with the same total (e.g. {food, waste}
 * becoming {food, food}) is a replacement too.
 */
export function planRowUpdates(
  stored: readonly IdentifiedRow[],
  computed: readonly EmissionRow[],
): { id: number; row: EmissionRow }[] | null {
  if (stored.length !== computed.length) return null;
  const storedByType = groupByType(stored);
  const computedByType = groupByType(computed);
  if (storedByType.size !== computedByType.size) return null;
  for (const [type, rows] of computedByType) {
    if (storedByType.get(type)?.length !== rows.length) return null;
  }
  const updates: { id: number; row: EmissionRow }[] = [];
  for (const [type, rows] of computedByType) {
    const unpaired = [...storedByType.get(type)!];
    const changed = rows.filter((row) => {
      const same = unpaired.findIndex((old) => sameRow(old, row));
      if (same < 0) return true;
      unpaired.splice(same, 1);
      return false;
    });
    // Equal counts per type: exactly one stored row is left for each changed row.
    changed.forEach((row, i) => updates.push({ id: unpaired[i].id, row }));
  }
  return updates;
}

function groupByType<T extends EmissionRow>(rows: readonly T[]): Map<number, T[]> {
  const byType = new Map<number, T[]>();
  for (const row of rows) {
    const list = byType.get(row.emissionTypeId);
    if (list) list.push(row);
    else byType.set(row.emissionTypeId, [row]);
  }
  return byType;
}
