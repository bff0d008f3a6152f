/**
 * linux.intelRdt on the resctrl file system (runtime-spec 1.3.0 config-linux.md#intelrdt).
 *
 * The container joins a class of service (CLOS): a directory of the resctrl root named by
 * closID, or by the container id when closID is unset, or the root itself (the default class)
 * for closID "/". With enableMonitoring it also gets a monitoring group of its own,
 * CLOS/mon_groups/<id>. Joining is writing the init's pid to the tasks files (the class's, then
 * the monitoring group's: the kernel takes a task into a monitoring group only from its parent
 * class), which the helper does with the cgroup.procs files (the plan's cgroupProcs, in order).
 *
 * Schemata are written only to a class tsrun made for this container. A class that was there
 * before (closID of a pre-made class, or "/") is shared: its schemata are compared with the
 * requested lines and a difference is an error, never overwritten.
 *
 * delete removes what tsrun made that is the container's alone: the monitoring group, and the
 * class named after the container id (as runc). A class made for an explicit closID stays: other
 * containers may have joined it, and removing a class moves its tasks to the default one.
 *
 * Everything that touches files goes through a ResctrlFs, so the unit tests run it on a fake
 * tree in a temp dir.
 */
import { mkdirSync, readFileSync, rmdirSync, existsSync, statfsSync } from "node:fs";
import { join, normalize } from "node:path";
import { TsrunError, formatProblem, type Problem } from "../errors.ts";
import { errCode, errText, writeRaw } from "./cgroups/io.ts";
import { parseMountinfo, type MountEntry } from "./cgroups/parse.ts";

export interface IntelRdt {
  closID?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
  schemata?: string[];
  enableMonitoring?: boolean;
}

/** What create made and joined, kept in the container's record (exec joins it too; delete undoes it). */
export interface RdtState {
  /** The class's directory (the resctrl root for closID "/"). */
  group: string;
  /** The container's monitoring group (enableMonitoring). */
  monitor?: string;
  /** tsrun made `group` for this container: its schemata are the container's to set (update too). */
  ownGroup: boolean;
  /** Dirs delete removes, in the order they were made. */
  created: string[];
  /** Set from planning until the dirs exist: the removable dirs that did not exist (as CgroupState.claimed). */
  claimed?: string[];
}

/** The resctrl mount and the features its info directory shows. */
export interface ResctrlHost {
  root: string;
  /** Cache allocation (info/L3, or info/L3CODE with CDP): l3CacheSchema. */
  cat: boolean;
  /** Memory bandwidth allocation (info/MB): memBwSchema. */
  mba: boolean;
  /** Monitoring groups (info/L3_MON): enableMonitoring. */
  monitoring: boolean;
}

export interface ResctrlFs {
  exists(path: string): boolean;
  mkdir(path: string): void;
  rmdir(path: string): void;
  read(path: string): string | undefined;
  /** One write(2) to an existing file. */
  write(path: string, value: string): void;
}

export const realResctrlFs: ResctrlFs = {
  exists: (p) => existsSync(p),
  mkdir: (p) => mkdirSync(p, 0o755),
  rmdir: (p) => rmdirSync(p),
  read: (p) => {
    try {
      return readFileSync(p, "utf8");
    } catch (e) {
      if (errCode(e) === "ENOENT") return undefined;
      throw e;
    }
  },
  write: (p, v) => writeRaw(p, v),
};

/** Names the resctrl root holds itself: never a class. */
const RESERVED = new Set(["info", "mon_groups", "mon_data"]);

/** rdtgroup_fs_type's magic (RDTGROUP_SUPER_MAGIC). */
const RDTGROUP_SUPER_MAGIC = 0x7655821;

/**
 * The intelRdt a config asks for. runtime-spec 1.1/1.2's enableCMT and enableMBM (per-container
 * cache occupancy and bandwidth monitoring, replaced by enableMonitoring in 1.3.0) ask for the
 * same monitoring group.
 */
