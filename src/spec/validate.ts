/**
 * config.json validation: the precompiled schema validators (schemas/*.json, compiled by
 * scripts/gen-spec.ts) followed by the rules a schema cannot express, each problem located by
 * its JSON path ("process.args[0]", "linux.namespaces[2].type").
 *
 * Every problem is reported at once; nothing here throws on any input (validateConfig and
 * validateProcess are safe to fuzz). Warnings are things the spec allows but that are
 * probably not what the author meant (a deprecated relative mount destination, a consoleSize
 * the runtime must ignore); callers log them and go on.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { TsrunError, errnoName, errnoText, formatProblem, type Problem } from "../errors.ts";
import type { Features, Process, Spec, State } from "./generated/types.ts";
import type { SchemaError, SchemaValidator } from "./generated/schema-error.ts";
import { HOOK_NAMES, OCI_VERSION } from "./constants.ts";
import configSchema from "./generated/validate-config.js";
import processSchema from "./generated/validate-process.js";
import stateSchema from "./generated/validate-state.js";
import featuresSchema from "./generated/validate-features.js";

export interface ConfigResult {
  /** Set only when there is no problem. */
  config?: Spec;
  problems: Problem[];
  warnings: Problem[];
}

export interface ProcessResult {
  process?: Process;
  problems: Problem[];
  warnings: Problem[];
}

export { HOOK_NAMES, OCI_VERSION };

// ---------------------------------------------------------------------------------------------
// Paths

