/**
 * What create (and run) do differently for a rootless caller (docs/rootless.md): checks that
 * say what to fix before anything is made, the cgroup this user can have, and how the helper
 * gets the user namespace's maps written.
 */
import { TsrunError } from "../errors.ts";
import { ErrorCode } from "../boundary/gen/helper.ts";
import { logDebug } from "../log.ts";
import {
  checkUserNamespacesAllowed, explainUserNsFailure, planIdMapHelpers, rootlessConfigProblems, type IdMapHelpers, type RootlessContext,
} from "../linux/rootless.ts";
import { devicesApplicable, pruneRootlessCgroup, withoutDevices } from "../linux/cgroups/rootless.ts";
import type { CgroupState, Resources } from "../linux/cgroups/index.ts";
import type { Spec } from "../spec/generated/types.ts";

export type { RootlessContext } from "../linux/rootless.ts";

const NO_MAP_HELPERS: IdMapHelpers = { uidMapHelper: "", gidMapHelper: "" };

/**
 * For an unprivileged caller: the config problems it cannot run with (one error line each),
 * whether user namespaces are allowed, and which maps need newuidmap/newgidmap. Privileged
 * callers get {}: the helper writes every map itself.
 */
export function rootlessPreflight(config: Spec, rl: RootlessContext | undefined): IdMapHelpers {
  if (!rl?.unprivileged) return NO_MAP_HELPERS;
  const problems = rootlessConfigProblems(config);
  if (problems.length > 0) throw new TsrunError(problems.join("\n"));
  const userns = config.linux?.namespaces?.find((n) => n.type === "user");
  if (!userns || userns.path) return NO_MAP_HELPERS;
  checkUserNamespacesAllowed();
  const helpers = planIdMapHelpers(config.linux?.uidMappings ?? [], config.linux?.gidMappings ?? [], rl);
  if (helpers.uidMapHelper || helpers.gidMapHelper) logDebug(`rootless: id maps through ${[helpers.uidMapHelper, helpers.gidMapHelper].filter(Boolean).join(" and ")}`);
  return helpers;
}

/** The planned cgroup, less what a rootless container cannot have (or an error saying why it must). */
export function rootlessCgroup(state: CgroupState, config: Spec, rl: RootlessContext | undefined): CgroupState {
  if (!rl?.cgroups) return state;
  const pruned = pruneRootlessCgroup(state, config.linux?.resources, { explicitPath: !!config.linux?.cgroupsPath, uid: rl.euid });
  if (pruned !== state) {
    const kept = [...new Set(Object.values(pruned.v1)), ...(pruned.v2 ? [pruned.v2] : [])];
    logDebug(`rootless: cgroup dirs this user can use: ${kept.length ? kept.join(" ") : "none (the container runs without a cgroup)"}`);
  }
  return pruned;
}

/** The resources create applies: without device rules where they cannot be written (rootless). */
export function rootlessResources(resources: Resources | undefined, rl: RootlessContext | undefined): Resources | undefined {
  if (!rl || devicesApplicable(rl.cgroups, rl.unprivileged, rl.inUserNs)) return resources;
  return withoutDevices(resources);
}

const PERMISSION_ERRNOS = new Set(["EACCES", "EPERM"]);
const EPERM = 1;
const EACCES = 13;
const ENOSPC = 28;

/** A create error as an unprivileged user meets it, with what to do about it. */
export function explainRootlessError(err: unknown, rl: RootlessContext | undefined): unknown {
  if (!rl?.unprivileged || !(err instanceof TsrunError)) return err;
  const m = err.message;
  const who = `tsrun runs as uid ${rl.euid} without privileges`;
  const { access, failure } = err;
  let more: string | undefined;
  if (access && PERMISSION_ERRNOS.has(access.errno)) {
    more = access.what === "state-dir"
      ? `${m} (${who}: set XDG_RUNTIME_DIR to a directory you own, or pass --root DIR)`
      : `${m} (${who}: the bundle directory, its config.json and its rootfs must be readable by this user; copy the bundle into a directory you own)`;
  } else if (failure?.code === ErrorCode.CLONE && [EPERM, EACCES, ENOSPC].includes(failure.errnum)) {
    more = explainUserNsFailure(m);
  } else if (failure && ROOTFS_CODES.has(failure.code) && failure.errnum === EACCES) {
    more = `${m} (${who}: the rootfs and every directory above it must be searchable by this user)`;
  }
  return more === undefined ? err : new TsrunError(more, { exitCode: err.exitCode, ...(failure ? { failure } : {}) });
}

/** The failures of making the rootfs ready, where a directory the user cannot search shows. */
const ROOTFS_CODES: ReadonlySet<ErrorCode> = new Set([ErrorCode.ROOTFS_BIND, ErrorCode.ROOTFS_OPEN, ErrorCode.ROOTFS_PARENT_PRIVATE, ErrorCode.PIVOT_CHDIR_ROOTFS]);
