/**
 * The launch plan: everything the C helper needs, fully resolved by TypeScript.
 *
 * TypeScript makes every decision (which namespaces, which flags, which devices, which
 * capability numbers); the helper only carries the plan out, in order, and reports back.
 * Nothing here is optional in the sense of "helper picks a default": an absent field means
 * "do not do this". The binary encoding is in plan-encode.ts and docs/plan-format.md.
 */

export type NamespaceType = "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup" | "time";

export interface PlanNamespace {
  type: NamespaceType;
  /** Join the namespace at this path (setns); absent: create a new one. */
  path?: string;
}

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface PlanMount {
  /** Absolute host path, or a filesystem-specific source ("proc", "tmpfs", "overlay"). */
  source: string;
  /** Absolute path inside the container; the helper resolves it inside the rootfs only. */
  destination: string;
  /** Filesystem type for mount(2); empty for bind mounts. */
  fstype: string;
  /** MS_* flags for the first mount(2) call (MS_BIND|MS_REC included for bind/rbind). */
  flags: number;
  /** For bind mounts: MS_* flags (ro, nosuid, ...) applied by a MS_BIND|MS_REMOUNT afterwards. */
  remountFlags: number;
  /** Propagation changes applied one by one after mounting (MS_SHARED, MS_PRIVATE|MS_REC, ...). */
  propagation: number[];
  /** mount_setattr(AT_RECURSIVE) attributes (MOUNT_ATTR_*), from rro, rnosuid, ...; 0 when none. */
  recAttrSet: number;
  recAttrClr: number;
  /** Filesystem data string ("mode=755,size=65536k"); empty when none. */
  data: string;
  /** What to create at the destination when it is missing: a directory, or an empty file (bind of a file). */
  destKind: "dir" | "file";
  /** tmpcopyup: fill the new tmpfs with what the directory held before it was covered. */
  copyUp?: boolean;
  /** An idmapped bind mount (runtime-spec "idmap"/"ridmap", mounts[].uidMappings); absent: not id-mapped. */
  idmap?: PlanMountIdmap;
  /**
   * A bind mount whose source the helper's parent takes on the host side, before any namespace
   * is joined (open_tree OPEN_TREE_CLONE), and the init moves into place, as for idmap: in a user
   * namespace the init may no longer reach a source only host root can (runc and crun do the same).
   */
  detachedSource?: boolean;
  /**
   * Mounted without MS_RDONLY and remounted read-only once the devices, symlinks and the console
   * are in place (a read-only /dev, as runc does it).
   */
  readonlyLate?: boolean;
}

/**
 * The helper's parent (host side, before any namespace is joined) takes a detached copy of the
 * source (open_tree, recursive for rbind), gives it the mapping (mount_setattr MOUNT_ATTR_IDMAP
 * with a user namespace holding it) and the init moves it onto the destination.
 */
export interface PlanMountIdmap {
  /** ridmap: every mount of an rbind tree gets the mapping (AT_RECURSIVE); idmap: the top one only. */
  recursive: boolean;
  /**
   * Written as they are to the uid_map/gid_map of a new user namespace: an id containerID on
   * the source filesystem shows as hostID (what runc and crun do). Empty when usernsPath is set.
   */
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** Use this existing user namespace's mapping instead (the container joins it, mount has no mappings). */
  usernsPath?: string;
}

export interface PlanDevice {
  /** Absolute path inside the container. */
  path: string;
  type: "c" | "b" | "p" | "u";
  major: number;
  minor: number;
  /** Permission bits (0666), without the file type. */
  fileMode: number;
  uid: number;
  gid: number;
  /** Bind-mount the host node at the same path instead of mknod (user namespaces cannot mknod). */
  bindFromHost: boolean;
}

export interface PlanSymlink {
  /** Absolute path inside the container where the link is created. */
  path: string;
  target: string;
}

export interface PlanRlimit {
  /** RLIMIT_* number. */
  resource: number;
  soft: bigint;
  hard: bigint;
}

export interface PlanCapabilities {
  /** Capability numbers (CAP_* values) for each set. */
  bounding: number[];
  effective: number[];
  inheritable: number[];
  permitted: number[];
  ambient: number[];
}