export function requestedIntelRdt(rdt: IntelRdt & { enableCMT?: unknown; enableMBM?: unknown }): IntelRdt {
  const { enableCMT, enableMBM, ...rest } = rdt;
  return enableCMT === true || enableMBM === true ? { ...rest, enableMonitoring: true } : rest;
}

/** The resctrl mount point in a mountinfo, if any. */
export function findResctrlRoot(mounts: readonly MountEntry[]): string | undefined {
  return mounts.find((m) => m.fsType === "resctrl")?.mountPoint;
}

export function resctrlHost(root: string, fs: ResctrlFs = realResctrlFs): ResctrlHost {
  const info = (d: string) => fs.exists(join(root, "info", d));
  return { root, cat: info("L3") || info("L3CODE"), mba: info("MB"), monitoring: info("L3_MON") };
}

/** This host's resctrl, or undefined where none is mounted. */
export function probeResctrl(): ResctrlHost | undefined {
  const root = findResctrlRoot(parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8")));
  return root === undefined ? undefined : resctrlHost(root);
}

const FIELD = "config.json: linux.intelRdt";

/** The schemata lines to write (runtime-spec order: l3CacheSchema without MB lines, memBwSchema, then schemata), or none. */
export function schemataLines(rdt: IntelRdt): string[] {
  const lines: string[] = [];
  if (rdt.l3CacheSchema) lines.push(...rdt.l3CacheSchema.split("\n").filter((l) => l.trim() !== "" && !/^\s*MB:/.test(l)));
  if (rdt.memBwSchema) lines.push(rdt.memBwSchema);
  for (const l of rdt.schemata ?? []) if (l.trim() !== "") lines.push(l);
  return lines;
}

/** Why this host cannot give the container what intelRdt asks for, at the field's JSON path; undefined when it can (create and check). */
export function rdtRefusal(rdt: IntelRdt, host: ResctrlHost | undefined, unprivileged = false): Problem | undefined {
  const at = (field: string, message: string): Problem => ({ path: field ? `linux.intelRdt.${field}` : "linux.intelRdt", message });
  if (!host) return at("", "Intel RDT is not supported or enabled on this host (no resctrl file system is mounted)");
  if (unprivileged) return at("", "not supported for rootless containers (resctrl groups need root)");
  if (rdt.l3CacheSchema && !host.cat) return at("l3CacheSchema", `Intel RDT/CAT is not enabled on this host (no ${join(host.root, "info", "L3")})`);
  if (rdt.memBwSchema && !host.mba) return at("memBwSchema", `Intel RDT/MBA is not enabled on this host (no ${join(host.root, "info", "MB")})`);
  if (rdt.enableMonitoring && !host.monitoring) return at("enableMonitoring", `Intel RDT monitoring is not enabled on this host (no ${join(host.root, "info", "L3_MON")})`);
  return undefined;
}

export interface RdtPlan {
  /** The resctrl root (its info/last_cmd_status says why the kernel refused a write). */
  root: string;
  state: RdtState;
  /** Dirs to make, in order (the class, then the monitoring group). */
  mkdirs: string[];
  /** The schemata lines: written to a class made here, compared with one that was there. */
  lines: string[];
}

/**
 * Where the container goes and what has to be made (no filesystem changes but reads). Throws a
 * one-line TsrunError naming the field when the host cannot apply it.
 */
export function planIntelRdt(id: string, rdt: IntelRdt, host: ResctrlHost | undefined, opts: { unprivileged?: boolean; fs?: ResctrlFs } = {}): RdtPlan {
  const fs = opts.fs ?? realResctrlFs;
  const refusal = rdtRefusal(rdt, host, opts.unprivileged);
  if (refusal || !host) throw new TsrunError(refusal ? formatProblem(refusal) : FIELD);
  const closID = rdt.closID || undefined;
  const name = closID ?? id;
  if (name !== "/" && RESERVED.has(name)) {
    throw new TsrunError(closID ? `${FIELD}.closID: ${JSON.stringify(name)} is a name the resctrl file system reserves` : `${FIELD}: the container id ${JSON.stringify(id)} cannot name a class (resctrl reserves it): set closID`);
  }
  const group = name === "/" ? host.root : join(host.root, name);
  const lines = schemataLines(rdt);
  const groupExists = fs.exists(group);
  // runtime-spec: a named class without schemata must have been made beforehand.
  if (closID && lines.length === 0 && !groupExists) {
    throw new TsrunError(`${FIELD}.closID: class ${JSON.stringify(closID)} does not exist (${group}); without schemata it must be made beforehand`);
  }
  const monitor = rdt.enableMonitoring ? join(group, "mon_groups", id) : undefined;
  const mkdirs = [...(groupExists ? [] : [group]), ...(monitor && !fs.exists(monitor) ? [monitor] : [])];
  // Removed at delete: the monitoring group, and the class only when it is named after the container.
  const claimed = mkdirs.filter((d) => d === monitor || !closID);
  return { root: host.root, state: { group, ...(monitor ? { monitor } : {}), ownGroup: !groupExists, created: [], claimed }, mkdirs, lines };
}

/** One schemata line as resource -> domain -> value ("L3:0=7f0;1=1f"), values normalized (hex masks, MB numbers). */
function parseLine(line: string): { resource: string; domains: Map<string, string> } | undefined {
  const m = /^\s*([A-Za-z0-9_]+)\s*:(.*)$/.exec(line);
  if (!m) return undefined;
  const resource = m[1]!;
  const decimal = resource === "MB" || resource === "SMBA";
  const domains = new Map<string, string>();
  for (const part of m[2]!.split(";")) {
    const [dom, val] = part.split("=").map((s) => s.trim());
    if (!dom || val === undefined || val === "") continue;
    let v = val.toLowerCase();
    if (decimal && /^[0-9]+$/.test(v)) v = String(Number(v));
    else if (!decimal && /^[0-9a-f]+$/.test(v)) v = BigInt(`0x${v}`).toString(16);
    domains.set(dom, v);
  }
  return { resource, domains };
}

/** The requested lines a class's schemata file does not hold (each domain of each line compared). */
export function schemataMismatches(current: string, wanted: readonly string[]): string[] {
  const have = new Map<string, Map<string, string>>();
  for (const line of current.split("\n")) {
    const p = parseLine(line);
    if (p) have.set(p.resource, p.domains);
  }
  return wanted.filter((line) => {
    const p = parseLine(line);
    if (!p) return true;
    const got = have.get(p.resource);
    return !got || [...p.domains].some(([d, v]) => got.get(d) !== v);
  });
}

function lastCmdStatus(root: string, fs: ResctrlFs): string {
  try {
    const s = fs.read(join(root, "info", "last_cmd_status"))?.trim();
    return s ? ` (resctrl: ${s.replace(/\n/g, "; ")})` : "";
  } catch {
    return "";
  }
}

/** Writes the lines as one schemata write; the kernel takes all or none of them. */
function writeSchemata(root: string, group: string, lines: readonly string[], fs: ResctrlFs, what: string): void {
  const file = join(group, "schemata");
  try {
    fs.write(file, `${lines.join("\n")}\n`);
  } catch (e) {
    throw new TsrunError(`${what}: write ${file}: ${errText(e)}${lastCmdStatus(root, fs)}`);
  }
}

/**
 * Makes the dirs and sets or checks the schemata. On failure removes what it made and throws.
 * Returns the state with `created` filled in (and `claimed` gone).
 */
export function applyIntelRdt(plan: RdtPlan, fs: ResctrlFs = realResctrlFs): RdtState {
  const { root } = plan;
  const { claimed, ...rest } = plan.state;
  const state: RdtState = { ...rest, created: [] };
  const made: string[] = [];
  try {
    for (const d of plan.mkdirs) {
      try {
        fs.mkdir(d);
      } catch (e) {
        if (errCode(e) !== "EEXIST") throw new TsrunError(`${FIELD}: mkdir ${d}: ${errText(e)}${lastCmdStatus(root, fs)}`);
        // Made meanwhile by someone else (another create of the same closID): not ours.
        if (d === state.group) state.ownGroup = false;
        continue;
      }
      made.push(d);
      if (claimed?.includes(d)) state.created.push(d);
    }
    if (plan.lines.length > 0) {
      if (state.ownGroup) writeSchemata(root, state.group, plan.lines, fs, FIELD);
      else {
        const current = fs.read(join(state.group, "schemata")) ?? "";
        const differ = schemataMismatches(current, plan.lines);
        if (differ.length > 0) {
          throw new TsrunError(`${FIELD}: the class ${state.group} already exists with other schemata (${differ.map((l) => JSON.stringify(l)).join(", ")} not in ${JSON.stringify(current.trim().split("\n").map((l) => l.trim()).join("; "))})`);
        }
      }
    }
  } catch (e) {
    for (const d of [...made].reverse()) {
      try {
        fs.rmdir(d);
      } catch {
        // the original error is the one to report
      }
    }
    throw e;
  }
  return state;
}

/** The tasks files the container's processes are written to, in the order the kernel needs. */
export function rdtTasksFiles(state: RdtState | undefined): string[] {
  if (!state) return [];
  return [join(state.group, "tasks"), ...(state.monitor ? [join(state.monitor, "tasks")] : [])];
}

/** Removes what create made (monitoring group first). Idempotent. */
export function destroyIntelRdt(state: RdtState, fs: ResctrlFs = realResctrlFs): void {
  const dirs = [...new Set([...state.created, ...(state.claimed ?? [])])];
  const depth = (p: string): number => p.split("/").length;
  for (const d of dirs.sort((a, b) => depth(b) - depth(a))) {
    try {
      fs.rmdir(d);
    } catch (e) {
      if (errCode(e) !== "ENOENT") throw new TsrunError(`intelRdt: rmdir ${d}: ${errText(e)}`);
    }
  }
}

/** update --l3-cache-schema / --mem-bw-schema: new schemata for the container's own class. */
export function updateIntelRdt(state: RdtState | undefined, rdt: IntelRdt, host: ResctrlHost | undefined, fs: ResctrlFs = realResctrlFs): void {
  const lines = schemataLines(rdt);
  if (lines.length === 0) return;
  const what = [rdt.l3CacheSchema ? "--l3-cache-schema" : "", rdt.memBwSchema ? "--mem-bw-schema" : ""].filter(Boolean).join(" ");
  // runc's words for a host without the feature.
  if (rdt.l3CacheSchema && !host?.cat) throw new TsrunError(`update --l3-cache-schema: Intel RDT/CAT: l3 cache schema is not enabled${host ? "" : " (no resctrl file system is mounted)"}`);
  if (rdt.memBwSchema && !host?.mba) throw new TsrunError(`update --mem-bw-schema: Intel RDT/MBA: memory bandwidth schema is not enabled${host ? "" : " (no resctrl file system is mounted)"}`);
  if (!state || !host) throw new TsrunError(`update ${what}: the container has no Intel RDT class (linux.intelRdt was not set when it was created)`);
  if (!state.ownGroup) {
    throw new TsrunError(`update ${what}: the container is in the class ${state.group}, which tsrun did not make for it: its schemata are shared and not changed here`);
  }
  writeSchemata(host.root, state.group, lines, fs, `update ${what}`);
}

/**
 * Whether a dir named in a record may be treated as the container's resctrl group: normalized,
 * absolute and on a resctrl file system (a damaged or edited state.json must not make exec write
 * a pid to, or delete remove, anything else). A dir that is gone passes: nothing is left to act on.
 */
export function isResctrlDir(dir: string): boolean {
  if (!dir.startsWith("/") || normalize(dir) !== dir || (dir.endsWith("/") && dir !== "/")) return false;
  try {
    return Number(statfsSync(dir).type) === RDTGROUP_SUPER_MAGIC;
  } catch (e) {
    return errCode(e) === "ENOENT";
  }
}
