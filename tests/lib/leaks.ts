// The leak checker every integration test uses: leakCheck(t) at the start of a test; when the
// test function (and its subtests) is done, the test fails if it left anything behind.
//
// When: tap does not allow assertions from t.teardown(), so the comparison runs from tap's
// onbeforeend hook, before the test's teardowns (see context.ts). A test deletes its containers
// in its body; cleanup registered with t.teardown() runs after the check.
//
// Scoping (why the checks do not need tap's jobs=1): tap runs test files in parallel, and those
// files start and delete their own containers at the same time. So a snapshot of the whole
// host would blame one file for another's containers. Each check is instead scoped to what this
// test process owns:
//   - a tag, TEST_TAG = "<test file stem>-<pid>", that is part of every container id from
//     containerId() and every state dir from testRoot(), and that tsrun() and makeBundle() put
//     in the environment (TSRUN_TEST_TAG) of every tsrun and container process;
//   - the paths this process created: its bundles and state dirs, plus the shared rootfs once
//     this process used it (a mount the runtime leaked onto the host lands below one of those).
// Snapshots are still whole (mountinfo, cgroup dirs named tsrun*, state dirs, new pids, own
// fds); only the diff is filtered. Subtests of one file that run concurrently (t.jobs > 1) are
// not told apart: give each its own `tag` (a containerId-like prefix) or keep them sequential.
//
// What counts as a leak, new since leakCheck(t) was called:
//   mounts     in /proc/self/mountinfo (by mount id, so a mount stacked on an old mount point
//              counts), whose mount point is below an owned path, below opts.paths, or tagged;
//   cgroups    tagged directories at the top of any cgroup hierarchy or of this process's own
//              cgroup in it, or one level below a directory there whose name contains "tsrun"
//              (the default cgroup of a container is /tsrun/<id>);
//   state      entries of opts.root and of every testRoot() dir; tagged entries of /run/tsrun;
//   processes  live (non-zombie) processes whose environment, command line or cgroup is tagged;
//              the kernel finishes a SIGKILLed process asynchronously, so these are looked at
//              again for up to opts.settleMs (default 2 s) before they count;
//   fds        of the test process itself.
// After reporting, the checker cleans up what it found (delete --force, SIGKILL, umount -l,
// rmdir; leaked fds are only reported: node may still own them), so one failing test does not
// make the next ones fail or leave the machine dirty.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { isUnder, onTeardown, ownedPaths, ownedRoots, readMounts, type MountInfo, type TestLike } from "./context.ts";
import { builtRootfs } from "./rootfs.ts";
import { TEST_TAG, cleanupContainer, listDir } from "./tsrun.ts";

/** The default --root of tsrun (and runc's); tests should use testRoot(), but check it too. */
export const DEFAULT_STATE_ROOT = "/run/tsrun";

export interface LeakCheckOptions {
  /** A state dir to watch besides the testRoot() dirs; every new entry in it is a leak. */
  root?: string;
  /** More directories below which a new mount is a leak. */
  paths?: string[];
  /** Narrower tag than TEST_TAG, e.g. for subtests running concurrently. */
  tag?: string;
  /** How long leaked-looking processes get to finish dying. Default 2000 ms. */
  settleMs?: number;
}

/** What the checks are limited to; see the top of this file. */
export interface Scope {
  tag: string;
  /** A new mount at or below one of these is a leak. */
  paths: string[];
  /** Every new entry in these state dirs is a leak. */
  roots: string[];
  /** Only tagged new entries in these state dirs are leaks. */
  sharedRoots: string[];
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  cmdline: string;
  cgroup: string;
  environ: string;
}

export interface Snapshot {
  mounts: MountInfo[];
  /** Cgroup directories (absolute paths) that could belong to a container. */
  cgroups: string[];
  /** "root/entry" for each state dir entry. */
  state: string[];
  pids: number[];
  /** Details of the processes not in the `before` snapshot's pids (only in an after snapshot). */
  procs: ProcInfo[];
  /** fd number -> readlink target. */
  fds: Record<string, string>;
}

export interface Leaks {
  mounts: MountInfo[];
  cgroups: string[];
  state: string[];
  processes: ProcInfo[];
  fds: Array<{ fd: string; target: string }>;
}

