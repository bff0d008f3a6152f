/**
 * The systemd cgroup driver (--systemd-cgroup): systemd makes the container's cgroup, a
 * transient scope with Delegate=yes started over D-Bus; everything done inside the scope's dirs
 * afterwards (placing processes, the freezer, signals, stats, limits systemd has no property
 * for) is the cgroupfs code of ../index.ts, as runc's systemd driver uses its fs code.
 *
 * - The scope is started around a placeholder process (`tsrun-helper --hold`): systemd refuses a
 *   scope without a process, and the container's init must not exist before its cgroups do (the
 *   helper places it in them before it unshares its cgroup namespace). The helper then writes
 *   the init's pid into every dir of the scope, and the placeholder exits (release()).
 * - Hierarchies systemd does not manage (on cgroup v1: cpuset, freezer, net_cls, ...) get a dir
 *   of the same path, made and removed by tsrun, as runc does.
 * - Limits are unit properties where systemd has one (properties.ts) and cgroup file writes
 *   always; update goes through SetUnitProperties and the same writes.
 * - Delete kills what is in the scope, stops the unit and removes what is left: no unit (the
 *   scope is transient and collected even when failed), no cgroup.
 */
import { existsSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { TsrunError } from "../../../errors.ts";
import { logDebug } from "../../../log.ts";
import { helperPath } from "../../helper-path.ts";
import { spawnHeld, type HeldProcess } from "../../spawn.ts";
import { applyWrites, claimCgroup, createCgroup, destroyCgroup, freeze, hostView, isFrozen, thaw } from "../index.ts";
import { readOpt } from "../io.ts";
import { mapResources } from "../map.ts";
import { dirOf, findHierarchies, parseMountinfo } from "../parse.ts";
import type { Resources } from "../resources.ts";
import type { CgroupState, SystemdUnit, WarnFn } from "../types.ts";
import { SystemdBus, SystemdCallError } from "./bus.ts";
import { crashPoint } from "../../../lifecycle/crash-point.ts";
import { deviceProperties, propertiesForWrites, scopeProperties, type UnitProperty } from "./properties.ts";

const SIGKILL = 9;

function unitOf(state: CgroupState): SystemdUnit {
  if (!state.systemd) throw new TsrunError("internal error: not a container of the systemd driver");
  return state.systemd;
}

/** The container's dirs for the unit's cgroup, one per hierarchy mounted here. */
function dirsForUnitCgroup(state: CgroupState, unitCgroup: string): CgroupState {
  const h = findHierarchies(parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8")));
  const v1: Record<string, string> = {};
  for (const hier of h.v1) {
    const dir = dirOf(hier.mountPoint, hier.root, unitCgroup);
    for (const c of hier.controllers) v1[c] = dir;
  }
  const next: CgroupState = { ...state, v1 };
  if (h.v2) next.v2 = dirOf(h.v2.mountPoint, h.v2.root, unitCgroup);
  else delete next.v2;
  return next;
}

function dirsOfState(state: CgroupState): string[] {
  return [...new Set([...Object.values(state.v1), ...(state.v2 ? [state.v2] : [])])];
}

/** The CFS period the container's cgroup has now (for a quota update that names none). */
function currentPeriod(state: CgroupState): number | undefined {
  if (state.v1.cpu) {
    const v = Number(readOpt(join(state.v1.cpu, "cpu.cfs_period_us"))?.trim());
    return Number.isInteger(v) && v > 0 ? v : undefined;
  }
  if (state.v2) {
    const p = readOpt(join(state.v2, "cpu.max"))?.trim().split(/\s+/)[1];
    const v = Number(p);
    return Number.isInteger(v) && v > 0 ? v : undefined;
  }
  return undefined;
}

/**
 * Limits for the scope: SetUnitProperties with what systemd has properties for, then every cgroup
 * file write. While the container runs, new device rules are given to systemd with the container
 * frozen: systemd rewrites a device list by denying everything first.
 */
async function applyScopeResources(bus: SystemdBus, state: CgroupState, resources: Resources, warn: WarnFn, running: boolean): Promise<void> {
  const unit = unitOf(state).unit;
  // The writes decide what is applied (and refuse what this host cannot apply) before systemd
  // is told anything; they are mapped again after it, which reads the dirs as systemd left them.
  const planned = mapResources(resources, hostView(state), () => {});
  const props: UnitProperty[] = propertiesForWrites(planned, () => currentPeriod(state));
  const devices = resources.devices !== undefined && resources.devices.length > 0;
  if (devices) props.push(...deviceProperties(resources.devices!));
  if (props.length > 0) {
    logDebug(`systemd: ${unit}: ${props.map(([n, [, v]]) => `${n}=${JSON.stringify(v)}`).join(" ")}`);
    const freezeFirst = running && devices && !isFrozen(state);
    if (freezeFirst) freeze(state);
    try {
      await bus.setUnitProperties(unit, props);
    } catch (e) {
      if (e instanceof SystemdCallError) throw new TsrunError(`systemd: setting the limits of ${unit}: ${e.message.replace(/^systemd: SetUnitProperties: /, "")}`);
      throw e;
    } finally {
      if (freezeFirst) thaw(state);
    }
  }
  // On cgroup v2 systemd attaches a device program of its own for DevicePolicy; tsrun's replaces
  // it (as runc's does): systemd 252 does not rebuild its program when DeviceAllow changes, so an
  // update of device rules would otherwise not take effect.
  applyWrites(state, mapResources(resources, hostView(state), warn));
}


export interface StartedScope {
  state: CgroupState;
  /** Lets the placeholder go: call once the container's init is in the scope, or create failed. */
  release(): Promise<void>;
}

/**
 * Starts the container's scope and makes its other dirs; applies resources. save(state) is
 * called with each state that must be on record before the next step (delete reads it).
 * On failure the caller's clean-up (destroyScope of the last saved state) removes it all.
 */
export async function startScope(planned: CgroupState, opts: { id: string; resources: Resources | undefined; warn: WarnFn; save(state: CgroupState): void }): Promise<StartedScope> {
  const { unit, slice, socket } = unitOf(planned);
  const bus = await SystemdBus.connect(socket);
  logDebug(`systemd: connected to ${socket}`);
  let holder: HeldProcess | undefined;
  const release = async () => {
    const h = holder;
    holder = undefined;
    await h?.release();
  };
  try {
    holder = spawnHeld(helperPath(), ["--hold"]);
    logDebug(`systemd: placeholder ${holder.pid}`);
    const props = scopeProperties({ id: opts.id, slice, pid: holder.pid, unified: planned.version === "v2" });
    try {
      await bus.startTransientUnit(unit, props);
    } catch (e) {
      if (!(e instanceof SystemdCallError) || !/UnitExists/.test(e.dbusName)) throw e;
      // A failed unit of that name that systemd keeps: let it go once, as runc does.
      await bus.resetFailedUnit(unit);
      try {
        await bus.startTransientUnit(unit, props);
      } catch (again) {
        if (again instanceof SystemdCallError && /UnitExists/.test(again.dbusName)) {
          throw new TsrunError(`systemd: unit ${unit} already exists (another container uses this linux.cgroupsPath, or one that was not deleted)`);
        }
        throw again;
      }
    }
    // Ours from now on. Had tsrun died before this, the placeholder would die with it and systemd
    // would remove the empty scope by itself.
    const started: CgroupState = { ...planned, systemd: { ...unitOf(planned), started: true } };
    opts.save(started);
    crashPoint("create-unit-started");
    logDebug(`systemd: ${unit} on record`);
    const cgroup = await bus.unitControlGroup(unit);
    if (!cgroup) throw new TsrunError(`systemd: unit ${unit} has no cgroup`);
    logDebug(`systemd: ${unit} started, cgroup ${cgroup}`);
    const withDirs = dirsForUnitCgroup(started, cgroup);
    // The dirs systemd made hold the placeholder; the others are made here, and claimed first.
    const madeByUnit = new Set(dirsOfState(withDirs).filter((d) => existsSync(d)));
    const claimed = claimCgroup(withDirs);
    opts.save(claimed);
    let state = createCgroup(claimed, undefined, opts.warn, madeByUnit);
    opts.save(state);
    if (opts.resources) await applyScopeResources(bus, state, opts.resources, opts.warn, false);
    return { state, release };
  } catch (e) {
    await release();
    throw e;
  } finally {
    bus.close();
  }
}

/** update: new limits for a running container of the systemd driver. */
export async function updateScope(state: CgroupState, resources: Resources, warn: WarnFn): Promise<void> {
  const bus = await SystemdBus.connect(unitOf(state).socket);
  try {
    await applyScopeResources(bus, state, resources, warn, true);
  } finally {
    bus.close();
  }
}

function rmdirIfThere(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") throw new TsrunError(`cgroup: rmdir ${dir}: ${(e as Error).message}`);
  }
}

/**
 * Kills everything in the scope, stops the unit and removes every dir: idempotent, and also for
 * a create that died at any point (the unit name is on record before the unit exists).
 */
export async function destroyScope(state: CgroupState): Promise<void> {
  const { unit, socket, started } = unitOf(state);
  // Never started by this container: the unit of that name (if any) is not its to stop.
  if (!started) return destroyCgroup(state);
  const bus = await SystemdBus.connect(socket);
  try {
    // The dirs on record first (this thaws a frozen container, which systemd would not), then
    // whatever else the unit holds (a create that died before its dirs were recorded).
    destroyCgroup(state);
    await bus.killUnit(unit, SIGKILL);
    await bus.stopUnit(unit);
    await bus.resetFailedUnit(unit);
  } finally {
    bus.close();
  }
  // systemd removes its dirs when the unit stops; what is left (deepest first) is removed here.
  for (const d of dirsOfState(state).sort((a, b) => b.length - a.length)) if (existsSync(d)) rmdirIfThere(d);
}
