/** pause and resume: the cgroup freezer (v1 freezer.state, v2 cgroup.freeze). */
import { TsrunError } from "../errors.ts";
import { freeze, thaw } from "../linux/cgroups/index.ts";
import { loadContainer } from "./status.ts";
import { hasCgroupDirs } from "../linux/cgroups/rootless.ts";

/**
 * The C front end's fast pause (resume) wrote the freezer but the kernel did not say frozen
 * (thawed) at once (a v1 cgroup still FREEZING, cgroup2's frozen flag not yet set): it hands the
 * command here, naming it in this variable, and the wait and its words are setFrozen()'s. The
 * container may then already be in the new state: that is this command's own doing, not an error.
 */
export const FRONTEND_FREEZER_ENV = "TSRUN_FRONTEND_WROTE_FREEZER";

function frontendWrote(command: "pause" | "resume"): boolean {
  const v = process.env[FRONTEND_FREEZER_ENV];
  delete process.env[FRONTEND_FREEZER_ENV];
  return v === command;
}

export function pauseContainer(root: string, id: string): void {
  const continued = frontendWrote("pause");
  const { record, status } = loadContainer(root, id);
  if (status !== "running" && !(continued && status === "paused")) {
    throw new TsrunError(status === "paused" ? "container already paused" : "container not running");
  }
  if (!record.cgroup || !hasCgroupDirs(record.cgroup)) {
    throw new TsrunError("container has no cgroup to freeze (a rootless container without a delegated cgroup cannot be paused: docs/rootless.md)");
  }
  freeze(record.cgroup);
}

export function resumeContainer(root: string, id: string): void {
  const continued = frontendWrote("resume");
  const { record, status } = loadContainer(root, id);
  if (status !== "paused" && !(continued && status === "running")) throw new TsrunError("container not paused");
  thaw(record.cgroup!);
}
