import assert from "node:assert/strict";
import {
  clearStatusLine,
  describeLockWait,
  drawStatusLine,
  fitLine,
  formatDuration,
  RunProgress,
} from "./progress.ts";

function screen(columns: number) {
  const writes: string[] = [];
  return {
    writes,
    target: { write: (text: string) => writes.push(text), columns: () => columns },
    /** The last line drawn, without the erase sequence before it. */
    last: () => writes.at(-1)!.replace("\r\x1b[2K", ""),
  };
}

Deno.test("progress: the line never reaches the terminal's last column (so it never wraps)", () => {
  for (const columns of [20, 41, 80, 200]) {
    const { writes, target } = screen(columns);
    const progress = new RunProgress({ label: "rematch", slices: 21, target, now: () => 0 });
    progress.startSlice("biological_chemical_gaseous_product 2025");
    progress.update(1_234_567, 9_876_543);
    progress.waiting({
      slice: "biological_chemical_gaseous_product 2025",
      since: new Date(0),
      holder: "pid 4242 (rematch factors import), in a transaction since 12:00:00",
    })();
    progress.done();
    for (const text of writes) {
      // each draw erases the line first, then writes at most columns − 1 characters
      const line = text.replace("\r\x1b[2K", "");
      assert.ok([...line].length <= columns - 1, `${columns}: ${line}`);
      assert.ok(!line.includes("\n"));
    }
  }
  assert.equal(fitLine("abcdef", 5), "abc…");
  assert.equal(fitLine("abc", 4), "abc");
});

Deno.test("progress: overall share and ETA from the entries done so far", () => {
  let clock = 0;
  const { target, last } = screen(120);
  const progress = new RunProgress({
    label: "rematch",
    slices: 3,
    expectedEntries: 3000,
    target,
    now: () => clock,
  });
  progress.startSlice("plane 2025");
  assert.equal(last(), "rematch 1/3 plane 2025 · 0% of all");
  clock = 10_000;
  progress.update(1000, 1000);
  // 1,000 of 3,000 entries in 10 s: 2,000 left at 100 entries/s
  assert.equal(
    last(),
    "rematch 1/3 plane 2025 [####################] 1,000/1,000 · 33% of all · ETA 20s",
  );
  progress.startSlice("train 2025");
  clock = 15_000;
  progress.update(500, 2000);
  // 1,500 of 3,000 in 15 s: 1,500 left at 100/s
  assert.match(last(), /^rematch 2\/3 train 2025 \[#####-+\] 500\/2,000 · 50% of all · ETA 15s$/);
  progress.done();
});

Deno.test("progress: without a total, slices not started count as the average slice done", () => {
  let clock = 0;
  const { target, last } = screen(120);
  const progress = new RunProgress({ label: "rematch", target, now: () => clock });
  progress.plan(4);
  progress.startSlice("a 2025");
  clock = 4_000;
  progress.update(400, 400);
  progress.startSlice("b 2025");
  clock = 6_000;
  progress.update(100, 200);
  // known: 400 + 200; the 2 slices not started count 400 each (the one finished): 1,400 in all,
  // 500 done in 6 s, so 900 left at 500/6 per second = 10.8 s
  assert.match(last(), / · 35% of all · ETA 11s$/);
  progress.done();
});

Deno.test("progress: while a slice lock is held elsewhere the line says which, since when, by whom", async () => {
  let clock = Date.UTC(2025, 0, 1, 12, 0, 0);
  const { target, last, writes } = screen(160);
  const progress = new RunProgress({ label: "rematch", target, now: () => clock, refreshMs: 5 });
  progress.startSlice("plane 2025");
  const since = new Date(clock);
  const taken = progress.waiting({ slice: "plane 2025", since, holder: "pid 7 (rematch)" });
  assert.equal(
    last(),
    `rematch plane 2025: ${
      describeLockWait({ slice: "plane 2025", since, holder: "pid 7 (rematch)" }, clock)
    }`,
  );
  assert.match(
    last(),
    /waiting for the slice lock of plane 2025 since \d\d:\d\d:\d\d \(0s; held by pid 7 \(rematch\)\)$/,
  );
  clock += 65_000;
  const before = writes.length;
  await new Promise((done) => setTimeout(done, 30));
  // redrawn on its own while waiting, with the time waited
  assert.ok(writes.length > before);
  assert.match(last(), /\(1m 05s; held by pid 7 \(rematch\)\)$/);
  taken();
  assert.doesNotMatch(last(), /waiting/);
  const after = writes.length;
  await new Promise((done) => setTimeout(done, 30));
  assert.equal(writes.length, after, "no redraw once the lock is taken");
  progress.done();
  assert.equal(writes.at(-1), "\r\x1b[2K");
});

Deno.test("formatDuration: seconds, minutes, hours", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(59_400), "59s");
  assert.equal(formatDuration(60_000), "1m 00s");
  assert.equal(formatDuration(3_600_000), "1h 00m");
});

Deno.test("clearStatusLine (what errors and the Ctrl-C line call first) erases a drawn line once", () => {
  const { writes, target } = screen(80);
  drawStatusLine("rematch 1/21 plane 2025", target);
  clearStatusLine();
  assert.deepEqual(writes, ["\r\x1b[2Krematch 1/21 plane 2025", "\r\x1b[2K"]);
  clearStatusLine();
  assert.equal(writes.length, 2, "nothing drawn, nothing to erase");
});
