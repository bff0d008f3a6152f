// Mount types and options from inside the container: the cgroup mount, overlay, recursive
// read-only, a symlink in the rootfs used as a destination, and mount propagation.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { makeBundle, type ConfigObject } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { containerId, TAG_ENV, TEST_TAG, testRoot, TSRUN, tsrun } from "../lib/tsrun.ts";
import type { TestLike } from "../lib/context.ts";

function inside(t: TestLike, root: string, script: string, mutate: (c: ConfigObject) => void, copyRootfs = false): { code: number; out: string; err: string } {
  const bundle = makeBundle(t, { args: ["sh", "-c", script], config: mutate, copyRootfs });
  const r = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

function hostDir(t: TestLike): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-mnt-"));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test("mounts", async (t) => {
  leakCheck(t);
  const root = testRoot(t);

  t.test("a cgroup mount shows the container its own cgroups, read-only", async (t) => {
    const r = inside(t, root, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; (echo 5 > /sys/fs/cgroup/pids/pids.max) 2>&1", (c) => {
      c.mounts.push({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] });
      c.linux.resources = { ...c.linux.resources, memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 42 } };
    });
    t.match(r.out, /^67108864\n42\n.*Read-only file system/, r.err);
  });

  t.test("overlay", async (t) => {
    const dir = hostDir(t);
    for (const d of ["lower", "upper", "work"]) fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, "lower", "a"), "from lower\n");
    const r = inside(t, root, "cat /ov/a; echo new > /ov/b && echo wrote", (c) => {
      c.mounts.push({
        destination: "/ov", type: "overlay", source: "overlay",
        options: [`lowerdir=${dir}/lower`, `upperdir=${dir}/upper`, `workdir=${dir}/work`],
      });
    });
    t.equal(r.out, "from lower\nwrote\n", r.err);
    t.equal(fs.readFileSync(path.join(dir, "upper", "b"), "utf8"), "new\n", "the write landed in upperdir");
  });

  t.test("rro makes submounts read-only too; ro alone does not", async (t) => {
    const dir = hostDir(t);
    fs.mkdirSync(path.join(dir, "sub"));
    t.equal(spawnSync("mount", ["-t", "tmpfs", "tmpfs", path.join(dir, "sub")]).status, 0);
    t.teardown(() => spawnSync("umount", ["-l", path.join(dir, "sub")]));
    const script = "(echo x > /d/sub/f) 2>&1 && echo writable";
    const ro = inside(t, root, script, (c) => c.mounts.push({ destination: "/d", type: "bind", source: dir, options: ["rbind", "ro"] }));
    t.match(ro.out, /writable/, `plain ro leaves the submount writable (as the kernel does): ${ro.err}`);
    const rro = inside(t, root, script, (c) => c.mounts.push({ destination: "/d", type: "bind", source: dir, options: ["rbind", "rro"] }));
    t.match(rro.out, /Read-only file system/, rro.err);
  });

  t.test("tmpcopyup fills the tmpfs with what the directory held (podman's --tmpfs, --read-only)", async (t) => {
    const r = inside(t, root, "ls /etc/passwd /etc/group && stat -c '%a %u' /etc/passwd && echo x > /etc/new && grep -c tmpfs /proc/self/mountinfo", (c) => {
      c.mounts.push({ destination: "/etc", type: "tmpfs", source: "tmpfs", options: ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"] });
    });
    t.match(r.out, /^\/etc\/group\n\/etc\/passwd\n644 0\n\d+\n$/, `the image's files, modes and owners, on a writable tmpfs: ${r.err}`);
    const bad = makeBundle(t, { config: (c) => c.mounts.push({ destination: "/x", type: "bind", source: "/tmp", options: ["rbind", "tmpcopyup"] }) });
    t.match(tsrun(["create", "--bundle", bad.dir, containerId()], { root }), { code: 1, stderr: /mounts\[\d+\]\.options: tmpcopyup is only for tmpfs mounts/ });
  });

  t.test("a rootfs symlink used as a destination stays inside the rootfs", async (t) => {
    const target = hostDir(t);
    const bundle = makeBundle(t, {
      args: ["sh", "-c", "grep -c ' /etc-link ' /proc/self/mountinfo; ls -d /etc-link"],
      config: (c) => c.mounts.push({ destination: "/etc-link/sub", type: "tmpfs", source: "tmpfs", options: ["size=1m"] }),
      copyRootfs: true,
    });
    // An absolute symlink to a host directory, and one that climbs out with ../
    fs.symlinkSync(target, path.join(bundle.dir, "rootfs", "etc-link"));
    const r = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
    t.equal(r.code, 0, r.stderr);
    t.same(fs.readdirSync(target), [], "nothing was mounted or created on the host");
  });

  /** The optional fields (shared:N, master:N, unbindable) of the mountinfo line for mountPoint. */
  function propagationOf(mountinfo: string, mountPoint: string): string[] | undefined {
    const line = mountinfo.split("\n").find((l) => l.split(" ")[4] === mountPoint);
    if (!line) return undefined;
    const fields = line.split(" ");
    return fields.slice(6, fields.indexOf("-"));
  }

  t.test("a bind mount's own propagation option is in effect inside the container", async (t) => {
    const src = hostDir(t);
    for (const rootfsPropagation of [undefined, "rslave", "rprivate", "private"]) {
      const r = inside(t, root, "cat /proc/self/mountinfo", (c) => {
        if (rootfsPropagation) c.linux.rootfsPropagation = rootfsPropagation;
        c.mounts.push({ destination: "/mnt/a", type: "bind", source: src, options: ["rbind", "rshared"] });
        c.mounts.push({ destination: "/mnt/b", type: "bind", source: src, options: ["rbind", "runbindable"] });
      });
      const with_ = `with rootfsPropagation ${rootfsPropagation ?? "unset"}`;
      t.equal(r.code, 0, r.err);
      t.match(propagationOf(r.out, "/mnt/a"), [/^shared:\d+$/], `rshared ${with_}`);
      t.same(propagationOf(r.out, "/mnt/b"), ["unbindable"], `runbindable ${with_}`);
    }
  });

  t.test("each rootfsPropagation value creates a container whose / shows it", async (t) => {
    const expected: Record<string, RegExp> = { shared: /^shared:\d+$/, rshared: /^shared:\d+$/, unbindable: /^unbindable$/, runbindable: /^unbindable$/ };
    for (const value of ["shared", "rshared", "unbindable", "runbindable", "private", "slave"]) {
      const r = inside(t, root, "cat /proc/self/mountinfo", (c) => (c.linux.rootfsPropagation = value));
      t.equal(r.code, 0, `${value}: ${r.err}`);
      const want = expected[value];
      if (want) t.match(propagationOf(r.out, "/"), [want], `${value}: the container's / is ${value}`);
      else t.same(propagationOf(r.out, "/")?.filter((f) => f.startsWith("shared:")), [], `${value}: the container's / is not shared`);
    }
  });

  t.test("on a host whose mounts are shared, a container leaves the host's mounts in place", async (t) => {
    // A systemd host: everything shared. Detaching the old root after pivot_root must not
    // propagate unmounts back, whatever the rootfsPropagation.
    const marker = hostDir(t);
    for (const value of ["rshared", "shared", "rslave"]) {
      const bundle = makeBundle(t, { args: ["true"], config: (c) => (c.linux.rootfsPropagation = value) });
      const script = `mount -t tmpfs tsrun-marker "$1" && "$2" --root "$3" run --bundle "$4" "$5" && awk -v d="$1" '$5 == d { print "still mounted" }' /proc/self/mountinfo`;
      const r = spawnSync("unshare", ["--mount", "--propagation", "shared", "sh", "-c", script, "sh", marker, TSRUN, root, bundle.dir, containerId()], {
        encoding: "utf8",
        env: { ...process.env, [TAG_ENV]: TEST_TAG },
      });
      t.equal(r.stdout, "still mounted\n", `${value}: ${r.stderr}`);
    }
  });
});