export interface PlanProcess {
  args: string[];
  /** "KEY=VALUE" strings, exactly as the container gets them (but HOME, see homeFromPasswd). */
  env: string[];
  /**
   * env has no HOME (or an empty one): the helper sets HOME to the home directory of the process's
   * uid in the container's /etc/passwd, "/" when it has no entry, before the user switch (runc).
   */
  homeFromPasswd?: boolean;
  /** Absolute path inside the container. */
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  /** Absent: leave the umask as inherited. */
  umask?: number;
  rlimits: PlanRlimit[];
  noNewPrivileges: boolean;
  /** Absent: leave capabilities untouched (never the case for containers tsrun makes). */
  capabilities?: PlanCapabilities;
  /** Absent: leave /proc/self/oom_score_adj untouched. */
  oomScoreAdj?: number;
  /** Give the process a pty: its master goes to consoleSocket, or to the helper in foreground mode. */
  terminal: boolean;
  consoleHeight: number;
  consoleWidth: number;
  /** sched_setattr(2) of the process before execve; absent: inherited. */
  scheduler?: PlanScheduler;
  /** ioprio_set(IOPRIO_WHO_PROCESS, 0, value): (class << 13) | priority; absent: inherited. */
  ioPriority?: number;
  /** AppArmor profile applied from the execve on (only planned where AppArmor is enabled). */
  apparmorProfile?: string;
}

/** struct sched_attr fields, already numeric (SCHED_* policy, SCHED_FLAG_* bits). */
export interface PlanScheduler {
  policy: number;
  nice: number;
  priority: number;
  flags: bigint;
  runtime: bigint;
  deadline: bigint;
  period: bigint;
}

export interface PlanTimeOffset {
  clock: "monotonic" | "boottime";
  secs: bigint;
  nanosecs: number;
}

/** seccomp actions, as the runtime-spec's SCMP_ACT_* (KILL is KILL_THREAD, as in libseccomp). */
export type SeccompAction =
  | "KILL"
  | "KILL_PROCESS"
  | "KILL_THREAD"
  | "TRAP"
  | "ERRNO"
  | "TRACE"
  | "ALLOW"
  | "LOG"
  | "NOTIFY";

/** Argument comparisons, as the runtime-spec's SCMP_CMP_*. */
export type SeccompOp = "NE" | "LT" | "LE" | "EQ" | "GE" | "GT" | "MASKED_EQ";

export interface PlanSeccompArg {
  /** Syscall argument number, 0..5. */
  index: number;
  /** The value compared with; for MASKED_EQ the mask. */
  value: bigint;
  /** For MASKED_EQ the value the masked argument must equal; otherwise 0n. */
  valueTwo: bigint;
  op: SeccompOp;
}

export interface PlanSeccompRule {
  /** Syscall names; names libseccomp does not know are skipped with a warning. */
  names: string[];
  action: SeccompAction;
  /** ERRNO: the errno returned; TRACE: the value given to the tracer. */
  errnoRet: number;
  /** All must match (several on one argument index become separate rules, as runc does). */
  args: PlanSeccompArg[];
}

export interface PlanSeccomp {
  defaultAction: SeccompAction;
  /** errno (ERRNO) or trace value (TRACE) of the default action. */
  defaultErrnoRet: number;
  /** libseccomp architecture names ("x86_64", "x86", "x32", "aarch64", ...); empty: native only. */
  architectures: string[];
  /** SECCOMP_FILTER_FLAG_* bits: 1 TSYNC, 2 LOG, 4 SPEC_ALLOW, 32 WAIT_KILLABLE_RECV (others are refused by the helper). */
  flags: number;
  syscalls: PlanSeccompRule[];
  /** Unix socket (host path) the NOTIFY listener fd is sent to; required when an action is NOTIFY. */
  listenerPath?: string;
  /**
   * The message sent with the listener fd: runc's container process state JSON (ociVersion,
   * fds ["seccompFd"], pid, metadata from listenerMetadata, state), rendered by TypeScript.
   * The helper replaces each "@PID@" in it with the container process's pid as the host sees it.
   */
  listenerState?: string;
}

/** A hook the helper runs itself (startContainer: by the init, inside the container). */
export interface PlanHook {
  /** Executed as is: absolute, resolved where the hook runs. */
  path: string;
  /** The whole argv: argv[0] is the hook's args[0] (its path when the config gives no args). */
  argv: string[];
  /** "KEY=VALUE" strings: exactly the hook's env. Absent: the process's environment, as the init has it (HOME included). */
  env?: string[];
  /** Seconds; killed (SIGKILL) when it runs longer. 0: no limit. */
  timeout: number;
}

