/**
 * config.json (already validated) -> the launch plan the helper carries out. Every default
 * and every decision of how a config field becomes syscalls is made here.
 */
import { statSync } from "node:fs";
import { basename, join, posix } from "node:path";
import { TsrunError } from "../errors.ts";
import { parseMountOptions, MS } from "../linux/mount-options.ts";
import { resolveCapabilities } from "../linux/capabilities.ts";
import { RLIMITS } from "../linux/rlimits.ts";
import { DEFAULT_DEVICES } from "../linux/default-devices.ts";
import { refuseHostNamespaceSettings } from "../linux/host-namespaces.ts";
import { seccompPlan, renderListenerState } from "../linux/seccomp-plan.ts";
import { planScheduler, planIoPriority, planPersonality, planApparmor, checkSelinuxLabel, checkMountLabel } from "../linux/process-attrs.ts";
import type { CgroupState } from "../linux/cgroups/index.ts";
import type {
  LaunchPlan, PlanMount, PlanDevice, PlanSymlink, PlanNamespace, PlanProcess, PlanRlimit, NamespaceType, PlanTimeOffset, PlanSeccomp,
  IdMapping, PlanMountIdmap,
} from "../linux/launch-plan.ts";
import type { Spec } from "../spec/generated/types.ts";

type ConfigProcess = NonNullable<Spec["process"]>;
type ConfigLinux = NonNullable<Spec["linux"]>;
type ConfigMount = NonNullable<Spec["mounts"]>[number];


const DEFAULT_SYMLINKS: PlanSymlink[] = [
  { path: "/dev/fd", target: "/proc/self/fd" },
  { path: "/dev/stdin", target: "/proc/self/fd/0" },
  { path: "/dev/stdout", target: "/proc/self/fd/1" },
  { path: "/dev/stderr", target: "/proc/self/fd/2" },
  { path: "/dev/ptmx", target: "pts/ptmx" },
];

const ROOTFS_PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC,
  shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const UINT64_MAX = (1n << 64n) - 1n;

/** JSON numbers past 2^53 arrive rounded; anything at or beyond 2^64-1 means "unlimited". */
function toUint64(n: number): bigint {
  if (!Number.isFinite(n) || n >= 18446744073709551615) return UINT64_MAX;
  return BigInt(Math.max(0, Math.trunc(n)));
}

export interface CreatePlanInput {
  id: string;
  config: Spec;
  /** Absolute bundle path: relative bind mount sources are relative to it. */
  bundle: string;
  rootfs: string;
  cgroup: CgroupState | undefined;
  cgroupProcs: string[];
  execFifo: string;
  consoleSocket?: string;
  noPivot: boolean;
  /** --no-new-keyring: keep the caller's session keyring instead of the container's own. */
  noNewKeyring: boolean;
  preserveFds: number;
  foreground: boolean;
  debug: boolean;
  warn: (msg: string) => void;
}

/** process.env as the process gets it: PATH added when missing (as runc's default). */
export function processEnv(p: ConfigProcess): string[] {
  const env = p.env ?? [];
  return env.some((e) => e.startsWith("PATH=")) ? env : [...env, DEFAULT_PATH];
}

export function planProcess(p: ConfigProcess, warn: (msg: string) => void, prefix = "process"): PlanProcess {
  const rlimits: PlanRlimit[] = (p.rlimits ?? []).map((r, i) => {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new TsrunError(`config.json: ${prefix}.rlimits[${i}].type: unknown rlimit ${JSON.stringify(r.type)}`);
    return { resource, soft: toUint64(r.soft), hard: toUint64(r.hard) };
  });
  checkSelinuxLabel(p.selinuxLabel, prefix);
  const apparmorProfile = planApparmor(p.apparmorProfile, prefix);
  const env = processEnv(p);
  return {
    args: p.args ?? [],
    env,
    // As runc: HOME from the container's /etc/passwd when process.env has none (or an empty one).
    ...(env.some((e) => e.startsWith("HOME=") && e.length > 5) ? {} : { homeFromPasswd: true }),
    cwd: p.cwd,
    uid: p.user.uid,
    gid: p.user.gid,
    additionalGids: p.user.additionalGids ?? [],
    umask: p.user.umask,
    rlimits,
    noNewPrivileges: p.noNewPrivileges === true,
    capabilities: resolveCapabilities(p.capabilities ?? {}, warn),
    oomScoreAdj: p.oomScoreAdj,
    terminal: p.terminal === true,
    consoleHeight: p.consoleSize?.height ?? 0,
    consoleWidth: p.consoleSize?.width ?? 0,
    ...(p.scheduler ? { scheduler: planScheduler(p.scheduler, prefix) } : {}),
    ...(p.ioPriority ? { ioPriority: planIoPriority(p.ioPriority, prefix) } : {}),
    ...(apparmorProfile !== undefined ? { apparmorProfile } : {}),
  };
}

