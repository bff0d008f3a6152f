// Shared by the container-manager suites (podman, containerd, docker): a private work dir per
// suite, a logging wrapper around tsrun, a locally built busybox image, daemons started and
// stopped by pid, and a leak check that looks at what the managers made through tsrun.
//
// Nothing here installs anything: a suite whose manager is missing is skipped (skipReason).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { removeTree, readMounts, isUnder } from "../lib/context.ts";
import { sharedRootfs } from "../lib/rootfs.ts";
import { Capture, TSRUN } from "../lib/tsrun.ts";

export { TSRUN };

/** The image every suite loads: a docker-archive of the test busybox rootfs. */
export const IMAGE = "localhost/tsrun-busybox:latest";

const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Absolute path of an executable on PATH (plus the sbin dirs), or undefined. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/local/sbin", "/usr/sbin", "/sbin"];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why the suite cannot run here (a string for tap's skip), or undefined when it can. */
export function skipReason(manager: string, commands: string[]): string | undefined {
  if (process.getuid?.() !== 0) return `${manager}: the manager suites run as root`;
  const missing = commands.filter((c) => !which(c));
  if (missing.length) return `${manager} is not installed (missing: ${missing.join(", ")})`;
  if (!fs.existsSync(TSRUN)) return `${manager}: no tsrun binary at ${TSRUN} (run make)`;
  return undefined;
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
  /** Extra fds for the child from fd 3 on (e.g. podman's --preserve-fds). */
  extraFds?: number[];
}

/** Run a command to completion (default guard: 120 s, then SIGKILL). */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Result {
  const out = new Capture();
  const err = new Capture();
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    input: opts.input,
    stdio: [opts.input === undefined ? "ignore" : "pipe", out.fd, err.fd, ...(opts.extraFds ?? [])],
    timeout: opts.timeoutMs ?? 120_000,
    killSignal: "SIGKILL",
  });
  const stdout = out.read();
  const stderr = err.read();
  if (r.error && !r.signal) throw r.error;
  const code = r.status ?? 128 + (r.signal ? (os.constants.signals[r.signal] ?? 0) : 0);
  return { code, stdout, stderr: r.signal ? `${stderr}[killed by ${r.signal}: timed out]\n` : stderr };
}

/** Run cmd under a pseudo-terminal (script(1)), feeding input to it as typed. */
export function runInTty(command: string[], input: string, opts: RunOptions = {}): Result {
  const line = command.map(shellQuote).join(" ");
  return run("script", ["-qec", line, "/dev/null"], { ...opts, input });
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A suite's private directory, and the tsrun wrapper the managers are pointed at. */
export interface Workspace {
  dir: string;
  /** bin/tsrun: logs its argv (shell-quoted, one line per call) to calls, then execs TSRUN. */
  wrapper: string;
  calls: string;
}

export function makeWorkspace(name: string, parent = os.tmpdir()): Workspace {
  const dir = fs.mkdtempSync(path.join(parent, `tsrun-mgr-${name}-`));
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, "bin"));
  const wrapper = path.join(dir, "bin", "tsrun");
  const calls = path.join(dir, "tsrun-calls.log");
  fs.writeFileSync(calls, "");
  // Named tsrun so that podman's runtime_supports_json (matched by the binary's name) applies.
  fs.writeFileSync(
    wrapper,
    [
      "#!/bin/bash",
      "# Records how the manager calls the runtime, for reproducing failures by hand.",
      `{ printf '%s' "$(date +%T.%N)"; printf ' %q' tsrun "$@"; printf '\\n'; } >> ${shellQuote(calls)}`,
      `exec ${shellQuote(TSRUN)} "$@"`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  return { dir, wrapper, calls };
}

/** The wrapper's log lines so far; pass the previous length to get only the new ones. */
export function callLines(ws: Workspace, from = 0): string[] {
  const text = fs.existsSync(ws.calls) ? fs.readFileSync(ws.calls, "utf8") : "";
  return text.split("\n").filter(Boolean).slice(from);
}

/** Container ids tsrun was asked to create (the last word of each create line). */
export function createdIds(ws: Workspace): string[] {
  const ids = new Set<string>();
  for (const l of callLines(ws)) {
    const words = l.split(" ");
    if (words.includes("create")) ids.add(words[words.length - 1]!);
  }
  return [...ids];
}

/** A pause image for Kubernetes pods (CRI sandboxes): the same rootfs, sleeping forever. */
export const PAUSE_IMAGE = "localhost/tsrun-pause:latest";

/**
 * A docker-archive (docker save format) of the busybox test rootfs as two images, IMAGE (runs
 * sh) and PAUSE_IMAGE (sleeps), which podman load, ctr images import and docker load all read.
 * Built here, never downloaded.
 */
export function buildImageArchive(ws: Workspace): string {
  const stage = path.join(ws.dir, "image");
  fs.mkdirSync(stage);
  const layerTmp = path.join(stage, "layer.tar");
  const tar = run("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-C", sharedRootfs(), "-cf", layerTmp, "."]);
  if (tar.code !== 0) throw new Error(`tar of the rootfs failed: ${tar.stderr}`);
  const sha = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");
  const layer = sha(layerTmp);
  fs.mkdirSync(path.join(stage, layer));
  fs.renameSync(layerTmp, path.join(stage, layer, "layer.tar"));
  const manifest = [];
  for (const [tag, cmd] of [[IMAGE, ["sh"]], [PAUSE_IMAGE, ["sleep", "2147483647"]]] as const) {
    const config = JSON.stringify({
      architecture: process.arch === "arm64" ? "arm64" : "amd64",
      os: "linux",
      created: "2024-01-01T00:00:00Z",
      config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: cmd },
      rootfs: { type: "layers", diff_ids: [`sha256:${layer}`] },
    });
    const configName = `${createHash("sha256").update(config).digest("hex")}.json`;
    fs.writeFileSync(path.join(stage, configName), config);
    manifest.push({ Config: configName, RepoTags: [tag], Layers: [`${layer}/layer.tar`] });
  }
  fs.writeFileSync(path.join(stage, "manifest.json"), JSON.stringify(manifest));
  const archive = path.join(ws.dir, "busybox-image.tar");
  const pack = run("tar", ["-C", stage, "-cf", archive, "manifest.json", ...manifest.map((m) => m.Config), layer]);
  if (pack.code !== 0) throw new Error(`tar of the image failed: ${pack.stderr}`);
  fs.rmSync(stage, { recursive: true, force: true });
  return archive;
}

