/**
 * Which systemd unit a container gets: cgroupsPath "slice:prefix:name", read as runc reads it.
 * Only create needs this (it loads the config validator anyway; delete and update do not).
 */
import { existsSync, readFileSync } from "node:fs";
import { TsrunError } from "../../../errors.ts";
import { cgroupsPathProblem } from "../../../spec/validate.ts";
import { findHierarchies, parseMountinfo } from "../parse.ts";
import type { CgroupState } from "../types.ts";
import { managerSocket } from "./bus.ts";

export interface UnitChoice {
  slice: string;
  unit: string;
}

/** systemd's unit name characters (unit_name_is_valid), without "@" (no template instances here). */
const UNIT_NAME_RE = /^[A-Za-z0-9:_.\\-]+$/;
const UNIT_NAME_MAX = 255;

/**
 * The slice's cgroup path: "a-b-c.slice" is /a.slice/a-b.slice/a-b-c.slice, "-.slice" the root.
 * Throws on a name systemd would not take for a slice.
 */
export function expandSlice(slice: string): string {
  const bad = (): TsrunError => new TsrunError(`systemd cgroup driver: invalid slice name ${JSON.stringify(slice)}`);
  if (!slice.endsWith(".slice") || slice === ".slice" || slice.includes("/") || !UNIT_NAME_RE.test(slice)) throw bad();
  const base = slice.slice(0, -".slice".length);
  if (base === "-") return "/";
  let path = "";
  let prefix = "";
  for (const part of base.split("-")) {
    if (part === "") throw bad();
    path += `/${prefix}${part}.slice`;
    prefix += `${part}-`;
  }
  return path;
}

/**
 * The container's scope and its slice. cgroupsPath "slice:prefix:name" names the scope
 * "prefix-name.scope" ("name.scope" without a prefix) in slice (default when empty); without a
 * cgroupsPath the scope is "tsrun-<id>.scope" in system.slice (user.slice for a user's manager).
 */
export function chooseUnit(cgroupsPath: string | undefined, id: string, userManager: boolean): UnitChoice {
  const defaultSlice = userManager ? "user.slice" : "system.slice";
  let slice = defaultSlice;
  let unit: string;
  let where: string;
  if (!cgroupsPath) {
    unit = `tsrun-${id}.scope`;
    where = `the container id ${JSON.stringify(id)} gives the systemd unit name ${JSON.stringify(unit)}, which`;
  } else {
    const why = cgroupsPathProblem(cgroupsPath, true);
    if (why) throw new TsrunError(`config.json: linux.cgroupsPath: ${why}`);
    const [s, prefix, name] = cgroupsPath.split(":") as [string, string, string];
    if (s) slice = s;
    if (name.endsWith(".slice")) {
      throw new TsrunError(`config.json: linux.cgroupsPath: ${JSON.stringify(name)} names a slice: a container needs a scope (a name not ending in ".slice")`);
    }
    unit = prefix ? `${prefix}-${name}.scope` : `${name}.scope`;
    where = `config.json: linux.cgroupsPath: the systemd unit name ${JSON.stringify(unit)}`;
  }
  if (!UNIT_NAME_RE.test(unit) || unit.length > UNIT_NAME_MAX) {
    throw new TsrunError(`${where} is not valid for systemd (at most ${UNIT_NAME_MAX} of the characters A-Z a-z 0-9 : _ . - \\)`);
  }
  expandSlice(slice);
  return { slice, unit };
}

/**
 * The planned state of a container of the systemd driver: its unit and manager, no dirs yet
 * (systemd names them once the unit exists). userManager: the caller's own manager (a caller
 * without privileges), which can delegate cgroups only on the unified hierarchy.
 */
export function planScope(opts: { id: string; cgroupsPath?: string; userManager: boolean }): CgroupState {
  if (!existsSync("/run/systemd/system")) throw new TsrunError("systemd cgroup driver: systemd is not running (no /run/systemd/system)");
  const h = findHierarchies(parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8")));
  if (h.v1.length === 0 && !h.v2) throw new TsrunError("cgroup: no cgroup filesystem is mounted (neither cgroup nor cgroup2 in /proc/self/mountinfo)");
  const version = h.v1.length > 0 ? (h.v2 ? "hybrid" : "v1") : "v2";
  if (opts.userManager && version !== "v2") {
    throw new TsrunError(
      "systemd cgroup driver: a user's systemd manager can delegate cgroups only on the unified hierarchy (cgroup v2 alone), and this host mounts cgroup v1 controllers: run as root, or without --systemd-cgroup",
    );
  }
  const { slice, unit } = chooseUnit(opts.cgroupsPath, opts.id, opts.userManager);
  return { version, v1: {}, created: [], systemd: { unit, slice, socket: managerSocket(opts.userManager) } };
}
