/** A container's record and its live status, as state, list, kill, delete and start see it. */
import { isFrozen } from "../linux/cgroups/index.ts";
import { readRecord, computeStatus, type ContainerRecord, type Status } from "./state-store.ts";

export interface Container {
  record: ContainerRecord;
  status: Status;
}

export function loadContainer(root: string, id: string): Container {
  const record = readRecord(root, id);
  const status = computeStatus(root, record, () => (record.cgroup ? safeIsFrozen(record) : false));
  return { record, status };
}

function safeIsFrozen(record: ContainerRecord): boolean {
  try {
    return isFrozen(record.cgroup!);
  } catch {
    return false;
  }
}

/** The runtime-spec state, with runc's extra fields (rootfs, created, owner). */
export function stateJson(c: Container): Record<string, unknown> {
  const r = c.record;
  return {
    ociVersion: r.ociVersion,
    id: r.id,
    pid: c.status === "stopped" ? 0 : r.pid,
    status: c.status,
    bundle: r.bundle,
    rootfs: r.rootfs,
    created: r.created,
    owner: r.owner,
    ...(r.annotations && Object.keys(r.annotations).length ? { annotations: r.annotations } : {}),
  };
}

/** What `state` prints. */
export function stateText(c: Container): string {
  return JSON.stringify(stateJson(c), null, 2) + "\n";
}
