/**
 * Logging as runc's callers expect it: with `--log FILE --log-format json`, one
 * {"level","msg","time"} object per line in FILE (containerd and podman show the last
 * "error" line to their users). Errors and warnings always reach stderr too, as one plain line.
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

function write(level: Level, msg: string, toStderr: boolean): void {
  if (logFd !== undefined) {
    const line =
      format === "json"
        ? JSON.stringify({ level, msg, time: new Date().toISOString() }) + "\n"
        : `time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)}\n`;
    writeSync(logFd, line);
  }
  if (toStderr) writeSync(2, level === "error" ? `tsrun: ${msg}\n` : `tsrun: ${level}: ${msg}\n`);
}

export function logError(msg: string): void {
  write("error", msg, true);
}

export function logWarn(msg: string): void {
  write("warning", msg, true);
}

/** Stamped "@<epoch ms, to the µs> " so that bench/breakdown.ts can place each line exactly. */
export function logDebug(msg: string): void {
  if (debugOn) write("debug", `@${(performance.timeOrigin + performance.now()).toFixed(3)} ${msg}`, logFd === undefined);
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
