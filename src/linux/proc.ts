import { readFileSync, readdirSync, readlinkSync } from "node:fs";

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

function pidNs(pid: number | "self"): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/**
 * The processes of the pid namespace `init` is in, when that is not this process's own (so never
 * the host's): what a container without a cgroup (rootless) has instead of its cgroup's pid list.
 * Only processes this user may inspect are seen, which for a rootless container is all of them.
 */
export function pidsInPidNamespaceOf(init: number): number[] {
  const ns = pidNs(init);
  if (ns === undefined) return [];
  if (ns === pidNs("self")) return [init];
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    const pid = Number(name);
    if (pidNs(pid) === ns) out.push(pid);
  }
  return out.sort((a, b) => a - b);
}
