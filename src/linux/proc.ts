import { readFileSync } from "node:fs";

export interface ProcStat {
  /** Process state letter: R, S, D, Z, T, ... */
  state: string;
  /** Start time in clock ticks since boot: with the pid, it names one process for good. */
  startTime: string;
}

/** /proc/PID/stat, or undefined when there is no such process. */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "?", startTime: fields[19] ?? "" };
}

/** The process is the one we started (same start time) and has not exited. */
export function isSameLiveProcess(pid: number, startTime: string): boolean {
  if (pid <= 0) return false;
  const st = procStat(pid);
  return st !== undefined && st.startTime === startTime && st.state !== "Z" && st.state !== "X";
}

/** Sleep without an event loop: start-up-cheap and fine for the short waits a CLI needs. */
export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
