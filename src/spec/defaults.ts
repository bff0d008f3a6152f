/**
 * The config.json `tsrun spec` writes: runc's `runc spec` (and `runc spec --rootless`),
 * at least as tight. Differences from runc 1.1's output, all tighter or newer:
 *   - ociVersion 1.3.0;
 *   - no inheritable or ambient capabilities (runc 1.1 puts the three defaults in ambient);
 *   - a cgroup namespace only where /sys/fs/cgroup is cgroup v2 (the caller says: cgroupNamespace),
 *     as runc: on cgroup v1 and hybrid hosts the /sys/fs/cgroup mount shows the container's own
 *     cgroups without one;
 *   - /sys/devices/virtual/powercap masked (RAPL energy counters, CVE-2020-8694), as newer
 *     runc and containerd do;
 *   - rootless: no /sys/fs/cgroup mount (an unprivileged user cannot mount cgroupfs there).
 */
import type { Mount, Spec } from "./generated/types.ts";
import { OCI_VERSION } from "./constants.ts";

export const DEFAULT_CAPABILITIES = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"] as const;

export const DEFAULT_MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  "/proc/scsi",
  "/sys/devices/virtual/powercap",
] as const;

export const DEFAULT_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"] as const;

export interface DefaultSpecOptions {
  /** Like `runc spec --rootless`: a user namespace mapping the caller to root, no network namespace. */
  rootless: boolean;
  /** Add a cgroup namespace: runc does on hosts whose /sys/fs/cgroup is cgroup v2 only. */
  cgroupNamespace: boolean;
  /** process.args; ["sh"] when not given. */
  args?: string[];
  /** Host ids mapped to root in the rootless variant; the caller's effective ids when not given. */
  uid?: number;
  gid?: number;
}

export function defaultSpec(opts: DefaultSpecOptions): Spec {
  const caps = (): string[] => [...DEFAULT_CAPABILITIES];
  const mounts: Mount[] = [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      // gid=5 (tty) does not exist in a user namespace that maps a single id.
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", ...(opts.rootless ? [] : ["gid=5"])],
    },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    opts.rootless
      ? // sysfs cannot be mounted without owning the network namespace: bind the host's, read-only.
        { destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"] }
      : { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
  ];
  if (!opts.rootless) {
    mounts.push({
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
    });
  }

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: opts.args && opts.args.length > 0 ? [...opts.args] : ["sh"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      capabilities: { bounding: caps(), effective: caps(), permitted: caps(), inheritable: [], ambient: [] },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: "tsrun",
    mounts,
    linux: {
      namespaces: [
        { type: "pid" },
        ...(opts.rootless ? [] : [{ type: "network" as const }]),
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
        ...(opts.cgroupNamespace ? [{ type: "cgroup" as const }] : []),
        ...(opts.rootless ? [{ type: "user" as const }] : []),
      ],
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
  const linux = spec.linux!;
  if (opts.rootless) {
    const uid = opts.uid ?? process.geteuid?.() ?? 0;
    const gid = opts.gid ?? process.getegid?.() ?? 0;
    linux.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
    linux.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }];
  } else {
    // Deny every device, then the runtime's defaults are allowed on top (as runc spec).
    linux.resources = { devices: [{ allow: false, access: "rwm" }] };
  }
  return spec;
}