/** A background daemon we started; stopped by its pid only. */
export interface Daemon {
  name: string;
  pid: number;
  log: string;
  alive(): boolean;
  /** SIGTERM, wait up to graceMs, then SIGKILL. Returns false if it had to be killed. */
  stop(graceMs?: number): Promise<boolean>;
}

function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/**
 * Start a daemon in its own session with its output in log, and wait until ready() (for
 * instance: its socket answers). Throws with the log's tail if it dies or is not ready in time.
 */
export async function startDaemon(
  name: string, cmd: string, args: string[], log: string, ready: () => boolean,
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<Daemon> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const fd = fs.openSync(log, "a");
  const child = spawn(cmd, args, { stdio: ["ignore", fd, fd], detached: true, env: { ...process.env, ...opts.env } });
  fs.closeSync(fd);
  child.on("error", () => {});
  child.unref();
  const pid = child.pid!;
  let exited = false;
  child.on("exit", () => (exited = true));
  const daemon: Daemon = {
    name,
    pid,
    log,
    alive: () => !exited && pidAlive(pid),
    async stop(graceMs = 20_000) {
      if (!daemon.alive()) return true;
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        return true;
      }
      const deadline = Date.now() + graceMs;
      while (daemon.alive() && Date.now() < deadline) await sleep(100);
      if (!daemon.alive()) return true;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
      while (daemon.alive()) await sleep(50);
      return false;
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!daemon.alive()) throw new Error(`${name} exited at start-up:\n${tail(log)}`);
    if (ready()) return daemon;
    if (Date.now() > deadline) {
      await daemon.stop(5000);
      throw new Error(`${name} not ready after ${timeoutMs} ms:\n${tail(log)}`);
    }
    await sleep(200);
  }
}

export function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

// ---- what the managers leave behind ----------------------------------------------------------

/** The v1 hierarchies and the v2 mount (hybrid or pure v2) under /sys/fs/cgroup. */
export function cgroupRoots(): string[] {
  const base = "/sys/fs/cgroup";
  if (fs.existsSync(path.join(base, "cgroup.controllers"))) return [base];
  const out: string[] = [];
  for (const e of fs.readdirSync(base, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const p = path.join(base, e.name);
    if (fs.lstatSync(p).isSymbolicLink()) continue;
    out.push(p);
  }
  return out;
}

function subdirs(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => path.join(dir, e.name));
  } catch {
    return [];
  }
}

/** Cgroup dirs (down to depth 3 in each hierarchy) whose name is exactly one of names. */
export function cgroupsNamed(names: string[]): string[] {
  if (!names.length) return [];
  const want = new Set(names);
  const found: string[] = [];
  const visit = (dir: string, depth: number) => {
    for (const d of subdirs(dir)) {
      if (want.has(path.basename(d))) found.push(d);
      else if (depth < 3) visit(d, depth + 1);
    }
  };
  for (const root of cgroupRoots()) visit(root, 1);
  return found;
}

export interface ProcInfo {
  pid: number;
  cmdline: string;
}

