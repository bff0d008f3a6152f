/**
 * `tsrun features` (runtime-spec 1.3.0 features.md, features-linux.md): built from the same
 * tables the code uses, so it cannot claim more than the build does. Extend it in the same change
 * that adds a feature. Like the spec asks, it says what this build implements, not what the host
 * offers: apparmor is true (profiles are applied where AppArmor is enabled, refused where not),
 * intelRdt is true (applied where resctrl is mounted, refused where not).
 */
import { MOUNT_OPTIONS } from "./mount-options.ts";
import { CAPABILITIES } from "./capabilities.ts";
import { SPEC_VERSION, VERSION } from "../version.ts";
import { HOOK_NAMES } from "../spec/constants.ts";
import type { NamespaceType } from "./namespaces.ts";
import { SECCOMP_FEATURES } from "./seccomp-plan.ts";
import { MPOL_FLAGS, MPOL_MODES } from "./mempolicy.ts";
import type { MemoryPolicyFlag, MemoryPolicyMode } from "../spec/generated/types.ts";

export const SUPPORTED_NAMESPACES: NamespaceType[] = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"];

/** Hooks run by this build (src/lifecycle/hooks.ts, helper/hooks.c), in lifecycle order. */
export const SUPPORTED_HOOKS: string[] = [...HOOK_NAMES];

/**
 * config.json annotations that change what tsrun does (features.md: potentiallyUnsafeConfigAnnotations,
 * a trailing "." meaning a prefix). tsrun reads none: annotations only pass through to the state
 * and the hooks.
 */
export const BEHAVIOUR_ANNOTATIONS: string[] = [];

/** The features document; libseccompVersion is the library the helper runs with (absent when unknown). */
export function features(libseccompVersion?: string): Record<string, unknown> {
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
      apparmor: { enabled: true },
      // process.selinuxLabel, exec --process-label and linux.mountLabel are refused where SELinux is enabled.
      selinux: { enabled: false },
      intelRdt: { enabled: true, schemata: true, monitoring: true },
      memoryPolicy: { modes: Object.keys(MPOL_MODES).sort() as MemoryPolicyMode[], flags: Object.keys(MPOL_FLAGS).sort() as MemoryPolicyFlag[] },
      mountExtensions: { idmap: { enabled: true } },
      netDevices: { enabled: true },
    },
    annotations: {
      "io.github.tsrun.version": VERSION,
      ...(libseccompVersion ? { "io.github.seccomp.libseccomp.version": libseccompVersion } : {}),
    },
    potentiallyUnsafeConfigAnnotations: BEHAVIOUR_ANNOTATIONS,
  };
}

/** What `tsrun features` prints (frontend/tsrun.c prints the same, made from this at build time). */
export function featuresText(libseccompVersion?: string): string {
  return JSON.stringify(features(libseccompVersion), null, 2) + "\n";
}
