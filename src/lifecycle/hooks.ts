/**
 * OCI hooks (runtime-spec 1.3.0, config.md "POSIX-platform Hooks" and runtime.md "Lifecycle"),
 * at the moments and in the namespaces runc runs them, each with the state JSON on its stdin,
 * exactly its env, its args as the whole argv (args[0] is argv[0]; path is what is executed)
 * and its timeout (killed with SIGKILL when it runs over):
 *
 * | hook            | run by                          | when                                              | state status |
 * | --------------- | ------------------------------- | ------------------------------------------------- | ------------ |
 * | prestart        | tsrun create, runtime namespace | init paused after its mounts, before pivot_root   | created      |
 * | createRuntime   | tsrun create, runtime namespace | same pause, after the prestart hooks              | created      |
 * | createContainer | tsrun create, via the helper's enter mode: the init's cgroups and namespaces (path resolved before pivot_root, as on the host) | a second pause, right after | created |
 * | startContainer  | the init itself (helper/hooks.c), in the container | after the exec.fifo byte, before execve | created |
 * | poststart       | tsrun start, runtime namespace  | once the init executed the user's process (its startContainer hooks passed) | running |
 * | poststop        | tsrun delete (and run, and a failed create), runtime namespace | after the container is gone | stopped |
 *
 * Failures: a prestart, createRuntime or createContainer hook fails create (which then leaves
 * nothing behind and runs the poststop hooks, as runc's destroy does); a startContainer hook
 * stops the init and fails start; a poststart hook fails start and stops the container; a
 * poststop hook is a warning and the rest goes on.
 *
 * A hook without env gets the environment of whoever runs it, as with runc: tsrun's own for the
 * hooks of the runtime namespace, the container process's (process.env; HOME too for
 * startContainer, set by then) for createContainer and startContainer, which runc runs from its
 * init. Two choices where runc 1.1 differs (docs/compatibility.md): the state's pid is always the
 * container process as the host sees it, as the spec says (runc gives createContainer and
 * startContainer hooks the pid inside the container); and the create-time hooks (prestart,
 * createRuntime, createContainer) see status "created", as runtime.md's lifecycle puts them after
 * step 2 and crun does (runc 1.1 says "creating").
 *
 * node:child_process, which runs the hooks, is loaded only when a config has hooks.
 */
import { openSync, readSync, closeSync, unlinkSync, constants } from "node:fs";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import { TsrunError, errnoText } from "../errors.ts";
import { logDebug, logWarn } from "../log.ts";
import { sleepMs } from "../linux/proc.ts";
import { signalAll } from "../linux/cgroups/index.ts";
import { SIGNALS } from "../linux/signals.ts";
import { CLONE_FLAGS, NS_FILE, type NamespaceType } from "../linux/namespaces.ts";
import { helperExecPath } from "./helper-process.ts";
import { killInit } from "./destroy.ts";
import { runHookProcess, type HookProcessResult } from "./hook-process.ts";
import { processEnv } from "./plan.ts";
import type { ContainerRecord } from "./state-store.ts";
import { FromHelperReader, readEvents, toHelperFrame } from "../boundary/frames.ts";
import { failureText, hookFailureText } from "../boundary/wording.ts";
import { ErrorCode, HookPoint, type CreatePlan, type EnterPlan, type Failure, type HookEnd, type StartHooks } from "../boundary/gen/helper.ts";
import { HOOK_NAMES, type HookName } from "../spec/constants.ts";
import type { Spec } from "../spec/generated/types.ts";

export type Hook = NonNullable<NonNullable<Spec["hooks"]>[HookName]>[number];

/** The status in the state each kind of hook gets (see the top of this file for the create-time ones). */
const HOOK_STATUS: Record<HookName, string> = {
  prestart: "created",
  createRuntime: "created",
  createContainer: "created",
  startContainer: "created",
  poststart: "running",
  poststop: "stopped",
};

/** The file in the container's state directory through which the init reports its startContainer hooks. */
export function startStatusPath(dir: string): string {
  return join(dir, "start-status.fifo");
}

