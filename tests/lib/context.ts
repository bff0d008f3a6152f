// Per-test bookkeeping shared by the test helpers.
//
// When a test ends, the helpers' work runs in this order, whatever order they were called in:
//   1. "check": the leak checks. tap refuses assertions from t.teardown() ("test assertion after
//      Promise resolution"), so checks run from tap's onbeforeend hook: after the test function
//      and its subtests are done, before any teardown. A test must therefore delete its
//      containers in its body; a t.teardown() cleanup is only a safety net for a failing test.
//   2. "containers", from a teardown: force-delete containers still in the test's state dirs;
//   3. "files", same teardown: remove bundles and state dirs (never through a mount point).
// tap runs teardowns last-registered-first; phases 2 and 3 share one teardown registered on the
// helpers' first use, so teardowns a test registers after calling them run before both.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Extra } from "tap";

/**
 * The part of a tap Test the helpers use: a real `t`, a subtest, or a stand-in in unit tests.
 * (fail always gets both arguments: that is what makes tap's overloaded signature fit.)
 */
export interface TestLike {
  teardown(fn: () => unknown): void;
  fail(message: string, extra: Extra): boolean;
  comment?(...args: unknown[]): void;
  /** tap's hook, called when the test function is done and before it ends (assertions allowed). */
  onbeforeend?: () => unknown;
}

export type Phase = "check" | "containers" | "files";

const contexts = new WeakMap<TestLike, Map<Phase, Array<() => unknown>>>();

/** Run fn when t ends, in the given phase (within a phase: last registered first). */
export function onTeardown(t: TestLike, phase: Phase, fn: () => unknown): void {
  let phases = contexts.get(t);
  if (!phases) {
    const created = new Map<Phase, Array<() => unknown>>([
      ["check", []],
      ["containers", []],
      ["files", []],
    ]);
    phases = created;
    contexts.set(t, created);
    const run = async (which: Phase[]) => {
      for (const p of which) {
        const fns = created.get(p)!;
        for (let f; (f = fns.pop()); ) await f();
      }
    };
    const before = t.onbeforeend;
    if (typeof before === "function") {
      t.onbeforeend = () => Promise.resolve(before.call(t)).then(() => run(["check"]));
    }
    t.teardown(async () => {
      contexts.delete(t);
      // "check" here only for a t without onbeforeend, or checks registered after it ran.
      await run(["check", "containers", "files"]);
    });
  }
  phases.get(phase)!.push(fn);
}

/** Directories tests of this process created and remove at teardown (bundles, state dirs). */
export const ownedPaths = new Set<string>();
/** The subset of ownedPaths that are tsrun --root state dirs. */
export const ownedRoots = new Set<string>();

export interface MountInfo {
  id: string;
  /** The directory of the filesystem that is mounted (a bind mount's source, a cgroup's path). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  superOptions: string;
}

/** Parse /proc/self/mountinfo (octal escapes such as \040 in paths decoded). */
export function readMounts(): MountInfo[] {
  const text = fs.readFileSync("/proc/self/mountinfo", "utf8");
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const f = line.split(" ");
    const sep = f.indexOf("-", 6);
    out.push({
      id: f[0]!,
      root: unescape(f[3]!),
      mountPoint: unescape(f[4]!),
      fsType: f[sep + 1] ?? "",
      source: unescape(f[sep + 2] ?? ""),
      superOptions: f[sep + 3] ?? "",
    });
  }
  return out;
}

/** True when p is dir or lies below it. */
export function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith("/") ? dir : dir + "/");
}

/**
 * Remove a directory tree that a test created, without ever recursing through a mount point
 * (a leaked bind mount of a host directory below it would otherwise have its contents deleted).
 * Mounts found below dir are lazily unmounted first; returns their mount points so the caller
 * can report them.
 */
export function removeTree(dir: string): string[] {
  const found = readMounts()
    .map((m) => m.mountPoint)
    .filter((mp) => isUnder(mp, dir))
    .sort((a, b) => b.length - a.length);
  for (const mp of found) {
    try {
      execFileSync("umount", ["-l", mp], { stdio: "ignore" });
    } catch {
      // already gone
    }
  }
  if (found.length && readMounts().some((m) => isUnder(m.mountPoint, dir))) {
    // Still mounted: leave the tree rather than delete through the mount.
    return found;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return found;
}

/**
 * Remove dir with removeTree at teardown. Mounts still below it are unmounted and mentioned in a
 * comment only: reporting leaks is leakCheck's job (and tap allows no assertion this late).
 */
export function removeAtTeardown(t: TestLike, dir: string, what: string): void {
  ownedPaths.add(dir);
  onTeardown(t, "files", () => {
    const mounts = removeTree(dir);
    ownedPaths.delete(dir);
    ownedRoots.delete(dir);
    if (mounts.length) t.comment?.(`${what} ${dir} still had mounts below it at teardown: ${mounts.join(", ")}`);
  });
}

/** Resolve a path the way the kernel shows it in mountinfo (symlinks in its parents resolved). */
export function realDir(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}
