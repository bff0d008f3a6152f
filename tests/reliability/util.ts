// Shared by the reliability suites: what a clean failure looks like, a small worker pool, and
// where a container's cgroups and processes would be if they were left behind.
import fs from "node:fs";
import path from "node:path";
import { readMounts } from "../lib/context.ts";
import { type TsrunResult } from "../lib/tsrun.ts";

/** The output of a tsrun that crashed instead of failing: a JS stack, an internal error, a Bun panic. */
const CRASH_SIGNS: RegExp[] = [
  /^\s+at\s/m,
  /internal error/i,
  /\b(TypeError|ReferenceError|RangeError|InternalError)\b/,
  /Bun has crashed|panic[:(]|Segmentation fault|oh no/i,
  /\bundefined is not\b|\bnull is not an object\b|is not a function/,
];

/**
 * Why r is not a clean success or a clean failure, or undefined when it is. `codes` are the
 * exit statuses that are not a crash in themselves (a foreground `run` passes on its process's).
 */
export function crashSign(r: TsrunResult, codes: readonly number[] = [0, 1, 255]): string | undefined {
  for (const re of CRASH_SIGNS) {
    const m = re.exec(r.stderr) ?? re.exec(r.stdout);
    if (m) return `output matches ${re}: ${JSON.stringify(m.input.slice(Math.max(0, m.index - 80), m.index + 160))}`;
  }
  if (r.signal) return `tsrun was killed by ${r.signal}`;
  if (!codes.includes(r.code)) return `exit status ${r.code}`;
  // 255: exec's own failures (as runc's exec).
  if ((r.code === 1 || r.code === 255) && r.stderr.trim() === "") return "failed without saying why";
  // Every line of a failure is tsrun's own one-line message (config errors: one line per problem).
  if (r.code === 1 || r.code === 255) {
    const stray = r.stderr.split("\n").filter((l) => l && !/^tsrun: /.test(l) && !/^config\.json: /.test(l));
    if (stray.length) return `stderr lines not from tsrun: ${JSON.stringify(stray.slice(0, 3))}`;
  }
  return undefined;
}

export function describe(r: TsrunResult): string {
  return `code ${r.code}${r.signal ? ` (${r.signal})` : ""}, stderr ${JSON.stringify(r.stderr.slice(0, 400))}`;
}

/** Run fn over items with at most `width` in flight; results in item order. */
export async function pool<I, O>(items: readonly I[], width: number, fn: (item: I, index: number) => Promise<O>): Promise<O[]> {
  const out: O[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i; (i = next++) < items.length; ) out[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export { state, waitForStatus, type StateJson } from "../lib/tsrun.ts";

/** Whether pid is a live (not zombie) process. */
export function alive(pid: number): boolean {
  if (pid <= 0) return false;
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  const st = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return st !== "Z" && st !== "X";
}

/** Wait (up to ms) until pid is gone; returns whether it is. */
export async function waitGone(pid: number, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await sleep(10);
  return !alive(pid);
}

/** The root dir of every cgroup hierarchy (v1 mounts and the cgroup2 mount). */
export function cgroupMounts(): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const m of readMounts()) {
    if (m.fsType !== "cgroup" && m.fsType !== "cgroup2") continue;
    if (m.root !== "/") continue;
    const key = m.fsType === "cgroup2" ? "cgroup2" : m.superOptions;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(m.mountPoint);
  }
  return out;
}

/** Where the default cgroup (/tsrun/<id>) of a container is in each hierarchy. */
export function defaultCgroupDirs(id: string): string[] {
  return cgroupMounts().map((mp) => path.join(mp, "tsrun", id));
}

/** The cgroup dirs of `cgPath` (absolute cgroupsPath) that exist. */
export function existingCgroupDirs(cgPath: string): string[] {
  return cgroupMounts()
    .map((mp) => path.join(mp, cgPath))
    .filter((d) => fs.existsSync(d));
}

/** Processes whose /proc/PID/environ contains `needle` (a tag or a unique env value). */
export function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    let env: string;
    try {
      env = fs.readFileSync(`/proc/${name}/environ`, "latin1");
    } catch {
      continue;
    }
    if (env.includes(needle) && alive(Number(name))) out.push(Number(name));
  }
  return out;
}
