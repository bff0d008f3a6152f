/**
 * Device cgroup rules (linux.resources.devices) turned into cgroup v1 devices.allow/deny writes.
 *
 * The v1 controller keeps a default behaviour (allow or deny everything) and a list of exceptions.
 * Writing "a" to devices.allow/deny sets the default and clears the list; a rule that goes against
 * the default adds an exception (merging access bits of an identical type/major:minor); a rule
 * that agrees with the default removes access bits from the exception with *exactly* the same
 * type/major:minor and nothing else. The spec's rules are an ordered list where later rules win.
 *
 * We model the kernel while emitting writes, so the writes produce exactly the spec's meaning:
 * a rule that agrees with the default is written once per narrower exception it covers, and a rule
 * that would have to punch a hole in a wider exception (deny c 1:3 after allow c *:*) cannot be
 * expressed by the kernel and is an error rather than a silently wider permission.
 */
import { TsrunError } from "../../errors.ts";
import type { DeviceRule } from "./resources.ts";

export interface DevRule {
  allow: boolean;
  type: "a" | "b" | "c";
  /** -1: any. */
  major: number;
  minor: number;
  /** A non-empty subset of "rwm", in that order. */
  access: string;
}

export interface DevException {
  type: "b" | "c";
  major: number;
  minor: number;
  access: string;
}

export interface DevState {
  defaultAllow: boolean;
  /** Keyed by "c 1:3". */
  exceptions: Map<string, DevException>;
}

export interface DevWrite {
  file: "devices.allow" | "devices.deny";
  value: string;
}

function num(v: number | undefined, where: string): number {
  if (v === undefined || v === -1) return -1;
  if (!Number.isInteger(v) || v < 0) throw new TsrunError(`${where}: invalid device number ${v}`);
  return v;
}

/**
 * As runc: r, w and m in any order, repeated or not; other characters are ignored (validation
 * warns about them, the spec allows only r, w, m). Without any of r, w, m the rule is an error.
 */
function accessOf(a: string | undefined, where: string): string {
  if (a === undefined) return "rwm";
  const access = ["r", "w", "m"].filter((c) => a.includes(c)).join("");
  if (access === "") throw new TsrunError(`${where}.access: invalid device access ${JSON.stringify(a)} (a non-empty combination of r, w, m)`);
  return access;
}

/** Validates the rules and expands "a" rules that are not "everything" into a "b" and a "c" rule. */
export function normalizeDeviceRules(rules: readonly DeviceRule[]): DevRule[] {
  const out: DevRule[] = [];
  rules.forEach((r, i) => {
    const where = `linux.resources.devices[${i}]`;
    const type = r.type ?? "a";
    if (type !== "a" && type !== "b" && type !== "c") throw new TsrunError(`${where}.type: invalid device type ${JSON.stringify(type)} (a, b or c)`);
    const rule: DevRule = { allow: r.allow === true, type, major: num(r.major, `${where}.major`), minor: num(r.minor, `${where}.minor`), access: accessOf(r.access, where) };
    if (type === "a" && !isEverything(rule)) {
      out.push({ ...rule, type: "b" }, { ...rule, type: "c" });
    } else out.push(rule);
  });
  return out;
}

function isEverything(r: DevRule): boolean {
  return r.type === "a" && r.major === -1 && r.minor === -1 && r.access === "rwm";
}

function n(v: number): string {
  return v === -1 ? "*" : String(v);
}

