// Where the demo and seed data live: the fixtures/ folder of a checkout. The bundle and the
// binary do not carry it (ops hosts have no use for demo data), so they say what they need.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The fixtures cannot be found (a bundle or binary run away from a checkout). */
export class FixturesMissingError extends Error {
  override name = "FixturesMissingError";
}

/**
 * The fixtures folder, as a URL ending in `/`: the one beside the source in a checkout, else
 * `./fixtures` in the working directory. Throws a {@linkcode FixturesMissingError} naming the
 * command and what to do when there is neither.
 */
export function fixturesDir(command: string): URL {
  const candidates = [
    new URL("../../fixtures/", import.meta.url),
    new URL("fixtures/", pathToFileURL(`${Deno.cwd()}/`)),
  ];
  const found = candidates.find((dir) =>
    dir.protocol === "file:" && existsSync(fileURLToPath(new URL("factors/", dir))) &&
    existsSync(fileURLToPath(new URL("reference/", dir)))
  );
  if (!found) {
    throw new FixturesMissingError(
      `no fixtures/ folder here: ${command} reads its data from the fixtures/ folder of a ` +
        "rematch checkout, which the bundle and the binary do not carry; run it in a checkout, " +
        "or from a directory that holds fixtures/",
    );
  }
  return found;
}
