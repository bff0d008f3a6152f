// Shared by bench/bench.ts and bench/breakdown.ts: the private work area (state roots, bundles,
// copies of the binaries), the C runner that times each command, crun's mount namespace,
// cleanup and the leak check.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { benchConfig, BENCH_TAG_ENV } from "./config.ts";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const BUILD = path.join(REPO, "build");
export const RUNNER_SRC = path.join(REPO, "bench/runner.c");

export type RuntimeName = "runc" | "crun" | "tsrun";
export const ALL_RUNTIMES: RuntimeName[] = ["runc", "crun", "tsrun"];

export interface Runtime {
  name: RuntimeName;
  bin: string;
  /** private --root state dir */
  root: string;
  /** mount namespace file to setns into before running it (crun on a hybrid host) */
  ns?: string;
}

export interface Work {
  tag: string;
  dir: string;
  rootfs: string;
  runner: string;
  bundles: { sleep: string; true: string };
  runtimes: Runtime[];
  env: NodeJS.ProcessEnv;
  /** pid of the process holding crun's private mount namespace */
  nsHolder?: number;
  /** set once cleanup ran */
  cleaned: boolean;
}

/** The environment of every timed command: the driver's, without NODE_EXTRA_CA_CERTS. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: opts.env ?? cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

export function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

/** Compiles bench/runner.c into build/bench/bench-runner when missing or older than the source. */
export function buildRunner(): string {
  const out = path.join(BUILD, "bench", "bench-runner");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const fresh = fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(RUNNER_SRC).mtimeMs;
  if (!fresh) {
    const tmp = `${out}.${process.pid}`;
    sh(process.env.CC || "cc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", tmp, RUNNER_SRC]);
    fs.renameSync(tmp, out);
  }
  return out;
}

/** Compiles bench/floor.ts like build/tsrun (a Bun executable that does nothing). */
export function buildBunFloor(): string | undefined {
  const out = path.join(BUILD, "bench", "bun-floor");
  const src = path.join(REPO, "bench/floor.ts");
  const bun = path.join(REPO, "node_modules/.bin/bun");
  const makefile = path.join(REPO, "Makefile");
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= Math.max(fs.statSync(src).mtimeMs, fs.statSync(makefile).mtimeMs)) return out;
  // The flags of the Makefile's BUN_COMPILE, so that the floor is built as tsrun is.
  // The --define of the commit is make's to expand (and the floor has no use for it).
  const flags = (/^BUN_COMPILE := (.*)$/m.exec(fs.readFileSync(makefile, "utf8"))?.[1]?.replace(/--define '[^']*'/g, "").trim().split(/\s+/) ?? ["--compile", "--bytecode", "--minify"]);
  try {
    sh(bun, ["build", ...flags, "--target=bun-linux-x64", src, "--outfile", out]);
    return out;
  } catch (e) {
    log(`cannot build the Bun floor binary: ${(e as Error).message}`);
    return undefined;
  }
}

/** Builds the busybox rootfs once (tests/make-rootfs.sh is idempotent) in build/bench/rootfs. */
export function buildRootfs(): string {
  const dir = path.join(BUILD, "bench", "rootfs");
  sh(path.join(REPO, "tests/make-rootfs.sh"), [dir]);
  return fs.realpathSync(dir);
}

function which(name: string, fallback: string): string {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const p = path.join(dir, name);
    if (dir && fs.existsSync(p)) return p;
  }
  return fallback;
}

/** Hybrid host: a cgroup2 mount beside the v1 hierarchies, which crun 1.8.1 refuses. */
export function hybridUnifiedMount(): string | undefined {
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-");
    if (sep > 0 && f[sep + 1] === "cgroup2" && f[4] !== "/sys/fs/cgroup") return f[4];
  }
  return undefined;
}

/**
 * Starts `unshare -m` with the hybrid cgroup2 mount unmounted, kept alive by sleep; crun is run
 * (by the runner's setns) in its mount namespace, at no cost inside any measurement.
 */
const NS_HOLDER_SLEEP = "100000000";

