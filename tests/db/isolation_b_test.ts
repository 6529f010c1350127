import { isolationTest } from "./_isolation.ts";

isolationTest("isolation-b", "isolation-a");
