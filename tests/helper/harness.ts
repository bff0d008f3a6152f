/**
 * Test harness for the C helper: builds a busybox rootfs, makes plans (boundary/helper.proto),
 * runs build/tsrun-helper with the plan's frame on a socket at fd 3 (plus any preserved fds),
 * collects its events (worded by src/boundary/wording.ts, as tsrun words them, into the lines
 * the tests read) and the container's output, and cleans up processes, mounts and temp dirs.
 *
 * Uses node: APIs only, so it runs under tap (Node) and under Bun alike.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Duplex } from "node:stream";
import { FromHelperReader, toHelperFrame } from "../../src/boundary/frames.ts";
import { failureText, warningText } from "../../src/boundary/wording.ts";
import { HookPoint, type CreatePlan, type Device, type ExecPlan, type Failure, type Launch, type Mount, type Process } from "../../src/boundary/gen/helper.ts";
import { CLONE_FLAGS, NS_FILE, type NamespaceType } from "../../src/linux/namespaces.ts";

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

export function mnt(destination: string, fstype: string, source: string, flags: number, data = "", extra: Partial<Mount> = {}): Mount {
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
    destIsFile: false,
    copyUp: false,
    idmap: undefined,
    detachedSource: undefined,
    readonlyLate: false,
    ...extra,
  };
}

export function defaultMounts(opts: { userns?: boolean } = {}): Mount[] {
  const m: Mount[] = [
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

export function defaultDevices(bindFromHost = false): Device[] {
  const d = (p: string, major: number, minor: number): Device => ({
    path: p,
    mode: 0o020000 | 0o666,
    major,
    minor,
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

export function capMask(caps: number[]): bigint {
  return caps.reduce((m, c) => m | (1n << BigInt(c)), 0n);
}

export function baseProcess(args: string[]): Process {
  const env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"];
  return {
    args,
    env,
    searchPath: ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"],
    cwd: "/",
    uid: 0,
    gid: 0,
    additionalGids: [],
    umask: undefined,
    rlimits: [],
    noNewPrivileges: true,
    capabilities: { bounding: capMask(DEFAULT_CAPS), effective: capMask(DEFAULT_CAPS), inheritable: 0n, permitted: capMask(DEFAULT_CAPS), ambient: 0n },
    oomScoreAdj: undefined,
    terminal: undefined,
    scheduler: undefined,
    ioPriority: undefined,
    apparmorProfile: "",
    homeFromPasswd: false,
  };
}

/** Namespaces by type: new ones, or joined at the path the type maps to. */
export function namespaces(types: NamespaceType[], joinPid?: number): Launch["namespaces"] {
  return types.map((t) => ({ cloneFlag: CLONE_FLAGS[t], path: joinPid ? `/proc/${joinPid}/ns/${NS_FILE[t]}` : "" }));
}


/** What a test changes: fields of the CreatePlan or of its Launch, by name. */
export type PlanOver = Partial<Omit<CreatePlan, "launch">> & Partial<Launch>;

function baseLaunch(args: string[], over: Partial<Launch>): Launch {
  return {
    foreground: true,
    debug: false,
    preserveFds: 0,
    namespaces: namespaces(["pid", "network", "ipc", "uts", "mount"]),
    cgroupProcs: [],
    process: baseProcess(args),
    consoleSocket: "",
    sessionKeyring: "",
    seccomp: undefined,
    personality: undefined,
    pidfdSocket: "",
    memoryPolicy: undefined,
    ...over,
  };
}

/** The Launch's own fields, from a Launch with every field. */
const LAUNCH_KEYS = new Set(Object.keys(baseLaunch([], {})));

function split(over: PlanOver): [Partial<Launch>, Partial<CreatePlan>] {
  const l: Record<string, unknown> = {};
  const c: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(over)) (LAUNCH_KEYS.has(k) ? l : c)[k] = v;
  return [l as Partial<Launch>, c as Partial<CreatePlan>];
}

