/**
 * config.json (already validated) -> the plan the helper carries out (boundary/helper.proto).
 * Every default and every decision of how a config field becomes syscalls is made here.
 */
import { statSync } from "node:fs";
import { basename, join, posix } from "node:path";
import { TsrunError } from "../errors.ts";
import { parseMountOptions, MS } from "../linux/mount-options.ts";
import { resolveCapabilities } from "../linux/capabilities.ts";
import { RLIMITS } from "../linux/rlimits.ts";
import { DEFAULT_DEVICES, type DeviceNode } from "../linux/default-devices.ts";
import { refuseHostNamespaceSettings } from "../linux/host-namespaces.ts";
import { CLONE_FLAGS, type ConfigNamespace, type NamespaceType } from "../linux/namespaces.ts";
import { seccompPlan, renderListenerState } from "../linux/seccomp-plan.ts";
import { planMemoryPolicy } from "../linux/mempolicy.ts";
import { planScheduler, planIoPriority, planPersonality, planApparmor, checkSelinuxLabel, checkMountLabel } from "../linux/process-attrs.ts";
import type { CgroupState } from "../linux/cgroups/index.ts";
import type {
  Capabilities, CreatePlan, Device, IdMapping, Launch, Mount, MountIdmap, Namespace, Process, Rlimit, Seccomp, Symlink, TimeOffset,
} from "../boundary/gen/helper.ts";
import type { IDMapping, Spec } from "../spec/generated/types.ts";

type ConfigProcess = NonNullable<Spec["process"]>;
type ConfigLinux = NonNullable<Spec["linux"]>;
type ConfigMount = NonNullable<Spec["mounts"]>[number];


const DEFAULT_SYMLINKS: Symlink[] = [
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
const S_IFMT: Record<DeviceNode["type"], number> = { c: 0o020000, u: 0o020000, b: 0o060000, p: 0o010000 };
const CLOCK_IDS: Record<"monotonic" | "boottime", number> = { monotonic: 1, boottime: 7 };

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
  /** Hierarchies where the container has no dir of its own and stays in its caller's (rootless). */
  sharedCgroups?: { v1: Record<string, string>; v2?: string };
  cgroupProcs: string[];
  execFifo: string;
  consoleSocket?: string;
  pidfdSocket?: string;
  noPivot: boolean;
  /** --no-new-keyring: keep the caller's session keyring instead of the container's own. */
  noNewKeyring: boolean;
  preserveFds: number;
  foreground: boolean;
  debug: boolean;
  warn: (msg: string) => void;
}

/** Capability numbers as the bit mask of a set. */
function capMask(caps: number[]): bigint {
  return caps.reduce((mask, c) => mask | (1n << BigInt(c)), 0n);
}

/** The directories args[0] is looked up in: the PATH of the process's environment. */
function searchPath(env: string[]): string[] {
  const path = env.find((e) => e.startsWith("PATH="))?.slice(5) ?? "";
  return path.split(":").filter((d) => d !== "");
}

/** process.env as the process gets it: PATH added when missing (as runc's default). */
export function processEnv(p: ConfigProcess): string[] {
  const env = p.env ?? [];
  return env.some((e) => e.startsWith("PATH=")) ? env : [...env, DEFAULT_PATH];
}

