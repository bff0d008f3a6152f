/**
 * The command table: every command, its flags and operands, as runc 1.x has them.
 * Help text is generated from this table, and each command's code is loaded only when run.
 */
import type { OptionSpec } from "./args.ts";
import type { CommandModule } from "./context.ts";

export interface CommandSpec {
  name: string;
  summary: string;
  /** Operand synopsis shown in help, e.g. "<container-id> [signal]". */
  operands: string;
  minOperands: number;
  /** -1: any number. */
  maxOperands: number;
  /** Everything after the first operand is passed through (exec's command, ps's options). */
  stopAtFirstOperand?: boolean;
  /**
   * The exit status of a failure once the command runs (its arguments parsed): runc's exec
   * exits 255 for its own errors, so that callers can tell them from the process's status.
   */
  failureStatus?: number;
  options: OptionSpec[];
  load: () => Promise<CommandModule>;
}

const bundle: OptionSpec = { name: "bundle", short: "b", type: "string", arg: "DIR", description: "path to the bundle directory (default: the current directory)" };
const consoleSocket: OptionSpec = { name: "console-socket", type: "string", arg: "PATH", description: "unix socket that receives the master end of the console pty" };
const pidFile: OptionSpec = { name: "pid-file", type: "string", arg: "FILE", description: "write the container process's pid to FILE" };
const noPivot: OptionSpec = { name: "no-pivot", type: "boolean", description: "do not use pivot_root (for a rootfs on a ramdisk)" };
const noNewKeyring: OptionSpec = { name: "no-new-keyring", type: "boolean", description: "do not create a new session keyring for the container" };
const preserveFds: OptionSpec = { name: "preserve-fds", type: "string", arg: "N", description: "pass N extra fds (3 .. 3+N-1) to the process" };
const pidfdSocket: OptionSpec = { name: "pidfd-socket", type: "string", arg: "PATH", description: "unix socket that receives a pidfd of the process" };
const format: OptionSpec = { name: "format", short: "f", type: "string", arg: "table|json", description: "output format (default: table)" };

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: "root", type: "string", arg: "DIR", description: "where container state is kept (default: /run/tsrun; $XDG_RUNTIME_DIR/tsrun for a user without privileges)" },
  { name: "log", type: "string", arg: "FILE", description: "also write log lines to FILE" },
  { name: "log-format", type: "string", arg: "text|json", description: "format of the --log lines (default: text)" },
  { name: "debug", type: "boolean", description: "log what is done and how long it takes" },
  { name: "systemd-cgroup", type: "boolean", description: "manage cgroups through systemd (cgroupsPath is slice:prefix:name)" },
  { name: "rootless", type: "string", arg: "true|false|auto", description: "rootless cgroups: cgroups this user cannot use are left out (default: auto, true when not root)" },
  { name: "criu", type: "string", arg: "PATH", description: "accepted for compatibility; checkpointing is not supported", ignored: true },
  { name: "help", short: "h", type: "boolean", description: "show help" },
  { name: "version", short: "v", type: "boolean", description: "print the version" },
];

/** runc's `update` flags besides --resources: a value for one resource each, or an Intel RDT schema. */
export const UPDATE_FLAGS = [
  "memory", "memory-reservation", "memory-swap", "kernel-memory", "kernel-memory-tcp", "cpu-share", "cpu-quota",
  "cpu-period", "cpu-burst", "cpu-rt-period", "cpu-rt-runtime", "cpu-idle", "cpuset-cpus", "cpuset-mems", "pids-limit", "blkio-weight",
  "l3-cache-schema", "mem-bw-schema",
];

const UPDATE_FLAG_HELP: Record<string, string> = {
  memory: "memory limit in bytes (k, m, g suffixes)", "memory-reservation": "memory soft limit in bytes",
  "memory-swap": "memory plus swap limit in bytes (-1: unlimited)", "kernel-memory": "kernel memory limit (ignored by new kernels)",
  "kernel-memory-tcp": "kernel TCP buffer limit", "cpu-share": "CPU shares (relative weight)", "cpu-quota": "CPU CFS quota in microseconds",
  "cpu-period": "CPU CFS period in microseconds", "cpu-burst": "CPU CFS burst in microseconds", "cpu-rt-period": "realtime period in microseconds",
  "cpu-rt-runtime": "realtime runtime in microseconds", "cpuset-cpus": "CPUs to run on (0-3, 0,1)", "cpuset-mems": "memory nodes (0-3, 0,1)",
  "pids-limit": "maximum number of processes (0 is a limit; -1: unlimited)", "blkio-weight": "block IO weight (10 to 1000)",
  "cpu-idle": "SCHED_IDLE for the cgroup: 1, or 0 for the default behaviour",
  "l3-cache-schema": "Intel RDT/CAT L3 cache schema (L3:<id>=<mask>;...) for the container's own class",
  "mem-bw-schema": "Intel RDT/MBA memory bandwidth schema (MB:<id>=<bandwidth>;...) for the container's own class",
};