/** linux.personality, which runc applies to the init and to every exec'd process. */
export function planContainerPersonality(config: Spec, warn: (msg: string) => void): number | undefined {
  const p = config.linux?.personality;
  return p ? planPersonality(p, warn) : undefined;
}

function planNamespaces(linux: ConfigLinux): PlanNamespace[] {
  return (linux.namespaces ?? []).map((ns) => ({ type: ns.type as NamespaceType, ...(ns.path ? { path: ns.path } : {}) }));
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return true;
  }
}

/** The container's own user namespace, for "idmap" mounts without mappings of their own. */
interface ContainerUserns {
  path?: string;
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
}

/**
 * An idmapped bind mount's mapping: the mount's uidMappings/gidMappings when it has them (also
 * without "idmap"/"ridmap" in options, as runc), else with "idmap"/"ridmap" the container's user
 * namespace (its mappings, or the one it joins), as runtime-spec 1.2 allows and runc does.
 */
function planIdmap(m: ConfigMount, recursive: boolean | undefined, bind: boolean, where: string, userns: ContainerUserns | undefined): PlanMountIdmap | undefined {
  const uidMappings = m.uidMappings ?? [];
  const gidMappings = m.gidMappings ?? [];
  const hasMaps = uidMappings.length > 0 || gidMappings.length > 0;
  if (recursive === undefined && !hasMaps) return undefined;
  if (!bind) throw new TsrunError(`${where}.options: id-mapped mounts must be bind mounts ("bind" or "rbind" in options)`);
  if ((process.geteuid?.() ?? 0) !== 0) {
    throw new TsrunError(`${where}: id-mapped mounts are not supported for rootless containers (mount_setattr MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN in the initial user namespace)`);
  }
  const rec = recursive ?? false;
  if (hasMaps) {
    if (uidMappings.length === 0 || gidMappings.length === 0) throw new TsrunError(`${where}: id-mapped mounts need both uidMappings and gidMappings`);
    return { recursive: rec, uidMappings, gidMappings };
  }
  if (userns?.path) return { recursive: rec, uidMappings: [], gidMappings: [], usernsPath: userns.path };
  if (userns && userns.uidMappings.length > 0 && userns.gidMappings.length > 0) return { recursive: rec, uidMappings: userns.uidMappings, gidMappings: userns.gidMappings };
  throw new TsrunError(`${where}.options: "${rec ? "ridmap" : "idmap"}" needs uidMappings and gidMappings on the mount, or a user namespace with mappings for the container`);
}

/** "/dev", "//dev/", "/dev/." all name /dev. */
function isDev(destination: string): boolean {
  return posix.normalize(`/${destination}/`) === "/dev/";
}

