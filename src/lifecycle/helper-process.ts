/**
 * Runs the C helper and speaks the sync-socket protocol (docs/architecture.md): the plan
 * goes in, "pid", "ready", "exit", "error", "warn" and "debug" lines come back.
 */
import { TsrunError } from "../errors.ts";
import { logDebug, logWarn } from "../log.ts";
import { helperPath } from "../linux/helper-path.ts";
import { encodePlan } from "../linux/plan-encode.ts";
import { spawnWithSyncSocket, type SyncChild } from "../linux/spawn.ts";
import { primeCgroupFile } from "../linux/cgroups/index.ts";
import type { LaunchPlan } from "../linux/launch-plan.ts";
import { crashPoint } from "./crash-point.ts";

export interface HelperRun {
  /** The container process, as the host sees it. */
  pid: number;
  /** Foreground plans: the process's exit status (128+signal when killed). */
  exitStatus: Promise<number>;
  /** Kill the helper (and with it a child that is not yet ready). */
  abort(): void;
}

export { helperPath };

const START_ERROR = "unable to start container process: ";

export interface LaunchOptions {
  /**
   * Called when the helper pauses at a hook point ("hook NAME"), with the container process's
   * pid. The helper goes on when the promise resolves; when it rejects the create is aborted
   * and launchHelper rejects with that error.
   */
  onHook?: (point: string, pid: number) => Promise<void>;
}

export function launchHelper(plan: LaunchPlan, opts: LaunchOptions = {}): Promise<HelperRun> {
  // Encoded before the helper runs: a value the plan cannot carry (a NUL byte in a string, a
  // number out of range) that validation let through is the user's error, said in one line.
  let encoded: Uint8Array;
  try {
    encoded = encodePlan(plan);
  } catch (err) {
    return Promise.reject(err instanceof TsrunError ? err : new TsrunError(`invalid container configuration: ${(err as Error).message}`));
  }
  const syncFd = 3 + plan.preserveFds;
  const started = Date.now();

  return new Promise<HelperRun>((resolveLaunch, rejectLaunch) => {
    let pid = 0;
    let ready = false;
    let error: string | undefined;
    let hookError: unknown;
    let exitCode: number | undefined;
    let resolveExit: (n: number) => void = () => {};
    let rejectExit: (e: Error) => void = () => {};
    const exitStatus = new Promise<number>((res, rej) => {
      resolveExit = res;
      rejectExit = rej;
    });
    exitStatus.catch(() => {});
    // Set right below, before any event can come (events come from the event loop).
    let child: SyncChild | undefined;
    const abort = () => child?.kill("SIGKILL");

    const onLine = (line: string) => {
      const space = line.indexOf(" ");
      const word = space < 0 ? line : line.slice(0, space);
      const rest = space < 0 ? "" : line.slice(space + 1);
      switch (word) {
        case "pid":
          pid = Number(rest);
          if (plan.mode === "create") crashPoint("create-helper-pid");
          break;
        case "ready":
          ready = true;
          // What comes next, up to the exit, is read when the helper exits.
          child?.idle();
          logDebug(`helper ready after ${Date.now() - started} ms`);
          resolveLaunch({ pid, exitStatus, abort });
          break;
        case "exit":
          exitCode = Number(rest);
          break;
        case "error":
          error ??= rest;
          break;
        case "hook": {
          const onHook = opts.onHook ?? (() => Promise.resolve());
          onHook(rest, pid).then(
            () => child?.write("continue\n"),
            (err: unknown) => {
              hookError = err;
              child?.write("abort\n");
            },
          );
          break;
        }
        case "warn":
          logWarn(rest);
          break;
        case "debug":
          logDebug(`helper: ${rest}`);
          break;
        default:
          logDebug(`helper said something unknown: ${line}`);
      }
    };

    let buffered = "";
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    };
    const onError = (err: Error) => rejectLaunch(new TsrunError(`cannot run tsrun-helper: ${err.message}`));
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (buffered) onLine(buffered);
      const failure = error ?? `tsrun-helper ${signal ? `killed by ${signal}` : `exited with status ${code}`} before the container was ready`;
      if (!ready) {
        if (hookError !== undefined) {
          rejectLaunch(hookError instanceof TsrunError ? new TsrunError(START_ERROR + hookError.message) : hookError);
          return;
        }
        rejectLaunch(new TsrunError(error ? START_ERROR + error : failure));
        return;
      }
      if (exitCode !== undefined) resolveExit(exitCode);
      else if (plan.foreground) rejectExit(new TsrunError(error ?? "tsrun-helper ended without reporting the exit status"));
      else resolveExit(0);
    };
    try {
      logDebug("spawning helper");
      // Made after the container's cgroup dirs (create made them already): see primeCgroupFile().
      const prime = plan.cgroupProcs.length > 0 ? primeCgroupFile() : undefined;
      const args = prime ? [String(syncFd), "--prime-cgroup-attach", prime] : [String(syncFd)];
      child = spawnWithSyncSocket(helperPath(), args, syncFd, { data: onData, error: onError, exit: onExit });
      logDebug("helper spawned");
    } catch (err) {
      onError(err as Error);
      return;
    }
    child.write(encoded);
    logDebug("plan sent");
  });
}
