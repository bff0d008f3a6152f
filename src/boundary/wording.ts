/**
 * Words for what the helper reports (boundary/helper.proto): every Failure, Warning and hook
 * end becomes text here and nowhere else. The helper sends codes, errno numbers, paths and
 * numbers; the plan it was given lets a message name a mount's source and destination.
 * runc's wording is kept where callers parse it ("executable file not found in $PATH", errno
 * words such as "no such file or directory").
 */
import { CAPABILITIES } from "../linux/capabilities.ts";
import { namespaceOfFlag } from "../linux/namespaces.ts";
import { RLIMITS } from "../linux/rlimits.ts";
import { SECCOMP_ARCHES } from "../linux/seccomp-plan.ts";
import { signalWords } from "../linux/signals.ts";
import { errnoWords } from "./errno.ts";
import { ErrorCode, WarningCode, type CreatePlan, type ExecPlan, type Failure, type HookEnd, type Warning } from "./gen/helper.ts";

const EPERM = 1;
const ENODEV = 19;
const EEXIST = 17;
const EINVAL = 22;
const ENOSYS = 38;
const MS_SLAVE = 0x80000;

type Plan = CreatePlan | ExecPlan | undefined;

function capName(n: number): string {
  return CAPABILITIES[n] ?? `capability ${n}`;
}

function rlimitName(n: number): string {
  return Object.keys(RLIMITS).find((k) => RLIMITS[k] === n) ?? `resource ${n}`;
}

function nsName(flag: number): string {
  return namespaceOfFlag(flag) ?? `namespace 0x${flag.toString(16)}`;
}

function archName(token: number): string {
  return (Object.keys(SECCOMP_ARCHES).find((k) => SECCOMP_ARCHES[k] === token) ?? `0x${token.toString(16)}`).replace(/^SCMP_ARCH_/, "").toLowerCase();
}

function createPlan(plan: Plan): CreatePlan | undefined {
  return plan && "mounts" in plan ? plan : undefined;
}

/** "mount SOURCE on DESTINATION", from the mount the failure names by index. */
function mountName(f: Failure, plan: Plan): string {
  const m = createPlan(plan)?.mounts[Number(f.value)];
  return `${m?.source ?? "?"} on ${m?.destination ?? f.path}`;
}

/** runc's words for a procfs or sysfs mount it will not make. */
function pseudoFs(f: Failure, plan: Plan): string {
  const m = createPlan(plan)?.mounts[Number(f.value)];
  return `error mounting "${m?.source ?? "?"}" to rootfs at "${m?.destination ?? f.path}"`;
}

const S_IFMT_NAMES: Record<number, string> = { 0o140000: "a socket", 0o120000: "a symlink", 0o100000: "a regular file", 0o060000: "a block device", 0o040000: "a directory", 0o020000: "a character device", 0o010000: "a fifo" };

/** What DEVICE_OCCUPIED's value says is there: "a character device 1:5", "a regular file". */
function nodeKind(v: bigint): string {
  const fmt = Number(v >> 32n);
  const name = S_IFMT_NAMES[fmt] ?? `a file of type 0o${fmt.toString(8)}`;
  return fmt === 0o020000 || fmt === 0o060000 ? `${name} ${Number((v >> 20n) & 0xfffn)}:${Number(v & 0xfffffn)}` : name;
}

function idmapped(f: Failure, plan: Plan, what: string): string {
  return `idmapped mount ${mountName(f, plan)}: ${what}`;
}

function mapHelper(f: Failure, file: string): string {
  const how = f.detail.trim().replace(/\s+/g, " ") || (f.errnum ? `cannot run it: ${errnoWords(f.errnum)}` : "");
  if (how) return `write ${file} with ${f.path}: ${how}`;
  const v = Number(f.value);
  return `write ${file} with ${f.path}: ${v > 128 ? `killed by signal ${v - 128}` : `exit status ${v}`}`;
}

/** What the errno adds to a message; some errnos need a word on what to do. */
const IDMAP_HINTS: Partial<Record<number, string>> = {
  [EPERM]: " (the source is already an idmapped mount, or its filesystem belongs to another user namespace)",
  [ENOSYS]: " (the kernel has no mount_setattr: idmapped mounts need Linux 5.12 or later)",
};

/**
 * The message of each failure, without the errno (appended as ": words" when there is one,
 * unless the wording says otherwise by returning { full }).
 */