export function planProcess(p: ConfigProcess, warn: (msg: string) => void, prefix = "process"): Process {
  const rlimits: Rlimit[] = (p.rlimits ?? []).map((r, i) => {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new TsrunError(`config.json: ${prefix}.rlimits[${i}].type: unknown rlimit ${JSON.stringify(r.type)}`);
    return { resource, soft: toUint64(r.soft), hard: toUint64(r.hard) };
  });
  const env = processEnv(p);
  // The spec's Windows fields: nothing on Linux reads them.
  if (p.commandLine !== undefined) warn(`${prefix}.commandLine is for Windows: ignored on Linux (${prefix}.args is run)`);
  if (p.user.username !== undefined) warn(`${prefix}.user.username is for Windows: ignored on Linux (${prefix}.user.uid and gid are used)`);
  checkSelinuxLabel(p.selinuxLabel, `config.json: ${prefix}.selinuxLabel`);
  const apparmorProfile = planApparmor(p.apparmorProfile, `config.json: ${prefix}.apparmorProfile`);
  const caps = resolveCapabilities(p.capabilities ?? {}, warn);
  const capabilities: Capabilities = {
    bounding: capMask(caps.bounding), effective: capMask(caps.effective), inheritable: capMask(caps.inheritable),
    permitted: capMask(caps.permitted), ambient: capMask(caps.ambient),
  };
  return {
    args: p.args ?? [],
    env,
    searchPath: searchPath(env),
    // As runc: HOME from the container's /etc/passwd when process.env has none (or an empty one).
    homeFromPasswd: !env.some((e) => e.startsWith("HOME=") && e.length > 5),
    cwd: p.cwd,
    uid: p.user.uid,
    gid: p.user.gid,
    additionalGids: p.user.additionalGids ?? [],
    umask: p.user.umask,
    rlimits,
    noNewPrivileges: p.noNewPrivileges === true,
    capabilities,
    oomScoreAdj: p.oomScoreAdj,
    terminal: p.terminal === true ? { height: p.consoleSize?.height ?? 0, width: p.consoleSize?.width ?? 0, uid: p.user.uid } : undefined,
    scheduler: p.scheduler ? planScheduler(p.scheduler, prefix) : undefined,
    ioPriority: p.ioPriority ? planIoPriority(p.ioPriority, prefix) : undefined,
    apparmorProfile: apparmorProfile ?? "",
  };
}

/** linux.personality, which runc applies to the init and to every exec'd process. */
export function planContainerPersonality(config: Spec, warn: (msg: string) => void): number | undefined {
  const p = config.linux?.personality;
  return p ? planPersonality(p, warn) : undefined;
}

function configNamespaces(linux: ConfigLinux): ConfigNamespace[] {
  return (linux.namespaces ?? []).map((ns) => ({ type: ns.type as NamespaceType, ...(ns.path ? { path: ns.path } : {}) }));
}

export function planNamespaces(namespaces: ConfigNamespace[]): Namespace[] {
  return namespaces.map((ns) => ({ cloneFlag: CLONE_FLAGS[ns.type], path: ns.path ?? "" }));
}

/** The config's id mappings as the plan writes them. */
function planIdMappings(maps: IDMapping[] | undefined): IdMapping[] {
  return (maps ?? []).map((m) => ({ containerId: m.containerID, hostId: m.hostID, size: m.size }));
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
  uidMappings: IDMapping[];
  gidMappings: IDMapping[];
}

/**
 * An idmapped bind mount's mapping: the mount's uidMappings/gidMappings when it has them (also
 * without "idmap"/"ridmap" in options, as runc), else with "idmap"/"ridmap" the container's user
 * namespace (its mappings, or the one it joins), as runtime-spec 1.2 allows and runc does.
 */
function planIdmap(
  m: ConfigMount, recursive: boolean | undefined, bind: boolean, where: string, userns: ContainerUserns | undefined, treePropagation: number,
): MountIdmap | undefined {
  const uidMappings = m.uidMappings ?? [];
  const gidMappings = m.gidMappings ?? [];
  const hasMaps = uidMappings.length > 0 || gidMappings.length > 0;
  if (recursive === undefined && !hasMaps) return undefined;
  if (!bind) throw new TsrunError(`${where}.options: id-mapped mounts must be bind mounts ("bind" or "rbind" in options)`);
  if ((process.geteuid?.() ?? 0) !== 0) {
    throw new TsrunError(`${where}: id-mapped mounts are not supported for rootless containers (mount_setattr MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN in the initial user namespace)`);
  }
  const rec = recursive ?? false;
  const idmap = (uid: IDMapping[], gid: IDMapping[], usernsPath = ""): MountIdmap => ({
    recursive: rec, uidMappings: planIdMappings(uid), gidMappings: planIdMappings(gid), usernsPath, treePropagation,
  });
  if (hasMaps) {
    if (uidMappings.length === 0 || gidMappings.length === 0) throw new TsrunError(`${where}: id-mapped mounts need both uidMappings and gidMappings`);
    return idmap(uidMappings, gidMappings);
  }
  if (userns?.path) return idmap([], [], userns.path);
  if (userns && userns.uidMappings.length > 0 && userns.gidMappings.length > 0) return idmap(userns.uidMappings, userns.gidMappings);
  throw new TsrunError(`${where}.options: "${rec ? "ridmap" : "idmap"}" needs uidMappings and gidMappings on the mount, or a user namespace with mappings for the container`);
}

