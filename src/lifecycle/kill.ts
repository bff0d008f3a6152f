/** kill: a signal to the init, or with --all to every process in the container's cgroup. */
import { TsrunError, errnoText } from "../errors.ts";
import { cgroupExists, signalAll, thaw } from "../linux/cgroups/index.ts";
import { loadContainer } from "./status.ts";
import { hasCgroupDirs } from "../linux/cgroups/rootless.ts";
import { pidsInPidNamespaceOf } from "../linux/proc.ts";

const SIGKILL = 9;

export function killContainer(root: string, id: string, signal: number, all: boolean): void {
  const { record, status } = loadContainer(root, id);
  if (all && status === "stopped") {
    // As runc: --all signals what is left in the cgroup of a stopped container (processes that
    // outlived an init without its own pid namespace), and succeeds when nothing is left.
    if (record.cgroup && cgroupExists(record.cgroup)) signalAll(record.cgroup, signal);
    return;
  }
  if (status !== "created" && status !== "running" && status !== "paused") throw new TsrunError("container not running");
  if (all && (!record.cgroup || !hasCgroupDirs(record.cgroup))) {
    // No cgroup (rootless without a delegated one): every process of its pid namespace.
    for (const pid of pidsInPidNamespaceOf(record.pid)) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone already
      }
    }
    return;
  }
  if (all && record.cgroup) {
    signalAll(record.cgroup, signal);
    // A frozen process cannot act on its signal; for SIGKILL let it die now, as runc does.
    if (status === "paused" && signal === SIGKILL) thaw(record.cgroup);
    return;
  }
  try {
    process.kill(record.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") throw new TsrunError("container not running");
    throw new TsrunError(`cannot send signal ${signal} to ${record.pid}: ${errnoText(err)}`);
  }
}
