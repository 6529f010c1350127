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

/** True when both lists hold the same rows, compared as multisets. */
export function sameRows(a: readonly EmissionRow[], b: readonly EmissionRow[]): boolean {
  if (a.length !== b.length) return false;
  const left = a.map(rowSignature).sort();
  const right = b.map(rowSignature).sort();
  return left.every((s, i) => s === right[i]);
}
