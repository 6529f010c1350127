// The settings of the environment that jobs read (spec/interfaces.md §1; the README's
// configuration table), checked when a worker starts: one wrong setting on one host would
// otherwise fail, one by one, every job that host's workers claim.
import { weeksPerYear } from "../compute/settings.ts";
import { maxFileBytes } from "../imports/file.ts";

/**
 * Throws a RangeError naming the variable and what it expects when REMATCH_WEEKS_PER_YEAR or
 * REMATCH_MAX_FILE_SIZE is set wrong.
 *
 * @example
 * ```ts ignore
 * import { checkJobSettings } from "./settings.ts";
 * checkJobSettings(); // at a worker's start
 * ```
 */
export function checkJobSettings(): void {
  weeksPerYear();
  maxFileBytes();
}
