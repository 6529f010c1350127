// "Did you mean ...?" for a mistyped name: the known names closest to it by edit distance.

/**
 * The edit distance between two texts (insertions, deletions, substitutions and swaps of two
 * neighbouring characters each cost 1), compared case-insensitively.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { editDistance } from "./did_you_mean.ts";
 * assert.equal(editDistance("plane", "plane"), 0);
 * assert.equal(editDistance("plnae", "plane"), 1); // two letters swapped
 * assert.equal(editDistance("--yaer", "--year"), 1);
 * assert.equal(editDistance("train", "plane"), 4); // p/l for t/r, no i, an e
 * ```
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  // Three rows of the Damerau (optimal string alignment) table are enough.
  let before = new Array<number>(t.length + 1).fill(0);
  let previous = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const current = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) {
        best = Math.min(best, before[j - 2] + 1);
      }
      current.push(best);
    }
    before = previous;
    previous = current;
  }
  return previous[t.length];
}

/**
 * The known names close enough to `word` to be what was meant, closest first (at most 3). Close
 * enough: within a third of the longer name's length in edits (at least 1, at most 3), or a name
 * that starts with the word (3 letters or more) or contains it (4 or more).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closestNames } from "./did_you_mean.ts";
 * const dets = ["plane", "train", "it", "member", "student"];
 * assert.deepEqual(closestNames("plnae", dets), ["plane"]);
 * assert.deepEqual(closestNames("stud", dets), ["student"]);
 * assert.deepEqual(closestNames("laptop", dets), []);
 * ```
 */
export function closestNames(word: string, names: readonly string[]): string[] {
  const lower = word.toLowerCase();
  const scored = names.map((name) => {
    const other = name.toLowerCase();
    const distance = editDistance(lower, other);
    const limit = Math.min(3, Math.max(1, Math.floor(Math.max(lower.length, other.length) / 3)));
    const partial = (lower.length >= 3 && other.startsWith(lower)) ||
      (lower.length >= 4 && other.includes(lower));
    return { name, distance, near: distance <= limit || partial };
  }).filter((s) => s.near && s.name.toLowerCase() !== lower);
  scored.sort((x, y) => x.distance - y.distance || x.name.localeCompare(y.name));
  return scored.slice(0, 3).map((s) => s.name);
}

/**
 * `" (did you mean x?)"`, `" (did you mean x or y?)"`, or `""` when no known name is close.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { didYouMean } from "./did_you_mean.ts";
 * assert.equal(didYouMean("--yaer", ["--year", "--det"]), " (did you mean --year?)");
 * assert.equal(didYouMean("--colour", ["--year", "--det"]), "");
 * ```
 */
export function didYouMean(word: string, names: readonly string[]): string {
  const close = closestNames(word, names);
  if (close.length === 0) return "";
  const last = close.pop()!;
  return ` (did you mean ${close.length ? `${close.join(", ")} or ${last}` : last}?)`;
}
