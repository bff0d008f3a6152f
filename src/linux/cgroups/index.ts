/**
 * The cgroup manager: plain file operations on cgroupfs, for cgroup v1, v2 and hybrid hosts.
 *
 * Hybrid hosts (v1 hierarchies plus a cgroup2 mount, /sys/fs/cgroup/unified): a controller
 * mounted in v1 is managed there; one available only in cgroup2 (hugetlb here) is managed in the
 * cgroup2 dir, which is always created too, so that cgroup.kill and cgroup.freeze can be used.
 *
 * Choices worth knowing:
 * - pause/resume use the v1 freezer where it is mounted (hybrid too), else cgroup.freeze.
 * - SIGKILL to everything uses cgroup2's cgroup.kill where it exists; other signals freeze the
 *   cgroup while the pids are listed and signalled, so nothing forks past the list.
 * - Device rules are v1 devices.allow/deny writes (see devices.ts) where the v1 devices
 *   controller is mounted (hybrid hosts too); otherwise an eBPF device program
 *   (device-program.ts) that the helper attaches to the cgroup2 dir (a DeviceFilterPlan),
 *   replacing the one attached before. Allow-all needs nothing.
 * - The systemd driver (--systemd-cgroup, systemd/) has systemd make the container's scope and
 *   then uses this module for everything done in the scope's dirs; driver.ts decides which
 *   driver a container has.
 * - Stats numbers are doubles: values above 2^53 (unlimited limits) are approximate.
 *
 * Import cost matters (`state` and `list` only need isFrozen): nothing here runs at import time.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { TsrunError } from "../../errors.ts";
import { helperExecPath } from "../helper-path.ts";
import { runSync } from "../spawn.ts";
import { toHelperFrame, readEvents } from "../../boundary/frames.ts";
import { failureText } from "../../boundary/wording.ts";
import { errCode, errText, parseFlatKeyed, readOpt, sleepMs, writeErrorMessage, writeFile, writeRaw } from "./io.ts";
import { mapResources, type CgroupWrite, type Hier, type HostView } from "./map.ts";
import { dirOf, findHierarchies, ownDirs, parseMountinfo, parseProcSelfCgroup, planPaths } from "./parse.ts";
import type { Resources } from "./resources.ts";
import { readStats, type StatSource, type StatSources, type Stats } from "./stats.ts";
import type { CgroupState, WarnFn } from "./types.ts";
import { crashPoint } from "../../lifecycle/crash-point.ts";

export type { CgroupState, WarnFn } from "./types.ts";
export type { Resources } from "./resources.ts";
export type { Stats } from "./stats.ts";
export { parseMountinfo, parseProcSelfCgroup } from "./parse.ts";

const SIGKILL = 9;
/** How long destroy waits for killed processes to leave and for busy dirs to become removable. */
const DESTROY_TIMEOUT_MS = 10_000;
const FREEZE_TIMEOUT_MS = 5_000;

function defaultWarn(message: string): void {
  process.stderr.write(`tsrun: warning: ${message}\n`);
}

/** The container's dirs, one per hierarchy (v1 controllers sharing a hierarchy share a dir). */
function dirsOf(state: CgroupState): string[] {
  const dirs = [...new Set(Object.values(state.v1))];
  if (state.v2) dirs.push(state.v2);
  return dirs;
}

function words(text: string | undefined): string[] {
  return (text ?? "").split(/\s+/).filter(Boolean);
}

/**
 * Where the container's cgroups are with the cgroupfs driver (no filesystem changes). Default
 * path "/tsrun/<id>"; a relative cgroupsPath is below the caller's own cgroup in each hierarchy.
 */
export function planCgroup(opts: { id: string; cgroupsPath?: string; rootless?: boolean }): CgroupState {
  const mounts = parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
  const self = parseProcSelfCgroup(readFileSync("/proc/self/cgroup", "utf8"));
  return planPaths(opts, findHierarchies(mounts), self);
}

