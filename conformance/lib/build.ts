// Building what the suite runs inside containers: the static checker (conformance/checker) and
// the conformance rootfs (busybox from tests/make-rootfs.sh, plus /checker and a few mount
// points), both under conformance/build/ (gitignored).
//
// Both are built on first use. Test files run in parallel, so each build goes to a private temp
// path that is renamed into place; a loser of the rename throws its copy away. `make
// conformance` builds them once up front anyway (`bun conformance/lib/build.ts`).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const CONFORMANCE = path.resolve(fileURLToPath(new URL("..", import.meta.url)));
export const REPO = path.dirname(CONFORMANCE);
export const BUILD = path.join(CONFORMANCE, "build");
export const CHECKER_SRC = path.join(CONFORMANCE, "checker/checker.c");
export const CHECKER = path.join(BUILD, "checker");
const MAKE_ROOTFS = path.join(REPO, "tests/make-rootfs.sh");

/** Directories the rootfs provides as mount points, so runtimes need not create them. */
export const ROOTFS_DIRS = ["mnt/a", "mnt/b", "mnt/c", "mnt/ro", "mnt/rw", "hooklog", "data"];

function hash(...parts: Array<string | Buffer>): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex").slice(0, 12);
}

function renameIntoPlace(tmp: string, dest: string): void {
  try {
    fs.renameSync(tmp, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
    fs.rmSync(tmp, { recursive: true, force: true }); // another process won; same content
  }
}

/** Compile the checker if conformance/build/checker is missing or older than its source. */
export function ensureChecker(): string {
  fs.mkdirSync(BUILD, { recursive: true });
  const src = fs.statSync(CHECKER_SRC);
  if (fs.existsSync(CHECKER) && fs.statSync(CHECKER).mtimeMs >= src.mtimeMs) return CHECKER;
  const tmp = `${CHECKER}.tmp-${process.pid}`;
  const cc = process.env.CC || "cc";
  execFileSync(cc, ["-static", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", tmp, CHECKER_SRC], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  fs.renameSync(tmp, CHECKER);
  return CHECKER;
}

let rootfsCache: string | undefined;

/**
 * The conformance rootfs, conformance/build/rootfs-<hash>: busybox, /checker, ROOTFS_DIRS.
 * The hash covers make-rootfs.sh and the checker binary, so a changed checker gets a new tree.
 * Containers get it read-only (or a private copy, see copyRootfs): tests never write into it.
 */
export function ensureRootfs(): string {
  if (rootfsCache) return rootfsCache;
  const checker = ensureChecker();
  const id = hash(fs.readFileSync(MAKE_ROOTFS), fs.readFileSync(checker), ROOTFS_DIRS.join(","));
  const dir = path.join(BUILD, `rootfs-${id}`);
  const stamp = path.join(dir, "etc/.conformance-stamp");
  if (!fs.existsSync(stamp)) {
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    try {
      execFileSync(MAKE_ROOTFS, [tmp], { stdio: ["ignore", "ignore", "inherit"] });
      fs.copyFileSync(checker, path.join(tmp, "checker"));
      fs.chmodSync(path.join(tmp, "checker"), 0o755);
      for (const d of ROOTFS_DIRS) fs.mkdirSync(path.join(tmp, d), { recursive: true, mode: 0o755 });
      fs.writeFileSync(path.join(tmp, "etc/.conformance-stamp"), id + "\n");
      if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true }); // incomplete leftover
      renameIntoPlace(tmp, dir);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  removeStaleRootfs(dir);
  rootfsCache = dir;
  return dir;
}

/**
 * Remove rootfs-* trees of earlier checker builds (and abandoned .tmp-* builds older than an
 * hour), unless something is mounted below them.
 */
function removeStaleRootfs(current: string): void {
  const mounted = fs.readFileSync("/proc/self/mountinfo", "utf8");
  for (const name of fs.readdirSync(BUILD)) {
    const p = path.join(BUILD, name);
    if (!name.startsWith("rootfs-") || p === current || mounted.includes(p)) continue;
    try {
      if (name.includes(".tmp-") && Date.now() - fs.statSync(p).mtimeMs < 3600_000) continue;
      fs.rmSync(p, { recursive: true, force: true });
    } catch {
      // another process got there first
    }
  }
}

/** A private writable copy of the conformance rootfs at dest (which must not exist). */
export function copyRootfs(dest: string): string {
  execFileSync("cp", ["-a", ensureRootfs(), dest], { stdio: ["ignore", "ignore", "inherit"] });
  return dest;
}

// `bun conformance/lib/build.ts` (what `make conformance` runs first): build both, print paths.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(ensureChecker());
  console.log(ensureRootfs());
}
