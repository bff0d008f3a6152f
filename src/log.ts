/**
 * Logging in runc's shapes (logrus): with `--log FILE`, one line per entry in FILE, as text
 * (`time="2006-01-02T15:04:05Z" level=error msg="..."`) or, with `--log-format json`, as
 * {"level","msg","time"}; containerd and podman show the last "error" line to their users.
 * Errors and warnings also reach stderr as one plain line. Without `--log`, stderr is the log:
 * with `--log-format json` every entry goes there as JSON (as runc), with text errors and
 * warnings stay one plain line and `--debug` lines are logrus text.
 */
import { openSync, writeSync, closeSync } from "node:fs";
import { sleepMs } from "./linux/proc.ts";

export type LogFormat = "text" | "json";
type Level = "debug" | "info" | "warning" | "error";

let logFd: number | undefined;
let format: LogFormat = "text";
let debugOn = false;

export function configureLog(opts: { file?: string; format: LogFormat; debug: boolean }): void {
  format = opts.format;
  debugOn = opts.debug;
  if (opts.file) logFd = openSync(opts.file, "a", 0o644);
}

export function closeLog(): void {
  if (logFd !== undefined) closeSync(logFd);
  logFd = undefined;
}

export function isDebug(): boolean {
  return debugOn;
}

/** logrus's time format (RFC 3339, whole seconds, UTC as the caller's TZ is not ours to know). */
function timestamp(): string {
  return new Date().toISOString().replace(/\.[0-9]+Z$/, "Z");
}

/** logrus quotes a text value unless every character is one of these. */
const BARE = /^[A-Za-z0-9\-._/@^+]+$/;

/** One entry as logrus writes it. Go's JSON encoder escapes <, > and & (so does this). */
export function formatEntry(level: Level, msg: string, how: LogFormat, time = timestamp()): string {
  if (how === "json") {
    return JSON.stringify({ level, msg, time }).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`) + "\n";
  }
  return `time="${time}" level=${level} msg=${BARE.test(msg) ? msg : JSON.stringify(msg)}\n`;
}

function write(level: Level, msg: string): void {
  if (logFd !== undefined) {
    writeSync(logFd, formatEntry(level, msg, format));
    if (level !== "debug") writeSync(2, level === "error" ? `tsrun: ${msg}\n` : `tsrun: ${level}: ${msg}\n`);
    return;
  }
  if (format === "json" || level === "debug") writeSync(2, formatEntry(level, msg, format));
  else writeSync(2, level === "error" ? `tsrun: ${msg}\n` : `tsrun: ${level}: ${msg}\n`);
}

export function logError(msg: string): void {
  write("error", msg);
}

export function logWarn(msg: string): void {
  write("warning", msg);
}

/** Stamped "@<epoch ms, to the µs> " so that bench/breakdown.ts can place each line exactly. */
export function logDebug(msg: string): void {
  if (debugOn) write("debug", `@${(performance.timeOrigin + performance.now()).toFixed(3)} ${msg}`);
}

/**
 * Command output to stdout. fs.writeSync, not process.stdout: under Bun the first use of
 * process.stdout costs 5-8 ms of CPU per process (measured in bench/), more than `state` itself.
 * A caller may hand us a non-blocking pipe, so EAGAIN waits and retries.
 */
export function writeOut(text: string): void {
  let buf = Buffer.from(text);
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(1, buf));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      sleepMs(1);
    }
  }
}
