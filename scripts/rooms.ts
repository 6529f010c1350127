import { main } from "../src/cli/command.ts";
import { roomsCommand } from "../src/cli/reference.ts";

if (import.meta.main) await main(roomsCommand);
