// Running tsrun from tests: the binary, private state dirs, container ids, sync and async calls.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { onTeardown, ownedRoots, removeAtTeardown, type TestLike } from "./context.ts";
import { REPO } from "./rootfs.ts";

/** The tsrun executable under test: $TSRUN_BIN, else build/tsrun of this checkout. */
export const TSRUN = path.resolve(process.env.TSRUN_BIN || path.join(REPO, "build/tsrun"));

/**
 * A token unique to this test process: "<test file stem>-<pid>". Every container id from
 * containerId(), every state dir from testRoot(), and the environment of every tsrun and
 * container process a test starts carry it, so the leak checker can tell this file's leftovers
 * from those of test files running at the same time.
 */
export const TEST_TAG = `${fileStem()}-${process.pid}`;
/** Environment variable holding TEST_TAG in tsrun's and the containers' environment. */
export const TAG_ENV = "TSRUN_TEST_TAG";

function fileStem(): string {
  const base = path.basename(process.argv[1] ?? "test").replace(/\.(test|spec)?\.?[cm]?[jt]sx?$/, "");
  return (base.replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 24) || "test").replace(/^[.-]/, "_");
}

let idCounter = 0;
/** A fresh container id, "<TEST_TAG>-<n>" or "<TEST_TAG>-<n>-<label>". */
export function containerId(label?: string): string {
  ++idCounter;
  return label ? `${TEST_TAG}-${idCounter}-${label}` : `${TEST_TAG}-${idCounter}`;
}

export const TEST_ROOT_PARENT = "/run/tsrun-test";
let rootCounter = 0;

/**
 * A private --root state dir for t (/run/tsrun-test/<TEST_TAG>-r<n>), created empty. At t's end
 * containers still in it are force-deleted and the dir is removed (after leakCheck looked).
 */
export function testRoot(t: TestLike): string {
  fs.mkdirSync(TEST_ROOT_PARENT, { recursive: true, mode: 0o700 });
  const root = path.join(TEST_ROOT_PARENT, `${TEST_TAG}-r${++rootCounter}`);
  fs.mkdirSync(root, { mode: 0o700 });
  removeAtTeardown(t, root, "state dir");
  ownedRoots.add(root);
  onTeardown(t, "containers", () => {
    for (const id of listDir(root)) {
      try {
        cleanupContainer(root, id);
      } catch (e) {
        t.comment?.(`cleanup of ${id} in ${root}: ${(e as Error).message}`);
      }
    }
  });
  return root;
}

export interface TsrunOptions {
  /** --root, passed before the command as a global flag. */
  root?: string;
  /** Written to tsrun's stdin (stdin is /dev/null when absent). */
  input?: string;
  /** Extra environment, on top of process.env and TSRUN_TEST_TAG. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /**
   * Kill tsrun (SIGKILL) after this long. Default 120 s: a guard against a hung run, never a
   * speed check — tests must not assert on how fast anything is.
   */
  timeoutMs?: number;
  /**
   * Run tsrun as this unprivileged user (setpriv --reuid/--regid/--init-groups; the kernel drops
   * every capability with uid 0). joinCgroup: a cgroup.procs file the command is moved into
   * first, as root (how a user's processes come to be in a cgroup delegated to it).
   */
  user?: { uid: number; gid: number; joinCgroup?: string };
  /**
   * Run build/tsrun-main itself, not the C front end: the TypeScript path of every command,
   * without the front end's fast paths (the crash points of TSRUN_TEST_CRASH_AT are there).
   */
  main?: boolean;
}

export interface TsrunResult {
  /** Exit status; 128+signal number when tsrun was killed by a signal. */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const DEFAULT_TIMEOUT_MS = 120_000;

function argv(args: string[], opts: TsrunOptions): string[] {
  return opts.root ? ["--root", opts.root, ...args] : args;
}

/** The program and arguments that run tsrun with args (as opts.user when given). */
function command(args: string[], opts: TsrunOptions): [string, string[]] {
  const u = opts.user;
  const bin = opts.main ? path.join(path.dirname(TSRUN), "tsrun-main") : TSRUN;
  if (!u) return [bin, argv(args, opts)];
  const setpriv = ["setpriv", `--reuid=${u.uid}`, `--regid=${u.gid}`, "--init-groups", bin, ...argv(args, opts)];
  if (!u.joinCgroup) return [setpriv[0]!, setpriv.slice(1)];
  return ["/bin/sh", ["-c", 'echo $$ > "$0" && exec "$@"', u.joinCgroup, ...setpriv]];
}

function env(opts: TsrunOptions): NodeJS.ProcessEnv {
  return { ...process.env, [TAG_ENV]: TEST_TAG, ...opts.env };
}

function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
}

/**
 * Where tsrun's stdout/stderr go for tsrun() and tsrunAsync(): an unlinked temp file, not a pipe.
 * `create` (and `run -d`, `exec -d`) hand tsrun's stdio to the container, which keeps it open
 * after tsrun exits; reading a pipe until EOF would then wait for the container to end. A file
 * is read as soon as tsrun itself has exited. (The manager tests use it for the same reason: conmon
 * or a shim keeps a copy of a pipe long after the command they ran has exited.)
 */
