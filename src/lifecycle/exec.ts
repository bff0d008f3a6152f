/**
 * exec: a new process in a running container. Like runc, the process starts from the
 * container's own process config (env, capabilities, rlimits, user, no_new_privs) unless
 * --process gives a whole one; flags then override it.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { TsrunError, errnoText, formatProblem } from "../errors.ts";
import { logWarn } from "../log.ts";
import { validateProcess } from "../spec/validate.ts";
import { procsFiles, subCgroupProcs, type CgroupState } from "../linux/cgroups/index.ts";
import { hasCgroupDirs } from "../linux/cgroups/rootless.ts";
import { planProcess, planSeccomp, sessionKeyringName, planContainerPersonality, planLaunch, planNamespaces } from "./plan.ts";
import { planMemoryPolicy } from "../linux/mempolicy.ts";
import { checkSelinuxLabel, parseCpuList, planApparmor } from "../linux/process-attrs.ts";
import { NS_FILE, type NamespaceType } from "../linux/namespaces.ts";
import { rdtTasksFiles } from "../linux/resctrl.ts";
import { startHelper } from "./helper-process.ts";
import type { ContainerRecord } from "./state-store.ts";
import { writePidFile } from "./create.ts";
import { loadContainer } from "./status.ts";
import type { CpuAffinity, ExecPlan } from "../boundary/gen/helper.ts";
import type { RootlessContext } from "../linux/rootless.ts";
import type { Spec } from "../spec/generated/types.ts";

type ConfigProcess = NonNullable<Spec["process"]>;

export interface ExecOptions {
  root: string;
  id: string;
  processFile?: string;
  args: string[];
  tty: boolean;
  consoleSocket?: string;
  /** --pidfd-socket: a unix socket that receives a pidfd of the new process. */
  pidfdSocket?: string;
  detach: boolean;
  pidFile?: string;
  cwd?: string;
  env: string[];
  user?: string;
  additionalGids: string[];
  caps: string[];
  noNewPrivs: boolean;
  /** --apparmor: the process's AppArmor profile (over --process's too). */
  apparmor?: string;
  /** --process-label: the process's SELinux label (over --process's too). */
  processLabel?: string;
  preserveFds: number;
  ignorePaused: boolean;
  /** --cgroup: sub-cgroups of the container's to run the process in (runc's `[controller:]path`). */
  cgroups?: string[];
  debug: boolean;
  /** Rootless cgroups: a cgroup this user cannot move the process into is skipped, as runc does. */
  rootless?: RootlessContext;
}


function readProcessFile(path: string): ConfigProcess {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    if (err instanceof SyntaxError) throw new TsrunError(`${path}: invalid JSON: ${err.message}`);
    throw new TsrunError(`${path}: ${errnoText(err)}`);
  }
  // As runc: a process without "user" runs as 0:0 (Go's zero value), not as the container's user.
  if (raw !== null && typeof raw === "object" && !Array.isArray(raw) && !("user" in raw)) raw = { ...raw, user: { uid: 0, gid: 0 } };
  const { process: p, problems, warnings } = validateProcess(raw);
  if (problems.length || !p) throw new TsrunError(problems.map((pr) => formatProblem(pr, "process.json")).join("\n"));
  for (const w of warnings) logWarn(formatProblem(w, "process.json"));
  return p;
}

function parseId(text: string, what: string): number {
  if (!/^[0-9]+$/.test(text)) throw new TsrunError(`invalid ${what} "${text}": want a number`);
  return Number(text);
}

function withEnv(env: string[], overrides: string[]): string[] {
  const out = [...env];
  for (const kv of overrides) {
    const key = kv.split("=", 1)[0];
    const i = out.findIndex((e) => e.split("=", 1)[0] === key);
    if (i >= 0) out[i] = kv;
    else out.push(kv);
  }
  return out;
}

/**
 * The process to start: --process FILE, or the container's own process with the flags over it.
 * --apparmor and --process-label apply in both cases (runc drops them with --process; here no
 * flag given is ignored).
 */
export function execProcess(base: ConfigProcess | undefined, o: ExecOptions): ConfigProcess {
  const p = o.processFile ? readProcessFile(o.processFile) : processFromFlags(base, o);
  if (o.apparmor) p.apparmorProfile = o.apparmor;
  if (o.processLabel) p.selinuxLabel = o.processLabel;
  return p;
}

function processFromFlags(base: ConfigProcess | undefined, o: ExecOptions): ConfigProcess {
  if (!base) throw new TsrunError("the container has no process config to base the new process on; use --process");
  if (o.args.length === 0) throw new TsrunError("exec: expects <container-id> <command> [args...], or --process FILE");
  const p: ConfigProcess = structuredClone(base);
  p.args = o.args;
  // As runc: the container's process.consoleSize stays, so `exec -t` gets that size.
  p.terminal = o.tty;
  if (o.cwd) p.cwd = o.cwd;
  p.env = withEnv(p.env ?? [], o.env);
  if (o.user) {
    const [uid, gid] = o.user.split(":");
    p.user = { ...p.user, uid: parseId(uid!, "user id"), gid: gid === undefined ? p.user.gid : parseId(gid, "group id") };
  }
  if (o.additionalGids.length) p.user.additionalGids = o.additionalGids.map((g) => parseId(g, "additional gid"));
  if (o.caps.length) {
    const c = (p.capabilities ??= {});
    for (const set of ["bounding", "effective", "permitted"] as const) c[set] = [...new Set([...(c[set] ?? []), ...o.caps])];
  }
  if (o.noNewPrivs) p.noNewPrivileges = true;
  return p;
}

