/**
 * Test harness for the C helper: builds a busybox rootfs, encodes plans, runs
 * build/tsrun-helper with the plan on a socket at fd 3 (plus any preserved fds), collects its
 * protocol lines and the container's output, and cleans up processes, mounts and temp dirs.
 *
 * Uses node: APIs only, so it runs under tap (Node) and under Bun alike.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Duplex } from "node:stream";
import { encodePlan } from "../../src/linux/plan-encode.ts";
import type { LaunchPlan, PlanMount, PlanDevice } from "../../src/linux/launch-plan.ts";

export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
export const HELPER = path.join(REPO, "build/tsrun-helper");
export const BUSYBOX = "/bin/busybox";

export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  NOATIME: 0x400,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
} as const;

export const CAP = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  NET_BIND_SERVICE: 10,
  NET_RAW: 13,
  SYS_CHROOT: 18,
  SYS_ADMIN: 21,
  SYS_RESOURCE: 24,
  MKNOD: 27,
  AUDIT_WRITE: 29,
  SETFCAP: 31,
} as const;

/** runc spec's default capability set. */
export const DEFAULT_CAPS = [
  CAP.CHOWN,
  CAP.DAC_OVERRIDE,
  CAP.FSETID,
  CAP.FOWNER,
  CAP.MKNOD,
  CAP.NET_RAW,
  CAP.SETGID,
  CAP.SETUID,
  CAP.SETFCAP,
  CAP.SETPCAP,
  CAP.NET_BIND_SERVICE,
  CAP.SYS_CHROOT,
  CAP.KILL,
  CAP.AUDIT_WRITE,
];

export function capMaskHex(caps: number[]): string {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(c);
  return m.toString(16).padStart(16, "0");
}

