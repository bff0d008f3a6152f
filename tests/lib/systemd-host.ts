// A systemd host for tests: systemd booted as PID 1 of a systemd-nspawn container on this
// machine (which does not run systemd), tsrun and the managers run inside it with nsenter.
//
// How it is kept from touching the real host:
//   - nspawn runs with --register=no --keep-unit (no machined, no scope on a host manager: there is
//     none) inside cgroups of its own, made below this process's own cgroup in every hierarchy
//     ("systemd-<pid>-<n>"), so the systemd inside manages only that subtree; they are removed,
//     deepest first, after it stopped;
//   - --volatile=yes: its root is a tmpfs with the host's /usr read-only (its /etc, /var, /run and
//     /tmp are its own); --private-network: only a loopback device; the repository is bound
//     read-only, and one scratch dir of the test read-write, both at their host paths;
//   - it is stopped by its pid (SIGTERM: nspawn halts the systemd inside, SIGKILL if that hangs).
// Without a user namespace nspawn mounts the v1 controller hierarchies read-only inside; they are
// remounted read-write (inside the container's mount namespace only) and systemd re-executed, so
// that it manages them (its set of controllers is decided when it starts).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { dirOf, findHierarchies, parseMountinfo, parseProcSelfCgroup } from "../../src/linux/cgroups/parse.ts";
import { removeTree, type TestLike } from "./context.ts";
import { REPO, sharedRootfs } from "./rootfs.ts";
import { Capture, TAG_ENV, TEST_TAG, TSRUN, type TsrunResult } from "./tsrun.ts";

export interface SystemdHost {
  name: string;
  /** systemd's pid (PID 1 inside), as this machine sees it. */
  pid: number;
  unified: boolean;
  /** A dir bound read-write at the same path inside: bundles go here. */
  share: string;
  /** This host's cgroup dirs on the real machine, one per hierarchy (its subtree). */
  cgroupDirs: string[];
  /** Runs a command inside (all of its namespaces) to its end. */
  run(cmd: string[], opts?: RunOptions): TsrunResult;
  /** Starts a command inside without waiting. */
  spawn(cmd: string[], opts?: { env?: Record<string, string> }): ChildProcess;
  /** `systemctl ARGS --no-pager` inside. */
  systemctl(args: string[]): TsrunResult;
  /** `tsrun ARGS` inside (the worktree's build). */
  tsrun(args: string[], opts?: RunOptions): TsrunResult;
  /** The tsrun executable tsrun() runs. */
  tsrunPath: string;
  stop(): Promise<void>;
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string | undefined>;
  /** A guard against a hang (SIGKILL), never a speed check. Default 120 s. */
  timeoutMs?: number;
}

/** Why these tests cannot run here, or undefined. */
export function systemdHostSkip(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root";
  const found = spawnSync("sh", ["-c", "command -v systemd-nspawn"], { encoding: "utf8" });
  if (found.status !== 0) return "systemd-nspawn is not installed (Debian: apt-get install systemd-container)";
  if (!fs.existsSync("/usr/lib/systemd/systemd") && !fs.existsSync("/lib/systemd/systemd")) return "systemd is not installed";
  return undefined;
}

