// One log line per event of the worker and the server: text for a person, or JSON lines
// (`--log-format json`) for a log collector.

/** How log lines are written. */
export type LogFormat = "text" | "json";

/** One thing that happened. `event` names it; the other fields depend on it. */
export interface LogEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

/** Writes one event. */
export type Logger = (event: LogEvent) => void;

/**
 * A logger writing one line per event to `write` (default: standard output): JSON with a `time`
 * field, or text `time event key=value ...` with the message last.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger("json", (line) => lines.push(line));
 * log({ event: "job_started", job_id: 7 });
 * assert.equal(JSON.parse(lines[0]).job_id, 7);
 * ```
 */
export function createLogger(
  format: LogFormat,
  write: (line: string) => void = (line) => console.log(line),
): Logger {
  return (event) => {
    const time = new Date().toISOString();
    if (format === "json") {
      write(JSON.stringify({ time, ...event }));
      return;
    }
    const { event: name, message, ...fields } = event;
    const parts = Object.entries(fields)
      .filter(([, value]) => value !== undefined && value !== null)
      .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
    write([time, name, ...parts, ...(message === undefined ? [] : [String(message)])].join(" "));
  };
}