/** A temp dir whose name contains "tsrun" (so leaked mounts are easy to spot). */
export function tempDir(prefix = "tsrun-helper-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

let applets: string[] | undefined;

/** bin/busybox + one symlink per applet, and the usual empty top-level directories. */
export function makeRootfs(dir: string): string {
  const rootfs = path.join(dir, "rootfs");
  fs.mkdirSync(path.join(rootfs, "bin"), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(rootfs, "bin/busybox"));
  fs.chmodSync(path.join(rootfs, "bin/busybox"), 0o755);
  applets ??= execFileSync(BUSYBOX, ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const a of applets) {
    if (a === "busybox") continue;
    fs.symlinkSync("busybox", path.join(rootfs, "bin", a));
  }
  for (const d of ["proc", "sys", "dev", "etc", "tmp", "root"]) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.chmodSync(path.join(rootfs, "tmp"), 0o1777);
  return rootfs;
}

function mnt(
  destination: string,
  fstype: string,
  source: string,
  flags: number,
  data = "",
  extra: Partial<PlanMount> = {},
): PlanMount {
  return {
    source,
    destination,
    fstype,
    flags,
    remountFlags: 0,
    propagation: [],
    recAttrSet: 0,
    recAttrClr: 0,
    data,
    destKind: "dir",
    ...extra,
  };
}

export function defaultMounts(opts: { userns?: boolean } = {}): PlanMount[] {
  const m: PlanMount[] = [
    mnt("/proc", "proc", "proc", MS.NOSUID | MS.NODEV | MS.NOEXEC),
    mnt("/dev", "tmpfs", "tmpfs", MS.NOSUID | MS.STRICTATIME, "mode=755,size=65536k"),
    mnt("/dev/pts", "devpts", "devpts", MS.NOSUID | MS.NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"),
    mnt("/dev/shm", "tmpfs", "shm", MS.NOSUID | MS.NOEXEC | MS.NODEV, "mode=1777,size=65536k"),
    mnt("/dev/mqueue", "mqueue", "mqueue", MS.NOSUID | MS.NOEXEC | MS.NODEV),
    mnt("/sys", "sysfs", "sysfs", MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RDONLY),
  ];
  if (opts.userns) {
    // as runc: no gid=5 unless gid 5 is mapped; keep it (the tests map 0..65535)
  }
  return m;
}

export function defaultDevices(bindFromHost = false): PlanDevice[] {
  const d = (p: string, major: number, minor: number): PlanDevice => ({
    path: p,
    type: "c",
    major,
    minor,
    fileMode: 0o666,
    uid: 0,
    gid: 0,
    bindFromHost,
  });
  return [d("/dev/null", 1, 3), d("/dev/zero", 1, 5), d("/dev/full", 1, 7), d("/dev/random", 1, 8), d("/dev/urandom", 1, 9), d("/dev/tty", 5, 0)];
}

export function defaultSymlinks() {
  return [
    { path: "/dev/fd", target: "/proc/self/fd" },
    { path: "/dev/stdin", target: "/proc/self/fd/0" },
    { path: "/dev/stdout", target: "/proc/self/fd/1" },
    { path: "/dev/stderr", target: "/proc/self/fd/2" },
    { path: "/dev/ptmx", target: "pts/ptmx" },
  ];
}

export function basePlan(rootfs: string, args: string[], over: Partial<LaunchPlan> = {}): LaunchPlan {
  return {
    mode: "create",
    foreground: true,
    debug: false,
    namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
    uidMappings: [],
    gidMappings: [],
    timeOffsets: [],
    cgroupProcs: [],
    rootfs,
    rootfsPropagation: MS.SLAVE | MS.REC,
    noPivot: false,
    readonlyRoot: false,
    mounts: defaultMounts(),
    devices: defaultDevices(),
    symlinks: defaultSymlinks(),
    maskedPaths: [],
    readonlyPaths: [],
    sysctls: [],
    hostname: "tsrun-test",
    process: {
      args,
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      uid: 0,
      gid: 0,
      additionalGids: [],
      rlimits: [],
      noNewPrivileges: true,
      capabilities: {
        bounding: DEFAULT_CAPS,
        effective: DEFAULT_CAPS,
        inheritable: [],
        permitted: DEFAULT_CAPS,
        ambient: [],
      },
      terminal: false,
      consoleHeight: 0,
      consoleWidth: 0,
    },
    preserveFds: 0,
    ...over,
  };
}

export interface RunResult {
  /** Protocol lines from the helper, in order, without the newline. */
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid?: number;
  error?: string;
  exit?: number;
}

export interface RunOptions {
  /** Extra fds for the helper: they become fds 3..3+N-1 and plan.preserveFds must be N. */
  extraFds?: number[];
  /** Called once on "ready" (e.g. to start the container through the fifo). */
  onReady?: (r: RunResult) => void | Promise<void>;
  /** Raw bytes instead of an encoded plan. */
  raw?: Buffer;
  stdin?: string;
  timeoutMs?: number;
  /** Half-close the sync socket after the plan (the helper then sees the end of input). */
  endAfterPlan?: boolean;
  /** Called for every protocol line, with the helper process (e.g. to kill it mid-way). */
  onLine?: (line: string, r: RunResult, helper: ChildProcess) => void;
  /** Run the helper as this user (an unprivileged helper); default: as the test runs. */
  user?: { uid: number; gid: number };
}

const live = new Set<ChildProcess>();
export const containerPids = new Set<number>();

/** Runs the helper to its end (in foreground mode: the container's end). */
export function runHelper(plan: LaunchPlan | null, opts: RunOptions = {}): Promise<RunResult> {
  const extra = opts.extraFds ?? [];
  const stdio: ("pipe" | number)[] = ["pipe", "pipe", "pipe", ...extra, "pipe"];
  const syncIdx = 3 + extra.length;
  const child = spawn(HELPER, [String(syncIdx)], { stdio, ...(opts.user ? { uid: opts.user.uid, gid: opts.user.gid } : {}) });
  live.add(child);
  const res: RunResult = { lines: [], code: null, signal: null, stdout: "", stderr: "" };
  const sync = child.stdio[syncIdx] as Duplex;
  child.stdout!.on("data", (d: Buffer) => (res.stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (res.stderr += d.toString()));
  if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
  let buf = "";
  let readyDone: Promise<void> = Promise.resolve();
  sync.on("data", (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      res.lines.push(line);
      opts.onLine?.(line, res, child);
      if (line.startsWith("pid ")) {
        res.pid = Number(line.slice(4));
        containerPids.add(res.pid);
      } else if (line.startsWith("error ")) res.error = line.slice(6);
      else if (line.startsWith("exit ")) res.exit = Number(line.slice(5));
      else if (line === "ready" && opts.onReady) readyDone = Promise.resolve(opts.onReady(res));
    }
  });
  sync.on("error", () => {});
  sync.write(opts.raw ?? encodePlan(plan!));
  if (opts.endAfterPlan) sync.end();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      if (res.pid) killPid(res.pid);
      reject(new Error(`helper timed out; lines so far: ${JSON.stringify(res.lines)} stderr: ${res.stderr}`));
    }, opts.timeoutMs ?? 15000);
    // A detached create leaves the init holding our stdout/stderr pipes: do not wait for
    // them to close, only for the helper to exit.
    const detached = plan !== null && !plan.foreground;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      live.delete(child);
      res.code = code;
      res.signal = signal;
      readyDone.then(
        () => resolve(res),
        (e: unknown) => reject(e),
      );
    };
    if (detached) child.on("exit", finish);
    else child.on("close", finish);
  });
}

/** What `tsrun start` does: open the fifo O_WRONLY|O_NONBLOCK, write one byte. */
export function startFifo(fifo: string): void {
  const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  try {
    fs.writeSync(fd, "0");
  } finally {
    fs.closeSync(fd);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(st);
  } catch {
    return false;
  }
}

export function killPid(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* gone */
  }
}

export async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!pidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !pidAlive(pid);
}

/** Host mounts whose mount point is under dir (there must never be any). */
export function hostMountsUnder(dir: string): string[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((mp) => mp === dir || mp.startsWith(dir + "/"));
}

/** Kills every helper and container process still around, unmounts anything under dir
 * (there should be nothing: a leak is reported by the tests), removes dir. */
export async function cleanup(dir?: string): Promise<void> {
  for (const c of live) c.kill("SIGKILL");
  for (const pid of containerPids) killPid(pid);
  for (const pid of containerPids) await waitGone(pid, 2000);
  containerPids.clear();
  if (dir) {
    for (const mp of hostMountsUnder(dir).reverse()) {
      try {
        execFileSync("umount", ["-l", mp]);
      } catch {
        /* already gone */
      }
    }
    // Never rm -rf through a mount that may hold host files.
    if (hostMountsUnder(dir).length === 0) fs.rmSync(dir, { recursive: true, force: true });
  }
}
