/**
 * Whether a directory named in a container's record may be treated as that container's cgroup:
 * a normalized path on a cgroup filesystem, below that hierarchy's root. delete kills what is in
 * the cgroup and removes the dir, so a damaged or edited state.json naming a hierarchy root (or
 * a directory that is no cgroup at all) must not make it kill every process on the host.
 * A dir that no longer exists passes: there is nothing left to act on.
 */
import { statSync, statfsSync } from "node:fs";
import { dirname, normalize } from "node:path";

const CGROUP_SUPER_MAGIC = 0x27e0eb;
const CGROUP2_SUPER_MAGIC = 0x63677270;

/** The device of each parent dir seen: every container's dirs share a few parents (`list`). */
const parentDevs = new Map<string, number>();

export function isContainerCgroupDir(dir: string): boolean {
  if (!dir.startsWith("/") || normalize(dir) !== dir || dir.endsWith("/")) return false;
  let fsType: number;
  let dev: number;
  try {
    fsType = Number(statfsSync(dir).type);
    dev = statSync(dir).dev;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT";
  }
  if (fsType !== CGROUP_SUPER_MAGIC && fsType !== CGROUP2_SUPER_MAGIC) return false;
  // The root of a hierarchy is a mount point: its parent is on another filesystem.
  const parent = dirname(dir);
  let parentDev = parentDevs.get(parent);
  if (parentDev === undefined) parentDevs.set(parent, (parentDev = statSync(parent).dev));
  return parentDev === dev;
}