/**
 * The hierarchies planned for a container that it has no dir of its own in (a rootless
 * container without a delegated cgroup): there it stays in its caller's cgroup, this process's.
 */
export function sharedCgroups(planned: CgroupState, own: CgroupState): { v1: Record<string, string>; v2?: string } {
  const missing = Object.keys(planned.v1).some((c) => own.v1[c] === undefined) || (planned.v2 !== undefined && own.v2 === undefined);
  if (!missing) return { v1: {} };
  const mine = ownDirs(findHierarchies(parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"))), parseProcSelfCgroup(readFileSync("/proc/self/cgroup", "utf8")));
  const v1: Record<string, string> = {};
  for (const c of Object.keys(planned.v1)) if (own.v1[c] === undefined && mine.v1[c] !== undefined) v1[c] = mine.v1[c]!;
  return planned.v2 !== undefined && own.v2 === undefined && mine.v2 !== undefined ? { v1, v2: mine.v2 } : { v1 };
}


/**
 * linux.resources.unified keys this host's cgroup v2 cannot have, found before anything is made:
 * a key belongs to the controller its name starts with, which must be one cgroup v2 manages here
 * (not one a v1 hierarchy holds, as on hybrid hosts), unless it is a core file ("cgroup.*", or
 * one every cgroup2 dir has, such as "memory.pressure"). One error line per key, by JSON path.
 */
export function refuseUnavailableUnified(unified: Record<string, string> | undefined, source = "config.json", prefix = "linux.resources."): void {
  const keys = Object.keys(unified ?? {});
  if (keys.length === 0) return;
  const v2 = findHierarchies(parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"))).v2;
  const available = new Set(v2 ? words(readOpt(join(v2.mountPoint, "cgroup.controllers"))) : []);
  const problems: string[] = [];
  for (const key of keys) {
    const controller = key.split(".", 1)[0]!;
    if (v2 && (controller === "cgroup" || available.has(controller) || (!key.includes("/") && existsSync(join(v2.mountPoint, key))))) continue;
    const why = v2 ? `the ${controller} controller is not a cgroup v2 controller on this host (cgroup v2 here has: ${[...available].join(", ") || "none"})` : "this host has no cgroup v2";
    problems.push(`${source}: ${prefix}unified[${JSON.stringify(key)}]: ${why}`);
  }
  if (problems.length) throw new TsrunError(problems.join("\n"));
}

/** The dirs mkdir -p would make for dir, parents first. */
function missingDirs(dir: string): string[] {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  return missing;
}

/**
 * The planned state with `claimed` set to the dirs that do not exist yet (no filesystem
 * changes). Record this before createCgroup, so that a create killed inside it can be undone.
 */
export function claimCgroup(state: CgroupState): CgroupState {
  const claimed: string[] = [];
  for (const d of dirsOf(state)) for (const m of missingDirs(d)) if (!claimed.includes(m)) claimed.push(m);
  return { ...state, claimed };
}

/** mkdir -p, appending each dir it makes to `created`, parents first. */
function mkdirP(dir: string, created: string[]): void {
  for (let attempt = 0; ; attempt++) {
    const missing = missingDirs(dir);
    let current = dir;
    try {
      for (const d of missing) {
        current = d;
        try {
          mkdirSync(d, 0o755);
          created.push(d);
        } catch (e) {
          if (errCode(e) !== "EEXIST") throw e;
        }
      }
      return;
    } catch (e) {
      // Another container's delete removed a shared parent (/tsrun) between our check and mkdir.
      if (errCode(e) === "ENOENT" && attempt < 10) continue;
      throw new TsrunError(`cgroup: mkdir ${current}: ${errText(e)}`);
    }
  }
}

function readProcs(dir: string): number[] {
  return words(readOpt(join(dir, "cgroup.procs"))).map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

/** The cgroups directly below dir (none when dir is gone). */
function childCgroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name));
  } catch (e) {
    if (errCode(e) === "ENOENT") return [];
    throw new TsrunError(`cgroup: read ${dir}: ${errText(e)}`);
  }
}