export function hooksOf(config: Spec | undefined, name: HookName): Hook[] {
  return config?.hooks?.[name] ?? [];
}

/** The runtime-spec state as runc gives it to hooks: no rootfs/created/owner, pid left out when 0. */
export function hookState(record: ContainerRecord, name: HookName, pid: number | string): string {
  const state: Record<string, unknown> = {
    ociVersion: record.ociVersion,
    id: record.id,
    status: HOOK_STATUS[name],
  };
  if (pid !== 0) state.pid = pid;
  state.bundle = record.bundle;
  if (record.annotations && Object.keys(record.annotations).length) state.annotations = record.annotations;
  // The pid of a startContainer hook is known only in the helper: it replaces this token.
  return JSON.stringify(state).replace('"@PID@"', "@PID@");
}

/** args as the whole argv; without args the path alone, as Go's exec (and so runc) does. */
function argvOf(hook: Hook): string[] {
  return hook.args && hook.args.length > 0 ? hook.args : [hook.path];
}

/** KEY=VALUE strings as an environment object; the last of a repeated key wins. */
function envObject(env: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of env) {
    const eq = kv.indexOf("=");
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

interface RunOptions {
  /** Working directory of the hook (runtime namespace hooks); absent: tsrun's own. */
  cwd?: string;
  /** The environment of a hook without env: tsrun's own when absent. */
  inheritedEnv?: string[];
  /** Run in a container process's cgroups and namespaces through the helper's enter mode. */
  enter?: { pid: number; cwd: string; cgroupProcs: string[]; config: Spec };
}

/**
 * The helper's enter mode for one hook: the container process's cgroups and every namespace of
 * the config, joined through that process; root in its user namespace; a fork when a pid or
 * time namespace applies only to children.
 */
function enterPlan(e: NonNullable<RunOptions["enter"]>, hook: Hook): EnterPlan {
  const types = (e.config.linux?.namespaces ?? []).map((ns) => ns.type as NamespaceType);
  return {
    pid: e.pid,
    cgroupProcs: e.cgroupProcs,
    namespaces: types.map((t) => ({ cloneFlag: CLONE_FLAGS[t], path: `/proc/${e.pid}/ns/${NS_FILE[t]}` })),
    becomeRoot: types.includes("user"),
    cwd: e.cwd,
    path: hook.path,
    argv: argvOf(hook),
    fork: types.includes("pid") || types.includes("time"),
  };
}

/** How a hook process ended, in the terms the helper reports a startContainer hook's end. */
function hookEnd(r: HookProcessResult, hook: Hook): HookEnd | undefined {
  if (r.kind === "spawn-failed") {
    const code = (r.error as NodeJS.ErrnoException).code;
    const errnum = code ? (osConstants.errno as Record<string, number>)[code] : undefined;
    return { how: { $case: "startErrno", value: errnum ?? 0 }, stdoutHead: new Uint8Array(), stderrHead: new Uint8Array() };
  }
  const out = { stdoutHead: Buffer.from(r.stdout), stderrHead: Buffer.from(r.stderr) };
  if (r.timedOut) return { how: { $case: "timedOutAfter", value: hook.timeout ?? 0 }, ...out };
  if (r.exitCode === 0) return undefined;
  if (r.exitCode !== null) return { how: { $case: "exitStatus", value: r.exitCode }, ...out };
  return { how: { $case: "signal", value: (r.signal && SIGNALS[r.signal]) || 0 }, ...out };
}

/** tsrun's own environment, what a runtime-namespace hook without env inherits (as from runc). */
function runtimeEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v;
  return out;
}