/** "/dev", "//dev/", "/dev/." all name /dev. */
function isDev(destination: string): boolean {
  return posix.normalize(`/${destination}/`) === "/dev/";
}

function planMount(m: ConfigMount, index: number, bundle: string, userns: ContainerUserns | undefined, treePropagation: number): Mount {
  const where = `config.json: mounts[${index}]`;
  const opts = parseMountOptions(m.options);
  const bind = opts.bind || m.type === "bind";
  let source = m.source ?? "";
  if (bind && source && !source.startsWith("/")) source = join(bundle, source);
  if (!bind && !m.type) throw new TsrunError(`${where}.type: a mount that is not a bind mount needs a type`);
  if (opts.copyUp && m.type !== "tmpfs") throw new TsrunError(`${where}.options: tmpcopyup is only for tmpfs mounts`);
  const idmap = planIdmap(m, opts.idmap?.recursive, bind, where, userns, treePropagation);
  // As runc: /dev is filled (devices, links, the console) and a tmpfs maybe copied up before it
  // becomes read-only, so a read-only one is mounted writable and made read-only at the end.
  const readonlyLate = (opts.flags & MS.RDONLY) !== 0 && (isDev(m.destination) || (!bind && m.type === "tmpfs"));
  const mountFlags = readonlyLate ? opts.flags & ~MS.RDONLY : opts.flags;
  const flags = bind ? MS.BIND | (opts.recursiveBind ? MS.REC : 0) : mountFlags;
  // In a user namespace the init may not reach a source only host root can: the source is taken
  // on the host side (as runc and crun do). Not for an unprivileged tsrun, which reaches no more.
  const detached = bind && !idmap && userns !== undefined && (process.geteuid?.() ?? 0) === 0;
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
    destIsFile: bind && !isDirectory(source),
    copyUp: opts.copyUp === true,
    idmap,
    detachedSource: detached ? { treePropagation } : undefined,
    readonlyLate,
  };
}

/** A mount that is neither file-backed nor id-mapped, with nothing to change after it is made. */
function plainMount(source: string, destination: string, fstype: string, flags: number, remountFlags: number, data: string): Mount {
  return {
    source, destination, fstype, flags, remountFlags, propagation: [], recAttrSet: 0, recAttrClr: 0, data,
    destIsFile: false, copyUp: false, idmap: undefined, detachedSource: undefined, readonlyLate: false,
  };
}

/**
 * A "cgroup" mount shows the container its own cgroups: on cgroup v2 with a cgroup namespace
 * a fresh cgroup2 mount does that; otherwise a tmpfs with a read-only bind of each of the
 * container's cgroup directories, which works with or without a cgroup namespace. Where it has
 * none of its own (shared: rootless without a delegated cgroup) it is in its caller's, and is
 * shown that one, as runc does.
 */
function planCgroupMount(m: ConfigMount, cgroup: CgroupState | undefined, newCgroupNs: boolean, shared: CreatePlanInput["sharedCgroups"]): Mount[] {
  const opts = parseMountOptions(m.options);
  if (!cgroup) return [];
  if (cgroup.version === "v2" && cgroup.v2 && newCgroupNs) return [plainMount("cgroup", m.destination, "cgroup2", opts.flags, 0, "")];
  const mounts: Mount[] = [plainMount("tmpfs", m.destination, "tmpfs", MS.NOSUID | MS.NOEXEC | MS.NODEV, 0, "mode=755")];
  const bindFlags = opts.flags | MS.NOSUID | MS.NOEXEC | MS.NODEV;
  const v1 = { ...shared?.v1, ...cgroup.v1 };
  const v2 = cgroup.v2 ?? shared?.v2;
  const dirs: [string, string][] = Object.entries(v1).map(([controller, dir]) => [controller.replace(/^name=/, ""), dir]);
  if (v2) dirs.push([cgroup.version === "v2" ? "" : "unified", v2]);
  for (const [name, dir] of dirs) {
    mounts.push(plainMount(dir, name ? `${m.destination}/${basename(name)}` : m.destination, "", MS.BIND | MS.REC, bindFlags, ""));
  }
  return mounts;
}

