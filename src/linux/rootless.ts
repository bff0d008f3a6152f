/**
 * Rootless: tsrun run by a user without privileges (docs/rootless.md).
 *
 * Two separate questions, as in runc:
 * - is the caller unprivileged (euid != 0)? Then the config must bring its own user namespace
 *   with mappings this user may write, and the state goes under $XDG_RUNTIME_DIR;
 * - are cgroups "rootless" (--rootless true|false|auto; auto: euid != 0, or running in a user
 *   namespace that is not the initial one)? Then a cgroup this user cannot create or join is
 *   left out instead of failing the create, unless the config asks for a limit it would hold.
 *
 * Everything here is pure, or reads only small /proc and /etc files, so the unit tests can
 * describe any host.
 */
import { accessSync, chmodSync, constants, mkdirSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { TsrunError, errnoName, errnoText } from "../errors.ts";
import type { IDMapping as IdMapping } from "../spec/generated/types.ts";
import type { Resources } from "./cgroups/resources.ts";
import type { Spec } from "../spec/generated/types.ts";

export type RootlessMode = "true" | "false" | "auto";

/** What create, run and exec need to know about the caller's privileges. */
export interface RootlessContext {
  /** euid != 0 (runc's RootlessEUID): mappings, mount options and devices are checked for it. */
  unprivileged: boolean;
  /** Cgroup permission problems are tolerated where runc tolerates them (runc's RootlessCgroups). */
  cgroups: boolean;
  /** Running in a user namespace other than the initial one (euid 0 there is not the host's root). */
  inUserNs: boolean;
  euid: number;
  egid: number;
}

/** The initial user namespace maps every id to itself: "0 0 4294967295". */
export function isIdentityMap(text: string): boolean {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  if (lines.length !== 1) return false;
  const f = lines[0]!.split(/\s+/);
  return f[0] === "0" && f[1] === "0" && f[2] === "4294967295";
}

/** Whether this process runs in a user namespace other than the initial one. */
export function runningInUserNs(readUidMap: () => string = () => readFileSync("/proc/self/uid_map", "utf8")): boolean {
  try {
    return !isIdentityMap(readUidMap());
  } catch {
    return false;
  }
}

/** runc's rule for rootless cgroups: the flag when given, else euid != 0 or a user namespace. */
export function rootlessCgroups(mode: RootlessMode, euid: number, inUserNs: () => boolean): boolean {
  if (mode === "true") return true;
  if (mode === "false") return false;
  return euid !== 0 || inUserNs();
}

export function rootlessContext(mode: RootlessMode): RootlessContext {
  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  const inUserNs = runningInUserNs();
  return { unprivileged: euid !== 0, cgroups: rootlessCgroups(mode, euid, () => inUserNs), inUserNs, euid, egid };
}

export const SYSTEM_STATE_ROOT = "/run/tsrun";

/**
 * The default --root, as runc picks its own: $XDG_RUNTIME_DIR/tsrun when XDG_RUNTIME_DIR is set
 * and the caller is not the real root (euid != 0, or euid 0 in a user namespace with $USER not
 * "root"); else /run/tsrun.
 */
export function defaultStateRoot(env: NodeJS.ProcessEnv, euid: number, inUserNs: () => boolean): { root: string; xdg: boolean } {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && xdg.startsWith("/")) {
    const honour = euid !== 0 || (inUserNs() && env.USER !== "root");
    if (honour) return { root: join(xdg, "tsrun"), xdg: true };
  }
  return { root: SYSTEM_STATE_ROOT, xdg: false };
}

/**
 * The $XDG_RUNTIME_DIR/tsrun state root, made 0700 with the sticky bit as runc makes its own
 * (the sticky bit keeps tools that prune XDG_RUNTIME_DIR from removing it).
 */
export function prepareXdgRoot(root: string): void {
  try {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    chmodSync(root, 0o1700);
  } catch (err) {
    throw new TsrunError(`cannot create state directory ${root}: ${errnoText(err)}`, { access: { what: "state-dir", errno: errnoName(err) } });
  }
}