export function formatDevice(r: { type: string; major: number; minor: number; access: string }): string {
  return `${r.type} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}

function covers(wide: { major: number; minor: number }, narrow: { major: number; minor: number }): boolean {
  return (wide.major === -1 || wide.major === narrow.major) && (wide.minor === -1 || wide.minor === narrow.minor);
}

function intersect(a: string, b: string): string {
  return [...a].filter((c) => b.includes(c)).join("");
}

function union(a: string, b: string): string {
  return ["r", "w", "m"].filter((c) => a.includes(c) || b.includes(c)).join("");
}

/**
 * The writes that take a v1 devices cgroup from any state to the rules' meaning: "a" to
 * devices.deny first (as runc does), then the rules in order. Also returns the resulting state.
 */
export function v1DeviceWrites(rules: readonly DeviceRule[]): { writes: DevWrite[]; final: DevState } {
  const state: DevState = { defaultAllow: false, exceptions: new Map() };
  const writes: DevWrite[] = [{ file: "devices.deny", value: "a" }];
  const fileFor = (allow: boolean): DevWrite["file"] => (allow ? "devices.allow" : "devices.deny");
  for (const r of normalizeDeviceRules(rules)) {
    if (r.type === "a") {
      writes.push({ file: fileFor(r.allow), value: "a" });
      state.defaultAllow = r.allow;
      state.exceptions.clear();
      continue;
    }
    if (r.allow !== state.defaultAllow) {
      writes.push({ file: fileFor(r.allow), value: formatDevice(r) });
      const key = `${r.type} ${n(r.major)}:${n(r.minor)}`;
      const old = state.exceptions.get(key);
      state.exceptions.set(key, { type: r.type, major: r.major, minor: r.minor, access: union(old?.access ?? "", r.access) });
      continue;
    }
    // The rule agrees with the default: take its access away from every exception it covers.
    for (const [key, e] of state.exceptions) {
      if (e.type !== r.type || !covers(r, e)) continue;
      const drop = intersect(e.access, r.access);
      if (!drop) continue;
      writes.push({ file: fileFor(r.allow), value: formatDevice({ ...e, access: drop }) });
      const left = [...e.access].filter((c) => !drop.includes(c)).join("");
      if (left) state.exceptions.set(key, { ...e, access: left });
      else state.exceptions.delete(key);
    }
    for (const e of state.exceptions.values()) {
      if (e.type === r.type && covers(e, r) && intersect(e.access, r.access)) {
        throw new TsrunError(
          `cgroup: device rule "${r.allow ? "allow" : "deny"} ${formatDevice(r)}" cannot be expressed by the cgroup v1 devices controller: it is inside the earlier rule "${state.defaultAllow ? "deny" : "allow"} ${formatDevice(e)}"`,
        );
      }
    }
  }
  return { writes, final: state };
}

/**
 * The state a devices.list text shows, or undefined when it cannot tell: a default-allow list
 * shows only "a *:* rwm", whatever it denies.
 */
export function parseDevicesList(listText: string): DevState | undefined {
  const state: DevState = { defaultAllow: false, exceptions: new Map() };
  for (const line of listText.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const m = /^([abc]) (\*|[0-9]+):(\*|[0-9]+) ([rwm]+)$/.exec(line);
    if (!m || m[1] === "a") return undefined;
    const e: DevException = { type: m[1] as "b" | "c", major: m[2] === "*" ? -1 : Number(m[2]), minor: m[3] === "*" ? -1 : Number(m[3]), access: accessOf(m[4], "devices.list") };
    state.exceptions.set(`${e.type} ${n(e.major)}:${n(e.minor)}`, e);
  }
  return state;
}

/**
 * The writes that take a v1 devices cgroup from `current` (parsed from its devices.list) to
 * `target` with no moment in which a device both allow: runc's minimal transition. Only when the
 * default changes, or the current state cannot be read (a default-allow list), does it start
 * over with "a" (which drops every exception at once); otherwise it takes away the access the
 * target no longer gives, then adds what it gives anew, and a device kept in both keeps its access
 * throughout.
 */
export function v1TransitionWrites(current: DevState | undefined, target: DevState): DevWrite[] {
  const fileFor = (allow: boolean): DevWrite["file"] => (allow ? "devices.allow" : "devices.deny");
  const writes: DevWrite[] = [];
  let old = current?.exceptions ?? new Map<string, DevException>();
  if (current === undefined || current.defaultAllow !== target.defaultAllow) {
    writes.push({ file: fileFor(target.defaultAllow), value: "a" });
    old = new Map();
  }
  const minus = (a: string, b: string): string => [...a].filter((c) => !b.includes(c)).join("");
  for (const [key, e] of old) {
    const dropped = minus(e.access, target.exceptions.get(key)?.access ?? "");
    if (dropped) writes.push({ file: fileFor(target.defaultAllow), value: formatDevice({ ...e, access: dropped }) });
  }
  for (const [key, e] of target.exceptions) {
    const gained = minus(e.access, old.get(key)?.access ?? "");
    if (gained) writes.push({ file: fileFor(!target.defaultAllow), value: formatDevice({ ...e, access: gained }) });
  }
  return writes;
}

/** Whether the rules restrict anything at all (false: the end state is "allow everything"). */
export function devicesRestrict(rules: readonly DeviceRule[]): boolean {
  if (rules.length === 0) return false;
  const { final } = v1DeviceWrites(rules);
  return !(final.defaultAllow && final.exceptions.size === 0);
}
