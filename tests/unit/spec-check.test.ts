import t, { type Test } from "tap";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Problem } from "../../src/errors.ts";
import { checkBundle, resolveInRoot, resolveRootfs } from "../../src/spec/check-bundle.ts";
import type { Spec } from "../../src/spec/generated/types.ts";
import { probeResctrl } from "../../src/linux/resctrl.ts";

const PATH = "PATH=/usr/local/bin:/usr/bin:/bin";

/** A bundle with a tiny busybox rootfs; removed when the test ends. */
function makeBundle(t: Test): string {
  const bundle = mkdtempSync(join(tmpdir(), "tsrun-check-"));
  t.teardown(() => rmSync(bundle, { recursive: true, force: true }));
  const rootfs = join(bundle, "rootfs");
  mkdirSync(join(rootfs, "bin"), { recursive: true });
  mkdirSync(join(rootfs, "etc"));
  mkdirSync(join(rootfs, "bin", "subdir"));
  copyFileSync("/bin/busybox", join(rootfs, "bin", "busybox"));
  chmodSync(join(rootfs, "bin", "busybox"), 0o755);
  symlinkSync("busybox", join(rootfs, "bin", "sh")); // relative link
  symlinkSync("/bin/busybox", join(rootfs, "bin", "ash")); // absolute link: must stay in the rootfs
  symlinkSync("/usr/bin/env", join(rootfs, "bin", "hostenv")); // exists on the host only
  symlinkSync("../../../../../../../../usr/bin/env", join(rootfs, "bin", "escape")); // climbs out: clamped at the rootfs
  symlinkSync("/etc/../../../bin/busybox", join(rootfs, "bin", "dotdot")); // ".." at the root stays at the root
  symlinkSync("loop2", join(rootfs, "bin", "loop1"));
  symlinkSync("loop1", join(rootfs, "bin", "loop2"));
  writeFileSync(join(rootfs, "bin", "notexec"), "#!/bin/sh\n", { mode: 0o644 });
  writeFileSync(join(rootfs, "etc", "passwd"), "root:x:0:0::/:/bin/sh\n");
  mkdirSync(join(bundle, "volume"));
  writeFileSync(join(bundle, "hook-ok"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  writeFileSync(join(bundle, "hook-noexec"), "#!/bin/sh\nexit 0\n", { mode: 0o644 });
  return bundle;
}

function spec(over: { args?: string[]; env?: string[]; cwd?: string; root?: string; mounts?: Spec["mounts"]; hooks?: Spec["hooks"] } = {}): Spec {
  return {
    ociVersion: "1.3.0",
    root: { path: over.root ?? "rootfs" },
    process: { user: { uid: 0, gid: 0 }, args: over.args ?? ["sh"], env: over.env ?? [PATH], cwd: over.cwd ?? "/" },
    ...(over.mounts ? { mounts: over.mounts } : {}),
    ...(over.hooks ? { hooks: over.hooks } : {}),
  };
}

function lines(ps: Problem[]): string[] {
  return ps.map((p) => `${p.path}: ${p.message}`);
}

t.test("a good bundle has no problems", async (t) => {
  const b = makeBundle(t);
  t.same(lines(checkBundle(b, spec())), []);
  t.same(lines(checkBundle(b, spec({ root: join(b, "rootfs") }))), [], "absolute root.path");
});

t.test("process.args[0] is looked up through PATH inside the rootfs", async (t) => {
  const b = makeBundle(t);
  for (const ok of [["sh"], ["ash"], ["busybox"], ["/bin/ash"], ["/bin/sh", "-c", "true"], ["dotdot"]]) {
    t.same(lines(checkBundle(b, spec({ args: ok }))), [], `${ok[0]} is found`);
  }
  t.same(lines(checkBundle(b, spec({ args: ["./busybox"], cwd: "/bin" }))), [], "relative name with a slash, from the cwd");
  t.same(lines(checkBundle(b, spec({ args: ["busybox"], env: ["PATH=/nowhere::/also-not"], cwd: "/bin" }))), [], 'an empty PATH entry is the cwd');
  t.same(lines(checkBundle(b, spec({ args: ["busybox"], env: ["PATH=/nowhere", "PATH=/bin"] }))), [], "the last PATH wins");

  t.same(lines(checkBundle(b, spec({ args: ["nosuch"] }))), [
    'process.args[0]: exec: "nosuch": executable file not found in $PATH (PATH=/usr/local/bin:/usr/bin:/bin)',
  ]);
  t.same(lines(checkBundle(b, spec({ env: ["TERM=xterm"] }))), [
    'process.args[0]: exec: "sh": executable file not found in $PATH (process.env sets no PATH)',
  ]);
  t.same(lines(checkBundle(b, spec({ args: ["notexec"] }))), [
    'process.args[0]: exec: "notexec": executable file not found in $PATH (PATH=/usr/local/bin:/usr/bin:/bin)',
  ], "a file without x bits is skipped in the PATH search");
  t.same(lines(checkBundle(b, spec({ args: ["/bin/notexec"] }))), ['process.args[0]: exec: "/bin/notexec": permission denied (not an executable file)']);
  t.same(lines(checkBundle(b, spec({ args: ["/bin/subdir"] }))), ['process.args[0]: exec: "/bin/subdir": is a directory']);
  t.same(lines(checkBundle(b, spec({ args: ["/bin/nosuch"] }))), [
    'process.args[0]: exec: "/bin/nosuch": stat /bin/nosuch: no such file or directory (looked for /bin/nosuch in the rootfs)',
  ]);
  t.same(lines(checkBundle(b, spec({ args: ["/bin/loop1"] }))), ['process.args[0]: exec: "/bin/loop1": stat /bin/loop1: too many levels of symbolic links']);
  t.same(lines(checkBundle(b, spec({ args: ["/etc/passwd/x"] }))), ['process.args[0]: exec: "/etc/passwd/x": stat /etc/passwd/x: not a directory']);
});

t.test("symlinks never lead out of the rootfs", async (t) => {
  const b = makeBundle(t);
  // /usr/bin/env exists on the host; inside the rootfs it does not.
  t.same(lines(checkBundle(b, spec({ args: ["hostenv"] }))), [
    'process.args[0]: exec: "hostenv": executable file not found in $PATH (PATH=/usr/local/bin:/usr/bin:/bin)',
  ]);
  t.same(lines(checkBundle(b, spec({ args: ["/bin/escape"] }))), [
    'process.args[0]: exec: "/bin/escape": stat /bin/escape: no such file or directory (looked for /bin/escape in the rootfs)',
  ]);
  t.same(lines(checkBundle(b, spec({ args: ["/../../../../usr/bin/env"] }))), [
    'process.args[0]: exec: "/../../../../usr/bin/env": stat /../../../../usr/bin/env: no such file or directory (looked for /usr/bin/env in the rootfs)',
  ]);
  const rootfs = join(b, "rootfs");
  const r = resolveInRoot(rootfs, "/bin/ash");
  t.equal(r.kind, "found");
  t.equal(r.host, join(rootfs, "bin", "busybox"), "absolute link resolved against the rootfs");
  t.equal(resolveInRoot(rootfs, "/bin/escape").host, join(rootfs, "usr", "bin", "env"));
  t.equal(resolveInRoot(rootfs, "../../..").host, rootfs, '".." stops at the rootfs');
  t.equal(resolveInRoot(rootfs, "/bin/loop1").kind, "error");
});

t.test("a program under a mount cannot be checked and is not reported", async (t) => {
  const b = makeBundle(t);
  const mounts = [{ destination: "/opt/tools", type: "none", source: join(b, "volume"), options: ["rbind"] }];
  t.same(lines(checkBundle(b, spec({ args: ["/opt/tools/run"], mounts }))), []);
  t.same(lines(checkBundle(b, spec({ args: ["run"], env: ["PATH=/opt/tools"], mounts }))), []);
});

t.test("cwd", async (t) => {
  const b = makeBundle(t);
  t.same(lines(checkBundle(b, spec({ cwd: "/does/not/exist" }))), [], "a missing cwd is created by the runtime");
  t.same(lines(checkBundle(b, spec({ cwd: "/etc/passwd" }))), ["process.cwd: /etc/passwd is not a directory in the rootfs"]);
});

t.test("root.path", async (t) => {
  const b = makeBundle(t);
  t.same(lines(checkBundle(b, spec({ root: "nope" }))), [`root.path: ${join(b, "nope")}: no such file or directory`]);
  t.same(lines(checkBundle(b, spec({ root: "hook-ok" }))), [`root.path: ${join(b, "hook-ok")} is not a directory`]);
});

t.test("linux.intelRdt the host's resctrl cannot give is a problem, as create refuses it", { skip: probeResctrl() ? "resctrl is mounted here" : false }, async (t) => {
  const b = makeBundle(t);
  const config: Spec = { ...spec(), linux: { intelRdt: { closID: "/" } } };
  t.same(lines(checkBundle(b, config)), ["linux.intelRdt: Intel RDT is not supported or enabled on this host (no resctrl file system is mounted)"]);
});

t.test("a root.path that is a symlink to a directory is that directory, as create takes it", async (t) => {
  const b = makeBundle(t);
  symlinkSync("rootfs", join(b, "rootfs-link"));
  symlinkSync(join(b, "rootfs"), join(b, "rootfs-abs-link"));
  t.same(lines(checkBundle(b, spec({ root: "rootfs-link" }))), [], "relative link");
  t.same(lines(checkBundle(b, spec({ root: "rootfs-abs-link", args: ["/bin/sh"], cwd: "/etc" }))), [], "absolute link");
  t.same(resolveRootfs(b, "rootfs-link"), { dir: join(b, "rootfs") });
  symlinkSync("hook-ok", join(b, "file-link"));
  t.same(lines(checkBundle(b, spec({ root: "file-link" }))), [`root.path: ${join(b, "file-link")} is not a directory`]);
});

t.test("bind mount sources", async (t) => {
  const b = makeBundle(t);
  const mounts = [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/v1", type: "none", source: "volume", options: ["bind"] },
    { destination: "/v2", type: "none", source: join(b, "volume"), options: ["rbind", "ro"] },
    { destination: "/v3", type: "none", source: "missing-volume", options: ["rbind"] },
    { destination: "/v4", type: "bind", source: "/nonexistent/tsrun/volume" },
  ];
  t.same(lines(checkBundle(b, spec({ mounts }))), [
    `mounts[3].source: ${join(b, "missing-volume")}: no such file or directory`,
    "mounts[4].source: /nonexistent/tsrun/volume: no such file or directory",
  ]);
});

t.test("hook programs", async (t) => {
  const b = makeBundle(t);
  const hooks: Spec["hooks"] = {
    prestart: [{ path: join(b, "hook-ok") }],
    createRuntime: [{ path: join(b, "hook-ok") }, { path: join(b, "hook-noexec") }],
    poststart: [{ path: join(b, "volume") }],
    poststop: [{ path: join(b, "no-such-hook") }],
  };
  t.same(lines(checkBundle(b, spec({ hooks }))), [
    `hooks.createRuntime[1].path: ${join(b, "hook-noexec")}: permission denied (not an executable file)`,
    `hooks.poststart[0].path: ${join(b, "volume")}: is a directory`,
    `hooks.poststop[0].path: ${join(b, "no-such-hook")}: no such file or directory`,
  ]);
});
