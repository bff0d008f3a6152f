/** ps: the container's processes, found through its cgroup, shown by the host's ps(1). */
import { TsrunError } from "../errors.ts";
import { runSync } from "../linux/spawn.ts";
import { listPids } from "../linux/cgroups/index.ts";
import { loadContainer } from "./status.ts";
import { hasCgroupDirs } from "../linux/cgroups/rootless.ts";
import { pidsInPidNamespaceOf } from "../linux/proc.ts";

export function containerPids(root: string, id: string): number[] {
  const { record, status } = loadContainer(root, id);
  if (status === "stopped") return [];
  // A rootless container may have no cgroup: its pid namespace holds its processes.
  if (!record.cgroup || !hasCgroupDirs(record.cgroup)) return pidsInPidNamespaceOf(record.pid);
  return listPids(record.cgroup);
}

/** The header and the lines of `ps <psArgs>` whose PID column is one of pids. */
export function psTable(pids: number[], psArgs: string[]): string {
  const r = runSync("ps", psArgs.length ? psArgs : ["-ef"], { stdout: "pipe" });
  if (r.error) throw new TsrunError(`cannot run ps: ${r.error.message}`);
  if (r.status !== 0) throw new TsrunError(`ps ${psArgs.join(" ")} failed: ${r.stderr.trim()}`);
  const [header = "", ...lines] = r.stdout.toString("utf8").split("\n");
  const column = header.trim().split(/\s+/).indexOf("PID");
  if (column < 0) throw new TsrunError(`ps ${psArgs.join(" ")}: its output has no PID column`);
  const wanted = new Set(pids);
  return [header, ...lines.filter((l) => wanted.has(Number(l.trim().split(/\s+/)[column])))].join("\n") + "\n";
}