/** Runs one hook to its end; throws a TsrunError in runc's words when it fails. */
async function runHook(name: HookName, index: number, hook: Hook, state: string, opts: RunOptions): Promise<void> {
  const argv = argvOf(hook);
  const started = Date.now();
  let failure: Failure | undefined;
  const enter = opts.enter;
  const control = enter && {
    send: toHelperFrame({ msg: { $case: "enter", value: enterPlan(enter, hook) } }),
    reader: new FromHelperReader(),
  };
  const r = await runHookProcess(enter ? helperExecPath() : hook.path, enter ? ["3"] : argv.slice(1), {
    ...(enter ? {} : { argv0: argv[0] }),
    input: state,
    env: hook.env ? envObject(hook.env) : opts.inheritedEnv ? envObject(opts.inheritedEnv) : runtimeEnv(),
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(hook.timeout ? { timeoutMs: hook.timeout * 1000 } : {}),
    // The enter mode turns SIGTERM into the hook's SIGKILL and reaps it (helper/hooks.c).
    killSignal: enter ? "SIGTERM" : "SIGKILL",
    ...(enter ? { forceKillAfterMs: 2000 } : {}),
    maxBuffer: 4 * 1024 * 1024,
    ...(control
      ? {
          control: {
            send: control.send,
            receive: (chunk: Buffer) => {
              for (const ev of control.reader.push(chunk)) if (ev.event?.$case === "failure") failure ??= ev.event.value;
            },
          },
        }
      : {}),
  });
  logDebug(`${name} hook #${index} (${hook.path}) ended after ${Date.now() - started} ms: ${r.kind === "ended" ? r.exitCode ?? r.signal : r.error.message}`);
  if (failure) {
    // The hook never ran: the helper could not enter the container, or not execute the hook.
    if (failure.code === ErrorCode.HOOK_EXEC) {
      throw new TsrunError(hookFailureText(name, index, hook.path, { how: { $case: "startErrno", value: failure.errnum }, stdoutHead: new Uint8Array(), stderrHead: new Uint8Array() }));
    }
    throw new TsrunError(`error running ${name} hook #${index}: ${failureText(failure)}`, { failure });
  }
  const end = hookEnd(r, hook);
  if (end) throw new TsrunError(hookFailureText(name, index, hook.path, end));
}

async function runAll(name: HookName, record: ContainerRecord, pid: number, opts: RunOptions): Promise<void> {
  const hooks = hooksOf(record.config, name);
  if (hooks.length === 0) return;
  const state = hookState(record, name, pid);
  for (const [i, hook] of hooks.entries()) await runHook(name, i, hook, state, opts);
}

// ---------- create ----------

/**
 * The plan additions for create: where the init pauses for the hooks TypeScript runs, and the
 * startContainer hooks the init runs itself (with their status fifo in the state directory).
 */
export function planHooks(record: ContainerRecord, dir: string): Pick<CreatePlan, "hookPoints" | "startHooks"> {
  const config = record.config;
  const hookPoints: HookPoint[] = [];
  if (hooksOf(config, "prestart").length || hooksOf(config, "createRuntime").length) hookPoints.push(HookPoint.CREATE_RUNTIME);
  if (hooksOf(config, "createContainer").length) hookPoints.push(HookPoint.CREATE_CONTAINER);
  // The status fifo also lets start wait for the execve before it runs poststart hooks.
  const start = hooksOf(config, "startContainer");
  let startHooks: StartHooks | undefined;
  if (start.length || hooksOf(config, "poststart").length) {
    startHooks = {
      statusFifo: startStatusPath(dir),
      state: hookState(record, "startContainer", "@PID@"),
      // Without env: the process's environment, which the init has (HOME included) when it runs them.
      hooks: start.map((h) => ({ path: h.path, argv: argvOf(h), env: h.env ?? [], processEnv: h.env === undefined, timeoutSeconds: h.timeout ?? 0 })),
    };
  }
  return { hookPoints, startHooks };
}

/**
 * The handler of the helper's hook points during create: prestart then createRuntime hooks in
 * the runtime namespace (cwd: the bundle, as runc, which runs from there), and createContainer
 * hooks in the container init's cgroups and namespaces (cwd: the rootfs, as runc).
 */
