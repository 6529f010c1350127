import { isolationTest } from "./_isolation.ts";

isolationTest("isolation-a", "isolation-b");
