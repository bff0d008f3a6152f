/**
 * delete: remove a stopped container. A created container (its init still waiting, no user
 * code run yet) is deleted too, as runc does: containerd deletes created tasks without
 * --force, so refusing it as the spec's letter suggests would break containerd.
 */
import { TsrunError } from "../errors.ts";
import { thaw } from "../linux/cgroups/index.ts";
import { loadContainer } from "./status.ts";
import { destroyContainer } from "./destroy.ts";
import { runPoststopHooks } from "./hooks.ts";

export async function deleteContainer(root: string, id: string, force: boolean): Promise<void> {
  const { record, status } = loadContainer(root, id);
  if (!force && (status === "running" || status === "paused" || status === "creating")) {
    throw new TsrunError(`cannot delete container ${id} that is not stopped: ${status}`);
  }
  if (status === "paused" && record.cgroup) thaw(record.cgroup);
  await destroyContainer(root, record);
  // After the container is gone, before delete returns; failures are only warnings.
  await runPoststopHooks(record);
}
