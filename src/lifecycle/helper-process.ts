/**
 * Runs the C helper and speaks the boundary's frames (boundary/helper.proto,
 * docs/architecture.md): the plan goes in, Pid, Ready, Exited, Failure, Warning, Progress and
 * Hook events come back; hook answers go in.
 */
import { TsrunError } from "../errors.ts";
import { logDebug, logWarn } from "../log.ts";
import { helperExecPath } from "../linux/helper-path.ts";
import { spawnWithSyncSocket, type SyncChild } from "../linux/spawn.ts";
import { FromHelperReader, toHelperFrame } from "../boundary/frames.ts";
import { failureText, warningText } from "../boundary/wording.ts";
import { HookPoint, type CreatePlan, type ExecPlan, type FromHelper } from "../boundary/gen/helper.ts";
import { crashPoint } from "./crash-point.ts";

export interface HelperRun {
  /** The container process, as the host sees it. */
  pid: number;
  /** Foreground plans: the process's exit status (128+signal when killed). */
  exitStatus: Promise<number>;
  /** Kill the helper (and with it a child that is not yet ready). */
  abort(): void;
}

export { helperExecPath };

const START_ERROR = "unable to start container process: ";

/** What the helper is to do: create a container, or exec a process in one. */
export type LaunchRequest = { $case: "create"; value: CreatePlan } | { $case: "exec"; value: ExecPlan };

export interface LaunchOptions {
  /**
   * Called when the helper pauses at a hook point, with the container process's pid. The helper
   * goes on when the promise resolves; when it rejects the create is aborted and launch()
   * rejects with that error.
   */
  onHook?: (point: "createRuntime" | "createContainer", pid: number) => Promise<void>;
}

const HOOK_POINTS: Partial<Record<HookPoint, "createRuntime" | "createContainer">> = {
  [HookPoint.CREATE_RUNTIME]: "createRuntime",
  [HookPoint.CREATE_CONTAINER]: "createContainer",
};

/**
 * A helper started before its plan is ready: it runs its exec and start-up on the other CPU
 * while tsrun makes the cgroup and builds the plan (about 0.6 ms of every create). Nothing is
 * decided by starting it: until launch() sends a plan it waits, and cancel() kills it.
 */
export interface StartedHelper {
  /** Sends the plan; resolves once the helper reports Ready. */
  launch(request: LaunchRequest, opts?: LaunchOptions): Promise<HelperRun>;
  /** Kills a helper that was never launched, and waits until it has exited. */
  cancel(): Promise<void>;
}