export function basePlan(rootfs: string, args: string[], over: PlanOver = {}): CreatePlan {
  const [launch, create] = split(over);
  return {
    launch: baseLaunch(args, launch),
    uidMappings: [],
    gidMappings: [],
    uidMapHelper: "",
    gidMapHelper: "",
    timeOffsets: [],
    rootfs,
    rootfsPropagation: MS.SLAVE | MS.REC,
    rootPropagationAfter: 0,
    noPivot: false,
    readonlyRoot: false,
    mounts: defaultMounts(),
    devices: defaultDevices(),
    symlinks: defaultSymlinks(),
    maskedPaths: [],
    readonlyPaths: [],
    sysctls: [],
    hostname: "tsrun-test",
    domainname: undefined,
    execFifo: "",
    hookPoints: [],
    startHooks: undefined,
    netDevices: [],
    netDevicesNetns: "",
    ...create,
  };
}

/** A process in the running container whose init is pid, joining these of its namespaces. */
export function execPlan(pid: number, args: string[], types: NamespaceType[], over: Partial<Launch> & Partial<Omit<ExecPlan, "launch">> = {}): ExecPlan {
  const { cpuAffinity, cgroupProcsOptional, root, ...launch } = over;
  return { launch: baseLaunch(args, { namespaces: namespaces(types, pid), ...launch }), cpuAffinity, cgroupProcsOptional: cgroupProcsOptional ?? false, root: root ?? "" };
}

/** The plan's process, to change in a test. */
export function proc(plan: CreatePlan | ExecPlan): Process {
  return plan.launch!.process!;
}

export interface RunResult {
  /** The helper's events as lines, in order: "pid N", "ready", "exit N", "error TEXT", "warn TEXT", "hook NAME", "debug MS TEXT". */
  lines: string[];
  /** The Failure the helper reported, if it did. */
  failure?: Failure;
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

const HOOK_NAMES: Partial<Record<HookPoint, string>> = { [HookPoint.CREATE_RUNTIME]: "createRuntime", [HookPoint.CREATE_CONTAINER]: "createContainer" };

/** Runs the helper to its end (in foreground mode: the container's end). */
export function runHelper(plan: CreatePlan | ExecPlan | null, opts: RunOptions = {}): Promise<RunResult> {
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
  const reader = new FromHelperReader();
  let readyDone: Promise<void> = Promise.resolve();
  const line = (text: string) => {
    res.lines.push(text);
    opts.onLine?.(text, res, child);
  };
  sync.on("data", (d: Buffer) => {
    for (const ev of reader.push(d)) {
      const e = ev.event;
      switch (e?.$case) {
        case "pid":
          res.pid = e.value;
          containerPids.add(res.pid);
          line(`pid ${e.value}`);
          break;
        case "failure":
          res.failure ??= e.value;
          res.error ??= failureText(e.value, plan ?? undefined);
          line(`error ${failureText(e.value, plan ?? undefined)}`);
          break;
        case "exited":
          res.exit = e.value;
          line(`exit ${e.value}`);
          break;
        case "ready":
          line("ready");
          if (opts.onReady) readyDone = Promise.resolve(opts.onReady(res));
          break;
        case "warning":
          line(`warn ${warningText(e.value)}`);
          break;
        case "progress":
          line(`debug ${e.value.ms.toFixed(3)} ${e.value.text}`);
          break;
        case "hook":
          line(`hook ${HOOK_NAMES[e.value] ?? e.value}`);
          break;
        default:
          line(`unknown ${JSON.stringify(e)}`);
      }
    }
  });
  sync.on("error", () => {});
  sync.write(opts.raw ?? toHelperFrame({ msg: plan && "mounts" in plan ? { $case: "create", value: plan } : { $case: "exec", value: plan! } }));
  if (opts.endAfterPlan) sync.end();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      if (res.pid) killPid(res.pid);
      reject(new Error(`helper timed out; lines so far: ${JSON.stringify(res.lines)} stderr: ${res.stderr}`));
    }, opts.timeoutMs ?? 15000);
    // A detached create leaves the init holding our stdout/stderr pipes: do not wait for
    // them to close, only for the helper to exit.
    const detached = plan !== null && !plan.launch!.foreground;
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
