/**
 * The devices every container gets (runtime-spec config-linux.md "Default Devices"), and the
 * device cgroup rules that let it use them, appended after the config's own rules as runc does:
 * a config that denies all devices still gets a working /dev/null, /dev/pts and so on.
 */
import type { DeviceRule } from "./cgroups/resources.ts";

/** A device node as the config describes it (linux.devices[]). */
export interface DeviceNode {
  path: string;
  type: "c" | "b" | "p" | "u";
  major: number;
  minor: number;
  /** Permission bits, without the file type. */
  fileMode: number;
  uid: number;
  gid: number;
}

const chr = (path: string, major: number, minor: number): DeviceNode => ({ path, type: "c", major, minor, fileMode: 0o666, uid: 0, gid: 0 });

// In runc's order: in a user namespace each is a bind mount of the host's node, and the
// container's mount table then lists them as runc's does.
export const DEFAULT_DEVICES: DeviceNode[] = [
  chr("/dev/null", 1, 3),
  chr("/dev/random", 1, 8),
  chr("/dev/full", 1, 7),
  chr("/dev/tty", 5, 0),
  chr("/dev/zero", 1, 5),
  chr("/dev/urandom", 1, 9),
];


// No rule for c 5:1: that number is the host's system console. A container's /dev/console is the
// pty bound over it (c 136:*), so no container needs it; runc 1.1.5 leaves it out too.
export const DEFAULT_DEVICE_RULES: DeviceRule[] = [
  // mknod of any node is allowed (using one still needs its own rule).
  { allow: true, type: "c", access: "m" },
  { allow: true, type: "b", access: "m" },
  ...DEFAULT_DEVICES.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: "rwm" })),
  { allow: true, type: "c", major: 5, minor: 2, access: "rwm" }, // /dev/ptmx
  { allow: true, type: "c", major: 136, access: "rwm" }, // /dev/pts/*
  { allow: true, type: "c", major: 10, minor: 200, access: "rwm" }, // /dev/net/tun
];

/** The config's resources with the default devices' rules after its own. */
export function withDefaultDeviceRules<R extends { devices?: DeviceRule[] }>(resources: R | undefined): R {
  const r = { ...(resources ?? {}) } as R;
  r.devices = [...(r.devices ?? []), ...DEFAULT_DEVICE_RULES];
  return r;
}
