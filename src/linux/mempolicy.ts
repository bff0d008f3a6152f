/**
 * linux.memoryPolicy -> set_mempolicy(2)'s arguments (runtime-spec 1.3): the mode and its flags
 * as one number, the node list as a mask of 64-bit words. A node this host does not have is
 * refused here, naming it, rather than left to the kernel's EINVAL.
 */
import { existsSync, readFileSync } from "node:fs";
import { TsrunError } from "../errors.ts";
import type { MemoryPolicy as PlanMemoryPolicy } from "../boundary/gen/helper.ts";
import type { MemoryPolicy, MemoryPolicyFlag, MemoryPolicyMode } from "../spec/generated/types.ts";

/** MPOL_* (linux/mempolicy.h). */
export const MPOL_MODES: Record<MemoryPolicyMode, number> = {
  MPOL_DEFAULT: 0, MPOL_PREFERRED: 1, MPOL_BIND: 2, MPOL_INTERLEAVE: 3, MPOL_LOCAL: 4, MPOL_PREFERRED_MANY: 5, MPOL_WEIGHTED_INTERLEAVE: 6,
};

/** MPOL_F_* mode flags (linux/mempolicy.h). */
export const MPOL_FLAGS: Record<MemoryPolicyFlag, number> = {
  MPOL_F_NUMA_BALANCING: 1 << 13, MPOL_F_RELATIVE_NODES: 1 << 14, MPOL_F_STATIC_NODES: 1 << 15,
};

/** "0-3,7" -> [0, 1, 2, 3, 7] (the validator has checked the syntax). */
export function parseNodeList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const [a, b] = part.split("-").map((x) => Number(x.trim()));
    for (let n = a!; n <= (b ?? a!); n++) out.push(n);
  }
  return [...new Set(out)].sort((x, y) => x - y);
}

/** The NUMA nodes this host has (/sys/devices/system/node/online). */
export function hostNodes(read: (path: string) => string | undefined = readOnline): number[] {
  const text = read("/sys/devices/system/node/online");
  return text === undefined ? [0] : parseNodeList(text.trim());
}

function readOnline(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, "utf8") : undefined;
}

export function planMemoryPolicy(mp: MemoryPolicy | undefined, nodesOfHost: () => number[] = hostNodes): PlanMemoryPolicy | undefined {
  if (!mp) return undefined;
  const nodes = parseNodeList(mp.nodes ?? "");
  // With MPOL_F_RELATIVE_NODES the numbers are relative to the nodes the process may use: any is fine.
  if (!(mp.flags ?? []).includes("MPOL_F_RELATIVE_NODES")) {
    const have = nodesOfHost();
    const missing = nodes.filter((n) => !have.includes(n));
    if (missing.length > 0) {
      throw new TsrunError(
        `config.json: linux.memoryPolicy.nodes: NUMA node${missing.length > 1 ? "s" : ""} ${missing.join(",")} ${missing.length > 1 ? "do" : "does"} not exist on this host (it has ${have.join(",")})`,
      );
    }
  }
  const top = nodes.length ? nodes[nodes.length - 1]! : -1;
  const nodemask: bigint[] = [];
  for (const n of nodes) {
    while (nodemask.length <= Math.floor(n / 64)) nodemask.push(0n);
    nodemask[Math.floor(n / 64)]! |= 1n << BigInt(n % 64);
  }
  return {
    mode: (mp.flags ?? []).reduce((m, f) => m | MPOL_FLAGS[f], MPOL_MODES[mp.mode]),
    nodemask,
    // The kernel reads maxnode-1 bits.
    maxnode: nodes.length ? BigInt(top + 2) : 0n,
  };
}
