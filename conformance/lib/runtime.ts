// Driving the runtime under test: any binary with runc's command line, named by $RUNTIME
// (default: build/tsrun of this checkout). Nothing here knows which runtime it is.
//
// Each test file gets a private --root state dir and a private scratch dir for bundles, both
// removed when the file ends; every container a file creates is force-deleted at its end even
// when a test failed half-way (see hygiene.ts for the check that nothing was left behind).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO } from "./build.ts";

/** The runtime under test. */
export const RUNTIME = path.resolve(process.env.RUNTIME || path.join(REPO, "build/tsrun"));

/** Scratch parent for --root dirs: on /run like real runtimes' state. */
export const ROOT_PARENT = "/run/conformance";

function stem(): string {
  const base = path.basename(process.argv[1] ?? "test").replace(/\.(test)?\.?[cm]?[jt]s$/, "");
  return base.replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 24) || "test";
}

/**
 * "cf-<file stem>-<pid>": part of every container id, cgroup path, state and scratch dir this
 * test process makes, and in the environment (CONFORMANCE_TAG) of every runtime and container
 * process it starts, so leftovers can be found and told apart from parallel test files'.
 */
export const TAG = `cf-${stem()}-${process.pid}`;
export const TAG_ENV = "CONFORMANCE_TAG";

let idCounter = 0;
/** A fresh container id: "<TAG>-<n>". */
export function newId(): string {
  return `${TAG}-${++idCounter}`;
}

export interface Result {
  /** Exit status; 128+signal when killed by a signal. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the runtime's stdin (else stdin is /dev/null). */
  input?: string;
  /** File descriptors for the runtime's stdout and stderr (inherited by a created container). */
  stdoutFd?: number;
  stderrFd?: number;
  cwd?: string;
  env?: Record<string, string>;
  /**
   * Run the runtime through `sh -c "PREFIX; exec runtime ..."`, e.g. "umask 027" or "echo 7 >
   * /proc/self/oom_score_adj": what the caller's process looks like matters to some checks.
   */
  shellPrefix?: string;
  /** Kill a hung runtime after this long (a guard, never a speed check). Default 60 s. */
  timeoutMs?: number;
  /** Do not pass --root (for argument-error checks). */
  noRoot?: boolean;
  /** Pass the global --log FILE (runc's option; where warnings go besides stderr). */
  log?: string;
  /** Run the runtime through this command prefix, e.g. ["nsenter", "--mount=FILE"]. */
  wrap?: string[];
}

export interface CreateOptions extends RunOptions {
  pidFile?: string;
  /** --console-socket: where the runtime sends the pty master of a terminal container. */
  consoleSocket?: string;
}

export interface State {
  ociVersion?: unknown;
  id?: unknown;
  status?: unknown;
  pid?: unknown;
  bundle?: unknown;
  annotations?: unknown;
  [k: string]: unknown;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Whether pid is a live (not zombie) process. */
export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Whether /proc/PID/environ carries this file's tag: only such processes are ever killed. */
export function isOurs(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`${TAG_ENV}=${TAG}`);
  } catch {
    return false;
  }
}

let rootCounter = 0;

export class Runtime {
  readonly bin = RUNTIME;
  readonly root: string;
  /** Scratch dir for bundles and logs of this test file. */
  readonly scratch: string;
  /** Container ids created through this object, with the pid seen after create. */
  readonly containers = new Map<string, number>();

