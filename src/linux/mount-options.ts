/**
 * config.json mount options -> the flags the helper passes to mount(2), mount(2) propagation
 * calls and mount_setattr(2). The table is also what `tsrun features` lists as mountOptions.
 */

export const MS = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, SYNCHRONOUS: 0x10, REMOUNT: 0x20,
  MANDLOCK: 0x40, DIRSYNC: 0x80, NOSYMFOLLOW: 0x100, NOATIME: 0x400, NODIRATIME: 0x800,
  BIND: 0x1000, MOVE: 0x2000, REC: 0x4000, SILENT: 0x8000, UNBINDABLE: 0x20000,
  PRIVATE: 0x40000, SLAVE: 0x80000, SHARED: 0x100000, RELATIME: 0x200000,
  I_VERSION: 0x800000, STRICTATIME: 0x1000000, LAZYTIME: 0x2000000,
} as const;

export const MOUNT_ATTR = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, ATIME_MASK: 0x70, RELATIME: 0x0,
  NOATIME: 0x10, STRICTATIME: 0x20, NODIRATIME: 0x80, IDMAP: 0x100000, NOSYMFOLLOW: 0x200000,
} as const;

const ATIME_FLAGS = MS.NOATIME | MS.RELATIME | MS.STRICTATIME;

type Effect =
  | { kind: "flag"; set: number; clear: number }
  | { kind: "propagation"; flags: number }
  | { kind: "recursive"; set: number; clear: number }
  | { kind: "bind"; recursive: boolean }
  | { kind: "copyup" }
  | { kind: "idmap"; recursive: boolean };

const flag = (set: number, clear = 0): Effect => ({ kind: "flag", set, clear });
const prop = (flags: number): Effect => ({ kind: "propagation", flags });
const rec = (set: number, clear = 0): Effect => ({ kind: "recursive", set, clear });

export const MOUNT_OPTIONS: Record<string, Effect> = {
  defaults: flag(0),
  ro: flag(MS.RDONLY), rw: flag(0, MS.RDONLY),
  nosuid: flag(MS.NOSUID), suid: flag(0, MS.NOSUID),
  nodev: flag(MS.NODEV), dev: flag(0, MS.NODEV),
  noexec: flag(MS.NOEXEC), exec: flag(0, MS.NOEXEC),
  sync: flag(MS.SYNCHRONOUS), async: flag(0, MS.SYNCHRONOUS),
  dirsync: flag(MS.DIRSYNC),
  remount: flag(MS.REMOUNT),
  mand: flag(MS.MANDLOCK), nomand: flag(0, MS.MANDLOCK),
  noatime: flag(MS.NOATIME, ATIME_FLAGS & ~MS.NOATIME), atime: flag(0, MS.NOATIME),
  nodiratime: flag(MS.NODIRATIME), diratime: flag(0, MS.NODIRATIME),
  relatime: flag(MS.RELATIME, ATIME_FLAGS & ~MS.RELATIME), norelatime: flag(0, MS.RELATIME),
  strictatime: flag(MS.STRICTATIME, ATIME_FLAGS & ~MS.STRICTATIME), nostrictatime: flag(0, MS.STRICTATIME),
  nosymfollow: flag(MS.NOSYMFOLLOW), symfollow: flag(0, MS.NOSYMFOLLOW),
  silent: flag(MS.SILENT), loud: flag(0, MS.SILENT),
  iversion: flag(MS.I_VERSION), noiversion: flag(0, MS.I_VERSION),
  lazytime: flag(MS.LAZYTIME), nolazytime: flag(0, MS.LAZYTIME),
  bind: { kind: "bind", recursive: false }, rbind: { kind: "bind", recursive: true },
  // runc's and crun's extension, which podman puts on its tmpfs mounts.
  tmpcopyup: { kind: "copyup" },
  // runtime-spec 1.2: an id-mapped bind mount (mounts[].uidMappings, or the container's user
  // namespace); ridmap maps every mount of an rbind tree, idmap only its top one.
  idmap: { kind: "idmap", recursive: false }, ridmap: { kind: "idmap", recursive: true },
  private: prop(MS.PRIVATE), rprivate: prop(MS.PRIVATE | MS.REC),
  shared: prop(MS.SHARED), rshared: prop(MS.SHARED | MS.REC),
  slave: prop(MS.SLAVE), rslave: prop(MS.SLAVE | MS.REC),
  unbindable: prop(MS.UNBINDABLE), runbindable: prop(MS.UNBINDABLE | MS.REC),
  rro: rec(MOUNT_ATTR.RDONLY), rrw: rec(0, MOUNT_ATTR.RDONLY),
  rnosuid: rec(MOUNT_ATTR.NOSUID), rsuid: rec(0, MOUNT_ATTR.NOSUID),
  rnodev: rec(MOUNT_ATTR.NODEV), rdev: rec(0, MOUNT_ATTR.NODEV),
  rnoexec: rec(MOUNT_ATTR.NOEXEC), rexec: rec(0, MOUNT_ATTR.NOEXEC),
  rnodiratime: rec(MOUNT_ATTR.NODIRATIME), rdiratime: rec(0, MOUNT_ATTR.NODIRATIME),
  rrelatime: rec(MOUNT_ATTR.RELATIME, MOUNT_ATTR.ATIME_MASK), rnorelatime: rec(0, 0),
  rnoatime: rec(MOUNT_ATTR.NOATIME, MOUNT_ATTR.ATIME_MASK), ratime: rec(0, MOUNT_ATTR.NOATIME),
  rstrictatime: rec(MOUNT_ATTR.STRICTATIME, MOUNT_ATTR.ATIME_MASK), rnostrictatime: rec(0, 0),
  rnosymfollow: rec(MOUNT_ATTR.NOSYMFOLLOW), rsymfollow: rec(0, MOUNT_ATTR.NOSYMFOLLOW),
};

export interface MountFlags {
  bind: boolean;
  recursiveBind: boolean;
  flags: number;
  propagation: number[];
  recAttrSet: number;
  recAttrClr: number;
  copyUp: boolean;
  /** "idmap" or "ridmap" was given (the last one wins, as in runc); absent: neither. */
  idmap?: { recursive: boolean };
  /** Options the table does not know go to the filesystem as its data string, as runc does. */
  data: string[];
}

export function parseMountOptions(options: string[] | undefined): MountFlags {
  const out: MountFlags = { bind: false, recursiveBind: false, flags: 0, propagation: [], recAttrSet: 0, recAttrClr: 0, copyUp: false, data: [] };
  for (const option of options ?? []) {
    const effect = Object.hasOwn(MOUNT_OPTIONS, option) ? MOUNT_OPTIONS[option] : undefined;
    if (!effect) {
      out.data.push(option);
      continue;
    }
    switch (effect.kind) {
      case "flag":
        out.flags = (out.flags & ~effect.clear) | effect.set;
        break;
      case "propagation":
        out.propagation.push(effect.flags);
        break;
      case "recursive":
        out.recAttrSet = (out.recAttrSet & ~effect.clear) | effect.set;
        out.recAttrClr = (out.recAttrClr & ~effect.set) | effect.clear;
        break;
      case "bind":
        out.bind = true;
        out.recursiveBind ||= effect.recursive;
        break;
      case "copyup":
        out.copyUp = true;
        break;
      case "idmap":
        out.idmap = { recursive: effect.recursive };
        break;
    }
  }
  return out;
}
