/**
 * Pure parsing and path planning: /proc/self/mountinfo, /proc/self/cgroup, cgroupsPath.
 * Everything here takes text and returns data, so the unit tests can feed it any host layout.
 */
import { posix } from "node:path";
import { TsrunError } from "../../errors.ts";
import type { CgroupState } from "./types.ts";

export interface MountEntry {
  /** The root of the mount inside its filesystem (field 4). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    out.push({
      root: unescapeOctal(fields[3]!),
      mountPoint: unescapeOctal(fields[4]!),
      fsType: fields[dash + 1]!,
      superOptions: fields[dash + 3]!.split(","),
    });
  }
  return out;
}

/** Whether the host is cgroup v2 only: /sys/fs/cgroup itself is a cgroup2 mount (not v1 or hybrid). */
export function isUnifiedHierarchy(mounts: MountEntry[]): boolean {
  let last: MountEntry | undefined;
  for (const m of mounts) if (m.mountPoint === "/sys/fs/cgroup") last = m;
  return last?.fsType === "cgroup2";
}

export interface V1Hierarchy {
  /** Controllers bound to this hierarchy, named hierarchies as "name=systemd". */
  controllers: string[];
  mountPoint: string;
  root: string;
}

export interface Hierarchies {
  v1: V1Hierarchy[];
  v2?: { mountPoint: string; root: string };
}

/** cgroup v1 super options that are not controllers (kernel cgroup1_show_options, plus rw/ro). */
const V1_NON_CONTROLLER_OPTS = new Set(["rw", "ro", "noprefix", "xattr", "cpuset_v2_mode", "favordynmods", "clone_children", "all", "none"]);

export function findHierarchies(mounts: MountEntry[]): Hierarchies {
  const v1: V1Hierarchy[] = [];
  const seen = new Set<string>();
  let v2: Hierarchies["v2"];
  for (const m of mounts) {
    if (m.fsType === "cgroup2") {
      v2 ??= { mountPoint: m.mountPoint, root: m.root };
    } else if (m.fsType === "cgroup") {
      const controllers = m.superOptions.filter((o) => o && !V1_NON_CONTROLLER_OPTS.has(o) && !o.startsWith("release_agent="));
      const key = [...controllers].sort().join(",");
      if (controllers.length === 0 || seen.has(key)) continue; // a second mount of the same hierarchy
      seen.add(key);
      v1.push({ controllers, mountPoint: m.mountPoint, root: m.root });
    }
  }
  return v2 ? { v1, v2 } : { v1 };
}

export interface SelfCgroups {
  /** v1 controller (or "name=X") -> the process's cgroup path in that hierarchy. */
  v1: Record<string, string>;
  /** The process's cgroup2 path ("0::/path"). */
  v2?: string;
}

export function parseProcSelfCgroup(text: string): SelfCgroups {
  const v1: Record<string, string> = {};
  let v2: string | undefined;
  for (const line of text.split("\n")) {
    if (!line) continue;
    const a = line.indexOf(":");
    const b = line.indexOf(":", a + 1);
    if (a < 0 || b < 0) continue;
    const id = line.slice(0, a);
    const ctrls = line.slice(a + 1, b);
    const path = line.slice(b + 1);
    if (id === "0" && ctrls === "") v2 = path;
    else for (const c of ctrls.split(",")) if (c) v1[c] = path;
  }
  return v2 === undefined ? { v1 } : { v1, v2 };
}

/** A path normalised so that ".." can never climb above "/" (so never out of the hierarchy). */
export function cleanCgroupPath(p: string): string {
  const n = posix.normalize(posix.join("/", p));
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

/** The directory of cgroup `cgPath` (as /proc/self/cgroup names it) under a mount of `root`. */
export function dirOf(mountPoint: string, root: string, cgPath: string): string {
  let rel = cgPath;
  if (root !== "/" && (cgPath === root || cgPath.startsWith(root + "/"))) rel = cgPath.slice(root.length) || "/";
  return cleanCgroupPath(posix.join(mountPoint, cleanCgroupPath(rel)));
}

/** The caller's own cgroup dirs: per v1 controller (one dir per hierarchy), and cgroup2's. */
export function ownDirs(h: Hierarchies, self: SelfCgroups): { v1: Record<string, string>; v2?: string } {
  const v1: Record<string, string> = {};
  for (const hier of h.v1) {
    const own = hier.controllers.map((c) => self.v1[c]).find((p) => p !== undefined);
    if (own === undefined) continue;
    for (const c of hier.controllers) v1[c] = dirOf(hier.mountPoint, hier.root, own);
  }
  return h.v2 && self.v2 !== undefined ? { v1, v2: dirOf(h.v2.mountPoint, h.v2.root, self.v2) } : { v1 };
}

/**
 * Where a container's cgroups go. Absolute cgroupsPath: from each hierarchy's root.
 * Relative: below the caller's own cgroup in each hierarchy. Unset: "/tsrun/<id>"; for a
 * rootless container (opts.rootless) runc's default instead, "<id>" below the caller's own cgroup
 * in v1 hierarchies and below its parent in cgroup2 (whose leaves hold no child cgroups with
 * controllers), which is where a cgroup delegated to the user is.
 */
export function planPaths(opts: { id: string; cgroupsPath?: string; rootless?: boolean }, h: Hierarchies, self: SelfCgroups): CgroupState {
  const rootlessDefault = opts.rootless === true && !opts.cgroupsPath;
  const wanted = opts.cgroupsPath || (rootlessDefault ? opts.id : `/tsrun/${opts.id}`);
  const absolute = wanted.startsWith("/");
  // The cleaned relative part cannot start with "..": it is resolved against "/" first.
  const sub = cleanCgroupPath(wanted);
  if (sub === "/") throw new TsrunError(`cgroup: cgroupsPath ${JSON.stringify(wanted)} names a hierarchy root`);
  const place = (mountPoint: string, root: string, own: string | undefined, v2 = false): string =>
    absolute
      ? posix.join(mountPoint, sub)
      : posix.join(dirOf(mountPoint, root, v2 && rootlessDefault ? posix.dirname(own ?? "/") : own ?? "/"), sub);

  const v1: Record<string, string> = {};
  for (const hier of h.v1) {
    const own = hier.controllers.map((c) => self.v1[c]).find((p) => p !== undefined);
    const dir = place(hier.mountPoint, hier.root, own);
    for (const c of hier.controllers) v1[c] = dir;
  }
  const hasV1 = h.v1.length > 0;
  if (!hasV1 && !h.v2) throw new TsrunError("cgroup: no cgroup filesystem is mounted (neither cgroup nor cgroup2 in /proc/self/mountinfo)");
  const state: CgroupState = { version: hasV1 ? (h.v2 ? "hybrid" : "v1") : "v2", v1, created: [] };
  if (h.v2) state.v2 = place(h.v2.mountPoint, h.v2.root, self.v2, true);
  return state;
}