const FAILURES: Record<Exclude<ErrorCode, ErrorCode.UNRECOGNIZED>, (f: Failure, plan: Plan) => string | { full: string }> = {
  [ErrorCode.ERROR_UNSPECIFIED]: () => "the helper failed",
  // the frames
  [ErrorCode.READ_FRAME]: (f) => (f.errnum ? "read the plan" : { full: "read the plan: it ended early" }),
  [ErrorCode.FRAME_TOO_LONG]: (f) => `plan: ${f.value} bytes is more than the helper reads`,
  [ErrorCode.BAD_FRAME]: (f) => `plan: a message of ${f.value} bytes does not decode`,
  [ErrorCode.UNKNOWN_FIELD]: (f) => `plan: ${f.detail} is unknown to this tsrun-helper (it belongs to another version of tsrun)`,
  [ErrorCode.UNEXPECTED_FRAME]: (f) => `plan: message ${f.value} where it does not belong`,
  [ErrorCode.PLAN_INCOMPLETE]: () => "plan: no process to run",
  [ErrorCode.OUT_OF_MEMORY]: () => "out of memory",
  [ErrorCode.INTERNAL_SOCKET]: () => "talk to the container process",
  [ErrorCode.SEAL]: (f) => f.path,
  [ErrorCode.SEAL_NOT_SEALED]: () => "helper re-executed but /proc/self/exe is not a sealed copy",
  // the host side
  [ErrorCode.CONSOLE_SOCKET_CONNECT]: (f) => `connect to console socket ${f.path}`,
  [ErrorCode.CONSOLE_NO_SOCKET]: () => "cannot allocate a pseudo-TTY without a console socket when the helper does not stay in the foreground",
  [ErrorCode.SOCKETPAIR]: () => "socketpair",
  [ErrorCode.TOO_MANY_CGROUPS]: (f) => `too many cgroup.procs files (${f.value})`,
  [ErrorCode.OPEN]: (f) => `open ${f.path}`,
  [ErrorCode.MKFIFO]: (f) => `mkfifo ${f.path}`,
  [ErrorCode.STATX]: (f) => `statx ${f.path}`,
  [ErrorCode.WRITE_FILE]: (f) => `write ${f.path}`,
  [ErrorCode.CGROUP_PROCS_WRITE]: (f) => `add pid ${f.value} to ${f.path}`,
  [ErrorCode.SET_OOM_SCORE_ADJ]: (f) => `set oom_score_adj to ${f.value}`,
  // namespaces and ids
  [ErrorCode.NAMESPACE_OPEN]: (f) => `open ${nsName(Number(f.value))} namespace ${f.path}`,
  [ErrorCode.NAMESPACE_JOIN]: (f) => `join ${nsName(Number(f.value))} namespace ${f.path}`,
  [ErrorCode.NAMESPACE_UNSHARE]: (f) => `unshare ${nsName(Number(f.value))} namespace`,
  [ErrorCode.CLONE]: (f) => `clone (${f.value ? "new namespaces" : "fork"})`,
  [ErrorCode.TOO_MANY_ID_MAPPINGS]: (f) => `${f.path}: ${f.value} mappings, the kernel takes at most 340`,
  [ErrorCode.UID_MAP_HELPER]: (f) => ({ full: mapHelper(f, "uid_map") }),
  [ErrorCode.GID_MAP_HELPER]: (f) => ({ full: mapHelper(f, "gid_map") }),
  [ErrorCode.USERNS_SETRESGID_ROOT]: () => "setresgid 0 in the user namespace (is gid 0 mapped?)",
  [ErrorCode.USERNS_SETRESUID_ROOT]: () => "setresuid 0 in the user namespace (is uid 0 mapped?)",
  [ErrorCode.USERNS_SETGROUPS]: () => "setgroups in the new user namespace",
  [ErrorCode.PIPE]: (f) => (f.path ? `pipe for ${f.path}` : "pipe"),
  [ErrorCode.FORK]: (f) => (f.path ? `fork to run ${f.path}` : "fork"),
  [ErrorCode.WAIT]: (f) => (f.path ? `wait for ${f.path}` : "wait for the container process"),
  // the rootfs
  [ErrorCode.ROOTFS_PROPAGATION]: () => "set propagation of / (rootfsPropagation)",
  [ErrorCode.ROOTFS_PARENT_PRIVATE]: (f) => `make the parent mount of the rootfs (${f.path}) private`,
  [ErrorCode.ROOTFS_BIND]: (f) => `bind mount the rootfs ${f.path} on itself`,
  [ErrorCode.ROOTFS_OPEN]: (f) => `open rootfs ${f.path}`,
  // mounts
  [ErrorCode.MOUNT_POINT]: (f, p) => `mount ${mountName(f, p)}: create mount point`,
  [ErrorCode.MOUNT]: (f, p) => `mount ${mountName(f, p)}`,
  [ErrorCode.MOUNT_IDMAPPED_MOVE]: (f, p) => idmapped(f, p, "move_mount"),
  [ErrorCode.MOUNT_REOPEN]: (f) => `reopen ${f.path} after mounting`,
  [ErrorCode.MOUNT_REMOUNT]: (f) => `remount ${f.path}`,
  [ErrorCode.MOUNT_PROPAGATION]: (f) => `change propagation of ${f.path}`,
  [ErrorCode.MOUNT_SETATTR]: (f) => `set recursive mount attributes of ${f.path}`,
  [ErrorCode.TMPCOPYUP_OPEN_BEFORE]: (f) => `tmpcopyup ${f.path}: open the directory`,
  [ErrorCode.TMPCOPYUP_OPEN_AFTER]: (f) => `tmpcopyup ${f.path}: open the new mount`,
  [ErrorCode.IDMAP_NOT_BIND]: (f, p) => ({ full: idmapped(f, p, "only bind mounts can be id-mapped") }),
  [ErrorCode.IDMAP_OPEN_TREE]: (f, p) => {
    const m = createPlan(p)?.mounts[Number(f.value)];
    const hint =
      f.errnum === EPERM ? " (idmapped mounts need CAP_SYS_ADMIN in the initial user namespace: run tsrun as root)"
      : f.errnum === ENOSYS ? " (the kernel has no open_tree: idmapped mounts need Linux 5.12 or later)"
      : "";
    return { full: `${idmapped(f, p, `open_tree ${m?.source ?? "?"}`)}: ${errnoWords(f.errnum)}${hint}` };
  },
  [ErrorCode.IDMAP_PROPAGATION]: (f, p) => {
    const prop = createPlan(p)?.mounts[Number(f.value)]?.idmap?.treePropagation;
    return idmapped(f, p, `make the copy ${prop === MS_SLAVE ? "a slave" : "private"}`);
  },
  [ErrorCode.IDMAP_OPEN_USERNS]: (f, p) => idmapped(f, p, `open user namespace ${createPlan(p)?.mounts[Number(f.value)]?.idmap?.usernsPath ?? "?"}`),
  [ErrorCode.IDMAP_DUP]: (f, p) => idmapped(f, p, "dup"),
  [ErrorCode.IDMAP_PIPE]: (f, p) => idmapped(f, p, "pipe"),
  [ErrorCode.IDMAP_USERNS_CREATE]: (f, p) => idmapped(f, p, "create a user namespace for the mapping"),
  [ErrorCode.IDMAP_USERNS_UID_MAP]: (f, p) => idmapped(f, p, "mapping user namespace: write uid_map"),
  [ErrorCode.IDMAP_USERNS_GID_MAP]: (f, p) => idmapped(f, p, "mapping user namespace: write gid_map"),
  [ErrorCode.IDMAP_USERNS_OPEN]: (f, p) => idmapped(f, p, "mapping user namespace: open its user namespace"),
  [ErrorCode.IDMAP_USERNS_REAP]: (f, p) => idmapped(f, p, "mapping user namespace: reap the user namespace holder"),
  [ErrorCode.IDMAP_SETATTR]: (f, p) => {
    const recursive = createPlan(p)?.mounts[Number(f.value)]?.idmap?.recursive === true;
    const hint =
      f.errnum === EINVAL
        ? recursive
          ? " (the filesystem of the source, or of a mount under it, does not support idmapped mounts)"
          : " (the filesystem of the source does not support idmapped mounts)"
        : IDMAP_HINTS[f.errnum] ?? "";
    return { full: `${idmapped(f, p, "set MOUNT_ATTR_IDMAP")}: ${errnoWords(f.errnum)}${hint}` };
  },
  // tmpcopyup
  [ErrorCode.TMPCOPYUP_TOO_DEEP]: (f) => `tmpcopyup ${f.path}: directories nested too deep`,
  [ErrorCode.TMPCOPYUP_READ_DIR]: (f) => `tmpcopyup ${f.path}: read directory`,
  [ErrorCode.TMPCOPYUP_STAT]: (f) => `tmpcopyup ${f.path}: stat`,
  [ErrorCode.TMPCOPYUP_MKDIR]: (f) => `tmpcopyup ${f.path}: mkdir`,
  [ErrorCode.TMPCOPYUP_OPEN]: (f) => `tmpcopyup ${f.path}: open`,
  [ErrorCode.TMPCOPYUP_COPY]: (f) => `tmpcopyup ${f.path}: copy`,
  [ErrorCode.TMPCOPYUP_CHMOD]: (f) => `tmpcopyup ${f.path}: chmod`,
  [ErrorCode.TMPCOPYUP_READLINK]: (f) => `tmpcopyup ${f.path}: readlink`,
  [ErrorCode.TMPCOPYUP_SYMLINK]: (f) => `tmpcopyup ${f.path}: symlink`,
  [ErrorCode.TMPCOPYUP_MKNOD]: (f) => `tmpcopyup ${f.path}: mknod`,
  [ErrorCode.TMPCOPYUP_CHOWN]: (f) => `tmpcopyup ${f.path}: chown`,
  // devices and symlinks
  [ErrorCode.DEVICE_PARENT]: (f) => `create device ${f.path}: parent directory`,
  [ErrorCode.DEVICE_REMOVE]: (f) => `create device ${f.path}: remove what is there`,
  [ErrorCode.DEVICE_BIND_TARGET]: (f) => `create device ${f.path}: create bind target`,
  [ErrorCode.DEVICE_BIND]: (f) => `bind mount device ${f.path}`,
  [ErrorCode.MKNOD]: (f) => `mknod ${f.path}`,
  [ErrorCode.CHOWN]: (f) => `chown ${f.path}`,
  [ErrorCode.SYMLINK_PARENT]: (f) => `symlink ${f.path}: parent directory`,
  [ErrorCode.SYMLINK_REMOVE]: (f) => `symlink ${f.path}: remove what is there`,
  [ErrorCode.SYMLINK]: (f, p) => `symlink ${f.path} -> ${createPlan(p)?.symlinks[Number(f.value)]?.target ?? "?"}`,
  // sysctls, read-only and masked paths
  [ErrorCode.SYSCTL_OPEN]: (f, p) => `sysctl ${sysctlKey(f, p)}: open ${f.path}`,
  [ErrorCode.SYSCTL_NOT_PROCFS]: (f, p) => `sysctl ${sysctlKey(f, p)}: ${f.path} is not on procfs`,
  [ErrorCode.SYSCTL_WRITE]: (f, p) => `sysctl ${sysctlKey(f, p)}: write ${f.path}`,
  [ErrorCode.READONLY_PATH]: (f) => `readonly path ${f.path}`,
  [ErrorCode.READONLY_PATH_STAT]: (f) => `readonly path ${f.path}: stat`,
  [ErrorCode.READONLY_PATH_BIND]: (f) => `readonly path ${f.path}: bind mount`,
  [ErrorCode.READONLY_PATH_REOPEN]: (f) => `readonly path ${f.path}: reopen`,
  [ErrorCode.READONLY_PATH_STATVFS]: (f) => `readonly path ${f.path}: statvfs`,
  [ErrorCode.READONLY_PATH_REMOUNT]: (f) => `readonly path ${f.path}: remount read-only`,
  [ErrorCode.MASK_DEV_NULL_OPEN]: () => "masked paths: open /dev/null in the container",
  [ErrorCode.MASK_DEV_NULL_STAT]: () => "masked paths: stat /dev/null in the container",
  [ErrorCode.MASK_DEV_NULL_NOT_NULL]: () => "masked paths: /dev/null in the container is not the null device (character device 1:3)",
  [ErrorCode.MASK]: (f) => `mask ${f.path}`,
  [ErrorCode.MASK_STAT]: (f) => `mask ${f.path}: stat`,
  [ErrorCode.MASK_TMPFS]: (f) => `mask ${f.path}: mount read-only tmpfs`,
  [ErrorCode.MASK_BIND]: (f) => `mask ${f.path}: bind mount /dev/null`,
  // pivot and the root
  [ErrorCode.PIVOT_CHDIR_ROOTFS]: () => "chdir to the rootfs",
  [ErrorCode.NO_PIVOT_MOVE]: () => "move the rootfs to / (no pivot)",
  [ErrorCode.NO_PIVOT_CHROOT]: () => "chroot to the rootfs",
  [ErrorCode.PIVOT_OPEN_OLD_ROOT]: () => "open the old root",
  [ErrorCode.PIVOT_ROOT]: () => "pivot_root",
  [ErrorCode.PIVOT_CHDIR_OLD_ROOT]: () => "chdir to the old root",
  [ErrorCode.PIVOT_OLD_ROOT_SLAVE]: () => "make the old root a slave",
  [ErrorCode.PIVOT_UNMOUNT_OLD_ROOT]: () => "unmount the old root",
  [ErrorCode.PIVOT_CHDIR_NEW_ROOT]: () => "chdir to the new root",
  [ErrorCode.PIVOT_ROOT_PROPAGATION]: () => "set propagation of the container's /",
  [ErrorCode.REMOUNT_ROOT_READONLY]: () => "remount / read-only",
  [ErrorCode.SETHOSTNAME]: () => "sethostname",
  [ErrorCode.SETDOMAINNAME]: () => "setdomainname",
  // the console
  [ErrorCode.CONSOLE_OPEN]: () => "console: open /",
  [ErrorCode.CONSOLE_OPEN_PTMX]: () => "console: open /dev/ptmx in the container",
  [ErrorCode.CONSOLE_NOT_PTMX]: () => "console: /dev/ptmx is not a pty multiplexer",
  [ErrorCode.CONSOLE_UNLOCKPT]: () => "console: unlockpt",
  [ErrorCode.CONSOLE_OPEN_SLAVE]: () => "console: open the pty slave",
  [ErrorCode.CONSOLE_WINSIZE]: () => "console: set window size",
  [ErrorCode.CONSOLE_DEV]: () => "console: /dev",
  [ErrorCode.CONSOLE_DEV_CONSOLE]: (f) => `console: ${f.path} /dev/console`,
  [ErrorCode.CONSOLE_BIND]: (f) => `console: bind mount ${f.path} on /dev/console`,
  [ErrorCode.CONSOLE_SEND]: () => "console: send the pty master over the console socket",
  [ErrorCode.CONSOLE_RECEIVE]: () => "receive the pty master",
  [ErrorCode.CONSOLE_PROXY]: (f) => `console: ${f.path}`,
  [ErrorCode.CONSOLE_CONTROLLING_TTY]: () => "console: make the pty the controlling terminal",
  [ErrorCode.CONSOLE_DUP]: (f) => `console: dup2 the pty onto fd ${f.value}`,
  // the process
  [ErrorCode.SETSID]: () => "setsid",
  [ErrorCode.KEYRING_JOIN]: (f) => `join session keyring ${f.path}`,
  [ErrorCode.KEYRING_DESCRIBE]: (f) => `describe session keyring ${f.path}`,
  [ErrorCode.KEYRING_PERMISSIONS_UNREADABLE]: (f) => `session keyring ${f.path}: cannot read its permissions from ${JSON.stringify(f.detail)}`,
  [ErrorCode.KEYRING_SETPERM]: (f) => `set permissions of session keyring ${f.path}`,
  [ErrorCode.SETRLIMIT]: (f) => `setrlimit ${rlimitName(Number(f.value))}`,
  [ErrorCode.SCHED_SETATTR]: () => "error setting scheduler",
  [ErrorCode.IOPRIO_SET]: () => "failed to set io priority",
  [ErrorCode.PERSONALITY]: () => "unable to set personality",
  [ErrorCode.SCHED_SETAFFINITY]: (f) => `set ${f.path} CPU affinity`,
  [ErrorCode.APPARMOR_EXEC]: (f) => `apparmor failed to apply profile: write ${f.path}`,
  [ErrorCode.CAPABILITY]: (f) => `capability ${capName(Number(f.value))}`,
  [ErrorCode.CAPSET]: () => "capset",
  [ErrorCode.CAPABILITY_BOUNDING_DROP]: (f) => `drop ${capName(Number(f.value))} from the bounding set`,
  [ErrorCode.CAPABILITY_AMBIENT_RAISE]: (f) => `capability ${capName(Number(f.value))}: raise ambient`,
  [ErrorCode.PRCTL]: (f) => `prctl ${f.path}`,
  [ErrorCode.SETGROUPS]: () => "setgroups",
  [ErrorCode.SETRESGID]: (f) => `setresgid ${f.value}`,
  [ErrorCode.SETRESUID]: (f) => `setresuid ${f.value}`,
  [ErrorCode.CHDIR_CWD]: (f) => `chdir to cwd (${JSON.stringify(f.path)}) set in config.json failed`,
  [ErrorCode.CWD_OUTSIDE_ROOT]: () => "current working directory is outside of container mount namespace root -- possible container breakout detected",
  [ErrorCode.EXEC_NOT_FOUND]: (f) => `exec: ${JSON.stringify(f.path)}: executable file not found in $PATH`,
  [ErrorCode.EXEC_STAT]: (f) => `exec: ${JSON.stringify(f.path)}: stat ${f.path}`,
  [ErrorCode.EXEC_NOT_EXECUTABLE]: (f) => `exec: ${JSON.stringify(f.path)}`,
  [ErrorCode.CLOSE_RANGE]: () => "close_range",
  [ErrorCode.EXECVE]: () => "exec failed",
  [ErrorCode.INIT_EXITED_EARLY]: (f) => `container init exited before it was ready (${exitWords(Number(f.value))})`,
  [ErrorCode.PROCESS_EXITED_EARLY]: (f) => `process exited before it was started (${exitWords(Number(f.value))})`,
  // seccomp
  [ErrorCode.SECCOMP_NO_LISTENER]: () => "seccomp: a NOTIFY action needs a listener path",
  [ErrorCode.SECCOMP_LISTENER_CONNECT]: (f) => `seccomp: connect to the listener ${f.path}`,
  [ErrorCode.SECCOMP_INIT]: () => "seccomp: cannot initialize the filter",
  [ErrorCode.SECCOMP_ATTRIBUTE]: (f) => `seccomp: set ${f.path}`,
  [ErrorCode.SECCOMP_ADD_ARCH]: (f) => `seccomp: add architecture ${archName(Number(f.value))}`,
  [ErrorCode.SECCOMP_FLAGS_UNSUPPORTED]: (f) => `seccomp: filter flags 0x${f.value.toString(16)} are not supported by this tsrun-helper`,
  [ErrorCode.SECCOMP_TOO_MANY_ARGS]: (f) => `seccomp: syscall ${f.path}: more than 6 argument conditions`,
  [ErrorCode.SECCOMP_ADD_RULE]: (f) => `seccomp: add rule for ${f.path}`,
  [ErrorCode.SECCOMP_EXPORT]: (f) => (f.errnum ? "seccomp: export the filter" : `seccomp: exported filter has a bad size (${f.value} bytes)`),
  [ErrorCode.SECCOMP_LOAD]: (f) => (f.value ? `seccomp: load the filter (flags 0x${f.value.toString(16)})` : "seccomp: load the filter"),
  [ErrorCode.SECCOMP_LISTENER_FD]: () => "seccomp: get the listener fd",
  [ErrorCode.SECCOMP_LISTENER_SEND]: (f) => `seccomp: send the listener fd to ${f.path}`,
  // hooks
  [ErrorCode.HOOK_POINT_ABANDONED]: () => "tsrun went away at a hook point",
  [ErrorCode.HOOK_POINT_ABORTED]: () => "create aborted at a hook point",
  [ErrorCode.HOOK_IO]: (f) => `startContainer hooks: ${f.path}`,
  [ErrorCode.HOOK_EXEC]: (f) => `fork/exec ${f.path}`,
  [ErrorCode.HOOK_CHDIR]: (f) => `chdir ${f.path}`,
  // cgroup v2 device programs
  [ErrorCode.DEVICE_FILTER_OPEN]: (f) => `device filter: open ${f.path}`,
  [ErrorCode.DEVICE_FILTER_BAD_PROGRAM]: (f) => `device filter: the program is ${f.value} bytes, not a whole number of instructions`,
  [ErrorCode.DEVICE_FILTER_LOAD]: (f) => {
    const log = f.detail.replace(/\s+/g, " ").trim();
    // The end of the verifier's log says why (the helper sends its last 600 bytes).
    return `device filter: load the device program (${f.value} instructions)${log ? `: verifier: ${log.length >= 590 ? "..." : ""}${log}` : ""}`;
  },
  [ErrorCode.DEVICE_FILTER_QUERY]: (f) => `device filter: query the device programs of ${f.path}`,
  [ErrorCode.DEVICE_FILTER_ATTACH]: (f) => `device filter: attach the device program to ${f.path}`,
  [ErrorCode.DEVICE_FILTER_GET_OLD]: (f) => `device filter: get the old device program ${f.value} of ${f.path}`,
  [ErrorCode.DEVICE_FILTER_DETACH_OLD]: (f) => `device filter: detach the old device program ${f.value} from ${f.path}`,
  [ErrorCode.NETDEV_NETLINK]: () => "linux.netDevices: open a netlink socket",
  [ErrorCode.NETDEV_LOOKUP]: (f) =>
    f.errnum === ENODEV ? { full: `linux.netDevices["${f.path}"]: there is no network device ${f.path} on the host` } : `linux.netDevices["${f.path}"]: look it up`,
  [ErrorCode.NETDEV_SET_DOWN]: (f) => `linux.netDevices["${f.path}"]: set it down`,
  [ErrorCode.NETDEV_ADDRESSES]: (f) => `linux.netDevices["${f.path}"]: read its addresses`,
  [ErrorCode.NETDEV_MOVE]: (f, p) => {
    const name = createPlan(p)?.netDevices[Number(f.value)]?.name ?? f.path;
    return f.errnum === EEXIST
      ? { full: `linux.netDevices["${f.path}"]: the container's network namespace has a device named ${name} already` }
      : `linux.netDevices["${f.path}"]: move it into the container's network namespace as ${name}`;
  },
  [ErrorCode.NETDEV_ADD_ADDRESS]: (f) => `linux.netDevices: restore the addresses and up state of ${f.path} in the container's network namespace`,
  [ErrorCode.NETDEV_OPEN_NETNS]: (f) => `linux.netDevices: open the network namespace ${f.path}`,
  [ErrorCode.PIDFD_SOCKET_CONNECT]: (f) => `connect to pidfd socket ${f.path}`,
  [ErrorCode.PIDFD_OPEN]: (f) => `pidfd_open of process ${f.value}`,
  [ErrorCode.PIDFD_SEND]: (f) => `send the pidfd over ${f.path}`,
  [ErrorCode.SET_MEMPOLICY]: () => "linux.memoryPolicy: set_mempolicy",
  [ErrorCode.MOUNT_ID]: (f) => `mount id of ${f.path || "a directory in the container"}`,
  [ErrorCode.OWN_TMPFS_OPEN]: (f) => `open the tmpfs mounted on ${f.path}`,
  [ErrorCode.NO_PIVOT_MOUNTINFO]: (f) => `no pivot: read ${f.path}`,
  [ErrorCode.NO_PIVOT_SLAVE]: (f) => `no pivot: make the host's ${f.path} a slave`,
  [ErrorCode.NO_PIVOT_DETACH]: (f) => `no pivot: detach the host's ${f.path}`,
  [ErrorCode.NO_PIVOT_COVER]: (f) => `no pivot: cover the host's ${f.path}`,
  // runc's words
  [ErrorCode.PSEUDO_FS_OPEN]: (f, p) => pseudoFs(f, p),
  [ErrorCode.PSEUDO_FS_NOT_DIR]: (f, p) => `${pseudoFs(f, p)}: filesystem "${createPlan(p)?.mounts[Number(f.value)]?.fstype ?? "?"}" must be mounted on ordinary directory`,
  [ErrorCode.NODE_DIR_OPEN]: (f) => `${f.path}: open its directory in the container`,
  [ErrorCode.DEVICE_EXISTING_STAT]: (f) => `device ${f.path}: look at what is there`,
  [ErrorCode.DEVICE_OCCUPIED]: (f) => `device ${f.path}: ${nodeKind(BigInt(f.value))} is there, not the device asked for, and it is not tsrun's to replace`,
  [ErrorCode.NULL_FD_STAT]: (f) => `stat fd ${f.value}`,
  [ErrorCode.NULL_FD_FCNTL]: (f) => `fd ${f.value}: fcntl`,
  [ErrorCode.NULL_FD_OPEN_OWN]: (f) => `fd ${f.value} is a null device from outside the container: open the container's /dev/null to replace it`,
  [ErrorCode.NULL_FD_OWN_NOT_NULL]: (f) => `fd ${f.value} is a null device from outside the container, and the container's /dev/null is not the null device (character device 1:3) to replace it with`,
  [ErrorCode.NULL_FD_REPLACE]: (f) => `fd ${f.value}: replace it with the container's /dev/null`,
  [ErrorCode.SECCOMP_STUB_TOO_BIG]: (f) => `seccomp: the ENOSYS stub needs more than ${f.value} instructions or architectures`,
  [ErrorCode.SECCOMP_TOO_LONG]: (f) => `seccomp: the filter has ${f.value} instructions, more than the kernel's 4096`,
  [ErrorCode.CAPGET]: () => "capget",
  [ErrorCode.GETRESUID]: () => "getresuid",
  [ErrorCode.DETACHED_SOURCE_OPEN_TREE]: (f, p) => `mount ${mountName(f, p)}: take the source (open_tree)`,
  [ErrorCode.DETACHED_SOURCE_PROPAGATION]: (f, p) => `mount ${mountName(f, p)}: set the propagation of the source's copy`,
  [ErrorCode.DETACHED_SOURCE_MOVE]: (f, p) => `mount ${mountName(f, p)}: move_mount`,
  [ErrorCode.READONLY_LATE_OPEN]: (f) => `remount ${f.path} read-only: open it`,
  [ErrorCode.READONLY_LATE_REMOUNT]: (f) => `remount ${f.path} read-only`,
  [ErrorCode.READONLY_ROOT_NO_MNTNS]: () => "a read-only root needs a mount namespace (it would be the host's mount)",
  [ErrorCode.CHROOT]: (f) => `chroot to ${f.path}`,
  [ErrorCode.EXEC_ROOT_OPEN]: (f) => `open the container's root ${f.path}`,
  [ErrorCode.CONSOLE_CHOWN]: (f) => `console: chown the pty slave ${f.path} to uid ${f.value}`,
  [ErrorCode.EXEC_NEW_NAMESPACE]: (f) => `plan: exec would make a new ${nsName(Number(f.value))} namespace (every namespace of an exec is joined by path)`,
};

