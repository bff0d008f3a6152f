/**
 * Which unit properties stand for a container's resources (pure).
 *
 * Limits go to systemd as unit properties where systemd has one, so that systemd, which owns the
 * scope's own cgroup attributes, writes the same value whenever it applies them again; everything
 * is also written to the cgroup files (as runc does), which sets exactly the value asked for and
 * applies what systemd has no property for.
 */
import { TsrunError } from "../../../errors.ts";
import { v1DeviceWrites, formatDevice } from "../devices.ts";
import type { CgroupWrite } from "../map.ts";
import type { DeviceRule } from "../resources.ts";

/** A D-Bus variant as the client marshals it: [signature, value]. */
export type Variant = [string, unknown];
export type UnitProperty = [string, Variant];

/** USEC_INFINITY / "infinity" of systemd's uint64 properties. */
export const INFINITY = "18446744073709551615";

/** A systemd uint64 from a cgroup file value: "max" and -1 are infinity. */
function u64(value: string): string {
  const v = value.trim();
  return v === "max" || v === "-1" ? INFINITY : v;
}

const prop = (name: string, signature: string, value: unknown): UnitProperty => [name, [signature, value]];

/** Bitmask bytes of a cpu or memory node list ("0-3,8"), as AllowedCPUs/AllowedMemoryNodes take it. */
export function listToMask(list: string, where: string): number[] {
  const bits: number[] = [];
  for (const part of list.split(",").map((p) => p.trim())) {
    const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(part);
    if (!m) throw new TsrunError(`${where}: invalid list ${JSON.stringify(list)}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b > 65535) throw new TsrunError(`${where}: invalid list ${JSON.stringify(list)}`);
    for (let i = a; i <= b; i++) bits.push(i);
  }
  const bytes = new Array<number>(bits.length ? Math.floor(Math.max(...bits) / 8) + 1 : 0).fill(0);
  for (const i of bits) bytes[i >> 3]! |= 1 << (i & 7);
  return bytes;
}

/**
 * CPUQuotaPerSecUSec for a quota per period: systemd keeps it as a whole percentage of a CPU,
 * so it is rounded up to the next 10 ms per second (the exact quota is written to the file).
 */
export function quotaPerSec(quota: number, period: number): string {
  if (quota <= 0) return INFINITY;
  const perSec = Math.ceil((quota * 1_000_000) / period);
  return String(Math.ceil(perSec / 10_000) * 10_000);
}

const V1_PROPERTY: Record<string, [string, string]> = {
  "memory.limit_in_bytes": ["MemoryLimit", "t"],
  "cpu.shares": ["CPUShares", "t"],
  "pids.max": ["TasksMax", "t"],
  "blkio.weight": ["BlockIOWeight", "t"],
  "blkio.bfq.weight": ["BlockIOWeight", "t"],
};
const V2_PROPERTY: Record<string, [string, string]> = {
  "memory.max": ["MemoryMax", "t"],
  "memory.high": ["MemoryHigh", "t"],
  "memory.low": ["MemoryLow", "t"],
  "memory.min": ["MemoryMin", "t"],
  "memory.swap.max": ["MemorySwapMax", "t"],
  "cpu.weight": ["CPUWeight", "t"],
  "pids.max": ["TasksMax", "t"],
  "io.weight": ["IOWeight", "t"],
};

const DEFAULT_PERIOD_US = 100_000;

/**
 * The unit properties for a list of cgroup writes (mapResources' output, so the values and the
 * choice of hierarchy are the cgroupfs driver's). currentPeriod gives the cgroup's CFS period
 * when a quota comes without one. Writes systemd has no property for get none.
 */
export function propertiesForWrites(writes: readonly CgroupWrite[], currentPeriod: () => number | undefined): UnitProperty[] {
  const out: UnitProperty[] = [];
  let quota: number | undefined;
  let period: number | undefined;
  let quotaGiven = false;
  for (const w of writes) {
    if (w.deviceProgram) continue;
    const table = w.hierarchy === "v1" ? V1_PROPERTY : V2_PROPERTY;
    const known = table[w.file];
    if (known) {
      if (w.file === "io.weight" && !/^[0-9]+$/.test(w.value.trim())) continue; // a per-device weight
      out.push(prop(known[0], known[1], u64(w.value)));
      continue;
    }
    if (w.hierarchy === "v1" && w.file === "cpu.cfs_quota_us") {
      quota = Number(w.value);
      quotaGiven = true;
    } else if (w.hierarchy === "v1" && w.file === "cpu.cfs_period_us") {
      period = Number(w.value);
    } else if (w.hierarchy === "v2" && w.file === "cpu.max") {
      const [q, p] = w.value.trim().split(/\s+/);
      quota = q === "max" ? -1 : Number(q);
      quotaGiven = true;
      if (p !== undefined) period = Number(p);
    } else if (w.hierarchy === "v2" && (w.file === "cpuset.cpus" || w.file === "cpuset.mems")) {
      const name = w.file === "cpuset.cpus" ? "AllowedCPUs" : "AllowedMemoryNodes";
      out.push(prop(name, "ay", listToMask(w.value, `linux.resources.cpu.${w.file === "cpuset.cpus" ? "cpus" : "mems"}`)));
    }
  }
  if (period !== undefined) out.push(prop("CPUQuotaPeriodUSec", "t", String(period)));
  if (quotaGiven) out.push(prop("CPUQuotaPerSecUSec", "t", quotaPerSec(quota!, period ?? currentPeriod() ?? DEFAULT_PERIOD_US)));
  return out;
}

/**
 * DevicePolicy and DeviceAllow for device rules (with the default devices' rules already added),
 * so that systemd, which applies the scope's device policy itself, applies the same one: strict
 * with the resulting allow list; auto and no list for "allow everything". What systemd cannot
 * express is refused rather than widened or narrowed behind the caller's back.
 */
export function deviceProperties(rules: readonly DeviceRule[]): UnitProperty[] {
  const { final } = v1DeviceWrites(rules);
  if (final.defaultAllow) {
    if (final.exceptions.size > 0) {
      const first = [...final.exceptions.values()][0]!;
      throw new TsrunError(
        `linux.resources.devices: systemd cannot express a device deny list ("allow all but ${formatDevice(first)}"): list the devices to allow instead, or use the cgroupfs driver (without --systemd-cgroup)`,
      );
    }
    return [prop("DevicePolicy", "s", "auto"), prop("DeviceAllow", "a(ss)", [])];
  }
  const allow: [string, string][] = [];
  for (const e of final.exceptions.values()) {
    const kind = e.type === "c" ? "char" : "block";
    let path: string;
    if (e.major === -1 && e.minor === -1) path = `${kind}-*`;
    else if (e.minor === -1) path = `${kind}-${e.major}`;
    else if (e.major === -1) {
      throw new TsrunError(
        `linux.resources.devices: systemd cannot express the rule "allow ${formatDevice(e)}" (any major number, one minor number): name the major number, or use the cgroupfs driver (without --systemd-cgroup)`,
      );
    } else path = `/dev/${kind}/${e.major}:${e.minor}`;
    allow.push([path, e.access]);
  }
  // The empty list first: it clears what an earlier assignment (an update) left.
  return [prop("DevicePolicy", "s", "strict"), prop("DeviceAllow", "a(ss)", []), prop("DeviceAllow", "a(ss)", allow)];
}

/** The properties every container scope starts with (runc's set, plus CollectMode). */
export function scopeProperties(opts: { id: string; slice: string; pid: number; unified: boolean }): UnitProperty[] {
  return [
    prop("Description", "s", `tsrun container ${opts.id}`),
    prop("Slice", "s", opts.slice),
    prop("PIDs", "au", [opts.pid]),
    prop("Delegate", "b", true),
    prop("MemoryAccounting", "b", true),
    prop("CPUAccounting", "b", true),
    prop(opts.unified ? "IOAccounting" : "BlockIOAccounting", "b", true),
    prop("TasksAccounting", "b", true),
    prop("DefaultDependencies", "b", false),
    // A scope that failed is removed too once stopped: delete leaves no unit behind.
    prop("CollectMode", "s", "inactive-or-failed"),
  ];
}