// ---------------------------------------------------------------------------------------------
// Id mappings: what the helper may write itself, and what needs newuidmap/newgidmap.

export interface SubIdRange {
  start: number;
  count: number;
}

/** The ranges /etc/subuid (or /etc/subgid) gives a user, by name or by numeric id. */
export function parseSubIds(text: string, name: string | undefined, id: number): SubIdRange[] {
  const out: SubIdRange[] = [];
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (!t || t.startsWith("#")) continue;
    const [owner, start, count] = t.split(":");
    if (owner === undefined || start === undefined || count === undefined) continue;
    if (owner !== String(id) && (name === undefined || owner !== name)) continue;
    if (!/^[0-9]+$/.test(start) || !/^[0-9]+$/.test(count)) continue;
    out.push({ start: Number(start), count: Number(count) });
  }
  return out;
}

/** The user name of a uid from /etc/passwd text, or undefined. */
export function userName(passwd: string, uid: number): string | undefined {
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f.length >= 3 && f[2] === String(uid)) return f[0];
  }
  return undefined;
}

/** A single range mapping exactly the caller's own id: the kernel lets the caller write it. */
export function isOwnIdOnly(maps: readonly IdMapping[], own: number): boolean {
  return maps.length === 1 && maps[0]!.size === 1 && maps[0]!.hostID === own;
}

/** Host id ranges of `maps` that neither the caller's own id nor its subordinate ranges cover. */
export function uncoveredRanges(maps: readonly IdMapping[], own: number, ranges: readonly SubIdRange[]): IdMapping[] {
  const covered = (lo: number, hi: number): boolean => {
    // Walk from lo, jumping to the end of any allowed range containing the current id.
    const allowed = [{ start: own, count: 1 }, ...ranges];
    let at = lo;
    for (let moved = true; at < hi && moved; ) {
      moved = false;
      for (const r of allowed) {
        if (at >= r.start && at < r.start + r.count) {
          at = r.start + r.count;
          moved = true;
        }
      }
    }
    return at >= hi;
  };
  return maps.filter((m) => !covered(m.hostID, m.hostID + m.size));
}

/** An executable named `name` in $PATH (then /usr/bin, /usr/sbin, /bin, /sbin), or undefined. */
export function findExecutable(name: string, pathEnv: string | undefined): string | undefined {
  const dirs = [...(pathEnv ?? "").split(delimiter).filter((d) => d.startsWith("/")), "/usr/bin", "/usr/sbin", "/bin", "/sbin"];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

export interface IdMapHelpers {
  /** newuidmap's path when the uid mappings need it; "": the helper writes uid_map itself. */
  uidMapHelper: string;
  gidMapHelper: string;
}

export interface IdMapHost {
  readFile(path: string): string | undefined;
  findExecutable(name: string): string | undefined;
}

const realHost: IdMapHost = {
  readFile: (p) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return undefined;
    }
  },
  findExecutable: (n) => findExecutable(n, process.env.PATH),
};

/**
 * Decides, for an unprivileged caller, how the new user namespace's maps get written: a single
 * mapping of the caller's own id directly by the helper (for gids after setgroups "deny"),
 * anything else through the setuid newuidmap/newgidmap, which check /etc/subuid and /etc/subgid.
 * Those files are checked here too, so that a missing entry is a clear error before anything
 * runs. Throws a TsrunError saying what to fix.
 */
