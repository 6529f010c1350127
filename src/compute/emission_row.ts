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

/** A canonical text of a row, equal for rows that need no rewrite (meta keys sorted). */
export function rowSignature(row: EmissionRow): string {
  return JSON.stringify([
    row.emissionTypeId,
    row.primaryFactorId,
    row.kgCo2eq,
    row.additionalValue,
    row.scope,
    canonical(row.meta),
  ]);
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** A stored row that can be rewritten in place. */
export interface IdentifiedRow extends EmissionRow {
  readonly id: number;
}

/**
 * How to bring stored rows to the computed ones: `null` when the shapes differ (the entry's rows
 * are replaced), else the in-place updates (empty when the rows, compared as multisets, are
 * already right). Rows are paired by emission type, identical rows first.
 */
export function planRowUpdates(
  stored: readonly IdentifiedRow[],
  computed: readonly EmissionRow[],
): { id: number; row: EmissionRow }[] | null {
  if (stored.length !== computed.length) return null;
  const byType = new Map<number, IdentifiedRow[]>();
  for (const row of stored) {
    const list = byType.get(row.emissionTypeId);
    if (list) list.push(row);
    else byType.set(row.emissionTypeId, [row]);
  }
  const changed: EmissionRow[] = [];
  for (const row of computed) {
    const list = byType.get(row.emissionTypeId);
    if (!list?.length) return null;
    const signature = rowSignature(row);
    const same = list.findIndex((old) => rowSignature(old) === signature);
    if (same >= 0) list.splice(same, 1);
    else changed.push(row);
  }
  return changed.map((row) => ({ id: byType.get(row.emissionTypeId)!.shift()!.id, row }));
}