/** The pids in dir and all its descendant cgroups. */
function treePids(dir: string, out: Set<number>): void {
  for (const p of readProcs(dir)) out.add(p);
  for (const child of childCgroups(dir)) treePids(child, out);
}

function sortedPids(dirs: string[]): number[] {
  const set = new Set<number>();
  for (const d of dirs) treePids(d, set);
  return [...set].sort((a, b) => a - b);
}

/** v1 cpuset dirs start with empty cpus/mems, and a task cannot join such a cpuset: inherit the parent's. */
function initCpuset(leaf: string): void {
  const chain: string[] = [];
  for (let d = leaf; ; d = dirname(d)) {
    const cpus = readOpt(join(d, "cpuset.cpus"));
    const mems = readOpt(join(d, "cpuset.mems"));
    if (cpus === undefined || mems === undefined) break; // above the hierarchy's root
    if (cpus.trim() && mems.trim()) break;
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of chain) {
    for (const f of ["cpuset.cpus", "cpuset.mems"]) {
      if (readOpt(join(d, f))?.trim()) continue;
      const parent = readOpt(join(dirname(d), f))?.trim();
      if (parent) writeFile(join(d, f), parent);
    }
  }
}

/**
 * Enables controllers in cgroup.subtree_control of every ancestor of the cgroup2 dir (on hybrid
 * hosts only those that are not in a v1 hierarchy). Failures are left for the resource writes to
 * report, since only they know whether the controller was needed (runc does the same).
 */
function enableV2Controllers(state: CgroupState): void {
  if (!state.v2) return;
  const inV1 = new Set(Object.keys(state.v1));
  const chain: string[] = [];
  for (let d = dirname(state.v2); existsSync(join(d, "cgroup.controllers")); d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of chain) {
    const on = new Set(words(readOpt(join(d, "cgroup.subtree_control"))));
    for (const c of words(readOpt(join(d, "cgroup.controllers")))) {
      if (inV1.has(c) || on.has(c)) continue;
      try {
        writeRaw(join(d, "cgroup.subtree_control"), `+${c}`);
      } catch {
        // see above
      }
    }
  }
}

/**
 * What destroyCgroup removes once the container's processes are gone, in its order (deepest
 * first): the container's own dirs (leaf: removed with the cgroups made inside them, retried
 * while busy) and the parents it made (removed when empty: a shared parent still used by other
 * containers stays). Only what this container made (runtime.md, delete: resources not created
 * by the container MUST NOT be deleted; runc 1.1 also removes a cgroupsPath the caller made
 * beforehand). The C front end's fast delete follows the same list (src/lifecycle/fast-path.ts).
 */
export function removalOrder(state: CgroupState): { dir: string; leaf: boolean }[] {
  const leaves = new Set(containerLeaves(state));
  const claimed = state.claimed;
  const made = claimed ? [...new Set([...state.created, ...claimed])] : state.created;
  const depth = (p: string): number => p.split("/").length;
  return [...made].sort((a, b) => depth(b) - depth(a)).map((dir) => ({ dir, leaf: leaves.has(dir) }));
}

/** The container's own dirs: of a create killed half-way, only those it claimed. */
function containerLeaves(state: CgroupState): string[] {
  const claimed = state.claimed;
  return claimed ? dirsOf(state).filter((d) => claimed.includes(d)) : dirsOf(state);
}

function rmdirTolerant(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (e) {
    const c = errCode(e);
    if (c !== "ENOENT" && c !== "EBUSY" && c !== "ENOTEMPTY" && c !== "EEXIST") throw new TsrunError(`cgroup: rmdir ${dir}: ${errText(e)}`);
  }
}

