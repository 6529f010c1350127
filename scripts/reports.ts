import { mainGroup } from "../src/cli/group.ts";
import { reportsGroup } from "../src/cli/reports.ts";

if (import.meta.main) await mainGroup(reportsGroup);