export function createHookHandler(
  record: ContainerRecord,
  cgroupProcs: string[],
): ((point: "createRuntime" | "createContainer", pid: number) => Promise<void>) | undefined {
  const config = record.config;
  if (!HOOK_NAMES.some((n) => n !== "startContainer" && hooksOf(config, n).length)) return undefined;
  return async (point, pid) => {
    if (point === "createRuntime") {
      await runAll("prestart", record, pid, { cwd: record.bundle });
      await runAll("createRuntime", record, pid, { cwd: record.bundle });
    } else {
      const inheritedEnv = record.config.process ? processEnv(record.config.process) : [];
      await runAll("createContainer", record, pid, { enter: { pid, cwd: record.rootfs, cgroupProcs, config }, inheritedEnv });
    }
  };
}

// ---------- start ----------

/**
 * `tsrun start`'s end of the status fifo, opened before the init is released (so that what the
 * init writes is never lost) and read until the init closes it: at execve (a HookOutcome that
 * says ok, written first) or at its exit after a failing hook (a HookOutcome saying which and
 * how). With poststart hooks this is also how start knows the user's process has been executed
 * before it runs them.
 */
export class StartHookStatus {
  private constructor(
    private fd: number | undefined,
    private readonly path: string,
    private readonly hooks: Hook[],
  ) {}

  /** undefined when the container has neither startContainer nor poststart hooks. */
  static open(record: ContainerRecord, dir: string): StartHookStatus | undefined {
    if (hooksOf(record.config, "startContainer").length === 0 && hooksOf(record.config, "poststart").length === 0) return undefined;
    const path = startStatusPath(dir);
    try {
      // Not unlinked yet: the exec.fifo unlink decides which of two concurrent starts goes on.
      return new StartHookStatus(openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), path, hooksOf(record.config, "startContainer"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new TsrunError("cannot start an already running container");
      throw new TsrunError(`cannot open ${path}: ${errnoText(err)}`);
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Waits for the init's verdict; throws the hook's error when it failed. */
  wait(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    try {
      unlinkSync(this.path);
    } catch {
      // gone already: only this start got past the exec.fifo
    }
    const buf = Buffer.alloc(65536);
    const chunks: Buffer[] = [];
    let idle = 0;
    try {
      for (;;) {
        let n: number;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw new TsrunError(`cannot read the start status: ${errnoText(err)}`);
          sleepMs(idle < 100 ? 1 : 10);
          idle++;
          continue;
        }
        if (n === 0) break;
        chunks.push(Buffer.from(buf.subarray(0, n)));
      }
    } finally {
      this.close();
    }
    const outcome = readEvents(Buffer.concat(chunks)).find((e) => e.event?.$case === "hookOutcome")?.event;
    if (outcome?.$case !== "hookOutcome") throw new TsrunError("container init exited before it started the process");
    const o = outcome.value;
    if (o.ok) return;
    const hook = this.hooks[o.index];
    throw new TsrunError(hookFailureText("startContainer", o.index, hook?.path ?? "?", o.end ?? { how: undefined, stdoutHead: new Uint8Array(), stderrHead: new Uint8Array() }));
  }
}

/**
 * poststart hooks, after start released the init. When one fails the container is stopped
 * (every process in it killed) and start fails (runtime-spec 1.3.0 lifecycle step 9).
 */
export async function runPoststartHooks(record: ContainerRecord): Promise<void> {
  try {
    await runAll("poststart", record, record.pid, {});
  } catch (err) {
    try {
      if (record.cgroup) signalAll(record.cgroup, 9);
    } catch {
      // the init's SIGKILL below still stops it
    }
    killInit(record);
    throw err;
  }
}

// ---------- delete ----------

/** poststop hooks, once the container is gone: a failure is a warning and the others still run. */
export async function runPoststopHooks(record: ContainerRecord): Promise<void> {
  const hooks = hooksOf(record.config, "poststop");
  if (hooks.length === 0) return;
  const state = hookState(record, "poststop", record.pid);
  for (const [i, hook] of hooks.entries()) {
    try {
      await runHook("poststop", i, hook, state, {});
    } catch (err) {
      logWarn(err instanceof TsrunError ? err.message : `error running poststop hook #${i}: ${String(err)}`);
    }
  }
}