/**
 * Removes a container dir and any cgroups made inside it (by the container itself), retrying
 * EBUSY. A process that joined after destroy's kill sweep (a create still in flight placing its
 * init) keeps the dir busy: it is killed too, since everything in the container's dir is its own.
 */
function removeTree(dir: string, deadline: number): void {
  for (const child of childCgroups(dir)) removeTree(child, deadline);
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      const c = errCode(e);
      if (c === "ENOENT") return;
      if (c !== "EBUSY" || Date.now() > deadline) throw new TsrunError(`cgroup: rmdir ${dir}: ${errText(e)}`);
    }
    for (const pid of readProcs(dir)) killPid(pid, SIGKILL);
    sleepMs(delay);
  }
}

/**
 * Makes the container's cgroup dirs and applies `resources`. On any failure removes what it made
 * and throws. Returns the state with `created` filled in. A dir that exists already must hold no
 * process, unless it is in `madeByUnit` (the systemd driver's scope, holding its placeholder).
 */
export function createCgroup(state: CgroupState, resources: Resources | undefined, warn: WarnFn = defaultWarn, madeByUnit: ReadonlySet<string> = new Set()): CgroupState {
  const created: string[] = [];
  const { claimed: _claimed, ...planned } = state;
  const next: CgroupState = { ...planned, v1: { ...state.v1 }, created: [...state.created] };
  const dirs = dirsOf(state);
  try {
    for (const d of dirs) mkdirP(d, created);
    crashPoint("create-cgroup-dirs");
    for (const d of dirs) {
      if (created.includes(d) || madeByUnit.has(d)) continue;
      const n = readProcs(d).length;
      if (n > 0) throw new TsrunError(`cgroup: ${d} is not empty: ${n} process(es) found`);
    }
    // As runc (and in its words): refused at once, rather than an init that never gets to run.
    const frozen = frozenFile(state);
    if (frozen) throw new TsrunError(`container's cgroup unexpectedly frozen (${frozen})`);
    if (state.v1.cpuset) initCpuset(state.v1.cpuset);
    enableV2Controllers(state);
    if (resources) applyResources(next, resources, warn);
  } catch (e) {
    try {
      removeMade({ ...state, created, claimed: undefined }, Date.now() + 1000);
    } catch {
      // the original error is the one to report
    }
    if (e instanceof TsrunError) throw e;
    throw new TsrunError(`cgroup: ${errText(e)}`);
  }
  next.created.push(...created);
  return next;
}

/**
 * exec --cgroup, as runc: `[controller[,controller]:]path`, repeatable; without a controller (then
 * the only one) the path applies to every hierarchy. The process joins that existing sub-cgroup
 * of the container's cgroup instead of the cgroup itself. A path is always below the container's
 * cgroup: a leading "/" is dropped (as runc's path.Join does), and ".." that would climb out of
 * it, or a directory that resolves elsewhere, is refused. Returns the cgroup.procs files to join.
 */