type Segment = string | number;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** JSON path text of segments: `linux.namespaces[2].type`, `linux.sysctl["net.ipv4.ip_forward"]`. */
export function jsonPath(segments: readonly Segment[]): string {
  let out = "";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else if (IDENT.test(s)) out += out === "" ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** The segments of a JSON Pointer, array indexes as numbers (decided by the data walked). */
function pointerSegments(pointer: string, data: unknown): Segment[] {
  if (pointer === "") return [];
  const out: Segment[] = [];
  let node: unknown = data;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node) && /^(0|[1-9][0-9]*)$/.test(key)) {
      const i = Number(key);
      out.push(i);
      node = node[i];
    } else {
      out.push(key);
      node = node !== null && typeof node === "object" && hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Schema errors to problems

/** Exact text of limits a double cannot hold (the schemas' int64/uint64 bounds). */
const BIG_LIMITS = new Map<number, string>([
  [18446744073709551615, "18446744073709551615"],
  [9223372036854775807, "9223372036854775807"],
  [-9223372036854775808, "-9223372036854775808"],
]);

function limitText(v: unknown): string {
  return typeof v === "number" ? BIG_LIMITS.get(v) ?? String(v) : String(v);
}

const TYPE_WORDS: Record<string, string> = {
  string: "a string",
  integer: "an integer",
  number: "a number",
  boolean: "a boolean (true or false)",
  object: "an object",
  array: "an array",
  null: "null",
};

/** Patterns of the schemas, said in words. */
const PATTERN_WORDS: Record<string, string> = {
  "^[1-9][0-9]*[KMGTPE]?B$": 'must be a size with a unit prefix, e.g. "2MB" or "1GB"',
  "^MB:[^\\n]*$": 'must start with "MB:" and be a single line',
  "^[\\s\\S]": "must not be empty",
};

function quoteList(values: unknown): string {
  return Array.isArray(values) ? values.map((v) => JSON.stringify(v)).join(", ") : String(values);
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function schemaProblems(errors: readonly SchemaError[], data: unknown, prefix: readonly Segment[]): Problem[] {
  const out: Problem[] = [];
  for (const e of errors) {
    const segs = [...prefix, ...pointerSegments(e.instancePath, data)];
    const p = e.params;
    const at = (extra?: Segment): string => jsonPath(extra === undefined ? segs : [...segs, extra]);
    const value = (): unknown => {
      let node: unknown = data;
      for (const s of pointerSegments(e.instancePath, data)) {
        node = node !== null && typeof node === "object" && hasOwn(node, String(s)) ? (node as Record<string, unknown>)[String(s)] : undefined;
      }
      return node;
    };
    if (e.propertyName !== undefined) {
      // An error about a key of a map (propertyNames): say which key.
      const path = at(e.propertyName);
      if (e.keyword === "enum") out.push({ path, message: `is not a valid key: must be one of ${quoteList(p.allowedValues)}` });
      else if (e.keyword === "pattern") out.push({ path, message: `key ${PATTERN_WORDS[String(p.pattern)] ?? `must match /${String(p.pattern)}/`}` });
      else out.push({ path, message: "is not an allowed key" });
      continue;
    }
    switch (e.keyword) {
      case "required":
        out.push({ path: at(String(p.missingProperty)), message: "is required" });
        break;
      case "type": {
        const types = String(p.type).split(",");
        out.push({ path: at(), message: `must be ${types.map((t) => TYPE_WORDS[t] ?? t).join(" or ")}` });
        break;
      }
      case "enum":
        out.push({ path: at(), message: `must be one of ${quoteList(p.allowedValues)} (got ${describe(value())})` });
        break;
      case "minimum":
      case "maximum":
      case "exclusiveMinimum":
      case "exclusiveMaximum":
        out.push({ path: at(), message: `must be ${String(p.comparison)} ${limitText(p.limit)}` });
        break;
      case "minItems":
        out.push({ path: at(), message: p.limit === 1 ? "must not be empty" : `must have at least ${String(p.limit)} entries` });
        break;
      case "pattern":
        out.push({ path: at(), message: PATTERN_WORDS[String(p.pattern)] ?? `must match /${String(p.pattern)}/` });
        break;
      case "propertyNames":
      case "if":
        break; // the errors of the sub-schema say it
      default:
        out.push({ path: at(), message: `fails the schema's "${e.keyword}" rule` });
    }
  }
  return out;
}

function runSchema<T>(validator: SchemaValidator<T>, data: unknown, prefix: readonly Segment[]): Problem[] {
  if (validator(data)) return [];
  return schemaProblems(validator.errors ?? [], data, prefix);
}

// ---------------------------------------------------------------------------------------------
// Looking at unknown data without trusting it

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined;
}
function arr(v: unknown): unknown[] | undefined {
  return Array.isArray(v) ? v : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}
function int(v: unknown): number | undefined {
  return typeof v === "number" && Number.isInteger(v) ? v : undefined;
}
function get(o: Obj | undefined, k: string): unknown {
  return o !== undefined && hasOwn(o, k) ? o[k] : undefined;
}
function entries(o: Obj | undefined): Array<[string, unknown]> {
  return o === undefined ? [] : Object.keys(o).map((k) => [k, o[k]]);
}

class Collector {
  readonly problems: Problem[] = [];
  readonly warnings: Problem[] = [];
  error(path: readonly Segment[], message: string): void {
    this.problems.push({ path: jsonPath(path), message });
  }
  warn(path: readonly Segment[], message: string): void {
    this.warnings.push({ path: jsonPath(path), message });
  }
}

/** Problems of a path-valued string: NUL bytes, emptiness, and (when asked) relativeness. */
function checkPath(c: Collector, path: readonly Segment[], v: unknown, absolute: boolean): void {
  const s = str(v);
  if (s === undefined) return;
  if (s === "") c.error(path, "must not be empty");
  else if (s.includes("\0")) c.error(path, "must not contain a NUL byte");
  else if (absolute && !s.startsWith("/")) c.error(path, `must be an absolute path (got ${JSON.stringify(s)})`);
}

function checkEnv(c: Collector, path: readonly Segment[], v: unknown): void {
  arr(v)?.forEach((e, i) => {
    const s = str(e);
    if (s === undefined) return;
    const eq = s.indexOf("=");
    if (eq < 0) c.error([...path, i], `must be "NAME=value" (got ${describe(s)})`);
    else if (eq === 0) c.error([...path, i], `must be "NAME=value": the name is empty`);
    else if (s.includes("\0")) c.error([...path, i], "must not contain a NUL byte");
  });
}

/** A CPU or NUMA node list as the kernel reads it: "0-3,7,9-10". */
const ID_LIST = /^\s*[0-9]+(?:-[0-9]+)?(?:\s*,\s*[0-9]+(?:-[0-9]+)?)*\s*$/;

function checkIdList(c: Collector, path: readonly Segment[], v: unknown, what: string): void {
  const s = str(v);
  if (s === undefined || s === "") return;
  if (!ID_LIST.test(s)) {
    c.error(path, `must be a list of ${what} like "0-3,7" (got ${describe(s)})`);
    return;
  }
  for (const part of s.split(",")) {
    const [a, b] = part.trim().split("-").map(Number);
    if (b !== undefined && a !== undefined && b < a) c.error(path, `range "${part.trim()}" goes backwards`);
  }
}

/** The kernel's limit on the lines of a uid_map or gid_map (UID_GID_MAP_MAX_EXTENTS). */
const MAX_ID_EXTENTS = 340;

/**
 * Ranges of an id mapping as the kernel takes them in a uid_map/gid_map: sizes above 0, no
 * range past 2^32-2 (id 2^32-1 is never mapped), no two ranges overlapping on either side, at
 * most 340 of them.
 */
function checkIdRanges(c: Collector, path: readonly Segment[], list: unknown[]): void {
  if (list.length > MAX_ID_EXTENTS) c.error(path, `has ${list.length} entries; the kernel takes at most ${MAX_ID_EXTENTS}`);
  const seen: { j: number; container: number; host: number; size: number }[] = [];
  list.forEach((x, j) => {
    const o = obj(x);
    const container = int(get(o, "containerID"));
    const host = int(get(o, "hostID"));
    const size = int(get(o, "size"));
    if (size === 0) c.error([...path, j, "size"], "must be greater than 0");
    if (container === undefined || host === undefined || size === undefined || size === 0) return;
    const past = ([["containerID", container], ["hostID", host]] as const).find(([, start]) => start + size > 0xffffffff);
    if (past) {
      c.error([...path, j, "size"], `${past[0]} ${past[1]} + size ${size} goes past 4294967294, the last id a mapping can hold`);
      return;
    }
    for (const e of list.length <= MAX_ID_EXTENTS ? seen : []) {
      for (const [k, a, b] of [["containerID", container, e.container], ["hostID", host, e.host]] as const) {
        if (a < b + e.size && b < a + size) c.error([...path, j, k], `range ${a}-${a + size - 1} overlaps ${jsonPath([...path, e.j])} (${b}-${b + e.size - 1})`);
      }
    }
    seen.push({ j, container, host, size });
  });
}

/** SemVer 2.0.0: MAJOR.MINOR.PATCH[-pre.release][+build], numbers without leading zeros. */
const SEMVER = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

function semverMajor(v: string): string | undefined {
  const m = SEMVER.exec(v);
  if (!m) return undefined;
  // pre-release identifiers: non-empty, numeric ones without leading zeros
  if (m[4] !== undefined && m[4].split(".").some((id) => id === "" || /^0[0-9]+$/.test(id))) return undefined;
  return m[1];
}

// ---------------------------------------------------------------------------------------------
// Process rules (config.json's process and exec --process)

const SCHED_RT = new Set(["SCHED_FIFO", "SCHED_RR"]);

function checkProcess(c: Collector, base: readonly Segment[], p: Obj): void {
  const at = (...s: Segment[]): Segment[] => [...base, ...s];

  arr(get(p, "args"))?.forEach((a, i) => {
    const s = str(a);
    if (s === undefined) return;
    if (i === 0 && s === "") c.error(at("args", 0), "must not be empty (it names the program to run)");
    else if (s.includes("\0")) c.error(at("args", i), "must not contain a NUL byte");
  });

  checkPath(c, at("cwd"), get(p, "cwd"), true);
  checkEnv(c, at("env"), get(p, "env"));

  const seen = new Map<string, number>();
  arr(get(p, "rlimits"))?.forEach((r, i) => {
    const o = obj(r);
    const type = str(get(o, "type"));
    if (type !== undefined) {
      const first = seen.get(type);
      if (first !== undefined) c.error(at("rlimits", i, "type"), `duplicate rlimit ${JSON.stringify(type)} (also at ${jsonPath(at("rlimits", first))})`);
      else seen.set(type, i);
    }
    const soft = int(get(o, "soft"));
    const hard = int(get(o, "hard"));
    if (soft !== undefined && hard !== undefined && soft > hard) {
      c.error(at("rlimits", i, "soft"), `must not be greater than hard (${soft} > ${hard})`);
    }
  });

  if (get(p, "consoleSize") !== undefined && get(p, "terminal") !== true) {
    c.warn(at("consoleSize"), "is ignored: terminal is not true");
  }

  const sched = obj(get(p, "scheduler"));
  if (sched) {
    const policy = str(get(sched, "policy"));
    const prio = int(get(sched, "priority"));
    if (policy !== undefined && SCHED_RT.has(policy)) {
      if (prio === undefined || prio < 1 || prio > 99) {
        c.error(at("scheduler", "priority"), `must be between 1 and 99 for ${policy}${prio === undefined ? " (it is not set)" : ""}`);
      }
    } else if (policy !== undefined && prio !== undefined && prio !== 0) {
      c.error(at("scheduler", "priority"), `can only be set for SCHED_FIFO or SCHED_RR (policy is ${policy})`);
    }
    if (policy !== undefined && policy !== "SCHED_DEADLINE") {
      for (const k of ["runtime", "deadline", "period"]) {
        const v = int(get(sched, k));
        if (v !== undefined && v !== 0) c.error(at("scheduler", k), `can only be set for SCHED_DEADLINE (policy is ${policy})`);
      }
    }
  }

  const aff = obj(get(p, "execCPUAffinity"));
  if (aff) {
    checkIdList(c, at("execCPUAffinity", "initial"), get(aff, "initial"), "CPUs");
    checkIdList(c, at("execCPUAffinity", "final"), get(aff, "final"), "CPUs");
  }
}

// ---------------------------------------------------------------------------------------------
// Whole-config rules

interface NsEntry {
  index: number;
  path?: string;
}

/** sysctls that belong to the IPC namespace (runc's list) besides fs.mqueue.*. */
const IPC_SYSCTLS = new Set([
  "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
  "kernel.shm_rmid_forced",
]);

/** "net/ipv4/conf/eth0.100/rp_filter" -> "net.ipv4.conf.eth0/100.rp_filter" (sysctl(8)'s rule). */
function sysctlDots(key: string): string {
  const i = key.search(/[./]/);
  if (i < 0 || key[i] === ".") return key;
  return key.replace(/[./]/g, (ch) => (ch === "." ? "/" : "."));
}

/** dev_valid_name() of the kernel: what a network interface may be called. */
function validIfName(name: string): boolean {
  return name !== "" && Buffer.byteLength(name) < 16 && name !== "." && name !== ".." && !/[/:\s]/.test(name);
}

const MPOL_NEED_NODES = new Set(["MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY"]);
const MPOL_NO_NODES = new Set(["MPOL_DEFAULT", "MPOL_LOCAL"]);

function checkConfig(c: Collector, cfg: Obj): void {
  // ociVersion
  const version = str(get(cfg, "ociVersion"));
  if (version !== undefined) {
    const major = semverMajor(version);
    if (major === undefined) c.error(["ociVersion"], `must be a SemVer 2.0.0 version like "${OCI_VERSION}" (got ${describe(version)})`);
    else if (major !== "1") c.error(["ociVersion"], `version ${version} is not supported: tsrun implements ${OCI_VERSION} and accepts 1.x`);
  }

  // root
  const root = get(cfg, "root");
  if (root === undefined) c.error(["root"], "is required on Linux");
  else checkPath(c, ["root", "path"], get(obj(root), "path"), false);

  // namespaces, first: many rules depend on them
  const linux = obj(get(cfg, "linux"));
  const ns = new Map<string, NsEntry>();
  arr(get(linux, "namespaces"))?.forEach((n, i) => {
    const o = obj(n);
    const type = str(get(o, "type"));
    const path = str(get(o, "path"));
    if (path !== undefined && path !== "") checkPath(c, ["linux", "namespaces", i, "path"], path, true);
    if (type === undefined) return;
    const first = ns.get(type);
    if (first !== undefined) {
      c.error(["linux", "namespaces", i, "type"], `duplicate namespace ${JSON.stringify(type)} (also at linux.namespaces[${first.index}])`);
    } else {
      ns.set(type, { index: i, ...(path ? { path } : {}) });
    }
  });
  const nsWord: Record<string, string> = {
    user: "a user", network: "a network", uts: "a UTS", ipc: "an IPC", mount: "a mount", time: "a time", pid: "a PID", cgroup: "a cgroup",
  };
  const needNs = (type: string): string => `requires ${nsWord[type] ?? type} namespace (no ${JSON.stringify(type)} in linux.namespaces)`;

  // process
  const proc = obj(get(cfg, "process"));
  if (proc) checkProcess(c, ["process"], proc);

  // hostname, domainname
  for (const k of ["hostname", "domainname"]) {
    const v = str(get(cfg, k));
    if (v !== undefined && v !== "" && !ns.has("uts")) c.error([k], needNs("uts"));
  }

  // mounts
  arr(get(cfg, "mounts"))?.forEach((m, i) => {
    const o = obj(m);
    if (!o) return;
    const at = (...s: Segment[]): Segment[] => ["mounts", i, ...s];
    const dest = str(get(o, "destination"));
    if (dest !== undefined) {
      checkPath(c, at("destination"), dest, false);
      if (dest !== "" && !dest.startsWith("/")) {
        c.warn(at("destination"), `relative destination ${JSON.stringify(dest)} is deprecated; it is taken relative to "/"`);
      }
    }
    const options = (arr(get(o, "options")) ?? []).filter((x): x is string => typeof x === "string");
    const bind = options.includes("bind") || options.includes("rbind") || get(o, "type") === "bind";
    const source = str(get(o, "source"));
    if (bind) {
      if (source === undefined || source === "") c.error(at("source"), "is required for a bind mount");
      else checkPath(c, at("source"), source, false);
    } else if (str(get(o, "type")) === undefined || get(o, "type") === "") {
      c.error(at("type"), 'is required for a mount that is not a bind mount (no "bind" or "rbind" in options)');
    }
    const uidm = arr(get(o, "uidMappings"));
    const gidm = arr(get(o, "gidMappings"));
    const idmapOption = [...options].reverse().find((x) => x === "idmap" || x === "ridmap");
    const hasMaps = (uidm?.length ?? 0) > 0 || (gidm?.length ?? 0) > 0;
    if (hasMaps) {
      if (!bind) c.error(at(uidm?.length ? "uidMappings" : "gidMappings"), 'id-mapped mounts must be bind mounts ("bind" or "rbind" in options)');
      if (!uidm?.length) c.error(at("uidMappings"), "is required when gidMappings is set (id-mapped mounts need both)");
      if (!gidm?.length) c.error(at("gidMappings"), "is required when uidMappings is set (id-mapped mounts need both)");
      if (idmapOption === undefined) c.warn(at("options"), 'has neither "idmap" nor "ridmap" although the mount has uidMappings/gidMappings: applied as "idmap" (the top mount only)');
    } else if (idmapOption !== undefined) {
      if (!bind) c.error(at("options"), `${JSON.stringify(idmapOption)} is only for bind mounts ("bind" or "rbind" in options)`);
      else if (!ns.has("user")) c.error(at("options"), `${JSON.stringify(idmapOption)} needs uidMappings and gidMappings on the mount, or a user namespace for the container (no "user" in linux.namespaces)`);
    }
    for (const [k, list] of [["uidMappings", uidm], ["gidMappings", gidm]] as const) {
      if (list) checkIdRanges(c, at(k), list);
    }
  });

  // hooks
  const hooks = obj(get(cfg, "hooks"));
  for (const name of HOOK_NAMES) {
    arr(get(hooks, name))?.forEach((h, i) => {
      const o = obj(h);
      checkPath(c, ["hooks", name, i, "path"], get(o, "path"), true);
      checkEnv(c, ["hooks", name, i, "env"], get(o, "env"));
    });
  }

  if (linux) checkLinux(c, linux, ns, needNs);
}

function checkLinux(c: Collector, linux: Obj, ns: Map<string, NsEntry>, needNs: (type: string) => string): void {
  const L = (...s: Segment[]): Segment[] => ["linux", ...s];

  // user namespace mappings
  const uidm = arr(get(linux, "uidMappings"));
  const gidm = arr(get(linux, "gidMappings"));
  const userNs = ns.get("user");
  // A new user namespace without maps has no root to run as (runc: "User namespaces enabled, but
  // no uid mappings found."); one map without the other is the rule below.
  if (userNs && !userNs.path && !uidm?.length && !gidm?.length) {
    for (const k of ["uidMappings", "gidMappings"]) c.error(L(k), `is required for a new user namespace (linux.namespaces[${userNs.index}] has no path)`);
  }
  for (const [k, list, other] of [["uidMappings", uidm, gidm], ["gidMappings", gidm, uidm]] as const) {
    if (!list?.length) continue;
    if (!userNs) c.error(L(k), needNs("user"));
    else if (userNs.path) c.error(L(k), `cannot be set when joining an existing user namespace (linux.namespaces[${userNs.index}].path)`);
    else if (!other?.length) c.error(L(k === "uidMappings" ? "gidMappings" : "uidMappings"), `is required when linux.${k} is set`);
    list.forEach((x, j) => {
      if (get(obj(x), "size") === 0) c.error(L(k, j, "size"), "must be greater than 0");
    });
  }

  // time namespace offsets
  const offsets = obj(get(linux, "timeOffsets"));
  if (offsets && Object.keys(offsets).length > 0) {
    const timeNs = ns.get("time");
    if (!timeNs) c.error(L("timeOffsets"), needNs("time"));
    else if (timeNs.path) c.error(L("timeOffsets"), `cannot be set when joining an existing time namespace (linux.namespaces[${timeNs.index}].path)`);
  }

  // sysctl: only what the container's own namespaces cover (runc's rules)
  for (const [key] of entries(obj(get(linux, "sysctl")))) {
    const s = sysctlDots(key);
    const at = L("sysctl", key);
    if (IPC_SYSCTLS.has(s) || s.startsWith("fs.mqueue.")) {
      if (!ns.has("ipc")) c.error(at, needNs("ipc"));
    } else if (s.startsWith("net.")) {
      if (!ns.has("network")) c.error(at, needNs("network"));
    } else if (s === "kernel.domainname" && ns.has("uts")) {
      // namespaced, and no dedicated field
    } else if (s === "kernel.hostname" && ns.has("uts")) {
      c.error(at, 'conflicts with the "hostname" field: set that instead');
    } else {
      c.error(at, "is not namespaced: setting it from a container would change the host");
    }
  }

  // masked and readonly paths
  for (const k of ["maskedPaths", "readonlyPaths"]) {
    const list = arr(get(linux, k));
    list?.forEach((p, i) => checkPath(c, L(k, i), p, true));
    if (list?.length && !ns.has("mount")) c.error(L(k), needNs("mount"));
  }

  // devices
  arr(get(linux, "devices"))?.forEach((d, i) => {
    const o = obj(d);
    if (!o) return;
    checkPath(c, L("devices", i, "path"), get(o, "path"), true);
    const type = str(get(o, "type"));
    if (type === "c" || type === "b" || type === "u") {
      for (const k of ["major", "minor"]) {
        if (get(o, k) === undefined) c.error(L("devices", i, k), `is required for device type ${JSON.stringify(type)}`);
      }
    }
  });

  // network devices
  const netDevices = obj(get(linux, "netDevices"));
  if (netDevices && Object.keys(netDevices).length > 0) {
    if (!ns.has("network")) c.error(L("netDevices"), needNs("network"));
    const targets = new Map<string, string>();
    for (const [host, dev] of entries(netDevices)) {
      if (!validIfName(host)) c.error(L("netDevices", host), "is not a valid network interface name (1-15 bytes, no \"/\", \":\" or white space, not \".\" or \"..\")");
      const name = str(get(obj(dev), "name"));
      if (name !== undefined && name !== "" && !validIfName(name)) {
        c.error(L("netDevices", host, "name"), "is not a valid network interface name (1-15 bytes, no \"/\", \":\" or white space, not \".\" or \"..\")");
      }
      const target = name !== undefined && name !== "" ? name : host;
      const other = targets.get(target);
      if (other !== undefined) c.error(L("netDevices", host), `would be named ${JSON.stringify(target)} in the container, as ${JSON.stringify(other)} would`);
      else targets.set(target, host);
    }
  }

  // cgroupsPath (the systemd "slice:prefix:name" form is checked by whoever knows --systemd-cgroup)
  const cgPath = str(get(linux, "cgroupsPath"));
  if (cgPath !== undefined) {
    const why = cgroupsPathProblem(cgPath, false);
    if (why) c.error(L("cgroupsPath"), why);
  }

  // resources
  const res = obj(get(linux, "resources"));
  if (res) checkResources(c, res);

  // seccomp
  const sec = obj(get(linux, "seccomp"));
  if (sec) {
    const S = (...s: Segment[]): Segment[] => L("seccomp", ...s);
    const errnoActions = new Set(["SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"]);
    const def = str(get(sec, "defaultAction"));
    if (get(sec, "defaultErrnoRet") !== undefined && def !== undefined && !errnoActions.has(def)) {
      c.error(S("defaultErrnoRet"), `can only be set when defaultAction is SCMP_ACT_ERRNO or SCMP_ACT_TRACE (it is ${def})`);
    }
    if (def === "SCMP_ACT_NOTIFY") c.error(S("defaultAction"), "SCMP_ACT_NOTIFY cannot be the default action");
    const listener = str(get(sec, "listenerPath"));
    if (get(sec, "listenerMetadata") !== undefined && (listener === undefined || listener === "")) {
      c.error(S("listenerMetadata"), "can only be set together with listenerPath");
    }
    arr(get(sec, "syscalls"))?.forEach((sc, i) => {
      const o = obj(sc);
      const action = str(get(o, "action"));
      if (get(o, "errnoRet") !== undefined && action !== undefined && !errnoActions.has(action)) {
        c.error(S("syscalls", i, "errnoRet"), `can only be set when action is SCMP_ACT_ERRNO or SCMP_ACT_TRACE (it is ${action})`);
      }
      if (action === "SCMP_ACT_NOTIFY" && (listener === undefined || listener === "")) {
        c.error(S("syscalls", i, "action"), "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
      }
      arr(get(o, "names"))?.forEach((n, j) => {
        if (n === "") c.error(S("syscalls", i, "names", j), "must not be empty");
        // Once the filter is loaded the container process still reports to tsrun (write) and
        // hands the listener fd to the agent (sendmsg): notifying either would wait for an
        // agent that cannot answer yet. runc refuses write for the same reason.
        if (action === "SCMP_ACT_NOTIFY" && (n === "write" || n === "sendmsg")) {
          c.error(S("syscalls", i, "names", j), `SCMP_ACT_NOTIFY cannot be used for the ${n} syscall`);
        }
      });
    });
  }

  // Intel RDT ("/" is the default class, runtime-spec 1.3.0)
  const rdt = obj(get(linux, "intelRdt"));
  const closID = str(get(rdt, "closID"));
  if (closID !== undefined && closID !== "/" && (closID === "." || closID === ".." || closID.includes("/") || closID.includes("\n"))) {
    c.error(L("intelRdt", "closID"), `must be a plain directory name, or "/" for the default class (got ${describe(closID)})`);
  }
  arr(get(rdt, "schemata"))?.forEach((line, i) => {
    if (typeof line === "string" && line.includes("\n")) c.error(L("intelRdt", "schemata", i), "must be a single line (one entry per line of the schemata file)");
  });

  // memory policy
  const mp = obj(get(linux, "memoryPolicy"));
  if (mp) {
    const mode = str(get(mp, "mode"));
    const nodes = str(get(mp, "nodes"));
    const flags = (arr(get(mp, "flags")) ?? []).filter((x): x is string => typeof x === "string");
    const M = (...s: Segment[]): Segment[] => L("memoryPolicy", ...s);
    checkIdList(c, M("nodes"), nodes, "NUMA nodes");
    if (mode !== undefined && MPOL_NEED_NODES.has(mode) && (nodes === undefined || nodes.trim() === "")) {
      c.error(M("nodes"), `is required for mode ${mode}`);
    }
    if (mode !== undefined && MPOL_NO_NODES.has(mode)) {
      if (nodes !== undefined && nodes.trim() !== "") c.error(M("nodes"), `must be empty for mode ${mode}`);
      if (flags.length > 0) c.error(M("flags"), `must be empty for mode ${mode}`);
    }
    if (flags.includes("MPOL_F_STATIC_NODES") && flags.includes("MPOL_F_RELATIVE_NODES")) {
      c.error(M("flags"), "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES cannot be combined");
    }
    if (flags.includes("MPOL_F_NUMA_BALANCING") && mode !== undefined && mode !== "MPOL_BIND" && mode !== "MPOL_PREFERRED_MANY") {
      c.error(M("flags"), `MPOL_F_NUMA_BALANCING only works with MPOL_BIND or MPOL_PREFERRED_MANY (mode is ${mode})`);
    }
  }
}

/**
 * What is wrong with a cgroupsPath, or undefined. With systemd, the path must be
 * "slice:prefix:name" (slice "" or ending in ".slice"); otherwise it is a cgroupfs path,
 * absolute (from the hierarchy's root) or relative, that must not climb out with "..".
 */
export function cgroupsPathProblem(path: string, systemd: boolean): string | undefined {
  if (path.includes("\0") || path.includes("\n")) return "must not contain NUL or newline characters";
  if (systemd) {
    if (path === "") return undefined;
    const parts = path.split(":");
    if (parts.length !== 3 || parts[2] === "") return `must be "slice:prefix:name" with the systemd cgroup driver (got ${describe(path)})`;
    const slice = parts[0] ?? "";
    if (slice !== "" && (!slice.endsWith(".slice") || slice.includes("/"))) return `the slice must be a name ending in ".slice" (got ${describe(slice)})`;
    if (parts.some((p) => p.includes("/"))) return `"slice:prefix:name" parts must not contain "/"`;
    return undefined;
  }
  if (path.split("/").includes("..")) return 'must not contain ".." (it would leave the cgroup hierarchy)';
  return undefined;
}

function checkResources(c: Collector, res: Obj): void {
  const R = (...s: Segment[]): Segment[] => ["linux", "resources", ...s];

  const mem = obj(get(res, "memory"));
  const swappiness = int(get(mem, "swappiness"));
  if (swappiness !== undefined && swappiness > 100) c.error(R("memory", "swappiness"), `must be between 0 and 100 (got ${swappiness})`);
  const limit = int(get(mem, "limit"));
  const swap = int(get(mem, "swap"));
  if (limit !== undefined && swap !== undefined && limit > 0 && swap > 0 && swap < limit) {
    c.error(R("memory", "swap"), `must not be less than limit: it limits memory+swap (${swap} < ${limit})`);
  }

  const cpu = obj(get(res, "cpu"));
  const quota = int(get(cpu, "quota"));
  const burst = int(get(cpu, "burst"));
  if (quota !== undefined && burst !== undefined && quota > 0 && burst > quota) {
    c.error(R("cpu", "burst"), `must not be greater than quota (${burst} > ${quota})`);
  }
  const idle = int(get(cpu, "idle"));
  if (idle !== undefined && idle !== 0 && idle !== 1) c.error(R("cpu", "idle"), `must be 0 or 1 (got ${idle})`);

  arr(get(obj(get(res, "blockIO")), "weightDevice"))?.forEach((w, i) => {
    const o = obj(w);
    if (o && get(o, "weight") === undefined && get(o, "leafWeight") === undefined) {
      c.error(R("blockIO", "weightDevice", i), "needs weight or leafWeight (or both)");
    }
  });

  for (const [dev, limits] of entries(obj(get(res, "rdma")))) {
    const o = obj(limits);
    if (o && get(o, "hcaHandles") === undefined && get(o, "hcaObjects") === undefined) {
      c.error(R("rdma", dev), "needs hcaHandles or hcaObjects (or both)");
    }
  }

  // runc takes r, w and m in any order and repeated, and passes other characters on to the
  // kernel (which ignores what follows three characters); the spec allows only r, w and m.
  arr(get(res, "devices"))?.forEach((d, i) => {
    const access = str(get(obj(d), "access"));
    if (access === undefined) return;
    if (!/[rwm]/.test(access)) c.error(R("devices", i, "access"), `must contain r, w or m (got ${JSON.stringify(access)})`);
    else if (/[^rwm]/.test(access)) c.warn(R("devices", i, "access"), `characters other than r, w and m are ignored (got ${JSON.stringify(access)})`);
  });

  for (const [key] of entries(obj(get(res, "unified")))) {
    if (key.includes("/") || key.includes("\0")) c.error(R("unified", key), "must be a file name of the cgroup directory (no \"/\")");
    else if (!/^[a-z0-9_]+\.[^.]/.test(key)) c.error(R("unified", key), 'must be a cgroup v2 file name like "memory.max"');
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points

function dedupe(list: Problem[]): Problem[] {
  const seen = new Set<string>();
  return list.filter((p) => {
    const k = `${p.path}\n${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function internal(err: unknown): Problem[] {
  return [{ path: "", message: `internal error while validating: ${err instanceof Error ? err.message : String(err)}` }];
}

/**
 * Validate a parsed config.json: schema problems first (every one), then the rules the schema
 * cannot express. `config` is set only when there are no problems.
 */
export function validateConfig(raw: unknown): ConfigResult {
  try {
    const problems = runSchema(configSchema, raw, []);
    const c = new Collector();
    const cfg = obj(raw);
    if (cfg) checkConfig(c, cfg);
    const all = dedupe([...problems, ...c.problems]);
    const warnings = dedupe(c.warnings);
    return all.length === 0 ? { config: raw as Spec, problems: all, warnings } : { problems: all, warnings };
  } catch (err) {
    return { problems: internal(err), warnings: [] };
  }
}

/** Validate the process JSON of `exec --process`; paths are relative to the process object ("args", "cwd"). */
export function validateProcess(raw: unknown): ProcessResult {
  try {
    const problems = runSchema(processSchema, raw, []);
    const c = new Collector();
    const p = obj(raw);
    if (p) checkProcess(c, [], p);
    const all = dedupe([...problems, ...c.problems]);
    const warnings = dedupe(c.warnings);
    return all.length === 0 ? { process: raw as Process, problems: all, warnings } : { problems: all, warnings };
  } catch (err) {
    return { problems: internal(err), warnings: [] };
  }
}

/** Validate a state document (what `tsrun state` prints). */
export function validateState(raw: unknown): { state?: State; problems: Problem[] } {
  try {
    const problems = dedupe(runSchema(stateSchema, raw, []));
    return problems.length === 0 ? { state: raw as State, problems } : { problems };
  } catch (err) {
    return { problems: internal(err) };
  }
}

/** Validate a features document (what `tsrun features` prints). */
export function validateFeatures(raw: unknown): { features?: Features; problems: Problem[] } {
  try {
    const problems = dedupe(runSchema(featuresSchema, raw, []));
    return problems.length === 0 ? { features: raw as Features, problems } : { problems };
  } catch (err) {
    return { problems: internal(err) };
  }
}

/** JSON.parse with the error said as "<detail> (line L, column C)" where the engine gives a position. */
export function parseJsonText(text: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as unknown };
  } catch (err) {
    let msg = err instanceof Error ? err.message : String(err);
    msg = msg.replace(/^JSON Parse error: /, "");
    const m = /at position (\d+)/.exec(msg);
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos).split("\n");
      msg += ` (line ${before.length}, column ${(before[before.length - 1]?.length ?? 0) + 1})`;
    }
    return { error: msg };
  }
}

/** At most this many problem lines: a config generated wrong can have tens of thousands. */
export const MAX_PROBLEM_LINES = 100;

/** The problems as the lines of one message, each self-contained ("config.json: PATH: MESSAGE"). */
export function formatProblems(problems: readonly Problem[], file = "config.json"): string {
  const lines = problems.slice(0, MAX_PROBLEM_LINES).map((p) => formatProblem(p, file));
  const more = problems.length - lines.length;
  if (more > 0) lines.push(`${file}: ${more} more problem${more === 1 ? "" : "s"} not listed`);
  return lines.join("\n");
}

/**
 * Read and validate a config.json. Throws TsrunError "config.json: invalid JSON: ..." on a
 * syntax error, or one whose message has a line per problem (the first line stands alone).
 */
export function loadConfigFile(path: string): { config: Spec; warnings: Problem[] } {
  const file = basename(path) || "config.json";
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new TsrunError(`${file}: cannot read ${path}: ${errnoText(err)}`, { access: { what: "bundle", errno: errnoName(err) } });
  }
  const parsed = parseJsonText(text);
  if ("error" in parsed) throw new TsrunError(`${file}: invalid JSON: ${parsed.error}`);
  const r = validateConfig(parsed.value);
  if (!r.config) throw new TsrunError(formatProblems(r.problems, file));
  return { config: r.config, warnings: r.warnings };
}
