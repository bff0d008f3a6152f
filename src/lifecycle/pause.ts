/** pause and resume: the cgroup freezer (v1 freezer.state, v2 cgroup.freeze). */
import { TsrunError } from "../errors.ts";
import { freeze, thaw } from "../linux/cgroups/index.ts";
import { loadContainer } from "./status.ts";
import { hasCgroupDirs } from "../linux/cgroups/rootless.ts";

export function pauseContainer(root: string, id: string): void {
  const { record, status } = loadContainer(root, id);
  if (status !== "running") throw new TsrunError(status === "paused" ? "container already paused" : "container not running");
  if (!record.cgroup || !hasCgroupDirs(record.cgroup)) {
    throw new TsrunError("container has no cgroup to freeze (a rootless container without a delegated cgroup cannot be paused: docs/rootless.md)");
  }
  freeze(record.cgroup);
}

export function resumeContainer(root: string, id: string): void {
  const { record, status } = loadContainer(root, id);
  if (status !== "paused") throw new TsrunError("container not paused");
  thaw(record.cgroup!);
}