export function subCgroupProcs(state: CgroupState, args: string[]): string[] {
  const subs = new Map<string, string>(); // controller ("" for all) -> path below the container's cgroup
  for (const arg of args) {
    const parts = arg.split(":");
    if (parts.length > 2) throw new TsrunError(`invalid --cgroup argument: ${arg}`);
    const path = parts[parts.length - 1]!;
    const clean: string[] = [];
    for (const c of path.split("/")) {
      if (c === "" || c === ".") continue;
      if (c !== "..") clean.push(c);
      else if (clean.pop() === undefined) throw new TsrunError(`invalid --cgroup argument: ${arg} (it leaves the container's cgroup)`);
    }
    if (parts.length === 1) {
      if (args.length !== 1) throw new TsrunError(`invalid --cgroup argument: ${arg} (missing <controller>: prefix)`);
      subs.set("", clean.join("/"));
      continue;
    }
    for (const controller of parts[0]!.split(",")) {
      if (controller === "") throw new TsrunError(`invalid --cgroup argument: ${arg} (empty <controller> prefix)`);
      if (subs.has(controller)) throw new TsrunError(`invalid --cgroup argument(s): controller ${controller} specified multiple times`);
      subs.set(controller, clean.join("/"));
    }
  }
  // Per directory (controllers sharing a v1 hierarchy share one): where the process goes.
  const target = new Map<string, { sub: string; by: string }>();
  for (const dir of dirsOf(state)) target.set(dir, { sub: subs.get("") ?? "", by: "" });
  for (const [controller, sub] of subs) {
    if (controller === "") continue;
    const dir = state.v1[controller];
    if (dir === undefined) throw new TsrunError(`unknown controller ${controller} in --cgroup`);
    const had = target.get(dir)!;
    if (had.by !== "" && had.sub !== sub) throw new TsrunError(`invalid --cgroup argument(s): controllers ${had.by} and ${controller} share a hierarchy but were given different paths`);
    target.set(dir, { sub, by: controller });
  }
  return [...target].map(([dir, { sub }]) => {
    if (sub === "") return join(dir, "cgroup.procs");
    const want = join(dir, sub);
    let real: string;
    try {
      real = realpathSync(want);
      if (!statSync(real).isDirectory()) throw new TsrunError(`--cgroup: ${want}: not a directory`);
    } catch (e) {
      if (e instanceof TsrunError) throw e;
      throw new TsrunError(`--cgroup: ${want}: ${errText(e)}`);
    }
    const base = realpathSync(dir);
    if (!real.startsWith(base + "/")) throw new TsrunError(`--cgroup: ${want} resolves to ${real}, outside the container's cgroup ${base}`);
    return join(real, "cgroup.procs");
  });
}

/** Whether any of the container's cgroup dirs is still there. */
export function cgroupExists(state: CgroupState): boolean {
  return dirsOf(state).some((d) => existsSync(d));
}

/** Every cgroup.procs file the container's pid must be written to (one per hierarchy). */
export function procsFiles(state: CgroupState): string[] {
  return dirsOf(state).map((d) => join(d, "cgroup.procs"));
}

function dirFor(state: CgroupState, h: Hier, controller: string): string | undefined {
  return h === "v1" ? state.v1[controller] : state.v2;
}

/** What mapResources needs to know of the container's dirs. */
export function hostView(state: CgroupState): HostView {
  const view: HostView = {
    v1: new Set(Object.keys(state.v1)),
    exists: (h, c, f) => {
      const d = dirFor(state, h, c);
      return d !== undefined && existsSync(join(d, f));
    },
    read: (h, c, f) => {
      const d = dirFor(state, h, c);
      return d === undefined ? undefined : readOpt(join(d, f));
    },
  };
  if (state.v2) view.v2 = new Set(words(readOpt(join(state.v2, "cgroup.controllers"))));
  return view;
}

function writePath(state: CgroupState, w: CgroupWrite): string {
  const d = dirFor(state, w.hierarchy, w.controller);
  if (!d) throw new TsrunError(`cgroup: no ${w.hierarchy} directory for ${w.file}`);
  return join(d, w.file);
}

/**
 * Loads a device program and attaches it to a cgroup2 dir in place of the device programs
 * attached there before (a DeviceFilterPlan, given to the helper on its stdin).
 */
