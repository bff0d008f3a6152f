/**
 * Symlinks in the rootfs must never make the helper act on the host (needs root).
 * Run: node_modules/.bin/tap tests/helper/security.test.ts
 */
import t, { type Test } from "tap";
import * as fs from "node:fs";
import * as path from "node:path";
import { HELPER, MS, basePlan, cleanup, hostMountsUnder, makeRootfs, mnt, runHelper, startFifo, tempDir } from "./harness.ts";
import type { CreatePlan, Mount } from "../../src/boundary/gen/helper.ts";

if (process.getuid?.() !== 0 || !fs.existsSync(HELPER)) {
  t.plan(0, "needs root and build/tsrun-helper (make build/tsrun-helper)");
  process.exit(0);
}

/** A host directory the rootfs's symlinks point at; it must stay empty and unmounted. */
const host = tempDir("tsrun-helper-hostdir-");
const dir = tempDir();
t.teardown(async () => {
  await cleanup(dir);
  await cleanup(host);
});

function tmpfsAt(destination: string): Mount {
  return mnt(destination, "tmpfs", "tmpfs", 0, "size=1m");
}

let n = 0;
async function run(rootfs: string, args: string[], mutate: (p: CreatePlan) => void) {
  const f = path.join(dir, `fifo${n++}`);
  const plan = basePlan(rootfs, args, { execFifo: f });
  mutate(plan);
  return runHelper(plan, { onReady: () => startFifo(f) });
}

function hostUntouched(t: Test) {
  t.same(fs.readdirSync(host), [], "the host directory is still empty");
  t.same(hostMountsUnder(host), [], "nothing is mounted on the host directory");
}

t.test("absolute symlink as a mount destination parent resolves inside the rootfs", async (t) => {
  const rootfs = makeRootfs(path.join(dir, "abs"));
  fs.rmSync(path.join(rootfs, "etc"), { recursive: true });
  fs.symlinkSync(host, path.join(rootfs, "etc")); // rootfs/etc -> /tmp/<hostdir>
  const r = await run(rootfs, ["sh", "-c", "grep ' tmpfs ' /proc/self/mountinfo | grep -v ' /dev' | cut -d' ' -f5"], (p) => {
    p.mounts.push(tmpfsAt("/etc/foo"));
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.equal(r.stdout.trim(), `${host}/foo`, "mounted at the rootfs's own copy of the host path");
  t.ok(fs.statSync(path.join(rootfs, host, "foo")).isDirectory(), "mount point created inside the rootfs");
  hostUntouched(t);
});

t.test("a ../../.. chain cannot climb out of the rootfs", async (t) => {
  const rootfs = makeRootfs(path.join(dir, "rel"));
  fs.symlinkSync("../../../../../../../../../../.." + host, path.join(rootfs, "evil"));
  fs.mkdirSync(path.join(rootfs, "a/b"), { recursive: true });
  fs.symlinkSync("../../../../../..", path.join(rootfs, "a/b/up"));
  const r = await run(rootfs, ["sh", "-c", "grep ' tmpfs ' /proc/self/mountinfo | grep -v ' /dev' | cut -d' ' -f5"], (p) => {
    p.mounts.push(tmpfsAt("/evil/x"));
    p.mounts.push(tmpfsAt("/a/b/up" + host + "/y"));
    p.mounts.push(tmpfsAt("/../../../.." + host + "/z"));
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.same(r.stdout.trim().split("\n"), [`${host}/x`, `${host}/y`, `${host}/z`]);
  t.ok(fs.existsSync(path.join(rootfs, host, "x")));
  hostUntouched(t);
});

t.test("a dangling symlink as the final component of a bind destination", async (t) => {
  const rootfs = makeRootfs(path.join(dir, "final"));
  const victim = path.join(host, "victim");
  fs.symlinkSync(victim, path.join(rootfs, "target")); // rootfs/target -> <host>/victim (missing)
  const src = path.join(dir, "payload");
  fs.writeFileSync(src, "payload\n");
  const r = await run(rootfs, ["sh", "-c", `cat /target; cat ${victim}; grep -c ' ${victim} ' /proc/self/mountinfo`], (p) => {
    p.mounts.push(mnt("/target", "", src, MS.BIND, "", { remountFlags: MS.RDONLY, destIsFile: true }));
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.equal(r.stdout, "payload\npayload\n1\n", "the file was created and mounted at the rootfs's copy of the target");
  t.ok(fs.statSync(path.join(rootfs, victim)).isFile());
  hostUntouched(t);
});

t.test("devices and symlinks through a symlinked /dev stay inside", async (t) => {
  const rootfs = makeRootfs(path.join(dir, "dev"));
  fs.rmSync(path.join(rootfs, "dev"), { recursive: true });
  fs.symlinkSync(host, path.join(rootfs, "dev")); // rootfs/dev -> /tmp/<hostdir>
  const r = await run(rootfs, ["sh", "-c", "ls -l /dev/null; readlink /dev/fd"], (p) => {
    p.mounts = p.mounts.filter((m) => !m.destination.startsWith("/dev"));
    p.symlinks = [{ path: "/dev/fd", target: "/proc/self/fd" }];
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /^crw-rw-rw- .* 1, +3 .*\/dev\/null\n\/proc\/self\/fd\n$/);
  t.ok(fs.existsSync(path.join(rootfs, host, "null")), "created in the rootfs's copy of the path");
  hostUntouched(t);
});

t.test("masked and readonly paths do not follow a final symlink", async (t) => {
  const rootfs = makeRootfs(path.join(dir, "mask"));
  const secret = path.join(dir, "secret-host-file");
  fs.writeFileSync(secret, "host secret\n");
  fs.symlinkSync(secret, path.join(rootfs, "etc/masked-link"));
  fs.symlinkSync(host, path.join(rootfs, "etc/ro-link"));
  const r = await run(rootfs, ["sh", "-c", "cat /proc/self/mountinfo | grep -c -E 'masked-link|ro-link|secret' || true"], (p) => {
    p.maskedPaths = ["/etc/masked-link"];
    p.readonlyPaths = ["/etc/ro-link"];
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.equal(r.stdout.trim(), "0", "nothing mounted");
  t.ok(r.lines.includes("warn masked path /etc/masked-link is a symlink, not followed, skipped"));
  t.ok(r.lines.includes("warn readonly path /etc/ro-link is a symlink, not followed, skipped"));
  t.equal(fs.readFileSync(secret, "utf8"), "host secret\n");
  hostUntouched(t);
});

t.test("a sysctl path cannot leave the container's procfs", async (t) => {
  const rootfs = makeRootfs(path.join(dir, "sysctl"));
  fs.writeFileSync(path.join(rootfs, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
  // TypeScript never plans such a path (dots become slashes); the helper still holds the line:
  // ".." stops at the rootfs, and a file that is not on procfs is never written.
  const r = await run(rootfs, ["true"], (p) => {
    p.sysctls = [{ path: "../../../etc/passwd", value: "x" }];
  });
  t.equal(r.error, "sysctl .........etc.passwd: /proc/sys/../../../etc/passwd is not on procfs");
  t.equal(fs.readFileSync(path.join(rootfs, "etc/passwd"), "utf8"), "root:x:0:0::/root:/bin/sh\n", "not written");
});

t.test("nothing under the test directories is mounted on the host", async (t) => {
  t.same(hostMountsUnder(dir), []);
  t.same(hostMountsUnder(host), []);
});
