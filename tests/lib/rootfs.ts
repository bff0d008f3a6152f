// The busybox rootfs shared by all tests of a run, built once by tests/make-rootfs.sh.
//
// Tests must never write into it: bundles point root.path at it with readonly: true, and a test
// that needs a writable rootfs asks makeBundle for copyRootfs (a private `cp -a` copy).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { removeTree } from "./context.ts";

export const REPO = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const MAKE_ROOTFS = path.join(REPO, "tests/make-rootfs.sh");
/** Written by make-rootfs.sh as the last step: its presence means the rootfs is complete. */
export const ROOTFS_STAMP = "etc/.tsrun-rootfs-stamp";

let cached: string | undefined;

/**
 * Path of the shared test rootfs (absolute, symlinks resolved), built on first use.
 *
 * The directory is build/test-rootfs-<hash of make-rootfs.sh>, so a changed script gets a fresh
 * rootfs. Several test files may call this at once: each builds into its own temp directory and
 * renames it into place; the losers of the rename throw their copy away.
 */
export function sharedRootfs(): string {
  if (cached) return cached;
  const hash = createHash("sha256").update(fs.readFileSync(MAKE_ROOTFS)).digest("hex").slice(0, 12);
  const buildDir = path.join(REPO, "build");
  fs.mkdirSync(buildDir, { recursive: true });
  const dir = path.join(fs.realpathSync(buildDir), `test-rootfs-${hash}`);
  if (!fs.existsSync(path.join(dir, ROOTFS_STAMP))) {
    if (fs.existsSync(dir)) {
      // Not made by us (we only rename complete trees into place): move it aside, rebuild.
      const stale = `${dir}.stale-${process.pid}-${Date.now()}`;
      try {
        fs.renameSync(dir, stale);
        removeTree(stale);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e; // another file moved it
      }
    }
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    try {
      execFileSync(MAKE_ROOTFS, [tmp], { stdio: ["ignore", "ignore", "pipe"] });
      try {
        fs.renameSync(tmp, dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
        // Another test file finished first; its tree is as good as ours.
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  cached = dir;
  return dir;
}

/** The shared rootfs if this process has used it, without building it. */
export function builtRootfs(): string | undefined {
  return cached;
}

/** Copy the shared rootfs to dest (which must not exist yet) with cp -a. */
export function copyRootfs(dest: string): string {
  execFileSync("cp", ["-a", sharedRootfs(), dest], { stdio: ["ignore", "ignore", "pipe"] });
  return dest;
}
