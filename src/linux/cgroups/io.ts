/** Small synchronous file helpers for cgroupfs. */
import { closeSync, constants, openSync, readFileSync, writeSync } from "node:fs";
import { TsrunError, errnoText } from "../../errors.ts";

export function errCode(e: unknown): string | undefined {
  const c = (e as NodeJS.ErrnoException | null)?.code;
  return typeof c === "string" ? c : undefined;
}

/**
 * One write(2) of `value` to an existing cgroup file. Never O_CREAT: a missing file must be
 * ENOENT, not a new regular file (cgroupfs refuses creation anyway, with a less helpful errno).
 * (libuv opens every file O_CLOEXEC.)
 */
export function writeRaw(path: string, value: string): void {
  const fd = openSync(path, constants.O_WRONLY);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

/** The errno words (one table: src/boundary/errno.ts). */
export const errText = errnoText;

export function writeErrorMessage(path: string, value: string, e: unknown): string {
  return `cgroup: write ${value} to ${path}: ${errText(e)}`;
}

/** writeRaw, failing with the user-facing one-line error. */
export function writeFile(path: string, value: string): void {
  try {
    writeRaw(path, value);
  } catch (e) {
    throw new TsrunError(writeErrorMessage(path, value, e));
  }
}

/** The file's text, or undefined when it does not exist (or its cgroup is gone). */
export function readOpt(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const c = errCode(e);
    if (c === "ENOENT" || c === "ENODEV" || c === "ENOTDIR") return undefined;
    throw new TsrunError(`cgroup: read ${path}: ${errText(e)}`);
  }
}

export { sleepMs } from "../proc.ts";

/** "key value" lines (memory.stat, cpu.stat, memory.events, ...) as numbers. */
export function parseFlatKeyed(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!text) return out;
  for (const line of text.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp <= 0) continue;
    const v = parseUint(line.slice(sp + 1));
    if (v !== undefined) out[line.slice(0, sp)] = v;
  }
  return out;
}

/** What runc reports for "max" (2^64-1); a double holds it as 2^64. */
export const UINT64_MAX = 2 ** 64;

/** A cgroup number; "max" reads as UINT64_MAX as in runc (values above 2^53 are approximate). */
export function parseUint(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === "max") return UINT64_MAX;
  if (!/^-?[0-9]+$/.test(t)) return undefined;
  return Number(t);
}