function planMount(m: ConfigMount, index: number, bundle: string, userns: ContainerUserns | undefined): PlanMount {
  const where = `config.json: mounts[${index}]`;
  const opts = parseMountOptions(m.options);
  const bind = opts.bind || m.type === "bind";
  let source = m.source ?? "";
  if (bind && source && !source.startsWith("/")) source = join(bundle, source);
  if (!bind && !m.type) throw new TsrunError(`${where}.type: a mount that is not a bind mount needs a type`);
  if (opts.copyUp && m.type !== "tmpfs") throw new TsrunError(`${where}.options: tmpcopyup is only for tmpfs mounts`);
  const idmap = planIdmap(m, opts.idmap?.recursive, bind, where, userns);
  // As runc: /dev is filled (devices, links, the console) and a tmpfs maybe copied up before it
  // becomes read-only, so a read-only one is mounted writable and made read-only at the end.
  const readonlyLate = (opts.flags & MS.RDONLY) !== 0 && (isDev(m.destination) || (!bind && m.type === "tmpfs"));
  const mountFlags = readonlyLate ? opts.flags & ~MS.RDONLY : opts.flags;
  const flags = bind ? MS.BIND | (opts.recursiveBind ? MS.REC : 0) : mountFlags;
  // In a user namespace the init may not reach a source only host root can: the source is taken
  // on the host side (as runc and crun do). Not for an unprivileged tsrun, which reaches no more.
  const detachedSource = bind && !idmap && userns !== undefined && (process.geteuid?.() ?? 0) === 0;
  return {
    source,
    destination: m.destination,
    fstype: bind ? "" : m.type ?? "",
    flags,
    remountFlags: bind ? mountFlags : 0,
    propagation: opts.propagation,
    recAttrSet: opts.recAttrSet,
    recAttrClr: opts.recAttrClr,
    data: opts.data.join(","),
    destKind: bind && !isDirectory(source) ? "file" : "dir",
    ...(opts.copyUp ? { copyUp: true } : {}),
    ...(idmap ? { idmap } : {}),
    ...(detachedSource ? { detachedSource } : {}),
    ...(readonlyLate ? { readonlyLate } : {}),
  };
}

/**
 * A "cgroup" mount shows the container its own cgroups: on cgroup v2 with a cgroup namespace
 * a fresh cgroup2 mount does that; otherwise a tmpfs with a read-only bind of each of the
 * container's cgroup directories, which works with or without a cgroup namespace.
 */
function planCgroupMount(m: ConfigMount, index: number, cgroup: CgroupState | undefined, newCgroupNs: boolean): PlanMount[] {
  const opts = parseMountOptions(m.options);
  const base = { propagation: [], recAttrSet: 0, recAttrClr: 0, destKind: "dir" as const };
  if (!cgroup) return [];
  if (cgroup.version === "v2" && cgroup.v2 && newCgroupNs) {
    return [{ ...base, source: "cgroup", destination: m.destination, fstype: "cgroup2", flags: opts.flags, remountFlags: 0, data: "" }];
  }
  const mounts: PlanMount[] = [{
    ...base, source: "tmpfs", destination: m.destination, fstype: "tmpfs",
    flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, remountFlags: 0, data: "mode=755",
  }];
  const bindFlags = opts.flags | MS.NOSUID | MS.NOEXEC | MS.NODEV;
  const dirs: [string, string][] = Object.entries(cgroup.v1).map(([controller, dir]) => [controller.replace(/^name=/, ""), dir]);
  if (cgroup.v2) dirs.push([cgroup.version === "v2" ? "" : "unified", cgroup.v2]);
  for (const [name, dir] of dirs) {
    mounts.push({
      ...base, source: dir, destination: name ? `${m.destination}/${basename(name)}` : m.destination, fstype: "",
      flags: MS.BIND | MS.REC, remountFlags: bindFlags, data: "",
    });
  }
  return mounts;
}

/** runc's name for a container's own session keyring, which exec joins too. */
export function sessionKeyringName(id: string, noNewKeyring: boolean | undefined): string | undefined {
  return noNewKeyring ? undefined : `_ses.${id}`;
}

/** The container's seccomp filter; a notify listener also gets the state as runc sends it. */
export function planSeccomp(config: Spec, id: string, bundle: string, status: "creating" | "running"): PlanSeccomp | undefined {
  const s = config.linux?.seccomp;
  if (!s) return undefined;
  const state = s.listenerPath
    ? renderListenerState({ ociVersion: config.ociVersion, id, status, bundle, annotations: config.annotations, metadata: s.listenerMetadata })
    : undefined;
  return seccompPlan(s, state);
}

