// The realistic runc-like config.json that the tests, the conformance suite and the benchmarks
// all start from: `runc spec`'s shape with containerd's capability set, a /tmp tmpfs (so a
// read-only root still has a writable place), the cgroup namespace and a deny-all device cgroup.
// It imports nothing from any harness, so bench/ and conformance/ can use it as they are.
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from "../../src/spec/defaults.ts";

/** The capability set runc and containerd give a container by default. */
export const DEFAULT_CAPS = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

export const DEFAULT_NAMESPACES = ["pid", "network", "ipc", "uts", "mount", "cgroup"];

export interface RuncLikeOptions {
  ociVersion: string;
  rootfs: string;
  args: string[];
  hostname: string;
  /** Appended to PATH (and TERM, when term is set). */
  env: string[];
  term?: boolean;
  maskedPaths?: readonly string[];
}

/**
 * A config.json as a plain object. Deliberately loose (not the generated spec types): tests
 * build invalid configs on purpose, and mutate nested fields without null checks.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ConfigObject = Record<string, any>;

export function runcLikeConfig(o: RuncLikeOptions): ConfigObject {
  return {
    ociVersion: o.ociVersion,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: o.args,
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...(o.term ? ["TERM=xterm"] : []), ...o.env],
      cwd: "/",
      capabilities: {
        bounding: [...DEFAULT_CAPS],
        effective: [...DEFAULT_CAPS],
        permitted: [...DEFAULT_CAPS],
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: o.rootfs, readonly: true },
    hostname: o.hostname,
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: "rwm" }] },
      namespaces: DEFAULT_NAMESPACES.map((type) => ({ type })),
      maskedPaths: [...(o.maskedPaths ?? DEFAULT_MASKED_PATHS)],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
}
