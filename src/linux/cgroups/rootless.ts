/**
 * Cgroups for a rootless container (docs/rootless.md), decided before anything is created.
 *
 * A user without privileges has a cgroup only where one was delegated to it (its directory and
 * cgroup.procs owned by the user; on cgroup v2 the user's own processes inside the delegated
 * subtree too, since moving a process needs write access to cgroup.procs of the common
 * ancestor). For each hierarchy, the container's directory is kept when this user can create it
 * (or it exists) and can move a process into it; otherwise the hierarchy is left out, as runc
 * does for rootless containers:
 * - with linux.cgroupsPath set, a hierarchy that cannot be used is an error (the config named a
 *   cgroup, and running outside it would silently drop its purpose);
 * - without it, the container runs without that hierarchy, unless linux.resources asks for a
 *   limit that lives there: each such setting is an error line (a limit the config asks for is
 *   never dropped silently). Device rules are not limits here: see devicesApplicable.
 */
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { TsrunError, errnoText } from "../../errors.ts";
import { askedLimits } from "../rootless.ts";
import { findHierarchies, parseMountinfo, parseProcSelfCgroup } from "./parse.ts";
import type { Resources } from "./resources.ts";
import type { CgroupState } from "./types.ts";

export interface CgroupAccess {
  /** access(2) W_OK|X_OK of an existing directory, or W_OK of a file: undefined when allowed, else the errno word. */
  writable(path: string): string | undefined;
  exists(path: string): boolean;
  /** This process's own cgroup2 directory (absolute), when cgroup2 is mounted. */
  ownV2Dir(): string | undefined;
}

const realAccess: CgroupAccess = {
  writable: (p) => {
    try {
      accessSync(p, constants.W_OK);
      return undefined;
    } catch (e) {
      return errnoText(e);
    }
  },
  exists: (p) => existsSync(p),
  ownV2Dir: () => {
    const h = findHierarchies(parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8")));
    const own = parseProcSelfCgroup(readFileSync("/proc/self/cgroup", "utf8")).v2;
    if (!h.v2 || own === undefined) return undefined;
    const root = h.v2.root;
    const rel = root !== "/" && (own === root || own.startsWith(root + "/")) ? own.slice(root.length) || "/" : own;
    return posix.join(h.v2.mountPoint, rel);
  },
};

/** Why this user cannot use dir as a container cgroup, or undefined when it can. */
function whyUnusable(dir: string, isV2: boolean, access: CgroupAccess): string | undefined {
  let existing = dir;
  while (!access.exists(existing) && dirname(existing) !== existing) existing = dirname(existing);
  if (existing !== dir) {
    // A directory this user makes is its own, cgroup.procs included.
    const why = access.writable(existing);
    if (why !== undefined) return `cannot create ${dir}: ${existing}: ${why}`;
  } else {
    const procs = join(dir, "cgroup.procs");
    const why = access.writable(procs);
    if (why !== undefined) return `cannot join ${dir}: ${procs}: ${why}`;
  }
  if (isV2) {
    // Moving a process between cgroup2 dirs needs write access to the common ancestor's cgroup.procs.
    const own = access.ownV2Dir();
    if (own !== undefined) {
      let common = dir;
      while (common !== own && !own.startsWith(common.endsWith("/") ? common : common + "/") && dirname(common) !== common) common = dirname(common);
      const file = join(common, "cgroup.procs");
      const w = access.writable(file);
      if (w !== undefined) return `cannot move a process from ${own} into ${dir}: ${file}: ${w}`;
    }
  }
  return undefined;
}

/** The v1 hierarchy key (its first controller) or "" for cgroup2, with its directory. */
function hierarchies(state: CgroupState): { controllers: string[]; dir: string; v2: boolean }[] {
  const byDir = new Map<string, string[]>();
  for (const [c, d] of Object.entries(state.v1)) byDir.set(d, [...(byDir.get(d) ?? []), c]);
  const out = [...byDir].map(([dir, controllers]) => ({ controllers, dir, v2: false }));
  if (state.v2) out.push({ controllers: [], dir: state.v2, v2: true });
  return out;
}

/**
 * The planned state without the hierarchies this user cannot use (see the top of the file).
 * Throws a TsrunError, one line per problem, when that would drop an explicit cgroupsPath or a
 * limit the config asks for.
 */
export function pruneRootlessCgroup(
  state: CgroupState,
  resources: Resources | undefined,
  opts: { explicitPath: boolean; uid: number },
  access: CgroupAccess = realAccess,
): CgroupState {
  const dropped = new Map<string, string>();
  for (const h of hierarchies(state)) {
    const why = whyUnusable(h.dir, h.v2, access);
    if (why !== undefined) dropped.set(h.dir, why);
  }
  if (dropped.size === 0) return state;
  const advice = `delegate it to uid ${opts.uid} (chown the directory and its cgroup.procs to this user; on cgroup v2 run tsrun from inside the delegated subtree)`;
  if (opts.explicitPath) {
    const why = [...dropped.values()][0]!;
    throw new TsrunError(`rootless: linux.cgroupsPath: ${why}: ${advice}, or remove linux.cgroupsPath to run without a cgroup`);
  }
  const problems: string[] = [];
  for (const limit of askedLimits(resources)) {
    let dir: string | undefined;
    if (limit.controller.startsWith("unified:")) dir = state.v2;
    else dir = state.v1[limit.controller] ?? state.v2;
    const why = dir === undefined ? "this host has no hierarchy for it" : dropped.get(dir);
    if (why === undefined) continue;
    problems.push(
      `rootless: linux.resources.${limit.setting}: cannot be applied without a ${limit.controller.replace(/^unified:/, "")} cgroup (${why}): ` +
        `remove the setting, or ${advice} and set linux.cgroupsPath to a path inside it`,
    );
  }
  if (problems.length > 0) throw new TsrunError(problems.join("\n"));
  const v1: Record<string, string> = {};
  for (const [c, d] of Object.entries(state.v1)) if (!dropped.has(d)) v1[c] = d;
  const next: CgroupState = { ...state, v1 };
  if (state.v2 && dropped.has(state.v2)) delete next.v2;
  return next;
}

/** Whether device rules can be written: v1 devices.allow and v2 device programs need real root. */
export function devicesApplicable(rootlessCgroups: boolean, unprivileged: boolean, inUserNs: boolean): boolean {
  return !rootlessCgroups || (!unprivileged && !inUserNs);
}

/** Resources without the device rules, when they cannot be applied (rootless). */
export function withoutDevices(r: Resources | undefined): Resources | undefined {
  if (!r || r.devices === undefined) return r;
  const { devices: _d, ...rest } = r;
  return rest;
}

/** Whether a container's cgroup state holds any directory (a rootless container may have none). */
export function hasCgroupDirs(state: CgroupState): boolean {
  return Object.keys(state.v1).length > 0 || state.v2 !== undefined;
}
