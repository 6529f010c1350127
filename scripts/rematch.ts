import { mainGroup } from "../src/cli/group.ts";
import { rematchGroup } from "../src/cli/rematch_history.ts";

if (import.meta.main) await mainGroup(rematchGroup);
