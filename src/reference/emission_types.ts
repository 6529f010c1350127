// Look-ups over the emission-type tree: by id, by name, depth, scope and subtree membership.
import { EMISSION_TYPE_NODES } from "./emission_type_nodes.ts";
import type { EmissionTypeNode } from "./types.ts";

const BY_ID = new Map(EMISSION_TYPE_NODES.map((n) => [n.id, n]));
const BY_NAME = new Map(EMISSION_TYPE_NODES.map((n) => [n.name, n]));

/** The two rollup types: `buildings__rooms` (60100) and `headcount` (40000). Totals exclude them. */
export const ROLLUP_EMISSION_TYPE_IDS: ReadonlySet<number> = new Set([60100, 40000]);

/** The node with this id, or undefined. */
export function emissionTypeById(id: number): EmissionTypeNode | undefined {
  return BY_ID.get(id);
}

/** The node with this name, or undefined. */
export function emissionTypeByName(name: string): EmissionTypeNode | undefined {
  return BY_NAME.get(name);
}

/** The id of the node with this name; throws when the code table has no such node. */
export function emissionTypeId(name: string): number {
  const node = BY_NAME.get(name);
  if (!node) throw new RangeError(`unknown emission type "${name}"`);
  return node.id;
}

/** Number of parent hops from the node to its root (a root has depth 0). */
export function emissionTypeDepth(id: number): number {
  let depth = 0;
  let node = BY_ID.get(id);
  while (node?.parentId != null) {
    depth++;
    node = BY_ID.get(node.parentId);
  }
  return depth;
}

/** True when `id` is `ancestorId` or lies anywhere below it. */
export function isInSubtree(id: number, ancestorId: number): boolean {
  let node = BY_ID.get(id);
  while (node) {
    if (node.id === ancestorId) return true;
    node = node.parentId == null ? undefined : BY_ID.get(node.parentId);
  }
  return false;
}

/** The scope of the node (1, 2, 3) or null for grouping nodes and unknown ids. */
export function emissionTypeScope(id: number): 1 | 2 | 3 | null {
  return BY_ID.get(id)?.scope ?? null;
}