function sysctlKey(f: Failure, plan: Plan): string {
  const s = createPlan(plan)?.sysctls[Number(f.value)];
  return (s?.path ?? f.path.replace(/^\/proc\/sys\//, "")).replaceAll("/", ".");
}

/** A process's end as the helper reports it: an exit code, or 128+signal. */
function exitWords(status: number): string {
  return status > 128 && status < 160 ? `killed by signal ${status - 128}` : `exit status ${status}`;
}

/** One line for a helper Failure (line breaks of quoted text made spaces). */
export function failureText(f: Failure, plan?: CreatePlan | ExecPlan): string {
  const word = FAILURES[f.code as Exclude<ErrorCode, ErrorCode.UNRECOGNIZED>] ?? (() => `the helper failed with code ${f.code}`);
  const w = word(f, plan);
  const text = typeof w === "string" ? (f.errnum ? `${w}: ${errnoWords(f.errnum)}` : w) : w.full;
  return text.replace(/[\r\n]+/g, " ");
}

const WARNINGS: Record<Exclude<WarningCode, WarningCode.UNRECOGNIZED>, (w: Warning) => string> = {
  [WarningCode.WARNING_UNSPECIFIED]: () => "the helper warned",
  [WarningCode.CAPABILITY_UNKNOWN_TO_KERNEL]: (w) => `${capName(Number(w.value))} is not known to the kernel, ignored`,
  [WarningCode.CONSOLE_NOT_MADE]: (w) => `${w.subject} is not made: /dev is on a mount tsrun did not make (such as a bind of the host's /dev), which is left as it is`,
  [WarningCode.DEVICE_NOT_MADE]: (w) => `device ${w.subject} is not made: its directory is on a mount tsrun did not make (such as a bind of the host's /dev), which is left as it is`,
  [WarningCode.SYMLINK_NOT_MADE]: (w) => `symlink ${w.subject} is not made: its directory is on a mount tsrun did not make (such as a bind of the host's /dev), which is left as it is`,
  // runc's words
  [WarningCode.AMBIENT_CAPABILITY_NOT_RAISED]: (w) => `can't raise ambient capability ${capName(Number(BigInt(w.value) & 0xffffffffn))}: ${errnoWords(Number(BigInt(w.value) >> 32n))}`,
  [WarningCode.MASKED_PATH_SYMLINK]: (w) => `masked path ${w.subject} is a symlink, not followed, skipped`,
  [WarningCode.READONLY_PATH_SYMLINK]: (w) => `readonly path ${w.subject} is a symlink, not followed, skipped`,
  [WarningCode.SECCOMP_UNKNOWN_SYSCALL]: (w) => `seccomp: unknown syscall ${w.subject}, skipped`,
};

export function warningText(w: Warning): string {
  return (WARNINGS[w.code as Exclude<WarningCode, WarningCode.UNRECOGNIZED>] ?? (() => `the helper warned with code ${w.code}`))(w);
}

/** The head of a hook's output, without its trailing blanks, as one line. */
function outputText(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("utf8").replace(/\s+$/, "");
}

/**
 * runc's words for a hook that failed, wherever it ran (TypeScript's hook runner, the init's
 * startContainer hooks, the enter mode): "error running NAME hook #I: ...".
 */
export function hookFailureText(name: string, index: number, path: string, end: HookEnd): string {
  const prefix = `error running ${name} hook #${index}: `;
  const how = end.how;
  switch (how?.$case) {
    case "startErrno":
      return `${prefix}fork/exec ${path}: ${errnoWords(how.value)}`;
    case "timedOutAfter":
      return `${prefix}hook ran past specified timeout of ${how.value.toFixed(1)}s`;
    case "signal":
    case "exitStatus": {
      const ended = how.$case === "signal" ? `signal: ${signalWords(how.value)}` : `exit status ${how.value}`;
      return `${prefix}${ended}, stdout: ${outputText(end.stdoutHead)}, stderr: ${outputText(end.stderrHead)}`;
    }
    default:
      return `${prefix}it ended in a way tsrun does not know`;
  }
}