/** preserveFds: the caller's fds 3 .. 3+N-1 that the helper passes to the process. */
export function startHelper(preserveFds: number): StartedHelper {
  const syncFd = 3 + preserveFds;
  let request: LaunchRequest | undefined;
  let opts: LaunchOptions = {};
  let started = 0;
  let settle: { resolve(run: HelperRun): void; reject(err: unknown): void } | undefined;
  let pid = 0;
  let ready = false;
  let failure: TsrunError | undefined;
  let hookError: unknown;
  let exitCode: number | undefined;
  /** Set once the helper has exited, or could not be started: how launch() ends. */
  let ended: (() => void) | undefined;
  let resolveEnded: () => void = () => {};
  const endedPromise = new Promise<void>((res) => (resolveEnded = res));
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
  const answer = (proceed: boolean) => child?.write(toHelperFrame({ msg: { $case: "hookAnswer", value: { proceed } } }));

  const onEvent = (ev: FromHelper) => {
    const e = ev.event;
    switch (e?.$case) {
      case "pid":
        pid = e.value;
        if (request?.$case === "create") crashPoint("create-helper-pid");
        break;
      case "ready":
        ready = true;
        // What comes next, up to the exit, is read when the helper exits.
        child?.idle();
        logDebug(`helper ready after ${Date.now() - started} ms`);
        settle?.resolve({ pid, exitStatus, abort });
        break;
      case "exited":
        exitCode = e.value;
        break;
      case "failure":
        failure ??= new TsrunError(request ? failureText(e.value, request.value) : `tsrun-helper failed before its plan was sent (code ${e.value.code})`, { failure: e.value });
        break;
      case "hook": {
        const point = HOOK_POINTS[e.value];
        const onHook = opts.onHook ?? (() => Promise.resolve());
        if (!point) {
          answer(false);
          break;
        }
        onHook(point, pid).then(
          () => answer(true),
          (err: unknown) => {
            hookError = err;
            answer(false);
          },
        );
        break;
      }
      case "warning":
        logWarn(warningText(e.value));
        break;
      case "progress":
        logDebug(`helper: ${e.value.ms.toFixed(3)} ${e.value.text}`);
        break;
      default:
        logDebug(`helper sent an event tsrun does not know: ${JSON.stringify(ev.event?.$case)}`);
    }
  };

  const reader = new FromHelperReader();
  const onData = (chunk: Buffer) => {
    let events: FromHelper[];
    try {
      events = reader.push(chunk);
    } catch (err) {
      failure ??= new TsrunError(`tsrun-helper: ${(err as Error).message}`);
      child?.kill("SIGKILL");
      return;
    }
    for (const ev of events) onEvent(ev);
  };
  const end = (how: () => void) => {
    ended = how;
    resolveEnded();
    if (settle) how();
  };
  const onError = (err: Error) => end(() => settle?.reject(new TsrunError(`cannot run tsrun-helper: ${err.message}`)));
  const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
    end(() => {
      const how = `tsrun-helper ${signal ? `killed by ${signal}` : `exited with status ${code}`} before the container was ready`;
      if (!ready) {
        if (hookError !== undefined) {
          settle?.reject(hookError instanceof TsrunError ? new TsrunError(START_ERROR + hookError.message) : hookError);
          return;
        }
        settle?.reject(failure ? new TsrunError(START_ERROR + failure.message, { ...(failure.failure ? { failure: failure.failure } : {}) }) : new TsrunError(how));
        return;
      }
      if (exitCode !== undefined) resolveExit(exitCode);
      else if (request?.value.launch?.foreground) rejectExit(failure ?? new TsrunError("tsrun-helper ended without reporting the exit status"));
      else resolveExit(0);
    });
  try {
    logDebug("spawning helper");
    child = spawnWithSyncSocket(helperExecPath(), [String(syncFd)], syncFd, { data: onData, error: onError, exit: onExit }, "tsrun-helper");
    logDebug("helper spawned");
  } catch (err) {
    onError(err as Error);
  }

  return {
    launch(req, launchOpts = {}) {
      // A plan that is not sent: the waiting helper is killed and gone before the error is.
      const refuse = (err: TsrunError): Promise<HelperRun> => {
        abort();
        return endedPromise.then(() => Promise.reject(err));
      };
      if (req.value.launch?.preserveFds !== preserveFds) {
        return refuse(new TsrunError(`internal error: a helper started for ${preserveFds} preserved fds got a plan for ${req.value.launch?.preserveFds ?? 0}`));
      }
      // Encoded before it is sent: a value the plan cannot carry that validation let through is
      // the user's error, said in one line.
      let encoded: Uint8Array;
      try {
        encoded = toHelperFrame({ msg: req });
      } catch (err) {
        return refuse(err instanceof TsrunError ? err : new TsrunError(`invalid container configuration: ${(err as Error).message}`));
      }
      request = req;
      opts = launchOpts;
      started = Date.now();
      return new Promise<HelperRun>((resolve, reject) => {
        settle = { resolve, reject };
        if (ended) {
          ended();
          return;
        }
        child?.write(encoded);
        logDebug("plan sent");
      });
    },
    async cancel() {
      abort();
      await endedPromise;
    },
  };
}
