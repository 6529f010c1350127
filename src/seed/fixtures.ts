// Where the demo and seed data live: fixtures/ of the checkout, embedded in the code as text
// (src/seed/fixture_files.ts), so that `seed` and `demo` run from the bundle and the binary too.
import { type CsvTable, parseCsv } from "../imports/csv.ts";
import { FIXTURE_FILES } from "./fixture_files.ts";

/** A fixture the code asks for is not embedded (a programming error, or a year without data). */
export class FixturesMissingError extends Error {
  override name = "FixturesMissingError";
}

/** The text of the fixture at `path` under `fixtures/` (e.g. `reference/rates.csv`). */
export function fixtureText(path: string): string {
  const text = FIXTURE_FILES.get(path);
  if (text === undefined) throw new FixturesMissingError(`no fixture fixtures/${path}`);
  return text;
}

/** A fixture CSV parsed, its rows naming `fixtures/<path>` and their file lines. */
export function fixtureCsv(path: string): CsvTable {
  return parseCsv(`fixtures/${path}`, fixtureText(path));
}

/** The names of the fixtures directly in `dir` (e.g. `factors/2025`), sorted. */
export function fixtureNames(dir: string): string[] {
  const prefix = `${dir}/`;
  return [...FIXTURE_FILES.keys()]
    .filter((path) => path.startsWith(prefix) && !path.slice(prefix.length).includes("/"))
    .map((path) => path.slice(prefix.length))
    .sort();
}

/** The years that have factor fixtures, ascending. */
export function fixtureYears(): number[] {
  const years = new Set<number>();
  for (const path of FIXTURE_FILES.keys()) {
    const match = /^factors\/(\d{4})\//.exec(path);
    if (match) years.add(Number(match[1]));
  }
  return [...years].sort((a, b) => a - b);
}
