import { mainGroup } from "../src/cli/group.ts";
import { factorsGroup } from "../src/cli/factors.ts";

if (import.meta.main) await mainGroup(factorsGroup);
