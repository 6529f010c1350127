// `dets`: every data entry type with its id, module and how its entries link to factors.
import { z } from "zod";
import { getHandler } from "../handlers/mod.ts";
import { listDataEntryTypes } from "../reference/enums.ts";
import { defineCommand, EXIT } from "./command.ts";
import { formatTable } from "./table.ts";

/** One line of `dets`. */
export interface DetListing {
  readonly name: string;
  readonly id: number;
  readonly module: string;
  readonly moduleTypeId: number;
  /** `json`: the factor id is stored on the entry; `fk`: it is derived at compute time. */
  readonly link: "json" | "fk";
}

/** Every det, in id order, as `dets` lists them. */
export function listDets(): DetListing[] {
  return listDataEntryTypes().map((d) => ({
    name: d.name,
    id: d.id,
    module: d.moduleName,
    moduleTypeId: d.moduleTypeId,
    link: getHandler(d).link,
  }));
}

/** The `dets` command. */
export const detsCommand = defineCommand({
  name: "dets",
  summary: "every data entry type: name, id, module, link kind",
  usage: `Usage: deno task dets [--json]

Lists every data entry type (det): the name and id commands take (--det plane or --det 20; names
in any case), its module and its link kind: json (the entry stores its factor id, which the
rematch re-resolves) or fk (the factor is derived from the entry's fields at compute time).
Reads no database.`,
  options: {},
  schema: z.object({ positionals: z.array(z.string()).max(0, "dets takes no arguments") }),
  access: "read",
  run() {
    const dets = listDets();
    return Promise.resolve({
      exitCode: EXIT.ok,
      json: dets,
      text: formatTable(
        ["name", { header: "id", identifier: true }, "module", {
          header: "module id",
          identifier: true,
        }, "link"],
        dets.map((d) => [d.name, d.id, d.module, d.moduleTypeId, d.link]),
      ),
    });
  },
});
