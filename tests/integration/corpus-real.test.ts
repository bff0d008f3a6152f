// Differential test: every config.json in tests/corpus/real (written by runc, crun, podman,
// containerd's ctr and CRI plugin, dockerd and the runtime-tools generator; README.md there says
// how each was captured) runs under runc and under tsrun, and what a user sees must be the same:
// the exit status, and the probe's output (below) section by section.
//
// The rewriting, the same for both runtimes, is only what running the config on another machine
// needs (each step is in rewrite()):
//   - root.path: a private copy of the busybox test rootfs (BUNDLE/rootfs), owned by the user
//     namespace's root when the config maps one (as the manager's storage was);
//   - process.args: the probe; process.terminal: false (no terminal here); the test's tag added
//     to process.env (how the leak checker knows this file's processes);
//   - bind mounts of files the manager had made (a source that does not exist here: /etc/hosts,
//     /etc/hostname, /etc/resolv.conf, /run/.containerenv, /dev/shm): a placeholder file or
//     directory of the same kind in the bundle;
//   - hooks: removed (they name the manager's own binaries, such as dockerd's libnetwork-setkey);
//   - linux.cgroupsPath, when set: a fresh path named by the container id;
//   - linux.namespaces paths /proc/PID/ns/*: the same namespaces of a holder container started
//     first, by the same runtime, from the config the manager made for them (the CRI container
//     joins its pod's sandbox);
//   - what this host cannot grant without CAP_SYS_RESOURCE, when the test lacks it: rlimits
//     above the test's own hard limit are lowered to it; an oomScoreAdj below the test's own is
//     raised to it; capabilities outside the test's bounding set are left out.
// Each runtime gets its own bundle, container id and state dir (--root, under /run/tsrun-test).
// The configs `spec --rootless` wrote run twice: as root (they were captured as root), and as the
// unprivileged test user (tests/lib/rootless.ts), both runtimes as that user, with a bundle and
// state dirs it owns and the mapping's host ids (the capturing user's: 0) made the user's own.
//
// Differences are listed in EXPECTED with their reason and owner: `todo` for those another
// session's branch fixes (flipped when it is merged), and docs/compatibility.md for the rest.
import t, { type Test } from "tap";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { onTeardown, ownedRoots, realDir, removeAtTeardown } from "../lib/context.ts";
import { leakCheck } from "../lib/leaks.ts";
import { copyRootfs, REPO } from "../lib/rootfs.ts";
import { Capture, TAG_ENV, TEST_ROOT_PARENT, TEST_TAG, TSRUN, containerId, testRoot } from "../lib/tsrun.ts";
import type { ConfigObject } from "../lib/runc-like-config.ts";
import { rootlessSkip, testUser, userCanRunTsrun, userDir, type TestUser } from "../lib/rootless.ts";

const REAL = path.join(REPO, "tests/corpus/real");
const RUNC = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"].find((p) => fs.existsSync(p));

/** Configs whose namespace paths name another container's process: the config that container runs. */
const HOLDERS: Record<string, string> = { "cri-container": "cri-sandbox" };

/**
 * A difference between what runc and tsrun show for a config. Three kinds:
 *   - section "exit": tsrun does not run the probe at all. While that is so, every comparison of
 *     the config is a todo (its sections cannot be compared); once it runs, the rest apply.
 *   - a section with runc/tsrun maps: a difference docs/compatibility.md explains; each side is
 *     mapped and what is left must be equal (checked strictly, not a todo).
 *   - a section without maps: another session's item (owner); a todo until its branch is merged,
 *     when the lead removes the entry.
 */
interface Expected {
  section: string;
  /** The session whose branch removes the difference, or "corpus" for a documented choice. */
  owner: string;
  reason: string;
  runc?: (text: string) => string;
  tsrun?: (text: string) => string;
}