export function planIdMapHelpers(
  uidMappings: readonly IdMapping[],
  gidMappings: readonly IdMapping[],
  ctx: Pick<RootlessContext, "euid" | "egid">,
  host: IdMapHost = realHost,
): IdMapHelpers {
  const out: IdMapHelpers = { uidMapHelper: "", gidMapHelper: "" };
  const name = userName(host.readFile("/etc/passwd") ?? "", ctx.euid);
  const who = name ? `user ${name} (uid ${ctx.euid})` : `uid ${ctx.euid}`;
  const kinds = [
    { kind: "uid", maps: uidMappings, own: ctx.euid, file: "/etc/subuid", tool: "newuidmap", key: "uidMapHelper", flag: "--add-subuids" },
    { kind: "gid", maps: gidMappings, own: ctx.egid, file: "/etc/subgid", tool: "newgidmap", key: "gidMapHelper", flag: "--add-subgids" },
  ] as const;
  for (const k of kinds) {
    if (k.maps.length === 0 || isOwnIdOnly(k.maps, k.own)) continue;
    const text = host.readFile(k.file);
    const ranges = text === undefined ? [] : parseSubIds(text, name, k.kind === "uid" ? ctx.euid : ctx.egid);
    if (ranges.length === 0) {
      throw new TsrunError(
        `rootless: linux.${k.kind}Mappings map more than your own ${k.kind} ${k.own}, which needs an entry for ${who} in ${k.file}` +
          ` (none found): ask an administrator to add one (usermod ${k.flag} 100000-165535 ${name ?? ctx.euid}), or map only ${k.kind} ${k.own}`,
      );
    }
    const bad = uncoveredRanges(k.maps, k.own, ranges);
    if (bad.length > 0) {
      const m = bad[0]!;
      const have = ranges.map((r) => `${r.start}-${r.start + r.count - 1}`).join(", ");
      throw new TsrunError(
        `rootless: linux.${k.kind}Mappings: host ${k.kind}s ${m.hostID}-${m.hostID + m.size - 1} are neither your own ${k.kind} ${k.own}` +
          ` nor in the ranges ${k.file} gives ${who} (${have})`,
      );
    }
    const tool = host.findExecutable(k.tool);
    if (!tool) {
      throw new TsrunError(
        `rootless: linux.${k.kind}Mappings map more than your own ${k.kind}, which needs ${k.tool}; it is not installed (Debian, Ubuntu: apt-get install uidmap)`,
      );
    }
    out[k.key] = tool;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Config checks for an unprivileged caller (runc's rootlessEUIDCheck, plus what the kernel would
// otherwise refuse later with a vaguer error).

function mapped(maps: readonly IdMapping[], id: number): boolean {
  return maps.some((m) => id >= m.containerID && id < m.containerID + m.size);
}

/** Problems of a config that an unprivileged caller cannot run, one line each (empty: none). */
export function rootlessConfigProblems(config: Spec): string[] {
  const problems: string[] = [];
  const linux = config.linux ?? {};
  const userns = (linux.namespaces ?? []).find((n) => n.type === "user");
  if (!userns) {
    problems.push(
      'config.json: linux.namespaces: a rootless container needs a user namespace (add {"type": "user"} and uid/gid mappings; `tsrun spec --rootless` writes a config that works)',
    );
    return problems;
  }
  if (userns.path) return problems; // joining one: its maps are already written
  const uids = linux.uidMappings ?? [];
  const gids = linux.gidMappings ?? [];
  if (uids.length === 0) problems.push("config.json: linux.uidMappings: a rootless container needs at least one uid mapping (map container uid 0 to your own uid)");
  if (gids.length === 0) problems.push("config.json: linux.gidMappings: a rootless container needs at least one gid mapping (map container gid 0 to your own gid)");
  if (uids.length === 0 || gids.length === 0) return problems;
  const p = config.process;
  if (p && !mapped(uids, p.user.uid)) problems.push(`config.json: process.user.uid: ${p.user.uid} is not mapped by linux.uidMappings`);
  if (p && !mapped(gids, p.user.gid)) problems.push(`config.json: process.user.gid: ${p.user.gid} is not mapped by linux.gidMappings`);
  (p?.user.additionalGids ?? []).forEach((g, i) => {
    if (!mapped(gids, g)) problems.push(`config.json: process.user.additionalGids[${i}]: ${g} is not mapped by linux.gidMappings`);
  });
  (config.mounts ?? []).forEach((m, i) => {
    for (const opt of m.options ?? []) {
      const r = /^(uid|gid)=([0-9]+)$/.exec(opt);
      if (!r) continue;
      const id = Number(r[2]);
      if (!mapped(r[1] === "uid" ? uids : gids, id)) {
        problems.push(`config.json: mounts[${i}].options: ${opt}: ${r[1]} ${id} is not mapped in the container's user namespace (a rootless container cannot use it; drop the option)`);
      }
    }
  });
  return problems;
}

/**
 * Whether this kernel lets an unprivileged user create a user namespace; a TsrunError saying
 * what to change when it does not. Reads the per-user-namespace limit and Debian's switch.
 */
export function checkUserNamespacesAllowed(readFile: (p: string) => string | undefined = realHost.readFile): void {
  const max = readFile("/proc/sys/user/max_user_namespaces")?.trim();
  if (max === "0") {
    throw new TsrunError(
      "rootless: user namespaces are disabled on this host (/proc/sys/user/max_user_namespaces is 0): an administrator must raise it (sysctl -w user.max_user_namespaces=15000)",
    );
  }
  const clone = readFile("/proc/sys/kernel/unprivileged_userns_clone")?.trim();
  if (clone === "0") {
    throw new TsrunError(
      "rootless: unprivileged user namespaces are disabled on this host (kernel.unprivileged_userns_clone is 0): an administrator must enable them (sysctl -w kernel.unprivileged_userns_clone=1)",
    );
  }
}

/** A refused clone(CLONE_NEWUSER), with what to check. */
export function explainUserNsFailure(message: string): string {
  return `${message} (rootless: this host does not let your user create a user namespace; check user.max_user_namespaces, kernel.unprivileged_userns_clone and any AppArmor/SELinux policy restricting unprivileged user namespaces)`;
}

// ---------------------------------------------------------------------------------------------
// Resources: what cannot be dropped when the container ends up without a cgroup.

export interface AskedLimit {
  /** JSON path below linux.resources, e.g. "memory.limit". */
  setting: string;
  /** v1 controller name that would hold it ("memory", "blkio", ...); v2 maps it in the same way. */
  controller: string;
}

const set = (v: unknown): boolean => v !== undefined && v !== null && v !== 0 && v !== "" && v !== false && !(Array.isArray(v) && v.length === 0);

/**
 * The limits linux.resources asks for, as runc counts them: unset and zero values do not count
 * (but pids.limit 0, a limit since runtime-spec 1.3.0),
 * device rules never count (a user namespace cannot make or reach device nodes beyond the
 * user's own, so they can be ignored safely), and kernel memory limits are deprecated no-ops.
 */
export function askedLimits(r: Resources | undefined): AskedLimit[] {
  if (!r) return [];
  const out: AskedLimit[] = [];
  const add = (setting: string, controller: string, v: unknown) => {
    if (set(v)) out.push({ setting, controller });
  };
  const m = r.memory ?? {};
  for (const k of ["limit", "reservation", "swap", "kernelTCP", "swappiness", "disableOOMKiller"] as const) add(`memory.${k}`, "memory", m[k]);
  const c = r.cpu ?? {};
  for (const k of ["shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "idle"] as const) add(`cpu.${k}`, "cpu", c[k]);
  add("cpu.cpus", "cpuset", c.cpus);
  add("cpu.mems", "cpuset", c.mems);
  // 0 is a limit here (runtime-spec 1.3.0); a negative value is "unlimited".
  add("pids.limit", "pids", r.pids?.limit !== undefined && r.pids.limit >= 0 ? true : undefined);
  const b = r.blockIO ?? {};
  for (const k of ["weight", "leafWeight", "weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"] as const) {
    add(`blockIO.${k}`, "blkio", b[k]);
  }
  add("hugepageLimits", "hugetlb", r.hugepageLimits);
  add("network.classID", "net_cls", r.network?.classID);
  add("network.priorities", "net_prio", r.network?.priorities);
  add("rdma", "rdma", r.rdma && Object.keys(r.rdma).length ? r.rdma : undefined);
  for (const key of Object.keys(r.unified ?? {})) out.push({ setting: `unified.${JSON.stringify(key)}`, controller: `unified:${key.split(".")[0]}` });
  return out;
}