  constructor() {
    this.root = path.join(ROOT_PARENT, `${TAG}-r${++rootCounter}`);
    // recursive: another test file may remove an empty ROOT_PARENT at any moment.
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    this.scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `${TAG}-`)));
    // Traversable by the ids a user-namespaced container maps root to.
    fs.chmodSync(this.scratch, 0o711);
  }

  /** Run `RUNTIME --root ROOT args...` to completion. */
  run(args: string[], opts: RunOptions = {}): Result {
    const argv = [...(opts.log ? ["--log", opts.log] : []), ...(opts.noRoot ? [] : ["--root", this.root]), ...args];
    let file = this.bin;
    let fullArgs = argv;
    if (opts.shellPrefix) {
      file = "/bin/sh";
      fullArgs = ["-c", `${opts.shellPrefix}; exec "$0" "$@"`, this.bin, ...argv];
    }
    if (opts.wrap?.length) {
      fullArgs = [...opts.wrap.slice(1), file, ...fullArgs];
      file = opts.wrap[0]!;
    }
    const spawnIt = () =>
      spawnSync(file, fullArgs, {
        cwd: opts.cwd,
        env: { ...process.env, [TAG_ENV]: TAG, ...opts.env },
        input: opts.input,
        stdio: [opts.input === undefined ? "ignore" : "pipe", opts.stdoutFd ?? "pipe", opts.stderrFd ?? "pipe"],
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 60_000,
        killSignal: "SIGKILL",
      });
    let r = spawnIt();
    // The binary being rewritten by a build at that moment: wait for the build, try again.
    for (let i = 0; i < 50 && (r.error as NodeJS.ErrnoException | undefined)?.code === "ETXTBSY"; i++) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
      r = spawnIt();
    }
    if (r.error && !r.signal) throw r.error;
    const code = r.status ?? 128 + (r.signal ? (os.constants.signals[r.signal] ?? 0) : 0);
    return { code, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /** `create --bundle DIR ID`; remembers the container for cleanup. */
  create(id: string, bundle: string, opts: CreateOptions = {}): Result {
    const args = ["create", "--bundle", bundle];
    if (opts.pidFile) args.push("--pid-file", opts.pidFile);
    if (opts.consoleSocket) args.push("--console-socket", opts.consoleSocket);
    args.push(id);
    this.containers.set(id, 0);
    // The created container inherits create's stdio: never a pipe (it would keep the pipe open
    // and us waiting). Without fds from the caller, stdio goes to scratch files read back here.
    let r: Result;
    if (opts.stdoutFd === undefined && opts.stderrFd === undefined) {
      const base = path.join(this.scratch, `${id}.create`);
      const outFd = fs.openSync(`${base}.out`, "w");
      const errFd = fs.openSync(`${base}.err`, "w");
      try {
        r = this.run(args, { ...opts, stdoutFd: outFd, stderrFd: errFd });
      } finally {
        fs.closeSync(outFd);
        fs.closeSync(errFd);
      }
      r.stdout = fs.readFileSync(`${base}.out`, "utf8");
      r.stderr = fs.readFileSync(`${base}.err`, "utf8");
    } else {
      r = this.run(args, opts);
    }
    const s = this.state(id).state;
    if (s && typeof s.pid === "number") this.containers.set(id, s.pid);
    return r;
  }

  start(id: string, opts: RunOptions = {}): Result {
    return this.run(["start", id], opts);
  }

  kill(id: string, signal?: string, opts: RunOptions = {}): Result {
    return this.run(signal === undefined ? ["kill", id] : ["kill", id, signal], opts);
  }

  delete(id: string, force = false, opts: RunOptions = {}): Result {
    return this.run(force ? ["delete", "--force", id] : ["delete", id], opts);
  }

  /** `state ID`, parsed when it succeeded with JSON. */
  state(id: string): { result: Result; state?: State } {
    const result = this.run(["state", id]);
    let state: State | undefined;
    if (result.code === 0) {
      try {
        state = JSON.parse(result.stdout) as State;
      } catch {
        state = undefined;
      }
    }
    return { result, state };
  }

  status(id: string): string | undefined {
    const s = this.state(id).state;
    return typeof s?.status === "string" ? s.status : undefined;
  }

  /** Poll `state` until status is `want` (or the guard timeout); returns the last status seen. */
  async waitStatus(id: string, want: string, timeoutMs = 15_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    let status = this.status(id);
    while (status !== want && Date.now() < deadline) {
      await sleep(10);
      status = this.status(id);
    }
    return status;
  }

  /**
   * Make sure a container is gone: delete --force, then, if its process (remembered pid, tagged
   * as ours) still lives, SIGKILL it and delete again. Never throws.
   */
  async destroy(id: string): Promise<void> {
    const pid = this.containers.get(id) ?? 0;
    try {
      this.delete(id, true);
      if (pid && alive(pid) && isOurs(pid)) {
        process.kill(pid, "SIGKILL");
        for (let i = 0; i < 100 && alive(pid); i++) await sleep(10);
        this.delete(id, true);
      }
    } catch {
      // best effort; hygiene.ts reports what is left
    }
    this.containers.delete(id);
  }

  /** Destroy every container this object created or its root still lists. */
  async destroyAll(): Promise<void> {
    const ids = new Set([...this.containers.keys(), ...listDir(this.root)]);
    for (const id of ids) await this.destroy(id);
  }
}

export function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => !n.startsWith("."));
  } catch {
    return [];
  }
}