/** docs/compatibility.md: ambient capabilities the kernel will not raise are skipped with a warning. */
const AMBIENT_WARNING: Expected = {
  section: "stderr", owner: "corpus",
  reason: "tsrun warns for each ambient capability it cannot raise (not both inheritable and permitted) and goes on, as runc 1.2 does; runc 1.1.5 says nothing (docs/compatibility.md)",
  tsrun: (s) => s.replace(/^tsrun: warning: process\.capabilities\.ambient: can't raise ambient capability CAP_\w+: .*\n/gm, ""),
};
/**
 * docs/compatibility.md: in a user namespace bind mount sources are taken on the host side first
 * (open_tree), and this kernel lists a namespace's mounts in the order they were made: those binds
 * come first in tsrun's mountinfo. The same mounts must be there; their order is not compared.
 */
const DETACHED_FIRST: Expected = {
  section: "mounts", owner: "corpus",
  reason: "in a user namespace tsrun takes bind sources on the host side first (as runc 1.2), so they are listed before the other mounts (docs/compatibility.md)",
  runc: (s) => s.split("\n").sort().join("\n"),
  tsrun: (s) => s.split("\n").sort().join("\n"),
};
/** docs/compatibility.md: no linux.cgroupsPath. runc: <its own cgroup>/<id>; tsrun: /tsrun/<id>. */
const defaultCgroup = (section: "cgroup" | "mounts"): Expected => ({
  section, owner: "corpus",
  reason: "without linux.cgroupsPath runc places the container below its own cgroup, tsrun at /tsrun/<id> (docs/compatibility.md)",
  runc: (s) => s.replace(/(<OWN>)?\/<ID>/g, "<DEFAULT-CGROUP>/<ID>"),
  tsrun: (s) => s.replace(/\/tsrun\/<ID>/g, "<DEFAULT-CGROUP>/<ID>"),
});
/** docs/compatibility.md: a cgroup mount on a hybrid host also shows the container's cgroup2 dir. */
const UNIFIED: Expected = {
  section: "mounts", owner: "corpus",
  reason: "on a hybrid host tsrun's cgroup mount also has the container's cgroup2 directory at /sys/fs/cgroup/unified; runc 1.1 mounts only the v1 hierarchies (docs/compatibility.md)",
  // Only the bind that the cgroup mount (its tmpfs, then binds) made: a bind of the host's /sys
  // before it brings the host's own unified mount, in both.
  tsrun: (s) => {
    const lines = s.split("\n");
    let tmpfs = -1;
    lines.forEach((l, i) => / \/sys\/fs\/cgroup \S+ - tmpfs /.test(l) && (tmpfs = i));
    return lines.filter((l, i) => i < tmpfs || !/ \/sys\/fs\/cgroup\/unified \S+ - cgroup2 /.test(l)).join("\n");
  },
};
/** docs/compatibility.md: the ipc namespace (and so its mqueue filesystem) is made before root of the user namespace exists. */
const MQUEUE_OWNER: Expected = {
  section: "dev", owner: "corpus",
  reason: "in a new user namespace /dev/mqueue belongs to nobody:nogroup under tsrun, root:nogroup under runc (docs/compatibility.md)",
  runc: (s) => s.replace(/^(\/dev\/mqueue directory \d+) 0:65534 /m, "$1 <MQUEUE-OWNER> "),
  tsrun: (s) => s.replace(/^(\/dev\/mqueue directory \d+) 65534:65534 /m, "$1 <MQUEUE-OWNER> "),
};
const NO_CGROUPS_PATH = [defaultCgroup("cgroup"), defaultCgroup("mounts")];

const EXPECTED: Record<string, Expected[]> = {
  "runc-spec": [AMBIENT_WARNING, ...NO_CGROUPS_PATH, UNIFIED],
  "runc-spec-rootless": [AMBIENT_WARNING, ...NO_CGROUPS_PATH, UNIFIED, DETACHED_FIRST],
  "runc-spec-rootless@user": [AMBIENT_WARNING, UNIFIED],
  "crun-spec": [AMBIENT_WARNING, ...NO_CGROUPS_PATH, UNIFIED],
  "runtime-tools-generate": [...NO_CGROUPS_PATH],
  "cri-container": [UNIFIED],
  "docker-run": [UNIFIED],
  "docker-run-privileged": [UNIFIED],
  "podman-run": [UNIFIED],
  "podman-run-privileged": [UNIFIED],
  "podman-run-uidmap": [UNIFIED, MQUEUE_OWNER, DETACHED_FIRST],
};

// ---- the probe --------------------------------------------------------------------------------

/** What the container runs instead of its own args: one "== name" section per thing compared. */
const PROBE = `
s() { echo "== $1"; }
s status; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters|Uid|Gid|Groups):' /proc/self/status 2>&1
s id; id 2>&1
s pid; [ $$ = 1 ] && echo 1 || echo "not 1 (a joined pid namespace)"
s limits; cat /proc/self/limits 2>&1
s cgroup; cat /proc/self/cgroup 2>&1
s mounts; cat /proc/self/mountinfo 2>&1
s env; env | sort
s cwd; pwd
s hostname; hostname; cat /proc/sys/kernel/domainname
s umask; umask
s oom_score_adj; cat /proc/self/oom_score_adj
s userns; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups 2>&1
s dev; find /dev -xdev | sort | while read f; do stat -c '%n %F %a %u:%g %t:%T' "$f"; done 2>&1
s net; cut -d: -f1 /proc/net/dev | tail -n +3 | sort
s sysctl; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range 2>&1
s devices.list; cat /sys/fs/cgroup/devices/devices.list 2>&1
s fds; ls /proc/self/fd 2>&1
s write; touch /corpus-probe-write 2>&1 && echo rootfs writable
exit 42
`;

// ---- the host ---------------------------------------------------------------------------------

function statusLine(name: string): string {
  return fs.readFileSync("/proc/self/status", "utf8").match(new RegExp(`^${name}:\\s*(\\S+)`, "m"))?.[1] ?? "";
}
const BOUNDING = BigInt(`0x${statusLine("CapBnd") || "0"}`);
const HAS_SYS_RESOURCE = ((BigInt(`0x${statusLine("CapEff") || "0"}`) >> 24n) & 1n) === 1n;
const CAP_NUMBERS: Record<string, number> = Object.fromEntries(
  ("CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE " +
    "NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN " +
    "SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE " +
    "MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE")
    .split(" ")
    .map((n, i) => [`CAP_${n}`, i]),
);
const inBoundingSet = (cap: string) => CAP_NUMBERS[cap] === undefined || ((BOUNDING >> BigInt(CAP_NUMBERS[cap]!)) & 1n) === 1n;

/** The test's own hard limits, by rlimit name (undefined: unlimited). */
function hardLimits(): Record<string, number | undefined> {
  const names: Record<string, string> = {
    "Max cpu time": "RLIMIT_CPU", "Max file size": "RLIMIT_FSIZE", "Max data size": "RLIMIT_DATA", "Max stack size": "RLIMIT_STACK",
    "Max core file size": "RLIMIT_CORE", "Max resident set": "RLIMIT_RSS", "Max processes": "RLIMIT_NPROC", "Max open files": "RLIMIT_NOFILE",
    "Max locked memory": "RLIMIT_MEMLOCK", "Max address space": "RLIMIT_AS", "Max file locks": "RLIMIT_LOCKS", "Max pending signals": "RLIMIT_SIGPENDING",
    "Max msgqueue size": "RLIMIT_MSGQUEUE", "Max nice priority": "RLIMIT_NICE", "Max realtime priority": "RLIMIT_RTPRIO", "Max realtime timeout": "RLIMIT_RTTIME",
  };
  const out: Record<string, number | undefined> = {};
  for (const line of fs.readFileSync("/proc/self/limits", "utf8").split("\n").slice(1)) {
    const label = line.slice(0, 26).trim();
    const hard = line.slice(26).trim().split(/\s+/)[1];
    if (names[label]) out[names[label]!] = hard === "unlimited" || hard === undefined ? undefined : Number(hard);
  }
  return out;
}
const HARD = hardLimits();
const OWN_OOM = Number(fs.readFileSync("/proc/self/oom_score_adj", "utf8").trim());

/** This process's own cgroup per hierarchy (paths other than "/"), longest first. */
const OWN_CGROUPS = [
  ...new Set(
    fs
      .readFileSync("/proc/self/cgroup", "utf8")
      .split("\n")
      .map((l) => l.split(":").slice(2).join(":"))
      .filter((p) => p && p !== "/"),
  ),
].sort((a, b) => b.length - a.length);

// ---- rewriting ----------------------------------------------------------------------------------

/** Is this mount a bind mount (type bind, or a bind/rbind option)? */
const isBind = (m: ConfigObject) => m.type === "bind" || (m.options ?? []).some((o: string) => o === "bind" || o === "rbind");

/** Map an id through a config's uid/gid mappings (host id of container id), as the kernel would. */
function mapId(id: number, maps: Array<{ containerID: number; hostID: number; size: number }> | undefined): number {
  for (const m of maps ?? []) if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  return id;
}

/** lchown every entry of dir as the user namespace's ids (the rootfs copy is owned by host root). */
function shiftOwnership(dir: string, config: ConfigObject): void {
  const uids = config.linux?.uidMappings;
  const gids = config.linux?.gidMappings;
  if (!uids?.length && !gids?.length) return;
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    fs.lchownSync(p, mapId(st.uid, uids), mapId(st.gid, gids));
    // chown clears setuid/setgid bits; put back the modes the copy had (not for symlinks).
    if (!st.isSymbolicLink()) fs.chmodSync(p, st.mode & 0o7777);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
}

/** Write BUNDLE (rootfs copy, placeholders, config.json) for one runtime's run of config. */
function rewrite(t: Test, original: ConfigObject, opts: { id: string; args?: string[]; holderPid?: number; user?: TestUser }): string {
  const config: ConfigObject = structuredClone(original);
  const u = opts.user;
  let bundle: string;
  if (u) {
    bundle = userDir(t, u, "corpus");
    for (const [maps, own] of [[config.linux?.uidMappings, u.uid], [config.linux?.gidMappings, u.gid]] as const) {
      for (const m of maps ?? []) if (m.hostID === 0) m.hostID = own;
    }
  } else {
    bundle = realDir(fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-corpus-")));
    removeAtTeardown(t, bundle, "bundle");
    fs.chmodSync(bundle, 0o711);
  }
  const rootfs = copyRootfs(path.join(bundle, "rootfs"));
  shiftOwnership(rootfs, config);
  config.root = { ...config.root, path: "rootfs" };

  config.process ??= {};
  if (opts.args) config.process.args = opts.args;
  else config.process.args = ["/bin/sh", "-c", PROBE];
  config.process.terminal = false;
  delete config.process.consoleSize;
  config.process.env = [...(config.process.env ?? []), `${TAG_ENV}=${TEST_TAG}`];

  const host = path.join(bundle, "host");
  fs.mkdirSync(host);
  for (const [i, m] of (config.mounts ?? []).entries()) {
    if (!isBind(m) || fs.existsSync(path.resolve(bundle, m.source))) continue;
    const placeholder = path.join(host, `${i}-${path.basename(m.destination)}`);
    // A directory where the busybox rootfs has one (or below /dev, a tmpfs): /dev/shm.
    const isDir = m.destination.startsWith("/dev/") || fs.lstatSync(path.join(rootfs, m.destination), { throwIfNoEntry: false })?.isDirectory();
    if (isDir) fs.mkdirSync(placeholder, { mode: 0o1777 });
    else fs.writeFileSync(placeholder, `placeholder for ${m.destination}\n`);
    if (config.linux?.uidMappings) fs.chownSync(placeholder, mapId(0, config.linux.uidMappings), mapId(0, config.linux.gidMappings));
    m.source = placeholder;
  }

  delete config.hooks;
  if (config.linux?.cgroupsPath) config.linux.cgroupsPath = `/${opts.id}`;
  for (const ns of config.linux?.namespaces ?? []) {
    const m = /^\/proc\/\d+\/ns\/(\w+)$/.exec(ns.path ?? "");
    if (!m) continue;
    if (opts.holderPid === undefined) throw new Error(`${ns.type} namespace path ${ns.path}: no holder container for it`);
    ns.path = `/proc/${opts.holderPid}/ns/${m[1]}`;
  }

  if (!HAS_SYS_RESOURCE) {
    for (const r of config.process.rlimits ?? []) {
      const max = HARD[r.type];
      if (max !== undefined) {
        r.hard = Math.min(r.hard, max);
        r.soft = Math.min(r.soft, r.hard);
      }
    }
    if (config.process.oomScoreAdj !== undefined && config.process.oomScoreAdj < OWN_OOM) config.process.oomScoreAdj = OWN_OOM;
    const caps = config.process.capabilities;
    for (const set of Object.keys(caps ?? {})) caps[set] = caps[set].filter(inBoundingSet);
  }

  fs.writeFileSync(path.join(bundle, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  return bundle;
}

// ---- running ------------------------------------------------------------------------------------

interface Runtime {
  name: "runc" | "tsrun";
  bin: string;
  root: string;
  /** Run as this unprivileged user (setpriv), not as root. */
  user?: TestUser;
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function call(rt: Runtime, args: string[]): Outcome {
  const out = new Capture();
  const err = new Capture();
  const argv = [rt.bin, "--root", rt.root, ...args];
  const u = rt.user;
  const [file, ...rest] = u ? ["setpriv", `--reuid=${u.uid}`, `--regid=${u.gid}`, "--init-groups", ...argv] : argv;
  const r = spawnSync(file!, rest, {
    env: { ...process.env, [TAG_ENV]: TEST_TAG, ...(u ? { XDG_RUNTIME_DIR: u.xdg, HOME: "/nonexistent", USER: u.name } : {}) },
    stdio: ["ignore", out.fd, err.fd],
    timeout: 120_000,
    killSignal: "SIGKILL",
  });
  const stdout = out.read();
  const stderr = err.read();
  if (r.error && !r.signal) throw r.error;
  return { code: r.status ?? 128 + (r.signal ? (os.constants.signals[r.signal] ?? 0) : 0), stdout, stderr };
}

/** Start the holder container of a config (create + start), return its init's pid. */
function startHolder(t: Test, rt: Runtime, holderConfig: ConfigObject, name: string): { id: string; pid: number } {
  const id = containerId(`${name}-${rt.name}-holder`);
  const bundle = rewrite(t, holderConfig, { id, args: holderConfig.process.args, user: rt.user });
  const c = call(rt, ["create", "--bundle", bundle, id]);
  if (c.code !== 0) throw new Error(`${rt.name}: holder create: ${c.stderr}`);
  const s = call(rt, ["start", id]);
  if (s.code !== 0) throw new Error(`${rt.name}: holder start: ${s.stderr}`);
  const st = call(rt, ["state", id]);
  return { id, pid: JSON.parse(st.stdout).pid as number };
}

function stopContainer(rt: Runtime, id: string): void {
  call(rt, ["kill", id, "KILL"]);
  for (let i = 0; i < 200; i++) {
    const st = call(rt, ["state", id]);
    if (st.code !== 0 || JSON.parse(st.stdout).status === "stopped") break;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  const d = call(rt, ["delete", "--force", id]);
  if (d.code !== 0 && !/does not exist/.test(d.stderr)) throw new Error(`${rt.name} delete ${id}: ${d.stderr}`);
}

interface Seen {
  outcome: Outcome;
  /** Section name -> normalised text. */
  sections: Map<string, string>;
}

/** Run config under rt with the probe; normalise what it printed. */
function runProbe(t: Test, rt: Runtime, name: string, config: ConfigObject): Seen {
  let holder: { id: string; pid: number } | undefined;
  const holderName = HOLDERS[name];
  try {
    if (holderName) holder = startHolder(t, rt, loadConfig(holderName), name);
    const id = containerId(`${name}-${rt.name}`);
    const bundle = rewrite(t, config, { id, holderPid: holder?.pid, user: rt.user });
    const outcome = call(rt, ["run", "--bundle", bundle, id]);
    const subst: Array<[string, string]> = [
      [bundle, "<BUNDLE>"],
      [id, "<ID>"],
      [rt.root, "<ROOT>"],
      ...(holder ? ([[holder.id, "<HOLDER>"]] as Array<[string, string]>) : []),
      ...OWN_CGROUPS.map((c): [string, string] => [c, "<OWN>"]),
    ];
    return { outcome, sections: parseProbe(outcome.stdout, subst) };
  } finally {
    if (holder) stopContainer(rt, holder.id);
  }
}

function parseProbe(stdout: string, subst: Array<[string, string]>): Map<string, string> {
  const sections = new Map<string, string>();
  let current = "(before the probe)";
  const lines: string[] = [];
  const flush = () => {
    if (lines.length || current !== "(before the probe)") sections.set(current, normalise(current, lines.join("\n"), subst));
    lines.length = 0;
  };
  for (const line of stdout.split("\n")) {
    const m = /^== (\S+)$/.exec(line);
    if (m) {
      flush();
      current = m[1]!;
    } else if (line !== "" || lines.length) lines.push(line);
  }
  flush();
  return sections;
}

function replaceAll(text: string, subst: Array<[string, string]>): string {
  for (const [from, to] of subst) text = text.split(from).join(to);
  return text;
}

/** Take out of a section what is different on every run (ids, device numbers, mount ids). */
function normalise(section: string, text: string, subst: Array<[string, string]>): string {
  text = replaceAll(text.trimEnd(), subst);
  if (section === "mounts") {
    // mountinfo: id parent major:minor root mountpoint options [optional...] - type source super
    return text
      .split("\n")
      .map((l) => {
        const f = l.split(" ");
        const sep = f.indexOf("-", 6);
        const optional = f.slice(6, sep).map((o) => o.replace(/:\d+$/, ""));
        return [f[3], f[4], f[5], ...optional, "-", ...f.slice(sep + 1)].join(" ");
      })
      .join("\n");
  }
  if (section === "devices.list") {
    // The v1 list shows the rules in the order they were written: runc writes them sorted, tsrun
    // in the config's order. With a deny-all first (every config here) the order means nothing.
    return text.split("\n").sort().join("\n");
  }
  return text;
}

/** Compare what tsrun showed (b) with what runc showed (a), under the config's expected differences. */
function compare(t: Test, a: Seen, b: Seen, expected: Expected[]): void {
  const blocker = expected.find((e) => e.section === "exit");
  const blocked = blocker !== undefined && b.outcome.code !== a.outcome.code;
  const todoOf = (list: Expected[]) => (list.length ? { todo: list.map((e) => `${e.owner}: ${e.reason}`).join("; ") } : {});
  t.equal(b.outcome.code, a.outcome.code, `exit status (tsrun's stderr: ${b.outcome.stderr.trim() || "none"})`, todoOf(blocker ? [blocker] : []));
  if (a.outcome.code !== 42) t.comment(`runc did not run the probe: ${a.outcome.stderr.trim()}`);
  if (a.outcome.stderr === "") {
    // A message docs/compatibility.md explains is taken out first.
    const known = expected.filter((e) => e.section === "stderr" && e.tsrun);
    const rest = known.reduce((s, e) => e.tsrun!(s), b.outcome.stderr);
    const why = known.length ? ` (${known.map((e) => e.reason).join("; ")})` : "";
    t.equal(rest, "", `no message where runc has none${why}`, todoOf(blocked ? [blocker!] : []));
  }
  if (blocked) {
    // Nothing of the probe to compare until the blocker is fixed: one todo for all of it.
    const all = (x: Seen) => [...x.sections].map(([k, v]) => `== ${k}\n${v}`).join("\n");
    t.equal(all(b), all(a), "the probe's output", todoOf([blocker]));
    return;
  }
  for (const section of new Set([...a.sections.keys(), ...b.sections.keys()])) {
    const here = expected.filter((e) => e.section === section);
    const owned = here.filter((e) => !e.runc && !e.tsrun);
    let want = a.sections.get(section);
    let got = b.sections.get(section);
    if (!owned.length) {
      for (const e of here) {
        if (want !== undefined && e.runc) want = e.runc(want);
        if (got !== undefined && e.tsrun) got = e.tsrun(got);
      }
    }
    t.equal(got, want, here.length && !owned.length ? `${section} (${here.map((e) => e.reason).join("; ")})` : section, todoOf(owned));
  }
}

/** CORPUS_REAL_DUMP=DIR: write what each runtime showed (normalised) to DIR/<config>.<runtime>.txt, for diff(1). */
const DUMP = process.env.CORPUS_REAL_DUMP;
function dump(file: string, seen: Seen): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const parts = [`== exit\n${seen.outcome.code}`, `== stderr\n${seen.outcome.stderr.trimEnd()}`];
  for (const [k, v] of seen.sections) parts.push(`== ${k}\n${v}`);
  fs.writeFileSync(file, `${parts.join("\n")}\n`);
}

function loadConfig(name: string): ConfigObject {
  return JSON.parse(fs.readFileSync(path.join(REAL, `${name}.json`), "utf8")) as ConfigObject;
}

// ---- the test -------------------------------------------------------------------------------------

const skip =
  process.getuid?.() !== 0
    ? "runs containers as root"
    : !RUNC
      ? "runc is not installed (apt-get install runc): it is what tsrun is compared with"
      : !fs.existsSync(TSRUN)
        ? `no tsrun binary at ${TSRUN} (run make)`
        : undefined;

const names = fs
  .readdirSync(REAL)
  .filter((f) => f.endsWith(".json"))
  .map((f) => f.slice(0, -5))
  .sort();

/** The runtimes for one config's run: private state dirs, emptied and removed when t ends. */
function runtimes(t: Test, name: string, user?: TestUser): [Runtime, Runtime] {
  let runcRoot: string;
  let tsrunRoot: string;
  if (user) {
    runcRoot = userDir(t, user, "runc-state");
    tsrunRoot = userDir(t, user, "tsrun-state");
    ownedRoots.add(runcRoot).add(tsrunRoot);
  } else {
    runcRoot = path.join(TEST_ROOT_PARENT, `${TEST_TAG}-runc-${name}`);
    fs.mkdirSync(TEST_ROOT_PARENT, { recursive: true, mode: 0o700 });
    fs.mkdirSync(runcRoot, { mode: 0o700 });
    tsrunRoot = testRoot(t);
    onTeardown(t, "files", () => fs.rmSync(runcRoot, { recursive: true, force: true }));
  }
  const rts: [Runtime, Runtime] = [
    { name: "runc", bin: RUNC!, root: runcRoot, user },
    { name: "tsrun", bin: TSRUN, root: tsrunRoot, user },
  ];
  onTeardown(t, "containers", () => {
    for (const rt of rts) for (const id of fs.readdirSync(rt.root)) call(rt, ["delete", "--force", id]);
  });
  return rts;
}

const rootless = rootlessSkip();
let user: TestUser | undefined;
if (!skip && !rootless) {
  user = testUser();
  if (!userCanRunTsrun(user)) throw new Error(`user ${user.name} cannot run ${TSRUN}: the checkout must be readable by it`);
}

t.test("real configs: tsrun shows what runc shows", { skip }, async (t) => {
  t.ok(names.length >= 13, `the corpus has its configs (${names.join(", ")})`);
  const runs = [
    ...names.map((name) => ({ name, key: name, user: undefined })),
    ...names.filter((n) => n.endsWith("-rootless")).map((name) => ({ name, key: `${name}@user`, user })),
  ];
  for (const { name, key, user } of runs) {
    const asUser = key !== name;
    await t.test(asUser ? `${name}, as an unprivileged user` : name, { skip: asUser && rootless }, async (t) => {
      leakCheck(t);
      const [runc, tsrun] = runtimes(t, name, user);
      const config = loadConfig(name);
      const a = runProbe(t, runc, name, config);
      const b = runProbe(t, tsrun, name, config);
      if (DUMP) for (const [rt, seen] of [["runc", a], ["tsrun", b]] as const) dump(path.join(DUMP, `${key}.${rt}.txt`), seen);
      compare(t, a, b, EXPECTED[key] ?? []);
      t.same(fs.readdirSync(runc.root), [], "runc left no state");
    });
  }
});
