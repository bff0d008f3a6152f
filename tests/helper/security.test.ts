/**
 * Symlinks in the rootfs must never make the helper act on the host (needs root).
 * Run: node_modules/.bin/tap tests/helper/security.test.ts
 */
import t, { type Test } from "tap";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn } from "node:child_process";
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

t.test("a mount destination swapped between a directory and a symlink to the host while containers are made", async (t) => {
  // The CVE-2021-30465 class: another process (here on the host side, which can do more than a
  // container sharing the volume could) flips /vol/x between a directory and a ../.. symlink to
  // a host directory while the helper creates and mounts /vol/x/sub. Whatever wins each race,
  // nothing may be made or mounted on the host.
  const rootfs = makeRootfs(path.join(dir, "race"));
  const vol = path.join(rootfs, "vol");
  fs.mkdirSync(path.join(vol, "x.dir"), { recursive: true });
  fs.symlinkSync("../../../../../../../../../../.." + host, path.join(vol, "x.link"));
  const swap = [
    "import os, sys",
    "os.chdir(sys.argv[1])",
    "while True:",
    "    for name in ('x.dir', 'x.link'):",
    "        try:",
    "            os.rename(name, 'x'); os.rename('x', name)",
    "        except OSError:",
    "            pass",
  ].join("\n");
  const swapper = spawn("python3", ["-c", swap, vol], { stdio: "ignore" });
  t.teardown(() => swapper.kill("SIGKILL"));
  let ran = 0;
  for (let i = 0; i < 40; i++) {
    const r = await run(rootfs, ["true"], (p) => p.mounts.push(tmpfsAt("/vol/x/sub")));
    if (r.exit === 0) ran++;
  }
  swapper.kill("SIGKILL");
  await new Promise((resolve) => swapper.on("exit", resolve));
  t.ok(ran > 0, `some containers ran (${ran} of 40; the others lost a race and failed cleanly)`);
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

t.test("/dev/console and /dev/ptmx symlinks in the rootfs never reach the host", async (t) => {
  // No /dev tmpfs: the rootfs's own /dev, whose console and ptmx point at host paths.
  const rootfs = makeRootfs(path.join(dir, "console"));
  const secret = path.join(dir, "console-secret");
  fs.writeFileSync(secret, "host file\n");
  fs.symlinkSync(secret, path.join(rootfs, "dev/console"));
  /** A console socket (tests/helper/console-receiver.py) and the plan changes that use it. */
  const withTerminal = async (p: CreatePlan) => {
    const sock = path.join(dir, `console${n}.sock`);
    const out = path.join(dir, `console${n++}.out`);
    const py = spawn("python3", [path.join(path.dirname(new URL(import.meta.url).pathname), "console-receiver.py"), sock, out], { stdio: ["ignore", "pipe", "inherit"] });
    t.teardown(() => py.kill("SIGKILL"));
    await new Promise<void>((resolve) => py.stdout!.once("data", () => resolve()));
    p.mounts = p.mounts.filter((m) => m.destination !== "/dev");
    p.launch!.process!.terminal = { height: 0, width: 0, uid: 0 };
    p.launch!.foreground = false;
    p.launch!.consoleSocket = sock;
    return { out, done: new Promise((resolve) => py.on("exit", resolve)) };
  };
  const f = path.join(dir, `fifo${n++}`);
  const plan = basePlan(rootfs, ["sh", "-c", "ls -l /dev/console; echo done"], { execFifo: f });
  const rcv = await withTerminal(plan);
  const r = await runHelper(plan);
  t.equal(r.code, 0, r.error ?? r.stderr);
  startFifo(f);
  await rcv.done;
  t.match(fs.readFileSync(rcv.out, "utf8"), /crw--w---- .* \/dev\/console\r\ndone/, "/dev/console in the container is the pty");
  t.equal(fs.readFileSync(secret, "utf8"), "host file\n", "the symlink's host target is untouched");
  t.same(hostMountsUnder(secret), [], "nothing is mounted on it");

  // /dev/ptmx an absolute symlink to the host's: resolved inside the rootfs, where it leads nowhere.
  const rootfs2 = makeRootfs(path.join(dir, "ptmx"));
  fs.rmSync(path.join(rootfs2, "dev/ptmx"), { force: true });
  fs.symlinkSync(path.join(host, "ptmx"), path.join(rootfs2, "dev/ptmx"));
  const f2 = path.join(dir, `fifo${n++}`);
  const plan2 = basePlan(rootfs2, ["true"], { execFifo: f2 });
  await withTerminal(plan2);
  plan2.symlinks = plan2.symlinks.filter((s) => s.path !== "/dev/ptmx");
  plan2.mounts = plan2.mounts.filter((m) => m.destination !== "/dev/pts");
  const r2 = await runHelper(plan2);
  t.match(r2.error, /^console: open \/dev\/ptmx in the container: no such file or directory/);
  hostUntouched(t);
});

t.test("nothing under the test directories is mounted on the host", async (t) => {
  t.same(hostMountsUnder(dir), []);
  t.same(hostMountsUnder(host), []);
});