export const COMMANDS: CommandSpec[] = [
  {
    name: "create", summary: "create a container from a bundle, its process waiting for start",
    operands: "<container-id> [bundle]", minOperands: 1, maxOperands: 2,
    options: [bundle, consoleSocket, pidfdSocket, pidFile, noPivot, noNewKeyring, preserveFds],
    load: () => import("./commands/create.ts"),
  },
  {
    name: "start", summary: "run the user process of a created container",
    operands: "<container-id>", minOperands: 1, maxOperands: 1, options: [],
    load: () => import("./commands/start.ts"),
  },
  {
    name: "run", summary: "create and start a container, and by default wait for it",
    operands: "<container-id> [bundle]", minOperands: 1, maxOperands: 2,
    options: [
      bundle, consoleSocket, pidfdSocket, pidFile, noPivot, noNewKeyring, preserveFds,
      { name: "detach", short: "d", type: "boolean", description: "return once the container is started" },
      { name: "keep", type: "boolean", description: "do not delete the container after it exits" },
      { name: "no-subreaper", type: "boolean", description: "accepted for compatibility", ignored: true },
    ],
    load: () => import("./commands/run.ts"),
  },
  {
    name: "state", summary: "print the state of a container as JSON",
    operands: "<container-id>", minOperands: 1, maxOperands: 1, options: [],
    load: () => import("./commands/state.ts"),
  },
  {
    name: "kill", summary: "send a signal (default SIGTERM) to the container's init process",
    operands: "<container-id> [signal]", minOperands: 1, maxOperands: 2,
    options: [{ name: "all", short: "a", type: "boolean", description: "send the signal to every process of the container" }],
    load: () => import("./commands/kill.ts"),
  },
  {
    name: "delete", summary: "delete a container and everything create made for it",
    operands: "<container-id>", minOperands: 1, maxOperands: 1,
    options: [{ name: "force", short: "f", type: "boolean", description: "kill the container first if it is not stopped" }],
    load: () => import("./commands/delete.ts"),
  },
  {
    name: "exec", summary: "run a new process inside a running container",
    operands: "<container-id> <command> [args...]", minOperands: 1, maxOperands: -1, stopAtFirstOperand: true, failureStatus: 255,
    options: [
      consoleSocket, pidfdSocket, pidFile, preserveFds,
      { name: "process", short: "p", type: "string", arg: "FILE", description: "the process as runtime-spec process JSON (instead of a command line)" },
      { name: "tty", short: "t", type: "boolean", description: "give the process a terminal" },
      { name: "detach", short: "d", type: "boolean", description: "return once the process is started" },
      { name: "cwd", type: "string", arg: "DIR", description: "working directory inside the container" },
      { name: "env", short: "e", type: "strings", arg: "KEY=VALUE", description: "set an environment variable" },
      { name: "user", short: "u", type: "string", arg: "UID[:GID]", description: "run as this user (numeric)" },
      { name: "additional-gids", short: "g", type: "strings", arg: "GID", description: "an additional group" },
      { name: "cap", short: "c", type: "strings", arg: "CAP", description: "add a capability" },
      { name: "no-new-privs", type: "boolean", description: "set no_new_privs for the process" },
      { name: "ignore-paused", type: "boolean", description: "exec even if the container is paused" },
      { name: "apparmor", type: "string", arg: "PROFILE", description: "AppArmor profile for the process (refused where AppArmor is not enabled)" },
      { name: "process-label", type: "string", arg: "LABEL", description: "SELinux label for the process (refused: tsrun does not set SELinux labels)" },
      { name: "cgroup", type: "strings", arg: "[CONTROLLER:]PATH", description: "run the process in this existing sub-cgroup of the container's cgroup" },
    ],
    load: () => import("./commands/exec.ts"),
  },
  {
    name: "pause", summary: "suspend every process of the container (cgroup freezer)",
    operands: "<container-id>", minOperands: 1, maxOperands: 1, options: [],
    load: () => import("./commands/pause.ts"),
  },
  {
    name: "resume", summary: "resume a paused container",
    operands: "<container-id>", minOperands: 1, maxOperands: 1, options: [],
    load: () => import("./commands/resume.ts"),
  },
  {
    name: "ps", summary: "show the container's processes (ps options after the id, default -ef)",
    operands: "<container-id> [ps options]", minOperands: 1, maxOperands: -1, stopAtFirstOperand: true,
    options: [format],
    load: () => import("./commands/ps.ts"),
  },
  {
    name: "update", summary: "change the resource limits of a running container",
    operands: "<container-id>", minOperands: 1, maxOperands: 1,
    options: [
      { name: "resources", short: "r", type: "string", arg: "FILE", description: "runtime-spec LinuxResources JSON (- for stdin)" },
      ...UPDATE_FLAGS.map((name): OptionSpec => ({ name, type: "string", arg: "VALUE", description: UPDATE_FLAG_HELP[name]! })),
    ],
    load: () => import("./commands/update.ts"),
  },
  {
    name: "events", summary: "print the container's resource usage and OOM events as JSON lines",
    operands: "<container-id>", minOperands: 1, maxOperands: 1,
    options: [
      { name: "stats", type: "boolean", description: "print one stats event and exit" },
      { name: "interval", type: "string", arg: "DURATION", description: "time between stats events (default 5s)" },
    ],
    load: () => import("./commands/events.ts"),
  },
  {
    name: "list", summary: "list the containers under --root",
    operands: "", minOperands: 0, maxOperands: 0,
    options: [format, { name: "quiet", short: "q", type: "boolean", description: "print only the container ids" }],
    load: () => import("./commands/list.ts"),
  },
  {
    name: "spec", summary: "write a new config.json (refuses to overwrite one)",
    operands: "", minOperands: 0, maxOperands: 0,
    options: [bundle, { name: "rootless", type: "boolean", description: "a config for a container run by an unprivileged user" }],
    load: () => import("./commands/spec.ts"),
  },
  {
    name: "check", summary: "check a bundle: config.json against the spec, and the rootfs, without running anything",
    operands: "", minOperands: 0, maxOperands: 0, options: [bundle],
    load: () => import("./commands/check.ts"),
  },
  {
    name: "features", summary: "print the features of this build as JSON (runtime-spec features.md)",
    operands: "", minOperands: 0, maxOperands: 0, options: [],
    load: () => import("./commands/features.ts"),
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}