export class Capture {
  readonly fd: number;
  constructor() {
    const p = path.join(os.tmpdir(), `tsrun-out-${process.pid}-${Math.random().toString(36).slice(2)}`);
    this.fd = fs.openSync(p, "wx+", 0o600);
    fs.unlinkSync(p);
  }
  /** Everything written so far; closes our fd (a container may keep writing to its own). */
  read(): string {
    try {
      const size = fs.fstatSync(this.fd).size;
      const buf = Buffer.alloc(size);
      let off = 0;
      while (off < size) {
        const n = fs.readSync(this.fd, buf, off, size - off, off);
        if (n === 0) break;
        off += n;
      }
      return buf.subarray(0, off).toString("utf8");
    } finally {
      fs.closeSync(this.fd);
    }
  }
}

/** Run tsrun to completion: tsrun([...], {root}) runs `tsrun --root ROOT ...`. */
export function tsrun(args: string[], opts: TsrunOptions = {}): TsrunResult {
  const out = new Capture();
  const err = new Capture();
  const [file, fileArgs] = command(args, opts);
  const r = spawnSync(file, fileArgs, {
    cwd: opts.cwd,
    env: env(opts),
    input: opts.input,
    stdio: [opts.input === undefined ? "ignore" : "pipe", out.fd, err.fd],
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  const stdout = out.read();
  const stderr = err.read();
  if (r.error && !r.signal) throw r.error;
  return { code: exitCode(r.status, r.signal), signal: r.signal, stdout, stderr };
}

/**
 * Start tsrun without waiting, for foreground `run` tests that signal it, write to its stdin
 * (opts.input, else stdin stays an open pipe in child.stdin) or read its output while it runs.
 * Output comes through pipes, so `done` waits until every holder of them (the container too)
 * has closed them: fine for a foreground `run`; for `create` or `run -d` use tsrunAsync.
 */
export function spawnTsrun(args: string[], opts: TsrunOptions = {}): { child: ChildProcess; done: Promise<TsrunResult> } {
  const [file, fileArgs] = command(args, opts);
  const child = spawn(file, fileArgs, { cwd: opts.cwd, env: env(opts), stdio: ["pipe", "pipe", "pipe"] });
  const done = new Promise<TsrunResult>((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: exitCode(code, signal), signal, stdout, stderr });
    });
  });
  child.stdin!.on("error", () => {}); // tsrun may exit without reading its input
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  return { child, done };
}

/**
 * tsrun run to completion without blocking the event loop (stdin: opts.input, else /dev/null).
 * Like tsrun(), output goes through temp files, so it returns when tsrun exits.
 */
export function tsrunAsync(args: string[], opts: TsrunOptions = {}): Promise<TsrunResult> {
  return new Promise<TsrunResult>((resolve, reject) => {
    const out = new Capture();
    const err = new Capture();
    const [file, fileArgs] = command(args, opts);
    const child = spawn(file, fileArgs, {
      cwd: opts.cwd,
      env: env(opts),
      stdio: [opts.input === undefined ? "ignore" : "pipe", out.fd, err.fd],
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    let finished = false;
    const finish = (fn: (output: { stdout: string; stderr: string }) => void) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      fn({ stdout: out.read(), stderr: err.read() });
    };
    child.on("error", (e) => finish(() => reject(e)));
    child.on("exit", (code, signal) => finish((o) => resolve({ code: exitCode(code, signal), signal, ...o })));
    if (child.stdin) {
      child.stdin.on("error", () => {}); // tsrun may exit without reading its input
      child.stdin.end(opts.input);
    }
  });
}

/**
 * `tsrun --root ROOT delete --force ID`, for teardowns. A container that does not exist is fine;
 * any other failure throws. Returns whether there was something to delete.
 */
export function cleanupContainer(root: string, id: string): boolean {
  const r = tsrun(["delete", "--force", id], { root });
  if (r.code === 0) return true;
  if (/does not exist/.test(r.stderr)) return false;
  throw new Error(`tsrun delete --force ${id} failed (${r.code}): ${r.stderr.trim()}`);
}

export function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** What `tsrun state` prints, as the tests read it. */
export interface StateJson {
  id: string;
  pid: number;
  status: string;
  bundle: string;
  [k: string]: unknown;
}

/** `tsrun state ID`, parsed; throws when it fails. */
export function state(root: string, id: string, opts: TsrunOptions = {}): StateJson {
  const r = tsrun(["state", id], { ...opts, root });
  if (r.code !== 0) throw new Error(`state ${id}: code ${r.code}${r.signal ? ` (${r.signal})` : ""}, stderr ${JSON.stringify(r.stderr.slice(0, 400))}`);
  return JSON.parse(r.stdout) as StateJson;
}

/** Poll `tsrun state` until the status is `want` (or about 5 s pass); returns the last status. */
export function waitForStatus(root: string, id: string, want: string): string {
  let status = "";
  for (let i = 0; i < 500; i++) {
    status = state(root, id).status;
    if (status === want) break;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  return status;
}
