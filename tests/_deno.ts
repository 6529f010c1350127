// Deno itself run as a subprocess, as a user runs it: its exit code and what it printed.

/** What a subprocess printed, and its exit code. */
export interface DenoRun {
  code: number;
  out: string;
  err: string;
}

/** Runs `deno ...args` (in `cwd`, with `env` added and colours off) and waits for it to end. */
export async function runDeno(
  args: readonly string[],
  options: { readonly cwd?: string; readonly env?: Record<string, string> } = {},
): Promise<DenoRun> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, out: decode(output.stdout), err: decode(output.stderr) };
}
