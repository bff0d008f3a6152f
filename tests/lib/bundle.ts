// OCI bundles for tests: a temp dir with a realistic runc-like config.json.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { realDir, removeAtTeardown, type TestLike } from "./context.ts";
import { copyRootfs, sharedRootfs } from "./rootfs.ts";
import { TAG_ENV, TEST_TAG } from "./tsrun.ts";

/**
 * A config.json as a plain object. Deliberately loose (not the generated spec types): tests
 * build invalid configs on purpose, and mutate nested fields without null checks.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ConfigObject = Record<string, any>;

export interface BundleOptions {
  /** Mutate the base config before it is written. */
  config?: (c: ConfigObject) => void;
  /** process.args; default ["/bin/true"]. */
  args?: string[];
  /**
   * Give the bundle a private writable copy of the rootfs (BUNDLE/rootfs, root.path "rootfs",
   * readonly false). Default: root.path is the shared rootfs, read-only.
   */
  copyRootfs?: boolean;
}

export interface Bundle {
  dir: string;
  configPath: string;
  /** The config as written; change it and call writeConfig(bundle) to rewrite config.json. */
  config: ConfigObject;
}

/** The capability set runc/containerd give a container by default. */
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

/**
 * The base config of every test bundle: runc's `spec` defaults with containerd's capability
 * set, a /tmp tmpfs (so a read-only root still has a writable /tmp), the cgroup namespace, and
 * TSRUN_TEST_TAG in the environment (how the leak checker recognises this file's containers;
 * tests that compare the whole environment should expect it).
 */
export function baseConfig(args: string[] = ["/bin/true"]): ConfigObject {
  return {
    ociVersion: "1.3.0",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", `${TAG_ENV}=${TEST_TAG}`],
      cwd: "/",
      capabilities: {
        bounding: [...DEFAULT_CAPS],
        effective: [...DEFAULT_CAPS],
        permitted: [...DEFAULT_CAPS],
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: sharedRootfs(), readonly: true },
    hostname: "tsrun-test",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: "rwm" }] },
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "cgroup" }],
      maskedPaths: [
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
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}

/**
 * A fresh bundle dir under os.tmpdir() ("tsrun-test-XXXXXX") with config.json written from
 * baseConfig(opts.args) after opts.config. Removed when t ends (after leakCheck looked).
 */
export function makeBundle(t: TestLike, opts: BundleOptions = {}): Bundle {
  const dir = realDir(fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-")));
  removeAtTeardown(t, dir, "bundle");
  // Traversable by the ids a user-namespaced container maps root to.
  fs.chmodSync(dir, 0o711);
  const config = baseConfig(opts.args);
  if (opts.copyRootfs) {
    copyRootfs(path.join(dir, "rootfs"));
    config.root = { path: "rootfs", readonly: false };
  }
  opts.config?.(config);
  const bundle = { dir, configPath: path.join(dir, "config.json"), config };
  writeConfig(bundle);
  return bundle;
}

/** (Re)write bundle.config to bundle.configPath. */
export function writeConfig(bundle: Bundle): void {
  fs.writeFileSync(bundle.configPath, JSON.stringify(bundle.config, null, 2) + "\n");
}