export function planCreate(input: CreatePlanInput): LaunchPlan {
  const { config } = input;
  const linux: ConfigLinux = config.linux ?? {};
  if (!config.process) throw new TsrunError("config.json: process: is required to create a container");
  const namespaces = planNamespaces(linux);
  const has = (t: NamespaceType) => namespaces.some((n) => n.type === t);
  const hasNew = (t: NamespaceType) => namespaces.some((n) => n.type === t && !n.path);
  if (!has("mount")) {
    // As runc: the mounts are made in tsrun's own mount namespace (under the rootfs) and the
    // process is chrooted. What would change the host's own mounts is refused (runc ignores a
    // read-only root there and makes the host's "/" rslave).
    if (config.root?.readonly) throw new TsrunError('config.json: root.readonly: needs a mount namespace (no "mount" in linux.namespaces): it would make the host\'s mount read-only');
    if (linux.rootfsPropagation) throw new TsrunError('config.json: linux.rootfsPropagation: needs a mount namespace (no "mount" in linux.namespaces): it would change the host\'s "/"');
  }
  refuseHostNamespaceSettings(namespaces, { hostname: config.hostname, domainname: config.domainname, sysctl: linux.sysctl });
  const inUserNs = has("user");

  const userNs = namespaces.find((n) => n.type === "user");
  const userns: ContainerUserns | undefined = userNs && {
    ...(userNs.path ? { path: userNs.path } : {}), uidMappings: linux.uidMappings ?? [], gidMappings: linux.gidMappings ?? [],
  };
  const mounts: PlanMount[] = [];
  (config.mounts ?? []).forEach((m, i) => {
    if (m.type === "cgroup" || m.type === "cgroup2") mounts.push(...planCgroupMount(m, i, input.cgroup, hasNew("cgroup")));
    else mounts.push(planMount(m, i, input.bundle, userns));
  });

  const devices = new Map<string, PlanDevice>();
  for (const d of DEFAULT_DEVICES) devices.set(d.path, { ...d, bindFromHost: inUserNs });
  for (const d of linux.devices ?? []) {
    devices.set(d.path, {
      path: d.path, type: d.type as PlanDevice["type"], major: d.major ?? 0, minor: d.minor ?? 0,
      fileMode: (d.fileMode ?? 0o666) & 0o7777, uid: d.uid ?? 0, gid: d.gid ?? 0, bindFromHost: inUserNs,
    });
  }

  const timeOffsets: PlanTimeOffset[] = [];
  for (const clock of ["monotonic", "boottime"] as const) {
    const o = linux.timeOffsets?.[clock];
    if (o) timeOffsets.push({ clock, secs: BigInt(o.secs ?? 0), nanosecs: o.nanosecs ?? 0 });
  }

  checkMountLabel(linux.mountLabel);
  let rootfsPropagation: number = MS.SLAVE | MS.REC;
  if (linux.rootfsPropagation) {
    const p = ROOTFS_PROPAGATION[linux.rootfsPropagation];
    if (p === undefined) throw new TsrunError(`config.json: linux.rootfsPropagation: unknown propagation ${JSON.stringify(linux.rootfsPropagation)}`);
    rootfsPropagation = p;
  }

  return {
    mode: "create",
    foreground: input.foreground,
    debug: input.debug,
    namespaces,
    uidMappings: linux.uidMappings ?? [],
    gidMappings: linux.gidMappings ?? [],
    timeOffsets,
    cgroupProcs: input.cgroupProcs,
    rootfs: input.rootfs,
    rootfsPropagation,
    noPivot: input.noPivot,
    readonlyRoot: config.root?.readonly === true,
    mounts,
    devices: [...devices.values()],
    symlinks: DEFAULT_SYMLINKS,
    // Once each: every repeat stacks one more mount on the path, and each costs more than the last.
    maskedPaths: [...new Set(linux.maskedPaths ?? [])],
    readonlyPaths: [...new Set(linux.readonlyPaths ?? [])],
    sysctls: Object.entries(linux.sysctl ?? {}).map(([key, value]) => ({ key, value: String(value) })),
    hostname: config.hostname,
    domainname: config.domainname,
    process: planProcess(config.process, input.warn),
    seccomp: planSeccomp(config, input.id, input.bundle, "creating"),
    consoleSocket: input.consoleSocket,
    execFifo: input.execFifo,
    sessionKeyring: sessionKeyringName(input.id, input.noNewKeyring),
    preserveFds: input.preserveFds,
    personality: planContainerPersonality(config, input.warn),
  };
}