/** Where the create-mode helper pauses ("hook NAME") until TypeScript answers continue or abort. */
export type HookPoint = "createRuntime" | "createContainer";

export interface PlanStartHooks {
  /** Host path of a fifo the helper creates; the init writes "ok" or "error TEXT" to it, `tsrun start` reads it. */
  statusFifo: string;
  /** The state JSON each hook reads on stdin; "@PID@" becomes the container's pid as the host sees it. */
  state: string;
  hooks: PlanHook[];
}

export interface LaunchPlan {
  /** create: a new container init with its rootfs; exec: a new process in an existing container. */
  mode: "create" | "exec";
  /**
   * The helper's own parent process stays, waits for the container process, proxies the
   * terminal when there is one and no console socket, and reports its exit status
   * ("exit N" on the sync socket). Otherwise the helper exits once the process is ready.
   */
  foreground: boolean;
  /** Send "debug ..." progress lines with timestamps on the sync socket. */
  debug: boolean;

  /**
   * In order. When joining, the helper joins what its own privileges allow first, then the
   * user namespace, then what only that user namespace allows (docs/plan-format.md).
   */
  namespaces: PlanNamespace[];
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  timeOffsets: PlanTimeOffset[];
  /** cgroup.procs files the process is written into before it runs anything of its own. */
  cgroupProcs: string[];

  /** create mode: absolute host path of the rootfs. exec mode: empty. */
  rootfs: string;
  /** MS_* propagation for "/" before the mounts (MS_SLAVE|MS_REC by default, as runc). */
  rootfsPropagation: number;
  /** MS_MOVE + chroot instead of pivot_root (runc --no-pivot). */
  noPivot: boolean;
  readonlyRoot: boolean;
  mounts: PlanMount[];
  devices: PlanDevice[];
  symlinks: PlanSymlink[];
  maskedPaths: string[];
  readonlyPaths: string[];
  /** Written to /proc/sys/<key with dots as slashes> inside the container. */
  sysctls: { key: string; value: string }[];
  hostname?: string;
  domainname?: string;

  process: PlanProcess;
  /** Unix socket to send the pty master to (SCM_RIGHTS), when process.terminal is set. */
  consoleSocket?: string;
  /**
   * create mode: host path of the exec fifo, which the helper creates (mkfifo). The init holds it O_RDWR from before pivot_root,
   * reports "ready", and blocks reading one byte from it before execve.
   */
  execFifo?: string;
  /**
   * The session keyring the process joins (created if missing), with search permission added
   * for the container's user, as runc does ("_ses.<id>"); absent: keep the inherited one
   * (--no-new-keyring).
   */
  sessionKeyring?: string;
  /** fds 3 .. 3+preserveFds-1 stay open in the container; every other fd above 2 is closed. */
  preserveFds: number;
  /**
   * Absent: no filter. Loaded as late as possible: right before execve when the process has
   * noNewPrivileges, otherwise before capabilities are dropped (it then needs CAP_SYS_ADMIN).
   */
  seccomp?: PlanSeccomp;
  /**
   * create mode: the init pauses after its mounts, before pivot_root, at each of these points
   * (in this order: createRuntime, then createContainer) while TypeScript runs those hooks.
   */
  hookPoints?: HookPoint[];
  /** create mode: startContainer hooks, run by the init after the exec.fifo byte and before execve. */
  startHooks?: PlanStartHooks;
  /** personality(2) persona (PER_LINUX, PER_LINUX32) set before execve, in create and exec mode; absent: inherited. */
  personality?: number;
  /**
   * exec mode (process.execCPUAffinity): CPU numbers the helper runs on before the process
   * joins the container's cgroups (inherited by it), and the ones the process gets once it has.
   */
  cpuAffinity?: { initial?: number[]; final?: number[] };
  /**
   * create mode, new user namespace (rootless): absolute path of newuidmap, which the helper's
   * parent runs as `newuidmap PID C H S...` with uidMappings instead of writing uid_map itself
   * (an unprivileged writer may map only its own id). gidMapHelper: newgidmap, the same for gids.
   */
  uidMapHelper?: string;
  gidMapHelper?: string;
  /**
   * exec mode, rootless cgroups (as runc): a cgroup.procs file this user cannot open or write is
   * skipped instead of failing the exec.
   */
  cgroupProcsOptional?: boolean;
}
