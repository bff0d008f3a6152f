/**
 * config.json (already validated) -> the launch plan the helper carries out. Every default
 * and every decision of how a config field becomes syscalls is made here.
 */
import { statSync } from "node:fs";
import { basename, join } from "node:path";
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
  /** Hierarchies where the container has no dir of its own and stays in its caller's (rootless). */
  sharedCgroups?: { v1: Record<string, string>; v2?: string };
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

export function planProcess(p: ConfigProcess, warn: (msg: string) => void, prefix = "process"): PlanProcess {
  const rlimits: PlanRlimit[] = (p.rlimits ?? []).map((r, i) => {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new TsrunError(`config.json: ${prefix}.rlimits[${i}].type: unknown rlimit ${JSON.stringify(r.type)}`);
    return { resource, soft: toUint64(r.soft), hard: toUint64(r.hard) };
  });
  const env = p.env ?? [];
  // The spec's Windows fields: nothing on Linux reads them.
  if (p.commandLine !== undefined) warn(`${prefix}.commandLine is for Windows: ignored on Linux (${prefix}.args is run)`);
  if (p.user.username !== undefined) warn(`${prefix}.user.username is for Windows: ignored on Linux (${prefix}.user.uid and gid are used)`);
  checkSelinuxLabel(p.selinuxLabel, `config.json: ${prefix}.selinuxLabel`);
  const apparmorProfile = planApparmor(p.apparmorProfile, `config.json: ${prefix}.apparmorProfile`);
  return {
    args: p.args ?? [],
    env: env.some((e) => e.startsWith("PATH=")) ? env : [...env, DEFAULT_PATH],
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

function planMount(m: ConfigMount, index: number, bundle: string, userns: ContainerUserns | undefined): PlanMount {
  const where = `config.json: mounts[${index}]`;
  const opts = parseMountOptions(m.options);
  const bind = opts.bind || m.type === "bind";
  let source = m.source ?? "";
  if (bind && source && !source.startsWith("/")) source = join(bundle, source);
  if (!bind && !m.type) throw new TsrunError(`${where}.type: a mount that is not a bind mount needs a type`);
  if (opts.copyUp && m.type !== "tmpfs") throw new TsrunError(`${where}.options: tmpcopyup is only for tmpfs mounts`);
  const flags = bind ? MS.BIND | (opts.recursiveBind ? MS.REC : 0) : opts.flags;
  const idmap = planIdmap(m, opts.idmap?.recursive, bind, where, userns);
  return {
    source,
    destination: m.destination,
    fstype: bind ? "" : m.type ?? "",
    flags,
    remountFlags: bind ? opts.flags : 0,
    propagation: opts.propagation,
    recAttrSet: opts.recAttrSet,
    recAttrClr: opts.recAttrClr,
    data: opts.data.join(","),
    destKind: bind && !isDirectory(source) ? "file" : "dir",
    ...(opts.copyUp ? { copyUp: true } : {}),
    ...(idmap ? { idmap } : {}),
  };
}

/**
 * A "cgroup" mount shows the container its own cgroups: on cgroup v2 with a cgroup namespace
 * a fresh cgroup2 mount does that; otherwise a tmpfs with a read-only bind of each of the
 * container's cgroup directories, which works with or without a cgroup namespace. Where it has
 * none of its own (shared: rootless without a delegated cgroup) it is in its caller's, and is
 * shown that one, as runc does.
 */
function planCgroupMount(
  m: ConfigMount, index: number, cgroup: CgroupState | undefined, newCgroupNs: boolean, shared: CreatePlanInput["sharedCgroups"],
): PlanMount[] {
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
  const v1 = { ...shared?.v1, ...cgroup.v1 };
  const v2 = cgroup.v2 ?? shared?.v2;
  const dirs: [string, string][] = Object.entries(v1).map(([controller, dir]) => [controller.replace(/^name=/, ""), dir]);
  if (v2) dirs.push([cgroup.version === "v2" ? "" : "unified", v2]);
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
  if (!hasNew("mount")) throw new TsrunError("config.json: linux.namespaces: a new mount namespace is required (the rootfs is set up in it)");
  refuseHostNamespaceSettings(namespaces, { hostname: config.hostname, domainname: config.domainname, sysctl: linux.sysctl });
  const inUserNs = has("user");

  const userNs = namespaces.find((n) => n.type === "user");
  const userns: ContainerUserns | undefined = userNs && {
    ...(userNs.path ? { path: userNs.path } : {}), uidMappings: linux.uidMappings ?? [], gidMappings: linux.gidMappings ?? [],
  };
  const mounts: PlanMount[] = [];
  (config.mounts ?? []).forEach((m, i) => {
    if (m.type === "cgroup" || m.type === "cgroup2") mounts.push(...planCgroupMount(m, i, input.cgroup, hasNew("cgroup"), input.sharedCgroups));
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