/** The cgroup.procs files the process joins: the container's cgroups, or --cgroup's sub-cgroups of them. */
function cgroupProcs(cgroup: CgroupState | undefined, sub: string[]): string[] {
  if (sub.length === 0) return cgroup ? procsFiles(cgroup) : [];
  if (!cgroup || !hasCgroupDirs(cgroup)) throw new TsrunError("--cgroup: the container has no cgroup");
  return subCgroupProcs(cgroup, sub);
}

/** process.execCPUAffinity (exec only: the runtime-spec says it does not apply to the init). */
function execCpuAffinity(p: ConfigProcess): CpuAffinity | undefined {
  const initial = parseCpuList(p.execCPUAffinity?.initial);
  const final = parseCpuList(p.execCPUAffinity?.final);
  if (!initial && !final) return undefined;
  return { initial: initial ?? [], final: final ?? [] };
}

function execPlan(o: ExecOptions, record: ContainerRecord, proc: ConfigProcess): ExecPlan {
  return {
    launch: planLaunch({
      foreground: !o.detach,
      debug: o.debug,
      preserveFds: o.preserveFds,
      // Every namespace of the container, joined through its init.
      namespaces: planNamespaces((record.config.linux?.namespaces ?? []).map((ns) => ({
        type: ns.type as NamespaceType,
        path: `/proc/${record.pid}/ns/${NS_FILE[ns.type as NamespaceType]}`,
      }))),
      // The Intel RDT tasks files after the cgroup ones: the helper writes the pid to each, in order.
      cgroupProcs: [...cgroupProcs(record.cgroup, o.cgroups ?? []), ...rdtTasksFiles(record.intelRdt)],
      process: planProcess(proc, logWarn),
      consoleSocket: o.consoleSocket,
      pidfdSocket: o.pidfdSocket ? resolve(o.pidfdSocket) : undefined,
      memoryPolicy: planMemoryPolicy(record.config.linux?.memoryPolicy),
      sessionKeyring: sessionKeyringName(record.id, record.noNewKeyring),
      seccomp: planSeccomp(record.config, record.id, record.bundle, "running"),
      personality: planContainerPersonality(record.config, logWarn),
    }),
    cpuAffinity: execCpuAffinity(proc),
    cgroupProcsOptional: o.rootless?.cgroups === true,
    // Without a mount namespace to join, the process gets the init's root (runc leaves it the host's).
    root: record.config.linux?.namespaces?.some((ns) => ns.type === "mount") ? "" : `/proc/${record.pid}/root`,
  };
}

export async function execInContainer(o: ExecOptions): Promise<number> {
  const { record, status } = loadContainer(o.root, o.id);
  if (status === "stopped" || status === "creating") throw new TsrunError("cannot exec in a stopped container");
  if (status === "paused" && !o.ignorePaused) throw new TsrunError("cannot exec in a paused container (use --ignore-paused to override)");
  // The flags are named in the error, not the process field they set.
  checkSelinuxLabel(o.processLabel, "exec --process-label");
  planApparmor(o.apparmor, "exec --apparmor");
  const proc = execProcess(record.config.process, o);
  if (proc.terminal && !o.consoleSocket && o.detach) throw new TsrunError("cannot allocate tty if tsrun will detach without setting console socket");
  if (!proc.terminal && o.consoleSocket) throw new TsrunError("cannot use console socket if the process does not allocate a tty (use --tty)");

  // Started now, so that its exec overlaps the planning below.
  const started = startHelper(o.preserveFds);
  let plan: ExecPlan;
  try {
    plan = execPlan(o, record, proc);
  } catch (err) {
    await started.cancel();
    throw err;
  }

  // In the foreground the handlers are in place before the process exists: it may run (and be
  // signalled by a caller that saw its output) before tsrun has read the helper's "ready".
  // What arrives before its pid is known is passed on once it is.
  let target = 0;
  const early: NodeJS.Signals[] = [];
  const forward = (sig: NodeJS.Signals) => {
    if (target === 0) {
      early.push(sig);
      return;
    }
    try {
      process.kill(target, sig);
    } catch {
      // gone already
    }
  };
  const signals: NodeJS.Signals[] = o.detach ? [] : ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGWINCH"];
  for (const sig of signals) process.on(sig, forward);
  try {
    const helper = await started.launch({ $case: "exec", value: plan });
    if (o.pidFile) writePidFile(o.pidFile, helper.pid);
    if (o.detach) return 0;
    target = helper.pid;
    for (const sig of early.splice(0)) forward(sig);
    return await helper.exitStatus;
  } finally {
    for (const sig of signals) process.off(sig, forward);
  }
}
