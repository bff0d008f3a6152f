/**
 * A namespace "joined" by path may be tsrun's own, that is the host's (/proc/self/ns/uts, or
 * /proc/1/ns/net). Settings the config gives for such a namespace would change the host: a
 * hostname, a network sysctl, the rootfs set up (pivot_root) in the host's mount namespace. tsrun
 * refuses them (runc only checks network sysctls).
 */
import { statSync } from "node:fs";
import { TsrunError } from "../errors.ts";
import { NS_FILE, type ConfigNamespace, type NamespaceType } from "./namespaces.ts";

/** The namespace this process is in is the one at path (same device and inode). */
function isOwnNamespace(type: NamespaceType, path: string): boolean {
  try {
    const joined = statSync(path);
    const own = statSync(`/proc/self/ns/${NS_FILE[type]}`);
    return joined.ino === own.ino && joined.dev === own.dev;
  } catch {
    return false; // a missing path is reported by the helper when it tries to join
  }
}

/** Which namespace a sysctl belongs to, for the keys the kernel namespaces (as runc's list). */
function sysctlNamespace(key: string): NamespaceType | undefined {
  if (key.startsWith("net.")) return "network";
  if (key === "kernel.hostname" || key === "kernel.domainname") return "uts";
  if (/^kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)$/.test(key) || key.startsWith("fs.mqueue.")) return "ipc";
  return undefined;
}

export function refuseHostNamespaceSettings(
  namespaces: ConfigNamespace[],
  settings: { hostname?: string; domainname?: string; sysctl?: Record<string, string>; netDevices?: string[] },
): void {
  const host = (type: NamespaceType): string | undefined => {
    const ns = namespaces.find((n) => n.type === type);
    return ns?.path && isOwnNamespace(type, ns.path) ? ns.path : undefined;
  };
  const mnt = host("mount");
  if (mnt) {
    // runc sets the rootfs up in a joined mount namespace as in its own: here that would pivot
    // the host's root away from under every process of the host.
    const i = namespaces.findIndex((n) => n.type === "mount");
    throw new TsrunError(`config.json: linux.namespaces[${i}].path: the mount namespace ${mnt} is the host's own: the container's root would replace the host's (leave "mount" out to run without a mount namespace)`);
  }
  const uts = host("uts");
  for (const field of ["hostname", "domainname"] as const) {
    if (settings[field] !== undefined && uts) {
      throw new TsrunError(`config.json: ${field}: the UTS namespace ${uts} is the host's own: setting it would change the host's ${field}`);
    }
  }
  for (const key of Object.keys(settings.sysctl ?? {})) {
    const type = sysctlNamespace(key);
    const path = type && host(type);
    if (path) throw new TsrunError(`config.json: linux.sysctl["${key}"]: the ${type} namespace ${path} is the host's own: setting it would change the host`);
  }
  const net = host("network");
  const [device] = settings.netDevices ?? [];
  if (device !== undefined && net) {
    throw new TsrunError(`config.json: linux.netDevices["${device}"]: the network namespace ${net} is the host's own: the device would stay where it is`);
  }
}
