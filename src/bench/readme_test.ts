import assert from "node:assert/strict";
import { join } from "node:path";
import { replaceReadmeBlock, writeReadmeBlock } from "./readme.ts";

const README = [
  "# Title",
  "",
  "<!-- bench:begin -->",
  "",
  "old figures",
  "",
  "<!-- bench:end -->",
  "",
  "<!-- bench-1m:begin -->",
  "old large figures",
  "<!-- bench-1m:end -->",
  "tail",
  "",
].join("\n");

Deno.test("a README block: only the lines between its own markers change", () => {
  const next = replaceReadmeBlock(README, "bench-1m", "\n| a | b |\n|---|---|\n");
  assert.equal(
    next,
    README.replace(
      "<!-- bench-1m:begin -->\nold large figures\n",
      "<!-- bench-1m:begin -->\n\n| a | b |\n|---|---|\n\n",
    ),
  );
  assert.ok(next.includes("old figures"), "the other block is kept");
  // Replacing again with the same content changes nothing.
  assert.equal(replaceReadmeBlock(next, "bench-1m", "| a | b |\n|---|---|"), next);
});

Deno.test("a README block: wrong markers are refused, naming the file, the marker and the lines", () => {
  const cases: [string, string, RegExp][] = [
    [README, "bench-10k", /^docs\/x\.md: no line "<!-- bench-10k:begin -->"$/],
    [
      README.replace("<!-- bench:end -->", ""),
      "bench",
      /^docs\/x\.md: no line "<!-- bench:end -->"$/,
    ],
    [
      README + "<!-- bench:begin -->\n",
      "bench",
      /^docs\/x\.md: "<!-- bench:begin -->" on 2 lines \(3, 13\); expected one$/,
    ],
    [
      "<!-- bench:end -->\n<!-- bench:begin -->\n",
      "bench",
      /^docs\/x\.md: "<!-- bench:end -->" \(line 1\) comes before "<!-- bench:begin -->" \(line 2\)$/,
    ],
    // A marker inside a line of text is not a marker line.
    [
      "see <!-- bench:begin --> here\n<!-- bench:end -->\n",
      "bench",
      /no line "<!-- bench:begin -->"/,
    ],
    [README, "Bench figures", /lower-case letters, digits and dashes, not "Bench figures"/],
  ];
  for (const [text, block, message] of cases) {
    assert.throws(() => replaceReadmeBlock(text, block, "new", "docs/x.md"), { message }, block);
  }
});

Deno.test("writing a README block formats the file as deno fmt does; a refused write leaves it as it was", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "README.md");
    await Deno.writeTextFile(file, README);
    await writeReadmeBlock(file, "bench", "| det | seconds |\n|---|---:|\n| it | 0.5 |\n");
    const written = await Deno.readTextFile(file);
    // The table is aligned as `deno fmt` aligns it, and the rest of the file is kept.
    assert.ok(
      written.includes(
        "<!-- bench:begin -->\n\n| det | seconds |\n| --- | ------: |\n| it  |     0.5 |\n\n<!-- bench:end -->",
      ),
      written,
    );
    assert.ok(written.startsWith("# Title\n") && written.includes("old large figures\n"));
    const check = await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--check", file],
      cwd: dir,
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(check.code, 0, "deno fmt --check is clean after the write");

    await assert.rejects(
      writeReadmeBlock(file, "bench-10k", "| x |"),
      /no line "<!-- bench-10k:begin -->"/,
    );
    assert.equal(await Deno.readTextFile(file), written, "nothing written on a refused block");
    await assert.rejects(
      writeReadmeBlock(join(dir, "NOPE.md"), "bench", "x"),
      /NOPE\.md: not found \(run the bench from the project's root\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