async function startNsHolder(unified: string, env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn("unshare", ["-m", "--propagation", "private", "sh", "-c", `umount ${unified} && echo ok && exec sleep ${NS_HOLDER_SLEEP}`], {
    stdio: ["ignore", "pipe", "inherit"],
    env,
    detached: false,
  });
  const ok = await new Promise<boolean>((resolve) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ok")) resolve(true);
    });
    child.on("exit", () => resolve(false));
  });
  if (!ok || !child.pid) throw new Error("could not set up crun's private mount namespace");
  child.stdout!.destroy();
  child.unref();
  return child.pid;
}

export interface SetupOptions {
  runtimes: RuntimeName[];
  /** copy build/tsrun, build/tsrun-main and build/tsrun-helper (so a concurrent rebuild cannot swap them mid-run) */
  tsrunFrom?: string;
}

export const STATE_PARENT = "/run/tsrun-bench";

/**
 * Cleans up after bench runs that were killed before their own cleanup: each run leaves
 * /run/tsrun-bench/<tag>.owner naming its pid; when that pid is no longer a bench process,
 * its containers are deleted (delete --force, crun through the unshare wrapper) and its roots
 * and work dir removed. Returns what was cleaned.
 */
export function cleanStale(runner: string): string[] {
  const done: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(STATE_PARENT);
  } catch {
    return done;
  }
  for (const n of names.filter((x) => x.endsWith(".owner"))) {
    const tag = n.slice(0, -".owner".length);
    let owner: { pid: number; dir: string; runtimes: RuntimeName[]; nsHolder?: number };
    try {
      owner = JSON.parse(fs.readFileSync(path.join(STATE_PARENT, n), "utf8"));
    } catch {
      continue;
    }
    let alive = false;
    try {
      alive = /bench/.test(fs.readFileSync(`/proc/${owner.pid}/cmdline`, "utf8"));
    } catch {
      /* gone */
    }
    if (alive) continue;
    const unified = hybridUnifiedMount();
    for (const name of owner.runtimes) {
      const root = path.join(STATE_PARENT, `${tag}-${name}`);
      const bin = name === "tsrun" ? path.join(owner.dir, "bin/tsrun") : which(name, name === "runc" ? "/usr/sbin/runc" : "/usr/bin/crun");
      let ids: string[] = [];
      try {
        ids = fs.readdirSync(root);
      } catch {
        continue;
      }
      for (const id of ids) {
        const cmd = [bin, "--root", root, "delete", "--force", id];
        const argv = name === "crun" && unified ? ["unshare", "-m", "sh", "-c", `umount ${unified}; exec "$0" "$@"`, ...cmd] : cmd;
        spawnSync(runner, ["-o", "/dev/null", ...argv], { env: cleanEnv() });
      }
      try {
        fs.rmdirSync(root);
        done.push(root);
      } catch (e) {
        log(`stale bench root ${root}: ${(e as Error).message}`);
      }
    }
    if (owner.nsHolder) {
      try {
        if (fs.readFileSync(`/proc/${owner.nsHolder}/cmdline`, "utf8").startsWith(`sleep\0${NS_HOLDER_SLEEP}`)) process.kill(owner.nsHolder, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    fs.rmSync(owner.dir, { recursive: true, force: true });
    fs.rmSync(path.join(STATE_PARENT, n), { force: true });
  }
  return done;
}

export async function setup(opts: SetupOptions): Promise<Work> {
  const env = cleanEnv();
  const tag = `tsb${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  const work: Work = {
    tag,
    dir,
    rootfs: "",
    runner: buildRunner(),
    bundles: { sleep: path.join(dir, "bundle-sleep"), true: path.join(dir, "bundle-true") },
    runtimes: [],
    env,
    cleaned: false,
  };
  work.rootfs = buildRootfs();
  for (const [name, args] of [
    ["sleep", ["/bin/sleep", "100000"]],
    ["true", ["/bin/true"]],
  ] as const) {
    const b = path.join(dir, `bundle-${name}`);
    fs.mkdirSync(b, { mode: 0o711 });
    fs.writeFileSync(path.join(b, "config.json"), JSON.stringify(benchConfig(work.rootfs, [...args], tag), null, 2) + "\n");
  }
  fs.mkdirSync(path.join(dir, "out"));
  fs.mkdirSync(STATE_PARENT, { recursive: true, mode: 0o700 });
  const stateParent = STATE_PARENT;
  // Who owns the roots: a later run cleans up after a bench that was killed (SIGKILL skips traps).
  fs.writeFileSync(path.join(STATE_PARENT, `${tag}.owner`), JSON.stringify({ pid: process.pid, dir, runtimes: opts.runtimes }) + "\n");
  for (const name of opts.runtimes) {
    const root = path.join(stateParent, `${tag}-${name}`);
    fs.mkdirSync(root, { mode: 0o700 });
    let bin: string;
    if (name === "tsrun") {
      const from = opts.tsrunFrom ?? BUILD;
      const binDir = path.join(dir, "bin");
      fs.mkdirSync(binDir, { recursive: true });
      // The front end finds tsrun-main beside it, and tsrun-main the helper.
      for (const f of ["tsrun", "tsrun-main", "tsrun-helper"]) {
        fs.copyFileSync(path.join(from, f), path.join(binDir, f));
        fs.chmodSync(path.join(binDir, f), 0o755);
      }
      bin = path.join(binDir, "tsrun");
    } else {
      bin = which(name, name === "runc" ? "/usr/sbin/runc" : "/usr/bin/crun");
    }
    work.runtimes.push({ name, bin, root });
  }
  const crun = work.runtimes.find((r) => r.name === "crun");
  const unified = hybridUnifiedMount();
  if (crun && unified) {
    work.nsHolder = await startNsHolder(unified, env);
    crun.ns = `/proc/${work.nsHolder}/ns/mnt`;
    fs.writeFileSync(path.join(STATE_PARENT, `${tag}.owner`), JSON.stringify({ pid: process.pid, dir, runtimes: opts.runtimes, nsHolder: work.nsHolder }) + "\n");
  }
  return work;
}

// ---------- running and timing ----------

export interface Step {
  ms: number;
  /** peak RSS in KiB of the command and the descendants it reaped (wait4 ru_maxrss) */
  rssKb: number;
  code: number;
  /** user + system CPU time of the command and the descendants it reaped (wait4) */
  cpuMs: number;
}

export interface Timed {
  steps: Step[];
  totalMs: number;
  /** the driver's hrtime around the whole runner call */
  outerMs: number;
  output: string;
}

export function rtCmd(rt: Runtime, ...args: string[]): string[] {
  return [rt.bin, "--root", rt.root, ...args];
}

let outCounter = 0;

/**
 * Runs commands one after another under the runner (in rt's namespace), returns each one's
 * time and peak RSS. Throws when one fails, with its output, unless allowFail.
 */
export function timed(
  work: Work,
  rt: Runtime | undefined,
  cmds: string[][],
  opts: { subreaper?: boolean; allowFail?: boolean } = {},
): Timed {
  const out = path.join(work.dir, "out", `${++outCounter}.txt`);
  const args: string[] = [];
  if (rt?.ns) args.push("-n", rt.ns);
  args.push("-o", out);
  if (opts.subreaper) args.push("-s");
  cmds.forEach((c, i) => {
    if (i > 0) args.push("---");
    args.push(...c);
  });
  const t0 = process.hrtime.bigint();
  const r = spawnSync(work.runner, args, { encoding: "utf8", env: work.env, stdio: ["ignore", "pipe", "pipe"] });
  const outerMs = Number(process.hrtime.bigint() - t0) / 1e6;
  let output = "";
  try {
    output = fs.readFileSync(out, "utf8");
    fs.unlinkSync(out);
  } catch {
    /* no output */
  }
  if (r.error) throw r.error;
  const steps: Step[] = [];
  let totalMs = NaN;
  for (const line of r.stdout.split("\n")) {
    const f = line.split(" ");
    if (f[0] === "step") steps.push({ ms: Number(f[2]) / 1e6, rssKb: Number(f[3]), code: Number(f[4]), cpuMs: Number(f[5] ?? NaN) / 1e3 });
    else if (f[0] === "total") totalMs = Number(f[1]) / 1e6;
  }
  const failed = steps.find((s) => s.code !== 0);
  if (!opts.allowFail && (r.status !== 0 || failed || steps.length !== cmds.length)) {
    const which = failed ? cmds[steps.indexOf(failed)] : cmds[steps.length] ?? cmds[0];
    throw new Error(`${rt?.name ?? ""} ${which?.slice(3).join(" ")}: failed (exit ${failed?.code ?? r.status}): ${output.trim()}${r.stderr.trim()}`);
  }
  return { steps, totalMs, outerMs, output };
}

export interface PoolResult {
  totalMs: number;
  tasks: { k: number; ms: number; code: number }[];
  failed: number;
  output: string;
}

/** count tasks, jobs at a time; "{}" in an argument is replaced by `${prefix}${k}`. */
export function pool(work: Work, rt: Runtime, jobs: number, count: number, prefix: string, cmds: string[][]): PoolResult {
  const out = path.join(work.dir, "out", `${++outCounter}.txt`);
  const args: string[] = [];
  if (rt.ns) args.push("-n", rt.ns);
  args.push("-o", out, "-P", String(jobs), "-N", String(count), "-I", prefix);
  cmds.forEach((c, i) => {
    if (i > 0) args.push("---");
    args.push(...c);
  });
  const r = spawnSync(work.runner, args, { encoding: "utf8", env: work.env, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 24 });
  if (r.error) throw r.error;
  let output = "";
  try {
    output = fs.readFileSync(out, "utf8");
    fs.unlinkSync(out);
  } catch {
    /* none */
  }
  const tasks: PoolResult["tasks"] = [];
  let totalMs = NaN;
  for (const line of r.stdout.split("\n")) {
    const f = line.split(" ");
    if (f[0] === "task") tasks.push({ k: Number(f[1]), ms: Number(f[2]) / 1e6, code: Number(f[3]) });
    else if (f[0] === "total") totalMs = Number(f[1]) / 1e6;
  }
  const failed = tasks.filter((t) => t.code !== 0).length + (count - tasks.length);
  return { totalMs, tasks, failed, output };
}

// ---------- cleanup and leaks ----------

export function containersIn(rt: Runtime): string[] {
  try {
    return fs.readdirSync(rt.root).filter((n) => !n.startsWith("."));
  } catch {
    return [];
  }
}

/** delete --force of every container in our roots (8 at a time), then the roots, the holder, the work dir. */
export function cleanup(work: Work, opts: { keepRoots?: boolean; final?: boolean } = {}): string[] {
  const problems: string[] = [];
  for (const rt of work.runtimes) {
    const ids = containersIn(rt);
    if (ids.length === 0) continue;
    const list = path.join(work.dir, `leftover-${rt.name}.txt`);
    // The runner's pool substitutes ids by index: write a tiny shell loop instead.
    fs.writeFileSync(list, ids.join("\n") + "\n");
    const args: string[] = [];
    if (rt.ns) args.push("-n", rt.ns);
    args.push("-P", "8", "-N", String(ids.length), "-I", "", "sh", "-c", `id=$(sed -n "$(({}+1))p" ${list}); exec "$0" --root "$1" delete --force "$id"`, rt.bin, rt.root);
    const r = spawnSync(work.runner, args, { encoding: "utf8", env: work.env, stdio: ["ignore", "pipe", "pipe"] });
    const left = containersIn(rt);
    if (left.length) problems.push(`${rt.name}: delete --force left ${left.join(", ")} in ${rt.root} (${r.stderr.trim()})`);
  }
  if (!opts.final) return problems;
  for (const rt of work.runtimes) {
    try {
      fs.rmdirSync(rt.root);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") problems.push(`rmdir ${rt.root}: ${(e as Error).message}`);
    }
  }
  fs.rmSync(path.join(STATE_PARENT, `${work.tag}.owner`), { force: true });
  try {
    fs.rmdirSync(STATE_PARENT); // only when empty: other runs may be going on
  } catch {
    /* not empty */
  }
  if (work.nsHolder) {
    try {
      process.kill(work.nsHolder, "SIGKILL");
    } catch {
      /* gone */
    }
    work.nsHolder = undefined;
  }
  fs.rmSync(work.dir, { recursive: true, force: true });
  work.cleaned = true;
  return problems;
}

export interface LeakReport {
  mounts: string[];
  cgroups: string[];
  stateDirs: string[];
  processes: string[];
}

function mountLines(file: string, needles: string[]): string[] {
  try {
    return fs
      .readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => needles.some((n) => l.includes(n)));
  } catch {
    return [];
  }
}

function cgroupDirsWith(prefix: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let ents: fs.Dirent[];
    try {
      ents = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name.startsWith(prefix)) found.push(p);
      else if (depth > 0) walk(p, depth - 1);
    }
  };
  // /sys/fs/cgroup/<hierarchy>/<id> (runc, crun), /sys/fs/cgroup/<hierarchy>/tsrun/<id> (tsrun),
  // and below the caller's own cgroup when it is not the root (runc nests under it, e.g.
  // memory/process_api/<hash>/<id>); /sys/fs/cgroup/<id>, /sys/fs/cgroup/tsrun/<id> on cgroup2.
  walk("/sys/fs/cgroup", 5);
  return found;
}

function processesWithTag(tag: string): string[] {
  const needle = `${BENCH_TAG_ENV}=${tag}`;
  const found: string[] = [];
  for (const p of fs.readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/environ`, "latin1").includes(needle)) {
        const stat = fs.readFileSync(`/proc/${p}/stat`, "latin1");
        found.push(`${p} ${stat.slice(stat.indexOf("(") , stat.lastIndexOf(")") + 3)}`);
      }
    } catch {
      /* gone or unreadable */
    }
  }
  return found;
}

