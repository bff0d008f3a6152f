/**
 * Starting processes, with one implementation for Bun and one for Node, chosen at run time
 * (globalThis.Bun), with the same behaviour:
 *
 * - under Bun (the shipped executable) Bun.spawn and Bun.spawnSync: with Bun's node:child_process
 *   a process that spawns /bin/true once costs about 7 ms more CPU than with Bun.spawn, and 20 ms
 *   more when child_process is loaded through createRequire (bench/analysis.md).
 * - elsewhere (Node: the tests load src/) node:child_process, loaded on first use.
 *
 * Bun.* is reached only through globalThis, so src/ still loads and type-checks as node:-only code.
 */
import { closeSync, readSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import type { Duplex } from "node:stream";
import { sleepMs } from "./proc.ts";

/** The part of Bun's API used here (bun-types is not a dependency of src/). */
interface BunLike {
  spawn(
    cmd: string[],
    opts: {
      stdio: (number | "socket-fd")[];
      onExit(proc: unknown, exitCode: number | null, signalCode: number | string | null, error?: Error): void;
    },
  ): { readonly stdio: (number | null)[]; readonly exitCode: number | null; readonly signalCode: string | null; kill(signal?: string): void };
  spawn(
    cmd: string[],
    opts: { stdin: "pipe"; stdout: "ignore"; stderr: "ignore" },
  ): { readonly pid: number; readonly stdin: { end(): void }; readonly exited: Promise<number>; kill(signal?: string): void };
  spawnSync(
    cmd: string[],
    opts: { stdin: Uint8Array | "pipe" | "ignore"; stdout: "pipe" | "ignore"; stderr: "pipe" },
  ): { exitCode: number | null; signalCode?: string | null; stdout?: Uint8Array; stderr?: Uint8Array };
}

function bunRuntime(): BunLike | undefined {
  return (globalThis as { Bun?: BunLike }).Bun;
}

type ChildProcessModule = typeof import("node:child_process");
let nodeChildProcess: ChildProcessModule | undefined;

/** Node only. Loaded on first use: most commands never start a process. */
function childProcess(): ChildProcessModule {
  return (nodeChildProcess ??= createRequire(import.meta.url)("node:child_process") as ChildProcessModule);
}

// ---------- a short command, run to its end ----------

export interface SyncResult {
  /** Set when the command could not be started; the rest is then empty. */
  error?: Error;
  status: number | null;
  signal: NodeJS.Signals | null;
  /** What it wrote to stdout, as bytes (empty when discarded). */
  stdout: Buffer;
  /** What it wrote to stderr, as UTF-8. */
  stderr: string;
}

/** Runs file to its end: stdin is input (or an empty pipe), stdout collected or discarded, stderr collected. */
export function runSync(file: string, args: string[], opts: { input?: Uint8Array; stdout: "pipe" | "ignore" }): SyncResult {
  const bun = bunRuntime();
  const bytes = (b: Uint8Array | undefined | null) => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.alloc(0));
  if (!bun) {
    const r = childProcess().spawnSync(file, args, {
      ...(opts.input ? { input: opts.input } : {}),
      stdio: ["pipe", opts.stdout, "pipe"],
    });
    return { ...(r.error ? { error: r.error } : {}), status: r.status, signal: r.signal, stdout: bytes(r.stdout), stderr: bytes(r.stderr).toString("utf8") };
  }
  try {
    const r = bun.spawnSync([file, ...args], { stdin: opts.input ?? "pipe", stdout: opts.stdout, stderr: "pipe" });
    const signal = typeof r.signalCode === "string" ? (r.signalCode as NodeJS.Signals) : null;
    return { status: signal ? null : r.exitCode, signal, stdout: bytes(r.stdout), stderr: bytes(r.stderr).toString("utf8") };
  } catch (err) {
    return { error: err as Error, status: null, signal: null, stdout: Buffer.alloc(0), stderr: "" };
  }
}

// ---------- a process that lives until its stdin is closed ----------

export interface HeldProcess {
  pid: number;
  /** Closes its stdin and waits until it has exited. */
  release(): Promise<void>;
}

/** Starts file with stdin a pipe (stdout and stderr discarded); it is expected to exit at EOF. */
export function spawnHeld(file: string, args: string[]): HeldProcess {
  const bun = bunRuntime();
  if (bun) {
    const proc = bun.spawn([file, ...args], { stdin: "pipe", stdout: "ignore", stderr: "ignore" });
    return {
      pid: proc.pid,
      release: async () => {
        proc.stdin.end();
        await proc.exited;
      },
    };
  }
  const child = childProcess().spawn(file, args, { stdio: ["pipe", "ignore", "ignore"] });
  const exited = new Promise<void>((resolve) => {
    child.on("exit", () => resolve());
    child.on("error", () => resolve());
  });
  if (child.pid === undefined) throw new Error(`cannot run ${file}`);
  return {
    pid: child.pid,
    release: async () => {
      child.stdin!.end();
      await exited;
    },
  };
}

