// Bundles and containers for conformance tests.
//
// A bundle is a scratch dir with config.json whose root is the conformance rootfs (read-only,
// shared) or a private copy. The container's process is usually the checker (/checker in the
// rootfs): observe() creates, starts, waits for it to stop, reads the JSON it printed, and
// deletes it, using only the spec's operations (create, start, state, delete). The container's
// stdout and stderr are files in the bundle dir (a created container inherits the stdio of
// `create`; files, unlike pipes, do not keep `create` waiting).
import fs from "node:fs";
import path from "node:path";
import { copyRootfs, ensureRootfs } from "./build.ts";
import { runcLikeConfig } from "../../tests/lib/runc-like-config.ts";
import { newId, sleep, TAG, TAG_ENV, type CreateOptions, type Result, type RunOptions, type Runtime, type State } from "./runtime.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Config = Record<string, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/**
 * The base config of every conformance bundle: the tests' runc-like config
 * (tests/lib/runc-like-config.ts) with ociVersion 1.0.2 (crun 1.8.1 refuses newer), a short
 * masked-path list, and the tag in the environment. Tests change what they check.
 */
export function baseConfig(args: string[] = ["/checker"]): Config {
  return runcLikeConfig({
    ociVersion: "1.0.2",
    rootfs: ensureRootfs(),
    args,
    hostname: "conformance",
    env: [`${TAG_ENV}=${TAG}`],
    maskedPaths: ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
  });
}

export interface Bundle {
  dir: string;
  config: Config;
  /** The container's stdout and stderr files. */
  out: string;
  err: string;
}

export interface BundleOptions {
  /** process.args; default ["/checker"]. */
  args?: string[];
  /** Change the config before it is written. */
  config?: (c: Config) => void;
  /** A private writable copy of the rootfs at BUNDLE/rootfs (root.path "rootfs", rw). */
  copyRootfs?: boolean;
  /** Called with the new bundle dir before config.json is written (to add files to it). */
  bundleSetup?: (dir: string) => void;
}

let bundleCounter = 0;

/** A new bundle dir below rt.scratch with config.json written. */
export function makeBundle(rt: Runtime, opts: BundleOptions = {}): Bundle {
  const dir = path.join(rt.scratch, `b${++bundleCounter}`);
  fs.mkdirSync(dir, { mode: 0o711 });
  const config = baseConfig(opts.args);
  if (opts.copyRootfs) {
    copyRootfs(path.join(dir, "rootfs"));
    config.root = { path: "rootfs", readonly: false };
  }
  opts.bundleSetup?.(dir);
  opts.config?.(config);
  const bundle = { dir, config, out: path.join(dir, "stdout"), err: path.join(dir, "stderr") };
  writeConfig(bundle);
  return bundle;
}

export function writeConfig(bundle: Bundle): void {
  fs.writeFileSync(path.join(bundle.dir, "config.json"), JSON.stringify(bundle.config, null, 2) + "\n");
}