/** runc's name for a container's own session keyring, which exec joins too. */
export function sessionKeyringName(id: string, noNewKeyring: boolean | undefined): string | undefined {
  return noNewKeyring ? undefined : `_ses.${id}`;
}

/** The container's seccomp filter; a notify listener also gets the state as runc sends it. */
export function planSeccomp(config: Spec, id: string, bundle: string, status: "creating" | "running"): Seccomp | undefined {
  const s = config.linux?.seccomp;
  if (!s) return undefined;
  const state = s.listenerPath
    ? renderListenerState({ ociVersion: config.ociVersion, id, status, bundle, annotations: config.annotations, metadata: s.listenerMetadata })
    : undefined;
  return seccompPlan(s, state);
}

/**
 * rootfsPropagation: what "/" gets before the mounts (recursive: the host's mounts below the
 * rootfs stop propagating), what the container's own "/" gets after pivot_root (the root mount
 * alone: a mount's own propagation option must win), and what an idmapped mount's detached copy
 * gets (as a bind made in that namespace would). An unbindable "/" would refuse the bind of the
 * rootfs, so it is private until the container's "/" is made unbindable.
 */
function planPropagation(linux: ConfigLinux): { before: number; after: number; tree: number } {
  if (!linux.rootfsPropagation) return { before: MS.SLAVE | MS.REC, after: 0, tree: MS.SLAVE };
  const p = ROOTFS_PROPAGATION[linux.rootfsPropagation];
  if (p === undefined) throw new TsrunError(`config.json: linux.rootfsPropagation: unknown propagation ${JSON.stringify(linux.rootfsPropagation)}`);
  const before = p & MS.UNBINDABLE ? (p & ~MS.UNBINDABLE) | MS.PRIVATE : p;
  const tree = p & MS.SHARED ? 0 : p & (MS.PRIVATE | MS.UNBINDABLE) ? MS.PRIVATE : MS.SLAVE;
  return { before, after: p & ~MS.REC, tree };
}

function planDevice(d: DeviceNode, bindFromHost: boolean): Device {
  return {
    path: d.path, mode: S_IFMT[d.type] | (d.fileMode & 0o7777), major: d.type === "p" ? 0 : d.major, minor: d.type === "p" ? 0 : d.minor,
    uid: d.uid, gid: d.gid, bindFromHost,
  };
}

/** What create and exec share: the process, its namespaces and cgroups, and how it starts. */
export function planLaunch(
  l: Omit<Launch, "consoleSocket" | "sessionKeyring" | "pidfdSocket"> & { consoleSocket?: string; sessionKeyring?: string; pidfdSocket?: string },
): Launch {
  return { ...l, consoleSocket: l.consoleSocket ?? "", sessionKeyring: l.sessionKeyring ?? "", pidfdSocket: l.pidfdSocket ?? "" };
}

/**
 * linux.netDevices: each host device and the name it gets (its own when the config gives none),
 * and the namespace it goes to when that is joined by path. The validator has checked that there
 * is a network namespace and that the names are valid and distinct.
 */
function planNetDevices(linux: ConfigLinux, namespaces: ConfigNamespace[]): Pick<CreatePlan, "netDevices" | "netDevicesNetns"> {
  const entries = Object.entries(linux.netDevices ?? {});
  if (entries.length > 0 && (process.geteuid?.() ?? 0) !== 0) {
    throw new TsrunError("config.json: linux.netDevices: moving a host network device needs CAP_NET_ADMIN on the host: not for rootless containers");
  }
  return {
    netDevices: entries.map(([hostName, d]) => ({ hostName, name: d.name || hostName })),
    netDevicesNetns: entries.length > 0 ? (namespaces.find((n) => n.type === "network")?.path ?? "") : "",
  };
}