/** What of ours is left on the host: our tag in mounts, cgroup dirs, state dirs, processes. */
export function leakCheck(work: Work): LeakReport {
  const needles = [work.tag, work.dir, ...work.runtimes.map((r) => r.root)];
  const mounts = mountLines("/proc/self/mountinfo", needles).map((l) => `host: ${l}`);
  if (work.nsHolder) mounts.push(...mountLines(`/proc/${work.nsHolder}/mountinfo`, needles).map((l) => `crun ns: ${l}`));
  return {
    mounts,
    cgroups: cgroupDirsWith(work.tag),
    stateDirs: work.runtimes.flatMap((rt) => containersIn(rt).map((id) => `${rt.name}: ${path.join(rt.root, id)}`)),
    processes: processesWithTag(work.tag),
  };
}

export function leakCount(l: LeakReport): number {
  return l.mounts.length + l.cgroups.length + l.stateDirs.length + l.processes.length;
}

/** The leak check, retried for up to `ms` (a killed container may take a moment to be reaped). */
export function leakCheckSettled(work: Work, ms = 3000): LeakReport {
  const until = Date.now() + ms;
  for (;;) {
    const l = leakCheck(work);
    if (leakCount(l) === 0 || Date.now() > until) return l;
    sleepMs(50);
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
export function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

// ---------- numbers ----------

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function summarize(xs: number[]): Summary | undefined {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { n: v.length, median, min: v[0]!, max: v[v.length - 1]! };
}

export function median(xs: number[]): number {
  return summarize(xs)?.median ?? NaN;
}

/** Order of the runtimes in round r: rotated, so that none always runs first (or last). */
export function rotation<T>(list: T[], r: number): T[] {
  const k = r % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

export function vmRssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export function waitGone(pid: number, ms = 5000): boolean {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      fs.statSync(`/proc/${pid}`);
    } catch {
      return true;
    }
    sleepMs(0.2);
  }
  return false;
}
