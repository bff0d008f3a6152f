/** Removing what create made: the processes, the cgroup, the state directory. Idempotent. */
import { destroyContainerCgroup } from "../linux/cgroups/driver.ts";
import { destroyIntelRdt } from "../linux/resctrl.ts";
import { isSameLiveProcess, sleepMs } from "../linux/proc.ts";
import { TsrunError, errnoText } from "../errors.ts";
import { removeContainerDir, type ContainerRecord } from "./state-store.ts";
import { crashPoint } from "./crash-point.ts";

/** SIGKILL the init (only if it is still the process we started) and wait until it is gone. */
export function killInit(record: ContainerRecord): void {
  if (!isSameLiveProcess(record.pid, record.pidStartTime)) return;
  try {
    process.kill(record.pid, "SIGKILL");
  } catch {
    return;
  }
  for (let i = 0; i < 2000 && isSameLiveProcess(record.pid, record.pidStartTime); i++) sleepMs(i < 50 ? 1 : 10);
}

/**
 * Kills what is left, removes the cgroup and the Intel RDT groups tsrun made, then the state
 * directory. If one of them cannot be removed the state directory stays, so that a later
 * `delete --force` can finish the job.
 */
export async function destroyContainer(root: string, record: ContainerRecord): Promise<void> {
  killInit(record);
  crashPoint("delete-killed");
  if (record.cgroup) {
    try {
      await destroyContainerCgroup(record.cgroup);
    } catch (err) {
      throw new TsrunError(`cannot remove the cgroup of ${record.id}: ${err instanceof TsrunError ? err.message : errnoText(err)}`);
    }
    crashPoint("delete-cgroup-destroyed");
  }
  if (record.intelRdt) {
    try {
      destroyIntelRdt(record.intelRdt);
    } catch (err) {
      throw new TsrunError(`cannot remove the Intel RDT group of ${record.id}: ${err instanceof TsrunError ? err.message : errnoText(err)}`);
    }
  }
  crashPoint("delete-before-remove-dir");
  removeContainerDir(root, record.id);
}
