/** Types shared by the cgroup modules (kept apart so the pure modules do not import index.ts). */

export interface CgroupState {
  version: "v1" | "v2" | "hybrid";
  /**
   * v1: controller -> absolute dir (memory -> /sys/fs/cgroup/memory/tsrun/ID); one entry per
   * controller of every mounted v1 hierarchy, named hierarchies too ("name=systemd"). Controllers
   * sharing a hierarchy (cpu,cpuacct) map to the same dir.
   */
  v1: Record<string, string>;
  /** The cgroup2 dir when a cgroup2 hierarchy is mounted, else undefined. */
  v2?: string;
  /** Dirs this container created, parents before children; removed deepest first. */
  created: string[];
  /**
   * Set from claimCgroup until createCgroup returns: the dirs that did not exist when the create
   * began (the container's dirs and missing parents, parents first). A create killed half-way
   * leaves this in its record; destroyCgroup then kills and removes only these (never a dir
   * that was there before, which may hold another container's processes).
   */
  claimed?: string[];
  /**
   * The systemd driver's unit (--systemd-cgroup): recorded before the unit is started, so that
   * a create killed half-way leaves its name for delete. Its cgroup dirs (v1, v2) are known
   * once systemd has made them; `created` then holds only the dirs tsrun made itself (in the
   * hierarchies systemd does not manage), and systemd removes its own when the unit stops.
   */
  systemd?: SystemdUnit;
}

export interface SystemdUnit {
  /** The scope, "prefix-name.scope". */
  unit: string;
  /** The slice it is in ("system.slice"). */
  slice: string;
  /** The manager's private socket: /run/systemd/private, or a user manager's. */
  socket: string;
  /**
   * Set once this container's create has started the unit. Until then the name may be another
   * container's unit (StartTransientUnit refuses a name in use): a failed create must not touch it.
   */
  started?: boolean;
}

/** Called with a one-line message for a setting that is skipped rather than applied. */
export type WarnFn = (message: string) => void;
