/**
 * The one place that decides which cgroup driver a container has: the systemd driver when
 * create was given --systemd-cgroup (and, after that, when its record names a systemd unit),
 * else the cgroupfs driver. Only these steps differ; everything done inside the container's dirs
 * (placing processes, freeze, signals, stats) is the same cgroupfs code for both.
 *
 * The systemd driver's modules (and its D-Bus client) are imported only for its containers.
 */
import { applyResources, createCgroup, destroyCgroup, planCgroup } from "./index.ts";
import type { Resources } from "./resources.ts";
import type { CgroupState, WarnFn } from "./types.ts";

export function usesSystemd(state: CgroupState): boolean {
  return state.systemd !== undefined;
}

/**
 * Where the container's cgroup will be, before anything is made. rootless: the caller has no
 * privileges (cgroupfs: runc's rootless default path; systemd: the caller's own manager).
 */
export async function planContainerCgroup(opts: { id: string; cgroupsPath?: string; systemd: boolean; rootless?: boolean; unprivileged?: boolean }): Promise<CgroupState> {
  if (!opts.systemd) return planCgroup({ id: opts.id, cgroupsPath: opts.cgroupsPath, rootless: opts.rootless });
  const { planScope } = await import("./systemd/unit.ts");
  return planScope({ id: opts.id, cgroupsPath: opts.cgroupsPath, userManager: opts.unprivileged === true });
}

export interface MadeCgroup {
  state: CgroupState;
  /** Call once the container's init is in its cgroup (or create failed): nothing else is kept for it. */
  release(): Promise<void>;
}

/**
 * Makes the planned cgroup and applies resources. save(state) records a state that delete must
 * know about before the next step; on failure the caller destroys the last one saved.
 */
export async function makeContainerCgroup(
  planned: CgroupState,
  opts: { id: string; resources: Resources | undefined; warn: WarnFn; save(state: CgroupState): void },
): Promise<MadeCgroup> {
  if (!usesSystemd(planned)) return { state: createCgroup(planned, opts.resources, opts.warn), release: async () => {} };
  const { startScope } = await import("./systemd/manager.ts");
  return startScope(planned, opts);
}

export async function updateContainerCgroup(state: CgroupState, resources: Resources, warn: WarnFn): Promise<void> {
  if (!usesSystemd(state)) return applyResources(state, resources, warn);
  const { updateScope } = await import("./systemd/manager.ts");
  await updateScope(state, resources, warn);
}

export async function destroyContainerCgroup(state: CgroupState): Promise<void> {
  if (!usesSystemd(state)) return destroyCgroup(state);
  const { destroyScope } = await import("./systemd/manager.ts");
  await destroyScope(state);
}
