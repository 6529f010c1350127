// Settings that feed formulas: read from the environment of every process that computes (CLI,
// `serve`, `worker`), and recorded with each slice's state, so that a change makes the slices whose
// formulas read it stale (a full rematch) and a host set otherwise is seen as such.

/** The weeks in a year of the equipment formulas (spec/modules.md: WEEKS_PER_YEAR). */
export const WEEKS_PER_YEAR_VARIABLE = "REMATCH_WEEKS_PER_YEAR";

/** WEEKS_PER_YEAR when the environment does not set it. */
export const DEFAULT_WEEKS_PER_YEAR = 52;

/** A setting a handler's formulas read, by the name its slice state records it under. */
export type SettingName = "weeks per year";

/**
 * WEEKS_PER_YEAR as the environment sets it (`REMATCH_WEEKS_PER_YEAR`), else 52: a number of
 * weeks above 0 and at most 53. Anything else is an error naming the variable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { weeksPerYear } from "./settings.ts";
 * assert.equal(weeksPerYear(undefined), 52);
 * assert.equal(weeksPerYear(" 46 "), 46);
 * assert.throws(() => weeksPerYear("fifty"), /REMATCH_WEEKS_PER_YEAR: expected a number of weeks/);
 * ```
 */
export function weeksPerYear(
  text: string | undefined = Deno.env.get(WEEKS_PER_YEAR_VARIABLE),
): number {
  if (text === undefined || text.trim() === "") return DEFAULT_WEEKS_PER_YEAR;
  const weeks = Number(text.trim());
  if (!Number.isFinite(weeks) || weeks <= 0 || weeks > 53) {
    throw new RangeError(
      `${WEEKS_PER_YEAR_VARIABLE}: expected a number of weeks above 0 and at most 53, got ${
        JSON.stringify(text)
      }`,
    );
  }
  return weeks;
}

/** The digest of a setting set wrong starts so; the rest is what is wrong. */
export const UNREADABLE_SETTING = "unreadable: ";

/**
 * The settings a handler reads, as its slice state records them (`{"weeks per year": "52"}`),
 * beside the digests of the reference data it reads. A setting set wrong gets a digest that no
 * recorded state has ({@linkcode UNREADABLE_SETTING} and the reason): the slices that read it
 * compare as stale, and the others are compared as usual.
 */
export function settingDigests(
  settings: readonly SettingName[] | undefined,
): Record<string, string> {
  const digests: Record<string, string> = {};
  for (const setting of settings ?? []) {
    if (setting !== "weeks per year") continue;
    try {
      digests[setting] = String(weeksPerYear());
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      digests[setting] = `${UNREADABLE_SETTING}${error.message}`;
    }
  }
  return digests;
}

/**
 * What a state recorded before a setting was recorded stands for: the default then in force.
 */
export const SETTING_DEFAULT_DIGESTS: Readonly<Record<string, string>> = {
  "weeks per year": String(DEFAULT_WEEKS_PER_YEAR),
};