/** Whether text mentions tag as a whole token (so tag "x-12" does not match id "x-123-1"). */
export function isTagged(text: string, tag: string): boolean {
  const esc = tag.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<![A-Za-z0-9_+.-])${esc}(?![0-9])`).test(text);
}

function readText(p: string): string {
  try {
    return fs.readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

function subdirs(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/**
 * Where container cgroups can appear: the root of every cgroup hierarchy (an absolute
 * cgroupsPath such as the default /tsrun/<id>) and this process's own cgroup in it (where runc
 * puts a relative cgroupsPath).
 */
export function cgroupBases(mounts: MountInfo[]): string[] {
  const own = readText("/proc/self/cgroup")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [, controllers = "", ...rest] = l.split(":");
      return { controllers, path: rest.join(":") };
    });
  const bases = new Set<string>();
  for (const m of mounts) {
    if (m.fsType !== "cgroup" && m.fsType !== "cgroup2") continue;
    bases.add(m.mountPoint);
    const opts = new Set(m.superOptions.split(","));
    const mine = own.find((o) =>
      m.fsType === "cgroup2" ? o.controllers === "" : o.controllers !== "" && o.controllers.split(",").every((c) => opts.has(c)),
    );
    if (mine && isUnder(mine.path, m.root)) bases.add(path.join(m.mountPoint, path.relative(m.root, mine.path)));
  }
  return [...bases];
}

function cgroupDirs(mounts: MountInfo[], tag: string): string[] {
  const out: string[] = [];
  for (const h of cgroupBases(mounts)) {
    for (const name of subdirs(h)) {
      if (isTagged(name, tag)) out.push(path.join(h, name));
      if (name.includes("tsrun")) for (const sub of subdirs(path.join(h, name))) out.push(path.join(h, name, sub));
    }
  }
  return out;
}

function procInfo(pid: number): ProcInfo | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return {
    pid,
    state: rest[0] ?? "?",
    ppid: Number(rest[1]),
    cmdline: readText(`/proc/${pid}/cmdline`).replace(/\0+$/, "").replace(/\0/g, " "),
    cgroup: readText(`/proc/${pid}/cgroup`),
    environ: readText(`/proc/${pid}/environ`),
  };
}

function pids(): number[] {
  return fs
    .readdirSync("/proc")
    .filter((n) => /^[0-9]+$/.test(n))
    .map(Number);
}

function fds(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      out[fd] = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // the directory fd readdirSync used, closed already
    }
  }
  return out;
}

function stateRoots(scope: Scope): string[] {
  return [...new Set([...scope.roots, ...scope.sharedRoots])];
}

/**
 * Look at the host. With `before`, also collect details of processes that are new since it
 * (reading every process's environment each time would be slow).
 */
export function takeSnapshot(scope: Scope, before?: Snapshot): Snapshot {
  const mounts = readMounts();
  const all = pids();
  const old = new Set(before?.pids);
  return {
    mounts,
    cgroups: cgroupDirs(mounts, scope.tag),
    state: stateRoots(scope).flatMap((r) => listDir(r).map((e) => path.join(r, e))),
    pids: all,
    procs: before
      ? all
          .filter((p) => !old.has(p) && p !== process.pid)
          .map(procInfo)
          .filter((p): p is ProcInfo => !!p)
      : [],
    fds: fds(),
  };
}

/** What is in `after` but not in `before` and, by `scope`, belongs to the test. Pure. */
export function diffSnapshots(before: Snapshot, after: Snapshot, scope: Scope): Leaks {
  const tagged = (s: string) => isTagged(s, scope.tag);
  const oldMounts = new Set(before.mounts.map((m) => m.id));
  const oldCgroups = new Set(before.cgroups);
  const oldState = new Set(before.state);
  const oldPids = new Set(before.pids);
  return {
    mounts: after.mounts.filter(
      (m) => !oldMounts.has(m.id) && (tagged(m.mountPoint) || scope.paths.some((p) => isUnder(m.mountPoint, p))),
    ),
    cgroups: after.cgroups.filter((c) => !oldCgroups.has(c) && tagged(c)),
    state: after.state.filter(
      (s) =>
        !oldState.has(s) &&
        (scope.roots.includes(path.dirname(s)) || (scope.sharedRoots.includes(path.dirname(s)) && tagged(path.basename(s)))),
    ),
    processes: after.procs.filter(
      (p) => !oldPids.has(p.pid) && p.state !== "Z" && (tagged(p.environ) || tagged(p.cmdline) || tagged(p.cgroup)),
    ),
    fds: Object.entries(after.fds)
      .filter(([fd, target]) => before.fds[fd] !== target)
      .map(([fd, target]) => ({ fd, target })),
  };
}

export function isClean(l: Leaks): boolean {
  return !l.mounts.length && !l.cgroups.length && !l.state.length && !l.processes.length && !l.fds.length;
}

let warmedUp = false;
/**
 * Node opens some fds lazily on its first child_process.spawn (a /dev/null it keeps for good).
 * Spawn once before the first fd snapshot so that does not look like a leak of the test.
 */
function warmUp(): void {
  if (warmedUp) return;
  warmedUp = true;
  const c = spawn("/bin/true", [], { stdio: ["ignore", "pipe", "pipe"] });
  c.on("error", () => {});
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Snapshot the host now; when t's function is done, fail t for everything new that the test
 * left behind (see the top of this file), then clean it up.
 */
export function leakCheck(t: TestLike, opts: LeakCheckOptions = {}): void {
  warmUp();
  const scope = (): Scope => {
    const rootfs = builtRootfs();
    return {
      tag: opts.tag ?? TEST_TAG,
      paths: [...ownedPaths, ...(opts.paths ?? []), ...(rootfs ? [rootfs] : [])],
      roots: [...ownedRoots, ...(opts.root ? [opts.root] : [])],
      sharedRoots: [DEFAULT_STATE_ROOT],
    };
  };
  const before = takeSnapshot(scope());
  onTeardown(t, "check", async () => {
    const s = scope();
    let leaks = diffSnapshots(before, takeSnapshot(s, before), s);
    const deadline = Date.now() + (opts.settleMs ?? 2000);
    while (leaks.processes.length && Date.now() < deadline) {
      await sleep(50);
      leaks = diffSnapshots(before, takeSnapshot(s, before), s);
    }
    if (isClean(leaks)) return;
    report(t, leaks);
    await cleanUp(t, leaks);
  });
}

function report(t: TestLike, l: Leaks): void {
  const list = (xs: string[]) => xs.join(", ");
  if (l.state.length) t.fail(`leaked state: ${list(l.state)}`, { state: l.state });
  if (l.processes.length)
    t.fail(`leaked processes: ${list(l.processes.map((p) => `${p.pid} (${p.cmdline})`))}`, {
      processes: l.processes.map(({ pid, ppid, state, cmdline, cgroup }) => ({ pid, ppid, state, cmdline, cgroup })),
    });
  if (l.mounts.length)
    t.fail(`leaked mounts: ${list(l.mounts.map((m) => `${m.mountPoint} (${m.fsType})`))}`, { mounts: l.mounts });
  if (l.cgroups.length) t.fail(`leaked cgroups: ${list(l.cgroups)}`, { cgroups: l.cgroups });
  if (l.fds.length) t.fail(`leaked fds: ${list(l.fds.map((f) => `${f.fd} -> ${f.target}`))}`, { fds: l.fds });
}

/** Best effort: undo the leaks so they do not spill into later tests. */
async function cleanUp(t: TestLike, l: Leaks): Promise<void> {
  const attempt = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      t.comment?.(`leak cleanup: ${what}: ${(e as Error).message}`);
    }
  };
  for (const s of l.state) {
    attempt(`delete ${s}`, () => cleanupContainer(path.dirname(s), path.basename(s)));
    attempt(`remove ${s}`, () => fs.rmSync(s, { recursive: true, force: true }));
  }
  // A frozen process cannot die: thaw the leaked cgroups first (cgroup v1 freezer, v2 freeze).
  for (const c of l.cgroups) {
    attempt(`thaw ${c}`, () => {
      if (fs.existsSync(`${c}/freezer.state`)) fs.writeFileSync(`${c}/freezer.state`, "THAWED");
      if (fs.existsSync(`${c}/cgroup.freeze`)) fs.writeFileSync(`${c}/cgroup.freeze`, "0");
    });
  }
  const victims = new Set(l.processes.map((p) => p.pid));
  for (const c of l.cgroups) for (const p of readText(`${c}/cgroup.procs`).split("\n")) if (p) victims.add(Number(p));
  for (const pid of victims) attempt(`kill ${pid}`, () => process.kill(pid, "SIGKILL"));
  for (const m of [...l.mounts].sort((a, b) => b.mountPoint.length - a.mountPoint.length)) {
    attempt(`umount ${m.mountPoint}`, () => {
      const r = spawnSync("umount", ["-l", m.mountPoint], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(r.stderr.trim());
    });
  }
  for (const c of [...l.cgroups].sort((a, b) => b.length - a.length)) {
    // Sub-cgroups first; rmdir fails (EBUSY) until the killed processes are gone.
    for (let i = 0; i < 40; i++) {
      try {
        for (const sub of subdirs(c).reverse()) fs.rmdirSync(path.join(c, sub));
        fs.rmdirSync(c);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") break;
        if (i === 39) t.comment?.(`leak cleanup: rmdir ${c}: ${(e as Error).message}`);
        await sleep(50);
      }
    }
  }
}
