// `deno task bench`: wires the per-entry baseline (tests/bench/, never part of the product) into
// the bench; `--phase JSON` is the bench running one of its timed phases in a fresh process.
import { runPhaseFromArgs } from "../src/bench/phase.ts";
import { benchCommand } from "../src/cli/bench.ts";
import { main } from "../src/cli/command.ts";
import { perEntryBaseline } from "../tests/bench/baseline.ts";

const hooks = { baseline: perEntryBaseline, entrypoint: new URL(import.meta.url) };

if (import.meta.main) {
  if (Deno.args[0] === "--phase") await runPhaseFromArgs(Deno.args[1], hooks);
  else await main(benchCommand(hooks));
}