// ---------- the helper, with its sync socket ----------

export interface SyncChild {
  /** Sends bytes on the sync socket. */
  write(data: Uint8Array | string): void;
  /** Kills the helper unless it has exited. */
  kill(signal: NodeJS.Signals): void;
  /**
   * No line is expected before the helper exits: stop watching the socket (it is read once
   * more at the exit). Lines still come in order, only later.
   */
  idle(): void;
}

export interface SyncChildEvents {
  /** The helper could not be started (Node reports it after the spawn call has returned). */
  error(err: Error): void;
  /** Bytes from the sync socket, in order. */
  data(chunk: Buffer): void;
  /** The helper ended; every byte it wrote has been passed to data() before this. */
  exit(code: number | null, signal: NodeJS.Signals | null): void;
}

/**
 * Starts the helper with a socket at syncFd, fds 0..syncFd-1 inherited. Under Bun a
 * "socket-fd" slot: Bun gives the parent end as a raw non-blocking fd, read here by polling
 * until the caller says no more lines are expected before the exit (idle()), then once more
 * when Bun reports the exit, so that no line is lost and a long foreground run does not poll.
 * Throws, or calls on.error later, when the helper cannot be started.
 */
/** argv0: what the child's argv[0] (and ps) says, when file is not the name to show. */
export function spawnWithSyncSocket(file: string, args: string[], syncFd: number, on: SyncChildEvents, argv0?: string): SyncChild {
  const inherited: number[] = [];
  for (let fd = 0; fd < syncFd; fd++) inherited.push(fd);
  const bun = bunRuntime();
  return bun ? spawnBun(bun, file, args, inherited, on, argv0) : spawnNode(file, args, inherited, on, argv0);
}

// ---------- Node ----------

function spawnNode(file: string, args: string[], inherited: number[], on: SyncChildEvents, argv0: string | undefined): SyncChild {
  const syncFd = inherited.length;
  const child = childProcess().spawn(file, args, { stdio: [...inherited, "pipe"], ...(argv0 !== undefined ? { argv0 } : {}) });
  const sock = child.stdio[syncFd] as Duplex;
  sock.on("data", (chunk: Buffer) => on.data(chunk));
  sock.on("error", () => {});
  child.on("error", (err) => on.error(err));
  child.on("exit", (code, signal) => {
    sock.destroy();
    on.exit(code, signal);
  });
  return {
    write: (data) => {
      sock.write(data);
    },
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    idle: () => {},
  };
}

// ---------- Bun ----------

function spawnBun(bun: BunLike, file: string, args: string[], inherited: number[], on: SyncChildEvents, argv0: string | undefined): SyncChild {
  let fd = -1;
  let exited = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let polls = 0;
  const buf = Buffer.allocUnsafe(65536);

  /** Reads what is there without waiting; false once the socket is at its end. */
  const drain = (): boolean => {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") return true;
        return false;
      }
      if (n === 0) return false;
      on.data(Buffer.from(buf.subarray(0, n)));
    }
  };
  const stopPolling = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  const poll = () => {
    timer = undefined;
    if (exited) return;
    if (!drain()) return;
    // 1 ms while the helper sets the container up (about 20 ms, a few lines), then slower for
    // long hooks; the exit is reported by Bun, not found by polling.
    timer = setTimeout(poll, ++polls < 500 ? 1 : 10);
  };

  const proc = bun.spawn([file, ...args], {
    ...(argv0 !== undefined ? { argv0 } : {}),
    stdio: [...inherited, "socket-fd"],
    onExit: (_proc, exitCode, signalCode) => {
      // Bun gives the signal's name (checked with Bun 1.4.5); a number would be a change of API.
      exited = true;
      stopPolling();
      if (fd >= 0) {
        drain();
        closeSync(fd);
        fd = -1;
      }
      on.exit(exitCode, typeof signalCode === "string" ? (signalCode as NodeJS.Signals) : null);
    },
  });
  const got = proc.stdio[inherited.length];
  if (typeof got !== "number") {
    proc.kill("SIGKILL");
    throw new Error("Bun.spawn gave no socket-fd");
  }
  fd = got;
  timer = setTimeout(poll, 1);
  return {
    write: (data) => {
      let rest = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      let idle = 0;
      while (rest.length > 0 && fd >= 0) {
        try {
          rest = rest.subarray(writeSync(fd, rest));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== "EAGAIN" && code !== "EWOULDBLOCK") return; // the helper is gone: its exit says why
          // A plan larger than the socket buffer: the helper is reading it.
          sleepMs(idle++ < 100 ? 1 : 10);
        }
      }
    },
    kill: (signal) => {
      if (!exited && proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
    idle: stopPolling,
  };
}
