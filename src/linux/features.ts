/**
 * `tsrun features` (runtime-spec features.md): built from the same tables the code uses, so
 * it cannot claim more than the build does. Extend it in the same change that adds a feature.
 */
import { MOUNT_OPTIONS } from "./mount-options.ts";
import { CAPABILITIES } from "./capabilities.ts";
import { SPEC_VERSION } from "../version.ts";
import { HOOK_NAMES } from "../spec/constants.ts";
import type { NamespaceType } from "./launch-plan.ts";
import { SECCOMP_FEATURES } from "./seccomp-plan.ts";

export const SUPPORTED_NAMESPACES: NamespaceType[] = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"];

/** Hooks run by this build (src/lifecycle/hooks.ts, helper/hooks.c), in lifecycle order. */
export const SUPPORTED_HOOKS: string[] = [...HOOK_NAMES];

export function features(): Record<string, unknown> {
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: SPEC_VERSION,
    hooks: SUPPORTED_HOOKS,
    mountOptions: Object.keys(MOUNT_OPTIONS).sort(),
    linux: {
      namespaces: SUPPORTED_NAMESPACES,
      capabilities: [...CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: true, systemdUser: true, rdma: true },
      seccomp: { enabled: true, ...SECCOMP_FEATURES },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: true } },
    },
    annotations: {
      "io.github.tsrun.version": SPEC_VERSION,
    },
  };
}