export function attachDeviceProgram(dir: string, program: Uint8Array): void {
  // The kernel asks for a license string; the program calls no GPL-only helper.
  const plan = toHelperFrame({ msg: { $case: "deviceFilter", value: { cgroupDir: dir, instructions: program, license: "Apache-2.0" } } });
  const r = runSync(helperExecPath(), ["0"], { input: plan, stdout: "pipe" });
  if (r.error) throw new TsrunError(`cgroup: cannot run tsrun-helper to attach the device program: ${errText(r.error)}`);
  const failure = readEvents(r.stdout).find((e) => e.event?.$case === "failure")?.event;
  if (failure?.$case === "failure") throw new TsrunError(`cgroup: ${failureText(failure.value)}`, { failure: failure.value });
  if (r.status !== 0) throw new TsrunError(`cgroup: tsrun-helper (device filter): ${r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`}`);
}

/** Applies linux.resources (create and `update`). Throws a TsrunError naming the file and value. */
export function applyResources(state: CgroupState, resources: Resources, warn: WarnFn = defaultWarn): void {
  applyWrites(state, mapResources(resources, hostView(state), warn));
}

/** Carries out mapResources' writes in the container's dirs. */
export function applyWrites(state: CgroupState, writes: readonly CgroupWrite[]): void {
  const deferred: CgroupWrite[] = [];
  const check = (w: CgroupWrite, path: string): void => {
    if (!w.verify) return;
    const got = readOpt(path)?.trim();
    if (got !== w.value) throw new TsrunError(`cgroup: write ${w.value} to ${path}: the kernel set ${got ?? "nothing"} instead (value out of range)`);
  };
  for (const w of writes) {
    const path = writePath(state, w);
    if (w.deviceProgram) {
      attachDeviceProgram(dirname(path), w.deviceProgram);
      continue;
    }
    try {
      writeRaw(path, w.value);
    } catch (e) {
      if (w.retry && errCode(e) === "EINVAL") {
        deferred.push(w); // its partner limit has to move first
        continue;
      }
      throw new TsrunError(writeErrorMessage(path, w.value, e));
    }
    check(w, path);
  }
  for (const w of deferred) {
    const path = writePath(state, w);
    writeFile(path, w.value);
    check(w, path);
  }
}

/** Pids of the container: its cgroup2 tree when that holds any, else a v1 hierarchy's tree. */
export function listPids(state: CgroupState): number[] {
  if (state.v2) {
    const pids = sortedPids([state.v2]);
    if (pids.length > 0) return pids;
  }
  for (const c of ["pids", "freezer", "memory", "devices", "cpu"]) {
    const d = state.v1[c];
    if (d) return sortedPids([d]);
  }
  const any = Object.values(state.v1)[0];
  return any ? sortedPids([any]) : [];
}

type Freezer = { kind: "v1"; file: string } | { kind: "v2"; dir: string };

/** The v1 freezer controller where mounted, else cgroup2's cgroup.freeze. */
function freezerOf(state: CgroupState): Freezer | undefined {
  if (state.v1.freezer) return { kind: "v1", file: join(state.v1.freezer, "freezer.state") };
  if (state.v2) return { kind: "v2", dir: state.v2 };
  return undefined;
}

function v2Frozen(dir: string): number | undefined {
  return parseFlatKeyed(readOpt(join(dir, "cgroup.events"))).frozen;
}

/** The file that says whether the container is frozen, as isFrozen() reads it (for the fast path). */
export function freezerProbe(state: CgroupState): { kind: "v1" | "v2"; file: string } | undefined {
  const f = freezerOf(state);
  if (!f) return undefined;
  return f.kind === "v1" ? { kind: "v1", file: f.file } : { kind: "v2", file: join(f.dir, "cgroup.events") };
}

export function isFrozen(state: CgroupState): boolean {
  const f = freezerOf(state);
  if (!f) return false;
  if (f.kind === "v1") return readOpt(f.file)?.trim() === "FROZEN";
  return v2Frozen(f.dir) === 1;
}

const GONE = new Set(["ENOENT", "ENODEV", "ENOTDIR"]);

/**
 * Whether a process placed in the container's cgroups now would be frozen (its own freezer
 * setting or an ancestor's, in the v1 freezer and in cgroup2): the file that says so, or
 * undefined. A helper placing the init there would wait in D state for good.
 */
function frozenFile(state: CgroupState): string | undefined {
  if (state.v1.freezer) {
    const file = join(state.v1.freezer, "freezer.state");
    const s = readOpt(file)?.trim();
    if (s === "FROZEN" || s === "FREEZING") return `${file} is ${s}`;
  }
  if (state.v2) {
    const file = join(state.v2, "cgroup.freeze");
    if (readOpt(file)?.trim() === "1") return `${file} is 1`;
    if (v2Frozen(state.v2) === 1) return `${join(state.v2, "cgroup.events")} says frozen 1`;
  }
  return undefined;
}

/** The file that freezes or thaws the container and what is written to it (for the fast path too). */
export function freezerControl(state: CgroupState, frozen: boolean): { file: string; value: string } | undefined {
  const f = freezerOf(state);
  if (!f) return undefined;
  if (f.kind === "v1") return { file: f.file, value: frozen ? "FROZEN" : "THAWED" };
  return { file: join(f.dir, "cgroup.freeze"), value: frozen ? "1" : "0" };
}

function setFrozen(state: CgroupState, frozen: boolean): void {
  const f = freezerOf(state);
  const control = freezerControl(state, frozen);
  if (!f || !control) throw new TsrunError("cgroup: cannot freeze or thaw: neither the v1 freezer controller nor cgroup2 is available");
  const deadline = Date.now() + FREEZE_TIMEOUT_MS;
  const word = frozen ? "FROZEN" : "THAWED";
  const where = control.file;
  const current =
    f.kind === "v1"
      ? () => readOpt(f.file)?.trim()
      : () => {
          const v = v2Frozen(f.dir);
          return v === undefined ? undefined : v === 1 ? "FROZEN" : "THAWED";
        };
  try {
    writeRaw(where, control.value);
  } catch (e) {
    // A cgroup that is gone (a concurrent delete removed it) holds nothing frozen.
    if (!frozen && GONE.has(errCode(e) ?? "")) return;
    throw new TsrunError(writeErrorMessage(where, word, e));
  }
  for (let i = 1; ; i++) {
    const s = current();
    if (s === word) return;
    if (s === undefined && !frozen) return;
    if (s === undefined) throw new TsrunError(`cgroup: ${where}: the cgroup is gone`);
    if (Date.now() > deadline) {
      if (frozen) {
        try {
          writeRaw(where, f.kind === "v1" ? "THAWED" : "0");
        } catch {
          // reporting the timeout matters more
        }
      }
      throw new TsrunError(`cgroup: ${frozen ? "freezing" : "thawing"} timed out (${where} is ${s})`);
    }
    // A v1 cgroup can stay FREEZING (a task in vfork, say): thaw and ask again now and then, as runc does.
    if (frozen && f.kind === "v1" && i % 25 === 0) {
      writeFile(f.file, "THAWED");
      writeFile(f.file, "FROZEN");
    }
    sleepMs(i < 10 ? 1 : 10);
  }
}

/** Freezes every process of the container and waits until the kernel reports FROZEN. */
export function freeze(state: CgroupState): void {
  setFrozen(state, true);
}

export function thaw(state: CgroupState): void {
  setFrozen(state, false);
}

function killPid(pid: number, signal: number): void {
  try {
    process.kill(pid, signal);
  } catch (e) {
    if (errCode(e) !== "ESRCH") throw new TsrunError(`kill ${pid}: ${errText(e)}`);
  }
}

/**
 * Sends `signal` to every process of the container. SIGKILL uses cgroup.kill where cgroup2 has
 * it; otherwise the cgroup is frozen while the pids are listed and signalled, so nothing forks
 * past the list. A frozen container stays frozen, except for SIGKILL, which needs it thawed
 * to take effect.
 */
export function signalAll(state: CgroupState, signal: number): void {
  const wasFrozen = isFrozen(state);
  if (signal === SIGKILL && state.v2 && existsSync(join(state.v2, "cgroup.kill"))) {
    writeFile(join(state.v2, "cgroup.kill"), "1");
  } else {
    let froze = false;
    if (!wasFrozen && freezerOf(state)) {
      try {
        freeze(state);
        froze = true;
      } catch {
        // signal them anyway
      }
    }
    try {
      for (const pid of listPids(state)) killPid(pid, signal);
    } finally {
      if (froze) thaw(state);
    }
  }
  if (signal === SIGKILL && wasFrozen) thaw(state);
}

/**
 * Kills whatever is left in the container's cgroups, waits until they are empty and removes the
 * dirs this container created, deepest first. Already removed dirs are fine: idempotent.
 * A state still holding `claimed` (a create killed before its cgroup was complete) owns only
 * the claimed dirs: those are emptied and removed, whether or not `created` got recorded.
 */
export function destroyCgroup(state: CgroupState): void {
  const dirs = containerLeaves(state).filter((d) => existsSync(d));
  const deadline = Date.now() + DESTROY_TIMEOUT_MS;
  if (dirs.length > 0) {
    // Frozen v1 tasks do not act on SIGKILL until thawed.
    const f = freezerOf(state);
    if (f && dirs.includes(f.kind === "v1" ? dirname(f.file) : f.dir)) {
      try {
        if (f.kind === "v1") writeRaw(f.file, "THAWED");
        else writeRaw(join(f.dir, "cgroup.freeze"), "0");
      } catch {
        // gone already, or no freezer file: nothing to thaw
      }
    }
    const killFile = state.v2 && dirs.includes(state.v2) && existsSync(join(state.v2, "cgroup.kill")) ? join(state.v2, "cgroup.kill") : undefined;
    for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
      const pids = sortedPids(dirs);
      if (pids.length === 0) break;
      if (Date.now() > deadline) {
        throw new TsrunError(`cgroup: process(es) ${pids.slice(0, 8).join(" ")}${pids.length > 8 ? " ..." : ""} still in the container's cgroup after SIGKILL`);
      }
      if (killFile) {
        try {
          writeRaw(killFile, "1");
        } catch {
          // the per-pid kills below still run
        }
      }
      for (const pid of pids) killPid(pid, SIGKILL);
      sleepMs(delay);
    }
  }
  removeMade(state, deadline);
}

