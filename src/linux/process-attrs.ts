/**
 * config.json process attributes -> plan values: scheduler (sched_setattr), I/O priority
 * (ioprio_set), personality, execCPUAffinity CPU lists, and the LSM labels, which are checked
 * against what this host has enabled as runc checks them.
 */
import { existsSync, readFileSync } from "node:fs";
import { TsrunError } from "../errors.ts";
import { logDebug } from "../log.ts";
import type { Scheduler as PlanScheduler } from "../boundary/gen/helper.ts";
import type { Spec } from "../spec/generated/types.ts";

type ConfigProcess = NonNullable<Spec["process"]>;
type Scheduler = NonNullable<ConfigProcess["scheduler"]>;
type IOPriority = NonNullable<ConfigProcess["ioPriority"]>;
type Personality = NonNullable<NonNullable<Spec["linux"]>["personality"]>;

export const SCHED_POLICIES: Record<string, number> = {
  SCHED_OTHER: 0, SCHED_FIFO: 1, SCHED_RR: 2, SCHED_BATCH: 3, SCHED_ISO: 4, SCHED_IDLE: 5, SCHED_DEADLINE: 6,
};

export const SCHED_FLAGS: Record<string, number> = {
  SCHED_FLAG_RESET_ON_FORK: 0x01, SCHED_FLAG_RECLAIM: 0x02, SCHED_FLAG_DL_OVERRUN: 0x04, SCHED_FLAG_KEEP_POLICY: 0x08,
  SCHED_FLAG_KEEP_PARAMS: 0x10, SCHED_FLAG_UTIL_CLAMP_MIN: 0x20, SCHED_FLAG_UTIL_CLAMP_MAX: 0x40,
};

const IOPRIO_CLASSES: Record<string, number> = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 };
const IOPRIO_CLASS_SHIFT = 13;

/** personality(2) personas: PER_LINUX, PER_LINUX32. */
export const PERSONALITY_DOMAINS: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };

function u64(n: number | undefined): bigint {
  return BigInt(Math.max(0, Math.trunc(n ?? 0)));
}

export function planScheduler(s: Scheduler, prefix: string): PlanScheduler {
  const policy = SCHED_POLICIES[s.policy];
  if (policy === undefined) throw new TsrunError(`config.json: ${prefix}.scheduler.policy: unknown policy ${JSON.stringify(s.policy)}`);
  const nice = s.nice ?? 0;
  if (!Number.isInteger(nice) || nice < -20 || nice > 19) throw new TsrunError(`config.json: ${prefix}.scheduler.nice: invalid scheduler.nice: ${nice}`);
  let flags = 0n;
  for (const [i, f] of (s.flags ?? []).entries()) {
    const bit = SCHED_FLAGS[f];
    if (bit === undefined) throw new TsrunError(`config.json: ${prefix}.scheduler.flags[${i}]: unknown flag ${JSON.stringify(f)}`);
    flags |= BigInt(bit);
  }
  return { policy, nice, priority: s.priority ?? 0, flags, runtime: u64(s.runtime), deadline: u64(s.deadline), period: u64(s.period) };
}

export function planIoPriority(io: IOPriority, prefix: string): number {
  const cls = IOPRIO_CLASSES[io.class];
  if (cls === undefined) throw new TsrunError(`config.json: ${prefix}.ioPriority.class: invalid io priority class: ${io.class}`);
  if (!Number.isInteger(io.priority) || io.priority < 0 || io.priority > 7) {
    throw new TsrunError(`config.json: ${prefix}.ioPriority.priority: must be between 0 and 7 (got ${io.priority})`);
  }
  return (cls << IOPRIO_CLASS_SHIFT) | io.priority;
}

/** As runc: the domain becomes the persona; flags are not supported (runtime-spec: none defined yet) and ignored with a warning. */
export function planPersonality(p: Personality, warn: (msg: string) => void): number {
  const persona = PERSONALITY_DOMAINS[p.domain];
  if (persona === undefined) throw new TsrunError(`config.json: linux.personality.domain: unknown domain ${JSON.stringify(p.domain)}`);
  if (p.flags?.length) warn(`ignoring unsupported personality flags: ${p.flags.join(", ")}`);
  return persona;
}

/** "0-3,7" -> [0, 1, 2, 3, 7] (validated already); undefined or "" -> undefined. */
export function parseCpuList(list: string | undefined): number[] | undefined {
  if (list === undefined || list.trim() === "") return undefined;
  const cpus = new Set<number>();
  for (const part of list.split(",")) {
    const [a, b] = part.trim().split("-").map(Number);
    for (let c = a!; c <= (b ?? a!); c++) cpus.add(c);
  }
  return [...cpus].sort((x, y) => x - y);
}

/** runc's apparmor.IsEnabled(): the securityfs directory exists and the module says "Y". */
export function apparmorEnabled(): boolean {
  if (!existsSync("/sys/kernel/security/apparmor")) return false;
  try {
    return readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").startsWith("Y");
  } catch {
    return false;
  }
}

/** go-selinux's GetEnabled(), near enough: selinuxfs is mounted. */
export function selinuxEnabled(): boolean {
  return existsSync("/sys/fs/selinux/enforce");
}

/**
 * An AppArmor profile (process.apparmorProfile, exec --apparmor): planned when AppArmor is
 * enabled. Where it is not, runc's init fails writing the profile to /proc/self/attr
 * (aa_change_onexec); tsrun fails the same way before anything is started, with runc's message
 * for that case. `where` names the setting: "config.json: process.apparmorProfile".
 */
export function planApparmor(profile: string | undefined, where: string): string | undefined {
  if (!profile) return undefined;
  if (apparmorEnabled()) return profile;
  logDebug(`${where} ${JSON.stringify(profile)}: AppArmor is not enabled on this host (runc's apparmor.IsEnabled() is false)`);
  throw new TsrunError(`${where}: apparmor: config provided but apparmor not supported`);
}

/**
 * An SELinux process label (process.selinuxLabel, exec --process-label): as runc's config
 * validation, an error where SELinux is disabled; labels are not implemented. `where` names the
 * setting: "config.json: process.selinuxLabel".
 */
export function checkSelinuxLabel(label: string | undefined, where: string): void {
  if (!label) return;
  if (!selinuxEnabled()) {
    logDebug(`${where} ${JSON.stringify(label)}: SELinux is not enabled on this host`);
    throw new TsrunError(`${where}: selinux label is specified in config, but selinux is disabled or not supported`);
  }
  throw new TsrunError(`${where}: SELinux process labels are not supported by tsrun`);
}

/** linux.mountLabel: ignored where SELinux is disabled, as runc's label package does. */
export function checkMountLabel(label: string | undefined): void {
  if (!label) return;
  if (!selinuxEnabled()) {
    logDebug(`linux.mountLabel ${JSON.stringify(label)} ignored: SELinux is not enabled on this host (as runc)`);
    return;
  }
  throw new TsrunError("config.json: linux.mountLabel: SELinux mount labels are not supported by tsrun");
}
