/**
 * Runs one hook process to its end: stdin is the state JSON, stdout and stderr are collected,
 * and a timeout kills it. A few dozen lines on child_process.spawn instead of a dependency:
 * execa, bundled, put a dozen node: built-ins on the start-up path of every command.
 *
 * node:child_process is imported dynamically: only a container with hooks loads it. Not
 * createRequire: under Bun a child_process loaded that way made each spawn about 12 ms of CPU
 * dearer (bench/analysis.md).
 */
import type { ChildProcess } from "node:child_process";

export interface HookProcessOptions {
  /** What the process gets as argv[0]; absent: file. */
  argv0?: string;
  input: string;
  /** Exactly the environment the process gets (nothing of tsrun's own is added). */
  env: Record<string, string>;
  cwd?: string;
  /** Milliseconds; 0 or absent: none. */
  timeoutMs?: number;
  /** Sent when the timeout expires (or the output grows past maxBuffer). */
  killSignal: NodeJS.Signals;
  /** After killSignal, SIGKILL when the process is still there this many ms later; absent: never. */
  forceKillAfterMs?: number;
  /** Bytes kept of stdout and of stderr each; past it the process is killed as on a timeout. */
  maxBuffer: number;
  /** A socket at the process's fd 3: send is written to it, what comes back goes to receive. */
  control?: { send: Uint8Array; receive(chunk: Buffer): void };
}

export type HookProcessResult =
  /** It never ran: the error spawn gave (its code is the errno name). */
  | { kind: "spawn-failed"; error: Error }
  | { kind: "ended"; exitCode: number | null; signal: NodeJS.Signals | null; timedOut: boolean; stdout: string; stderr: string };

export async function runHookProcess(file: string, args: string[], opts: HookProcessOptions): Promise<HookProcessResult> {
  const { spawn } = await import("node:child_process");
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        ...(opts.argv0 !== undefined ? { argv0: opts.argv0 } : {}),
        env: opts.env,
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
        stdio: opts.control ? ["pipe", "pipe", "pipe", "pipe"] : ["pipe", "pipe", "pipe"],
      });
    } catch (err) {
      resolve({ kind: "spawn-failed", error: err as Error });
      return;
    }
    let settled = false;
    let timedOut = false;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const size = { out: 0, err: 0 };
    let timer: ReturnType<typeof setTimeout> | undefined;
    let forceTimer: ReturnType<typeof setTimeout> | undefined;
    const stop = () => {
      try {
        child.kill(opts.killSignal);
      } catch {
        // already gone
      }
      if (opts.forceKillAfterMs !== undefined && forceTimer === undefined) {
        forceTimer = setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        }, opts.forceKillAfterMs);
      }
    };
    const finish = (r: HookProcessResult) => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      if (forceTimer !== undefined) clearTimeout(forceTimer);
      resolve(r);
    };
    const collect = (into: Buffer[], which: "out" | "err") => (chunk: Buffer) => {
      const room = opts.maxBuffer - size[which];
      if (room <= 0) return;
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      into.push(kept);
      size[which] += kept.length;
      if (chunk.length > room) stop();
    };
    if (opts.control) {
      const control = child.stdio[3] as import("node:stream").Duplex;
      control.on("data", (chunk: Buffer) => opts.control!.receive(chunk));
      control.on("error", () => {});
      control.write(opts.control.send);
    }
    child.stdout!.on("data", collect(out, "out"));
    child.stderr!.on("data", collect(err, "err"));
    // A hook that exits without reading its stdin is not an error (EPIPE).
    child.stdin!.on("error", () => {});
    child.stdin!.end(opts.input);
    child.on("error", (e) => {
      // Only a process that never started ends here; a failed kill of a live one is ignored.
      if (child.pid === undefined) finish({ kind: "spawn-failed", error: e });
    });
    // "close", not "exit": like runc (Go's cmd.Wait), the output is complete only when every
    // holder of the pipes is gone.
    child.on("close", (code, signal) => {
      finish({
        kind: "ended",
        exitCode: code,
        signal,
        timedOut,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        timedOut = true;
        stop();
      }, opts.timeoutMs);
    }
  });
}