export function planCreate(input: CreatePlanInput): CreatePlan {
  const { config } = input;
  const linux: ConfigLinux = config.linux ?? {};
  if (!config.process) throw new TsrunError("config.json: process: is required to create a container");
  const namespaces = configNamespaces(linux);
  const has = (t: NamespaceType) => namespaces.some((n) => n.type === t);
  const hasNew = (t: NamespaceType) => namespaces.some((n) => n.type === t && !n.path);
  if (!has("mount")) {
    // As runc: the mounts are made in tsrun's own mount namespace (under the rootfs) and the
    // process is chrooted. What would change the host's own mounts is refused (runc ignores a
    // read-only root there and makes the host's "/" rslave).
    if (config.root?.readonly) throw new TsrunError('config.json: root.readonly: needs a mount namespace (no "mount" in linux.namespaces): it would make the host\'s mount read-only');
    if (linux.rootfsPropagation) throw new TsrunError('config.json: linux.rootfsPropagation: needs a mount namespace (no "mount" in linux.namespaces): it would change the host\'s "/"');
  }
  refuseHostNamespaceSettings(namespaces, {
    hostname: config.hostname, domainname: config.domainname, sysctl: linux.sysctl, netDevices: Object.keys(linux.netDevices ?? {}),
  });
  const inUserNs = has("user");
  const propagation = planPropagation(linux);

  const userNs = namespaces.find((n) => n.type === "user");
  const userns: ContainerUserns | undefined = userNs && {
    ...(userNs.path ? { path: userNs.path } : {}), uidMappings: linux.uidMappings ?? [], gidMappings: linux.gidMappings ?? [],
  };
  const mounts: Mount[] = [];
  (config.mounts ?? []).forEach((m, i) => {
    if (m.type === "cgroup" || m.type === "cgroup2") mounts.push(...planCgroupMount(m, input.cgroup, hasNew("cgroup"), input.sharedCgroups));
    else mounts.push(planMount(m, i, input.bundle, userns, propagation.tree));
  });

  const devices = new Map<string, Device>();
  for (const d of DEFAULT_DEVICES) devices.set(d.path, planDevice(d, inUserNs));
  for (const d of linux.devices ?? []) {
    devices.set(d.path, planDevice({
      path: d.path, type: d.type as DeviceNode["type"], major: d.major ?? 0, minor: d.minor ?? 0,
      fileMode: d.fileMode ?? 0o666, uid: d.uid ?? 0, gid: d.gid ?? 0,
    }, inUserNs));
  }

  const timeOffsets: TimeOffset[] = [];
  for (const clock of ["monotonic", "boottime"] as const) {
    const o = linux.timeOffsets?.[clock];
    if (o) timeOffsets.push({ clockId: CLOCK_IDS[clock], secs: BigInt(o.secs ?? 0), nanosecs: o.nanosecs ?? 0 });
  }
  checkMountLabel(linux.mountLabel);

  return {
    launch: planLaunch({
      foreground: input.foreground,
      debug: input.debug,
      preserveFds: input.preserveFds,
      namespaces: planNamespaces(namespaces),
      cgroupProcs: input.cgroupProcs,
      process: planProcess(config.process, input.warn),
      consoleSocket: input.consoleSocket,
      pidfdSocket: input.pidfdSocket,
      memoryPolicy: planMemoryPolicy(linux.memoryPolicy),
      sessionKeyring: sessionKeyringName(input.id, input.noNewKeyring),
      seccomp: planSeccomp(config, input.id, input.bundle, "creating"),
      personality: planContainerPersonality(config, input.warn),
    }),
    uidMappings: planIdMappings(linux.uidMappings),
    gidMappings: planIdMappings(linux.gidMappings),
    uidMapHelper: "",
    gidMapHelper: "",
    timeOffsets,
    rootfs: input.rootfs,
    rootfsPropagation: propagation.before,
    rootPropagationAfter: propagation.after,
    noPivot: input.noPivot,
    readonlyRoot: config.root?.readonly === true,
    mounts,
    devices: [...devices.values()],
    symlinks: DEFAULT_SYMLINKS,
    // Once each: every repeat stacks one more mount on the path, and each costs more than the last.
    maskedPaths: [...new Set(linux.maskedPaths ?? [])],
    readonlyPaths: [...new Set(linux.readonlyPaths ?? [])],
    // Dots become slashes, so no ".." survives: the helper writes below /proc/sys only.
    sysctls: Object.entries(linux.sysctl ?? {}).map(([key, value]) => ({ path: key.replaceAll(".", "/"), value: String(value) })),
    hostname: config.hostname,
    domainname: config.domainname,
    execFifo: input.execFifo,
    hookPoints: [],
    startHooks: undefined,
    ...planNetDevices(linux, namespaces),
  };
}