export interface ProcessMatch {
  /** Strings a command line must contain; each must be long enough to be unique (a temp dir). */
  cmdline?: string[];
  /** Names a path component of the process's cgroup (in any hierarchy) must equal. */
  cgroupNames?: string[];
}

/**
 * Live processes matched precisely: by a long unique string in the command line, or by an exact
 * cgroup path component. (Never by a short id as a substring: that would hit unrelated processes.)
 */
export function processesMatching(m: ProcessMatch): ProcInfo[] {
  const needles = m.cmdline ?? [];
  for (const n of needles) if (n.length < 16) throw new Error(`processesMatching: "${n}" is too short to be unique`);
  const names = new Set(m.cgroupNames ?? []);
  if (!needles.length && !names.size) return [];
  const out: ProcInfo[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      const cgroupPaths = fs
        .readFileSync(`/proc/${pid}/cgroup`, "utf8")
        .split("\n")
        .map((l) => l.split(":").slice(2).join(":"));
      if (!pidAlive(pid)) continue;
      const byCmd = needles.some((n) => cmdline.includes(n));
      const byCgroup = names.size > 0 && cgroupPaths.some((p) => p.split("/").some((c) => names.has(c)));
      if (byCmd || byCgroup) out.push({ pid, cmdline });
    } catch {
      // gone
    }
  }
  return out;
}

/** Mounts whose mount point is below dir or mentions one of the ids. */
export function mountsOf(dir: string, ids: string[]): string[] {
  return readMounts()
    .map((m) => m.mountPoint)
    .filter((mp) => isUnder(mp, dir) || ids.some((id) => mp.includes(id)));
}

/** Entries left in a tsrun --root dir (recursively below namespace dirs), or named by ids. */
export function stateEntries(root: string, ids?: string[]): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  for (const n of names) {
    const p = path.join(root, n);
    if (ids) {
      if (ids.includes(n)) out.push(p);
    } else if (fs.existsSync(path.join(p, "state.json")) || !fs.statSync(p).isDirectory()) {
      out.push(p);
    } else {
      // containerd's shim nests the state under the namespace: <root>/<namespace>/<id>
      const inner = stateEntries(p);
      if (inner.length) out.push(...inner);
    }
  }
  return out;
}

/** Cgroup dirs that did not exist before and are empty now (a manager's parent dirs). */
export function removeEmptyCgroups(dirs: string[]): void {
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    for (let i = 0; i < 20; i++) {
      try {
        fs.rmdirSync(d);
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTEMPTY") break;
        sleepMs(50); // EBUSY while a dying process is still in it
      }
    }
  }
}

/** Existing cgroup dirs named name at the top of each hierarchy (and their children). */
export function topCgroups(name: string): string[] {
  const out: string[] = [];
  for (const root of cgroupRoots()) {
    const d = path.join(root, name);
    if (fs.existsSync(d)) out.push(...subdirs(d), d);
  }
  return out;
}

/**
 * Last-resort cleanup for a suite that failed half-way: kill (by pid) what still runs for it
 * (command line mentions ws.dir, or in one of the cgroups named cgroupNames), thaw and remove
 * those cgroups, delete containers left in /run/tsrun, unmount and remove ws.dir.
 */
export async function forceCleanup(ws: Workspace, cgroupNames: string[], tsrunIds: string[] = []): Promise<string[]> {
  const notes: string[] = [];
  const withChildren = (d: string): string[] => [d, ...subdirs(d).flatMap(withChildren)];
  const cgs = cgroupsNamed(cgroupNames).flatMap(withChildren);
  for (const c of cgs) {
    try {
      if (fs.existsSync(`${c}/freezer.state`)) fs.writeFileSync(`${c}/freezer.state`, "THAWED");
      if (fs.existsSync(`${c}/cgroup.freeze`)) fs.writeFileSync(`${c}/cgroup.freeze`, "0");
    } catch {
      // best effort
    }
  }
  for (const p of processesMatching({ cmdline: [ws.dir], cgroupNames })) {
    notes.push(`killed ${p.pid} (${p.cmdline.slice(0, 120)})`);
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  await sleep(200);
  removeEmptyCgroups(cgs);
  for (const id of tsrunIds) {
    if (fs.existsSync(path.join("/run/tsrun", id))) {
      run(TSRUN, ["delete", "--force", id]);
      notes.push(`deleted /run/tsrun/${id}`);
    }
  }
  const mounts = removeTree(ws.dir);
  if (mounts.length) notes.push(`unmounted ${mounts.join(", ")}`);
  return notes;
}

/** The cgroup v1 (or v2) file inside a container, as a shell snippet printing its value. */
export const CGROUP_READ = {
  memoryLimit: "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
  cpuQuota: "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max",
  pidsMax: "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
};

/** Bits of a /proc/PID/status capability mask line (CapEff etc.) from a process's output. */
export function capMask(text: string, field = "CapEff"): bigint | undefined {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, "m").exec(text);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}
export const CAP = { CHOWN: 0, NET_RAW: 13, SYS_ADMIN: 21 } as const;
export const hasCap = (mask: bigint | undefined, cap: number) => mask !== undefined && ((mask >> BigInt(cap)) & 1n) === 1n;

