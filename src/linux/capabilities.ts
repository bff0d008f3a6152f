import { readFileSync } from "node:fs";
import { TsrunError } from "../errors.ts";

/** Capability numbers from linux/capability.h, in order. */
export const CAPABILITIES = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
  "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
] as const;

export interface CapabilitySets {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

export interface ResolvedCapabilities {
  bounding: number[];
  effective: number[];
  inheritable: number[];
  permitted: number[];
  ambient: number[];
}

/** The capabilities this process may hand out: its bounding set (CapBnd in /proc/self/status). */
function grantable(): bigint {
  const status = readFileSync("/proc/self/status", "utf8");
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt("0x" + m[1]) : (1n << BigInt(CAPABILITIES.length)) - 1n;
}

/**
 * Names to numbers. An unknown name is skipped with a warning, as the spec allows; a known
 * capability this host cannot grant is an error that names it.
 */
export function resolveCapabilities(sets: CapabilitySets, warn: (msg: string) => void): ResolvedCapabilities {
  let host: bigint | undefined;
  const resolve = (names: string[] | undefined, setName: string): number[] => {
    const out: number[] = [];
    for (const name of names ?? []) {
      const n = (CAPABILITIES as readonly string[]).indexOf(name);
      if (n < 0) {
        warn(`process.capabilities.${setName}: unknown capability ${JSON.stringify(name)} skipped`);
        continue;
      }
      host ??= grantable();
      if (((host >> BigInt(n)) & 1n) === 0n) {
        throw new TsrunError(`process.capabilities.${setName}: ${name} cannot be granted: this host's bounding set lacks it`);
      }
      if (!out.includes(n)) out.push(n);
    }
    return out;
  };
  const inheritable = resolve(sets.inheritable, "inheritable");
  const permitted = resolve(sets.permitted, "permitted");
  // The kernel raises an ambient capability only when it is both inheritable and permitted.
  // runc warns for each one it cannot raise and goes on (`runc spec` lists ambient capabilities
  // without inheritable ones); so does tsrun, before anything runs.
  const ambient = resolve(sets.ambient, "ambient").filter((n) => {
    if (inheritable.includes(n) && permitted.includes(n)) return true;
    warn(`process.capabilities.ambient: can't raise ambient capability ${CAPABILITIES[n]}: operation not permitted (it is not in both the inheritable and the permitted set): skipped`);
    return false;
  });
  return {
    bounding: resolve(sets.bounding, "bounding"),
    effective: resolve(sets.effective, "effective"),
    inheritable,
    permitted,
    ambient,
  };
}