/** Why systemd's legacy/hybrid layout cannot be booted here (nspawn gives it only on a host with cgroup v1 controllers). */
export function legacyLayoutSkip(): string | undefined {
  const h = findHierarchies(parseMountinfo(fs.readFileSync("/proc/self/mountinfo", "utf8")));
  return h.v1.some((x) => x.controllers.includes("memory")) ? undefined : "this machine has no cgroup v1 memory hierarchy: systemd's legacy/hybrid layout cannot be booted here";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let hosts = 0;

/** Services the tests do not need: they cost CPU at boot (several are enabled by the packages). */
const MASKED = [
  "containerd.service", "docker.service", "docker.socket", "podman.service", "podman.socket", "podman-restart.service",
  "podman-auto-update.service", "systemd-networkd-wait-online.service", "postgresql.service", "cni-dhcp.service", "cni-dhcp.socket",
  "e2scrub_reap.service", "apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer", "e2scrub_all.timer", "fstrim.timer",
];

function hierarchyDirs(name: string): string[] {
  const h = findHierarchies(parseMountinfo(fs.readFileSync("/proc/self/mountinfo", "utf8")));
  const self = parseProcSelfCgroup(fs.readFileSync("/proc/self/cgroup", "utf8"));
  const dirs: string[] = [];
  for (const hier of h.v1) {
    const own = hier.controllers.map((c) => self.v1[c]).find((p) => p !== undefined) ?? "/";
    dirs.push(path.join(dirOf(hier.mountPoint, hier.root, own), name));
  }
  if (h.v2 && self.v2 !== undefined) dirs.push(path.join(dirOf(h.v2.mountPoint, h.v2.root, self.v2), name));
  return dirs;
}

function removeCgroupTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const subs = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  for (const s of subs) removeCgroupTree(path.join(dir, s.name));
  for (let i = 0; ; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (i >= 200) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

function procsIn(dirs: string[]): number[] {
  const pids = new Set<number>();
  const walk = (d: string) => {
    try {
      for (const p of fs.readFileSync(path.join(d, "cgroup.procs"), "utf8").split("\n")) if (p) pids.add(Number(p));
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
    } catch {
      // gone
    }
  };
  for (const d of dirs) walk(d);
  return [...pids];
}

/** The dirs (that exist) not inside the repository, which is bound anyway: a $TSRUN_BIN elsewhere, say. */
function outsideRepo(dirs: string[]): string[] {
  return [...new Set(dirs)].filter((d) => fs.existsSync(d) && d !== REPO && !d.startsWith(REPO + "/"));
}

function nsenterArgs(pid: number, cmd: string[]): string[] {
  return ["-t", String(pid), "-a", "--", ...cmd];
}

/**
 * A test file's suite on one systemd host (the layout opts.unified asks for), or no test, with
 * the reason, where this machine cannot boot that host or opts.skip (the file's own needs) says
 * why not.
 */
export async function onSystemdHost(
  t: TestLike & { plan(n: number, comment?: string): void },
  opts: { unified: boolean; skip?: () => string | undefined },
  suite: (host: SystemdHost) => Promise<void>,
): Promise<void> {
  const skip = systemdHostSkip() ?? (opts.unified ? undefined : legacyLayoutSkip()) ?? opts.skip?.();
  if (skip) {
    t.plan(0, skip);
    return;
  }
  await suite(await bootSystemdHost(t, { unified: opts.unified }));
}

/**
 * Boots a systemd host for t (one per test file: it takes a few seconds and a good part of a
 * core while it boots) and stops it when t ends.
 */
export async function bootSystemdHost(t: TestLike & { teardown(fn: () => unknown): void }, opts: { unified: boolean }): Promise<SystemdHost> {
  const name = `systemd-${process.pid}-${++hosts}`;
  const share = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-share-`));
  fs.chmodSync(share, 0o755);
  const rootfs = sharedRootfs(); // built on the host before the repository is bound read-only
  const dirs = hierarchyDirs(name);
  for (const d of dirs) {
    fs.mkdirSync(d);
    if (fs.existsSync(path.join(d, "cpuset.cpus"))) {
      for (const f of ["cpuset.cpus", "cpuset.mems"]) fs.writeFileSync(path.join(d, f), fs.readFileSync(path.join(path.dirname(d), f), "utf8").trim());
    }
  }
  // nspawn makes these on the machine; removed again (when empty) if they were not there before.
  const nspawnDirs = ["/run/systemd/nspawn/propagate", "/run/systemd/nspawn", "/run/systemd/nspawn-root"].filter((d) => !fs.existsSync(d));
  const log = fs.openSync(path.join(share, "nspawn.log"), "w");
  // Unset: nspawn's own choice, here the hybrid layout of this machine.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env[TAG_ENV];
  delete env.SYSTEMD_NSPAWN_UNIFIED_HIERARCHY;
  if (opts.unified) env.SYSTEMD_NSPAWN_UNIFIED_HIERARCHY = "1";
  const nspawnArgs = [
    "--keep-unit", "--register=no", "--volatile=yes", "-D", "/", "--private-network", `--machine=${name}`, "--console=passive",
    `--bind-ro=${REPO}`, `--bind=${share}`, ...outsideRepo([rootfs, path.dirname(TSRUN), path.resolve(path.dirname(TSRUN), "../libexec/tsrun")]).map((d) => `--bind-ro=${d}`),
    // Keyrings are not namespaced, so nspawn's filter refuses their calls; a runtime's init joins
    // a session keyring of its own (runc and tsrun fail on EPERM), as it does on a real host.
    "--system-call-filter=keyctl add_key request_key",
    "--boot", "systemd.firstboot=off", ...MASKED.map((u) => `systemd.mask=${u}`),
  ];
  // The shell moves itself into the host's cgroups, then becomes nspawn.
  const procsFiles = dirs.map((d) => path.join(d, "cgroup.procs"));
  const child = spawn("/bin/sh", ["-c", 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 1; shift; done; shift; exec "$@"', "sh", ...procsFiles, "--", "systemd-nspawn", ...nspawnArgs], {
    env,
    stdio: ["ignore", log, log],
  });
  fs.closeSync(log);
  const nspawnPid = child.pid!;
  let exited = false;
  child.on("exit", () => (exited = true));

  const stop = async () => {
    if (!exited) {
      try {
        process.kill(nspawnPid, "SIGTERM");
      } catch {
        // gone
      }
      for (let i = 0; i < 600 && !exited; i++) await sleep(50);
      if (!exited) {
        for (const p of procsIn(dirs)) {
          try {
            process.kill(p, "SIGKILL");
          } catch {
            // gone
          }
        }
        for (let i = 0; i < 200 && !exited; i++) await sleep(50);
      }
    }
    // Everything nspawn and the systemd inside left: processes would keep the dirs busy.
    for (let i = 0; i < 100 && procsIn(dirs).length > 0; i++) {
      for (const p of procsIn(dirs)) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // gone
        }
      }
      await sleep(50);
    }
    for (const d of dirs) removeCgroupTree(d);
    fs.rmSync(path.join("/run/systemd/nspawn/propagate", name), { recursive: true, force: true });
    for (const d of nspawnDirs) {
      try {
        fs.rmdirSync(d);
      } catch {
        // not empty (another systemd host of this machine uses it), or gone
      }
    }
    removeTree(share);
  };
  t.teardown(stop);

  // systemd is nspawn's child once the container is set up.
  let pid = 0;
  for (let i = 0; i < 600 && !exited && pid === 0; i++) {
    await sleep(50);
    const kids = fs.readdirSync(`/proc/${nspawnPid}/task`).flatMap((task) => {
      try {
        return fs.readFileSync(`/proc/${nspawnPid}/task/${task}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
    const sd = kids.find((k) => {
      try {
        return fs.readFileSync(`/proc/${k}/comm`, "utf8").trim() === "systemd";
      } catch {
        return false;
      }
    });
    if (sd) pid = sd;
  }
  if (pid === 0) throw new Error(`systemd-nspawn did not start systemd: ${fs.readFileSync(path.join(share, "nspawn.log"), "utf8").slice(-2000)}`);

  // Output through temp files, not pipes: a container keeps the stdio of `create` open.
  const run = (cmd: string[], o: RunOptions = {}): TsrunResult => {
    const out = new Capture();
    const err = new Capture();
    const r = spawnSync("nsenter", nsenterArgs(pid, cmd), {
      input: o.input,
      stdio: [o.input === undefined ? "ignore" : "pipe", out.fd, err.fd],
      env: { ...process.env, [TAG_ENV]: TEST_TAG, ...o.env },
      timeout: o.timeoutMs ?? 120_000,
      killSignal: "SIGKILL",
    });
    const stdout = out.read();
    const stderr = err.read();
    if (r.error && !r.signal) throw r.error;
    return { code: r.status ?? 128 + (r.signal ? (os.constants.signals[r.signal] ?? 0) : 0), signal: r.signal, stdout, stderr };
  };
  const waitRunning = async (what: string) => {
    let last = "";
    for (let i = 0; i < 600; i++) {
      const r = run(["systemctl", "is-system-running"]);
      last = r.stdout.trim();
      if (last === "running" || last === "degraded") return;
      await sleep(100);
    }
    throw new Error(`the systemd host did not finish ${what}: ${last}; ${run(["systemctl", "list-jobs", "--no-pager"]).stdout}`);
  };
  await waitRunning("booting");
  if (!opts.unified) {
    for (const m of run(["findmnt", "-rn", "-t", "cgroup", "-o", "TARGET"]).stdout.split("\n").filter(Boolean)) {
      if (m.endsWith("/systemd")) continue;
      const r = run(["mount", "-o", "remount,bind,rw", m]);
      if (r.code !== 0) throw new Error(`remount ${m} read-write: ${r.stderr}`);
    }
    const r = run(["systemctl", "daemon-reexec"]);
    if (r.code !== 0) throw new Error(`systemctl daemon-reexec: ${r.stderr}`);
    await waitRunning("re-executing");
  } else {
    // Only what is not bound to v1 on this machine is in its cgroup2 hierarchy (hugetlb): let
    // the container's subtree have it (nspawn's own dir holds no process by now).
    const v2dir = dirs[dirs.length - 1]!;
    for (const c of fs.readFileSync(path.join(v2dir, "cgroup.controllers"), "utf8").split(/\s+/).filter(Boolean)) {
      fs.writeFileSync(path.join(v2dir, "cgroup.subtree_control"), `+${c}`);
    }
  }
  return {
    name, pid, unified: opts.unified, share, cgroupDirs: dirs, run, stop,
    spawn: (cmd, o = {}) => spawn("nsenter", nsenterArgs(pid, cmd), { env: { ...process.env, [TAG_ENV]: TEST_TAG, ...o.env }, stdio: ["ignore", "pipe", "pipe"] }),
    systemctl: (args) => run(["systemctl", ...args, "--no-pager"]),
    tsrun: (args, o = {}) => run([TSRUN, ...args], o),
    tsrunPath: TSRUN,
  };
}