/** A seccomp profile (runtime-spec/docker format) that makes mkdir fail with EPERM. */
export function denyMkdirProfile(ws: Workspace): string {
  const file = path.join(ws.dir, "seccomp-deny-mkdir.json");
  fs.writeFileSync(
    file,
    JSON.stringify({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
    }),
  );
  return file;
}

/** The host's hard limit for an rlimit ("Max open files", "Max processes"). */
export function hardLimit(label: string): number | undefined {
  const line = fs
    .readFileSync("/proc/self/limits", "utf8")
    .split("\n")
    .find((l) => l.startsWith(label));
  const v = line?.slice(26).trim().split(/\s+/)[1];
  return v && /^\d+$/.test(v) ? Number(v) : undefined;
}

// ---- containerd ----------------------------------------------------------------------------------

export interface Containerd {
  daemon: Daemon;
  socket: string;
  root: string;
  state: string;
  config: string;
}

/** The CRI plugin's runtime class "tsrun" (docs/managers.md); cni: bin and conf dirs under dir. */
export interface CriRuntime {
  binary: string;
  root: string;
  systemdCgroup?: boolean;
  cni?: boolean;
}

/**
 * A containerd 1.x config (version 2) with everything of its own under dir: root, state,
 * sockets, opt dir; the CRI plugin disabled unless cri is given.
 */
export function containerdConfig(dir: string, socket: string, cri?: CriRuntime): string {
  // Declaring runtimes replaces the default list, so runc is declared again, or the CRI plugin
  // refuses to load.
  const criSection = cri
    ? `[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # Pause containers get oom_score_adj -998, which needs CAP_SYS_RESOURCE (not in the test
  # machines' bounding set): keep scores at or above containerd's own, as rootless set-ups do.
  restrict_oom_score_adj = true
${cri.cni ? `  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${path.join(dir, "cni-bin")}"
    conf_dir = "${path.join(dir, "cni-conf")}"
` : ""}  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.tsrun]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.tsrun.options]
      BinaryName = "${cri.binary}"
      Root = "${cri.root}"
${cri.systemdCgroup ? "      SystemdCgroup = true\n" : ""}`
    : "";
  return `version = 2
root = "${path.join(dir, "root")}"
state = "${path.join(dir, "state")}"
${criSection ? "" : 'disabled_plugins = ["io.containerd.grpc.v1.cri"]'}
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${path.join(dir, "opt")}"
${criSection}`;
}

/**
 * containerd with everything of its own under ws.dir/containerd: root, state, sockets, opt dir,
 * config (the CRI plugin disabled: nothing here talks CRI). containerd 1.6 still puts shim
 * sockets in /run/containerd/s and ctr's default fifos in /run/containerd/fifo; both stay empty.
 * With runcOnPath, the shims find that directory first on PATH (a "runc" there wins).
 */
export async function startContainerd(ws: Workspace, opts: { runcOnPath?: string; cri?: Omit<CriRuntime, "cni"> } = {}): Promise<Containerd> {
  const dir = path.join(ws.dir, "containerd");
  fs.mkdirSync(dir, { recursive: true });
  const socket = path.join(dir, "containerd.sock");
  const root = path.join(dir, "root");
  const state = path.join(dir, "state");
  const config = path.join(dir, "config.toml");
  fs.writeFileSync(config, containerdConfig(dir, socket, opts.cri && { ...opts.cri, cni: true }));
  const ready = () => fs.existsSync(socket) && run("ctr", ["--address", socket, "version"], { timeoutMs: 10_000 }).code === 0;
  const env = opts.runcOnPath ? { PATH: `${opts.runcOnPath}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}` } : undefined;
  const daemon = await startDaemon("containerd", which("containerd")!, ["--config", config], path.join(dir, "containerd.log"), ready, { env });
  return { daemon, socket, root, state, config };
}

/** A v1 controller's (or the v2) cgroup directory of a process, from /proc/PID/cgroup. */
export function cgroupDirOf(pid: number, controller: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [, ctrls, p] = line.split(":");
    if (ctrls === undefined || p === undefined) continue;
    if (ctrls.split(",").includes(controller)) return path.join("/sys/fs/cgroup", controller, p);
  }
  const v2 = text.split("\n").find((l) => l.startsWith("0::"));
  if (!v2) return undefined;
  const base = fs.existsSync("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified";
  return path.join(base, v2.slice(3));
}

export function readTrim(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}
