/** One node of the emission-type tree. */
export interface EmissionTypeNode {
  readonly id: number;
  readonly name: string;
  readonly parentId: number | null;
  readonly scope: 1 | 2 | 3 | null;
  readonly category: string | null;
}