function removeMade(state: CgroupState, deadline: number): void {
  for (const { dir, leaf } of removalOrder(state)) {
    if (leaf) removeTree(dir, deadline);
    else rmdirTolerant(dir);
  }
}

function source(state: CgroupState, v1Name: string, v2File: string): StatSource | undefined {
  const d = state.v1[v1Name];
  if (d) return { h: "v1", dir: d };
  if (state.v2 && existsSync(join(state.v2, v2File))) return { h: "v2", dir: state.v2 };
  return undefined;
}

/** Usage statistics in runc's `events --stats` shape. */
export function stats(state: CgroupState): Stats {
  const src: StatSources = {};
  const set = <K extends keyof StatSources>(k: K, s: StatSource | undefined): void => {
    if (s) src[k] = s;
  };
  set("cpu", source(state, "cpu", "cpu.stat"));
  if (state.v1.cpuacct) src.cpuacct = { h: "v1", dir: state.v1.cpuacct };
  set("cpuset", source(state, "cpuset", "cpuset.cpus.effective"));
  set("memory", source(state, "memory", "memory.current"));
  set("pids", source(state, "pids", "pids.current"));
  set("blkio", source(state, "blkio", "io.stat"));
  if (state.v1.hugetlb) src.hugetlb = { h: "v1", dir: state.v1.hugetlb };
  else if (state.v2 && words(readOpt(join(state.v2, "cgroup.controllers"))).includes("hugetlb")) src.hugetlb = { h: "v2", dir: state.v2 };
  return readStats(src);
}

/** How many times the kernel's OOM killer killed a process of the container. */
export function oomKillCount(state: CgroupState): number {
  const m = source(state, "memory", "memory.events");
  if (!m) return 0;
  const file = m.h === "v1" ? "memory.oom_control" : "memory.events";
  return parseFlatKeyed(readOpt(join(m.dir, file))).oom_kill ?? 0;
}