export function readText(p: string): string {
  try {
    return fs.readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

/**
 * Parse the checker's JSON output. A checker killed while blocked (wait-signal) leaves a valid
 * prefix without the closing brace; that is completed. Undefined when there is nothing usable.
 */
export function parseChecker(text: string): Json | undefined {
  const s = text.trim();
  if (!s) return undefined;
  // A blocked command has printed its key but no value yet: drop that key.
  for (const candidate of [s, s + "}", s.replace(/,?"[^"]*":$/, "") + "}"]) {
    try {
      return JSON.parse(candidate);
    } catch {
      // try the next
    }
  }
  return undefined;
}

/** `create` with the container's stdio going to the bundle's files. */
export function createIn(rt: Runtime, id: string, bundle: Bundle, opts: CreateOptions = {}): Result {
  const outFd = fs.openSync(bundle.out, "a");
  const errFd = fs.openSync(bundle.err, "a");
  try {
    return rt.create(id, bundle.dir, { ...opts, stdoutFd: outFd, stderrFd: errFd });
  } finally {
    fs.closeSync(outFd);
    fs.closeSync(errFd);
  }
}

export interface Observation {
  id: string;
  bundle: Bundle;
  create: Result;
  /** The runtime's messages from create (create's stderr is the container's stderr file). */
  createErr: string;
  start?: Result;
  /** State after create. */
  created?: State;
  /** Status once the process was waited for ("stopped" unless something hung). */
  finalStatus?: string;
  /** The checker's JSON (undefined when the container never ran or printed nothing). */
  out: Json | undefined;
  stdout: string;
  stderr: string;
  delete?: Result;
}

export interface ObserveOptions extends BundleOptions {
  /** Checker commands (process.args = ["/checker", ...checker]) unless args is given. */
  checker?: string[];
  /** Use this bundle instead of making one. */
  bundle?: Bundle;
  /** How `create` is run (shellPrefix, consoleSocket etc.). */
  run?: CreateOptions;
  /** Called after create succeeded, before start (e.g. to look at the created container). */
  afterCreate?: (o: Observation) => void | Promise<void>;
  /** Called while the stopped container still exists, before delete. */
  beforeDelete?: (o: Observation) => void | Promise<void>;
}

/**
 * Run a container to completion with spec operations: create, state, start, wait for stopped,
 * delete. Never throws for runtime failures (they show as fields of the result); always
 * removes the container.
 */
export async function observe(rt: Runtime, opts: ObserveOptions): Promise<Observation> {
  const bundle = opts.bundle ?? makeBundle(rt, { ...opts, args: opts.args ?? ["/checker", ...(opts.checker ?? [])] });
  const id = newId();
  const o: Observation = { id, bundle, create: { code: -1, stdout: "", stderr: "" }, createErr: "", out: undefined, stdout: "", stderr: "" };
  try {
    o.create = createIn(rt, id, bundle, opts.run);
    o.createErr = readText(bundle.err);
    if (o.create.code !== 0) return o;
    o.created = rt.state(id).state;
    await opts.afterCreate?.(o);
    o.start = rt.start(id);
    if (o.start.code === 0) o.finalStatus = await rt.waitStatus(id, "stopped");
    o.stdout = readText(bundle.out);
    o.stderr = readText(bundle.err);
    o.out = parseChecker(o.stdout);
    await opts.beforeDelete?.(o);
    o.delete = rt.delete(id, o.finalStatus !== "stopped");
  } finally {
    if (o.delete?.code === 0 && o.finalStatus === "stopped") rt.containers.delete(id);
    else await rt.destroy(id);
  }
  return o;
}

export interface Running {
  id: string;
  bundle: Bundle;
  create: Result;
  start?: Result;
  /** The container process (from state after create), 0 when create failed. */
  pid: number;
  /** Whether the checker reported "ready" (its commands ran, it waits for a signal). */
  ready: boolean;
  /** The checker's JSON so far. */
  out(): Json | undefined;
  /** Stop and remove the container. */
  stop(): Promise<void>;
}

/**
 * Create and start a container running `/checker ...checker wait-signal` and wait until it
 * reports ready. Call stop() when done (tests use try/finally; the file's teardown also
 * destroys leftovers).
 */
export async function startRunning(
  rt: Runtime,
  opts: BundleOptions & { checker?: string[]; run?: RunOptions; bundle?: Bundle; id?: string } = {},
): Promise<Running> {
  const bundle = opts.bundle ?? makeBundle(rt, { ...opts, args: ["/checker", ...(opts.checker ?? []), "wait-signal"] });
  const id = opts.id ?? newId();
  const create = createIn(rt, id, bundle, opts.run);
  const pid = rt.containers.get(id) ?? 0;
  const r: Running = {
    id,
    bundle,
    create,
    pid,
    ready: false,
    out: () => parseChecker(readText(bundle.out)),
    stop: () => rt.destroy(id),
  };
  if (create.code !== 0) return r;
  r.start = rt.start(id);
  if (r.start.code !== 0) return r;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (readText(bundle.err).includes("ready\n")) {
      r.ready = true;
      break;
    }
    if (rt.status(id) === "stopped") break;
    await sleep(10);
  }
  return r;
}

/** /proc/PID/ns/TYPE as seen from the host (undefined when unreadable). */
export function nsOf(pid: number | "self", type: string): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/${type}`);
  } catch {
    return undefined;
  }
}
