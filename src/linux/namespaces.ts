/** The namespace types of the runtime-spec and the kernel's names and flags for them. */
export type NamespaceType = "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup" | "time";

/** The name of each namespace type under /proc/PID/ns. */
export const NS_FILE: Record<NamespaceType, string> = {
  pid: "pid", network: "net", mount: "mnt", ipc: "ipc", uts: "uts", user: "user", cgroup: "cgroup", time: "time",
};

/** CLONE_NEW* flag of each namespace type: the helper passes these straight to clone/setns. */
export const CLONE_FLAGS: Record<NamespaceType, number> = {
  mount: 0x00020000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  network: 0x40000000,
  cgroup: 0x02000000,
  time: 0x00000080,
};

/** The namespace type of a CLONE_NEW* flag (for messages). */
export function namespaceOfFlag(flag: number): NamespaceType | undefined {
  return (Object.keys(CLONE_FLAGS) as NamespaceType[]).find((t) => CLONE_FLAGS[t] === flag);
}

/** A namespace of a config: made new, or joined at path. */
export interface ConfigNamespace {
  type: NamespaceType;
  path?: string;
}
