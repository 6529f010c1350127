import assert from "node:assert/strict";
import { FileError, openImportFile, parseByteSize, readImportFile } from "./file.ts";

Deno.test("import file: a file that grows past the limit while it is read fails", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "a,b\n");
    const stream = await openImportFile(path, { maxBytes: 10 });
    await Deno.writeTextFile(path, "1,2\n".repeat(100), { append: true });
    await assert.rejects(
      async () => {
        for await (const _ of stream) { /* read it all */ }
      },
      (error) => error instanceof FileError && /grew while it was read/.test(error.message),
    );
    assert.equal((await readImportFile(path, { maxBytes: 404 })).byteLength, 404);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("import file: sizes take binary units", () => {
  assert.equal(parseByteSize("16"), 16);
  assert.equal(parseByteSize("64 KiB"), 65536);
  assert.equal(parseByteSize("1mb"), 1048576);
  assert.equal(parseByteSize("1GiB"), 1073741824);
  for (const bad of ["", "0", "-1", "1.5MiB", "1 TB", "MiB"]) {
    assert.equal(parseByteSize(bad), undefined, bad);
  }
});
