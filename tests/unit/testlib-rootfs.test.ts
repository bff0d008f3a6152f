// Tests of the test rootfs builder (tests/make-rootfs.sh, tests/lib/rootfs.ts) and of makeBundle.
import t from "tap";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { makeBundle, DEFAULT_CAPS } from "../lib/bundle.ts";
import { MAKE_ROOTFS, ROOTFS_STAMP, builtRootfs, sharedRootfs } from "../lib/rootfs.ts";
import { TEST_TAG } from "../lib/tsrun.ts";

function tempDir(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-testlib-"));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test("make-rootfs.sh builds a busybox rootfs", async (t) => {
  const dir = path.join(tempDir(t), "rootfs");
  execFileSync(MAKE_ROOTFS, [dir], { stdio: ["ignore", "inherit", "inherit"] });

  for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home", "var", "run"]) {
    t.ok(fs.statSync(path.join(dir, d)).isDirectory(), `${d}/ exists`);
  }
  t.equal(fs.statSync(path.join(dir, "tmp")).mode & 0o7777, 0o1777, "tmp is 1777");
  t.ok(fs.statSync(path.join(dir, "bin/busybox")).mode & 0o111, "bin/busybox is executable");

  const applets = execFileSync(path.join(dir, "bin/busybox"), ["--list-full"], { encoding: "utf8" })
    .split("\n")
    .filter((a) => a && a !== "bin/busybox");
  t.ok(applets.length > 100, `busybox lists many applets (${applets.length})`);
  const wrong = applets.filter((a) => fs.readlinkSync(path.join(dir, a)) !== "/bin/busybox");
  t.same(wrong, [], "every applet is an absolute symlink to /bin/busybox");
  for (const a of ["bin/sh", "bin/ls", "usr/bin/env", "bin/sleep", "bin/cat"]) t.ok(applets.includes(a), `${a} is an applet`);

  t.match(fs.readFileSync(path.join(dir, "etc/passwd"), "utf8"), /^root:x:0:0:root:\/root:\/bin\/sh$/m);
  t.match(fs.readFileSync(path.join(dir, "etc/passwd"), "utf8"), /^nobody:x:65534:65534:/m);
  const group = fs.readFileSync(path.join(dir, "etc/group"), "utf8");
  t.match(group, /^root:x:0:$/m);
  t.match(group, /^tty:x:5:$/m);
  t.match(group, /^nogroup:x:65534:$/m);
  t.ok(fs.existsSync(path.join(dir, "etc/hostname")));

  const out = execFileSync("chroot", [dir, "/bin/sh", "-c", "echo hi; env true && echo env-ok"], { encoding: "utf8" });
  t.equal(out, "hi\nenv-ok\n", "/bin/sh and /usr/bin/env run inside the rootfs");

  // Idempotent: a complete rootfs is left alone (no file is rewritten).
  const stamp = path.join(dir, ROOTFS_STAMP);
  const mtime = fs.statSync(stamp).mtimeMs;
  const passwd = fs.statSync(path.join(dir, "etc/passwd")).mtimeMs;
  execFileSync(MAKE_ROOTFS, [dir]);
  t.equal(fs.statSync(stamp).mtimeMs, mtime, "stamp untouched on rerun");
  t.equal(fs.statSync(path.join(dir, "etc/passwd")).mtimeMs, passwd, "files untouched on rerun");

  // An incomplete rootfs (no stamp) is completed.
  fs.rmSync(stamp);
  fs.rmSync(path.join(dir, "bin/sh"));
  execFileSync(MAKE_ROOTFS, [dir]);
  t.equal(fs.readlinkSync(path.join(dir, "bin/sh")), "/bin/busybox", "rerun repairs a broken rootfs");
  t.ok(fs.existsSync(stamp));
});

t.test("make-rootfs.sh wants exactly one argument", async (t) => {
  let status = 0;
  try {
    execFileSync(MAKE_ROOTFS, [], { stdio: "ignore" });
  } catch (e) {
    status = (e as { status: number }).status;
  }
  t.equal(status, 2);
});

t.test("sharedRootfs builds once and returns a complete rootfs", async (t) => {
  const a = sharedRootfs();
  t.ok(path.isAbsolute(a));
  t.ok(fs.existsSync(path.join(a, ROOTFS_STAMP)));
  t.ok(fs.existsSync(path.join(a, "bin/sh")));
  t.equal(sharedRootfs(), a, "same path on every call");
  t.equal(builtRootfs(), a);
  t.same(
    fs.readdirSync(path.dirname(a)).filter((n) => n.startsWith(path.basename(a) + ".tmp-")),
    [],
    "no temp build dirs left",
  );
});

t.test("makeBundle writes a runc-like config and removes the bundle", async (t) => {
  let dir = "";
  await t.test("bundle", async (t) => {
    const b = makeBundle(t, { args: ["/bin/echo", "x"], config: (c) => (c.hostname = "changed") });
    dir = b.dir;
    t.ok(b.dir.startsWith(path.join(fs.realpathSync(os.tmpdir()), "tsrun-test-")));
    const c = JSON.parse(fs.readFileSync(b.configPath, "utf8"));
    t.same(c, b.config, "config.json holds the returned config");
    t.equal(c.ociVersion, "1.3.0");
    t.same(c.process.args, ["/bin/echo", "x"]);
    t.equal(c.process.terminal, false);
    t.equal(c.hostname, "changed", "opts.config applied");
    t.same(c.root, { path: sharedRootfs(), readonly: true });
    t.same(c.process.capabilities.bounding, DEFAULT_CAPS);
    t.equal(DEFAULT_CAPS.length, 14);
    t.ok(c.process.env.includes(`TSRUN_TEST_TAG=${TEST_TAG}`));
    t.same(
      c.mounts.map((m: { destination: string }) => m.destination),
      ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/tmp"],
    );
    t.same(
      c.linux.namespaces.map((n: { type: string }) => n.type),
      ["pid", "network", "ipc", "uts", "mount", "cgroup"],
    );
    t.ok(c.linux.maskedPaths.includes("/proc/kcore"));
    t.ok(c.linux.readonlyPaths.includes("/proc/sys"));
  });
  t.notOk(fs.existsSync(dir), "bundle removed when the test ended");

  await t.test("copyRootfs", async (t) => {
    const b = makeBundle(t, { copyRootfs: true });
    dir = b.dir;
    t.same(b.config.root, { path: "rootfs", readonly: false });
    t.equal(fs.readlinkSync(path.join(b.dir, "rootfs/bin/sh")), "/bin/busybox");
    t.ok(fs.existsSync(path.join(b.dir, "rootfs", ROOTFS_STAMP)));
  });
  t.notOk(fs.existsSync(dir), "bundle with its rootfs copy removed");
});
