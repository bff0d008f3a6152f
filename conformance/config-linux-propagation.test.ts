// config-linux.md, Rootfs Mount Propagation (rootfsPropagation).
//
// The runtime runs in a mount namespace of its own whose mounts are all shared (what a
// systemd host looks like; this host's / is private and is left alone), kept by a bind mount
// of its nsfs file. While the container runs, a tmpfs is mounted at ROOTFS/mnt/a in that
// namespace; whether the container then sees it is what slave and private are about.
import t from "tap";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { isUnder, readMounts } from "../tests/lib/context.ts";
import { makeBundle, startRunning } from "./lib/container.ts";
import { mountAt, parseMountinfo, type Mount } from "./lib/mounts.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

/** Unmount everything at or below dir, deepest first, until nothing is left. */
function unmountAll(dir: string): void {
  for (let i = 0; i < 20; i++) {
    const below = readMounts()
      .map((m) => m.mountPoint)
      .filter((mp) => isUnder(mp, dir))
      .sort((a, b) => b.length - a.length);
    if (!below.length) return;
    for (const mp of below) {
      try {
        execFileSync("umount", ["-l", mp], { stdio: "ignore" });
      } catch {
        // gone already
      }
    }
  }
}

async function propagation(value: string): Promise<{ root?: Mount; sawHostMount: boolean | undefined; created: boolean; stderr?: string }> {
  const bundle = makeBundle(rt, {
    args: ["/checker", "mounts", "wait-signal", "read", "/proc/self/mountinfo"],
    copyRootfs: true,
    config: (c) => (c.linux.rootfsPropagation = value),
  });
  const nsFile = path.join(rt.scratch, `mntns-${value}`);
  fs.writeFileSync(nsFile, "");
  execFileSync("unshare", [`--mount=${nsFile}`, "--propagation", "shared", "true"]);
  const inNs = ["nsenter", `--mount=${nsFile}`];
  try {
    const c = await startRunning(rt, { bundle, run: { wrap: inNs } });
    if (!c.ready) {
      await c.stop();
      return { sawHostMount: undefined, created: c.create.code === 0, stderr: fs.readFileSync(bundle.err, "utf8") };
    }
    execFileSync(inNs[0]!, [...inNs.slice(1), "mount", "-t", "tmpfs", "-o", "size=64k", "cf-propagation", path.join(bundle.dir, "rootfs/mnt/a")]);
    rt.kill(c.id, "USR1");
    await rt.waitStatus(c.id, "stopped");
    const out = c.out();
    await c.stop();
    const root = mountAt(parseMountinfo(out?.mounts), "/");
    const after = (out?.["read /proc/self/mountinfo"]?.data as string | undefined)?.split("\n");
    const sawHostMount = after ? parseMountinfo(after).some((m) => m.mountPoint === "/mnt/a" && m.source === "cf-propagation") : undefined;
    return { root, sawHostMount, created: true };
  } finally {
    unmountAll(nsFile);
    fs.rmSync(nsFile, { force: true });
  }
}

t.test("slave", async (t) => {
  const r = await propagation("slave");
  t.equal(r.sawHostMount, true, spec("config-linux.md#rootfs-mount-propagation", "slave: the rootfs mount receives propagation events from the host"), r);
  t.ok(r.root?.optional.some((f) => f.startsWith("master:")), spec("config-linux.md#rootfs-mount-propagation", "slave: the rootfs mount receives propagation events from the host", "a slave mount"), { root: r.root });
});

t.test("private", async (t) => {
  const r = await propagation("private");
  t.equal(r.sawHostMount, false, spec("config-linux.md#rootfs-mount-propagation", "private: the rootfs mount doesn't receive mount propagation events from the host"), r);
});

t.test("shared", async (t) => {
  const r = await propagation("shared");
  t.ok(r.root?.optional.some((f) => f.startsWith("shared:")), spec("config-linux.md#rootfs-mount-propagation", "shared: the rootfs mount belongs to a new peer group"), { root: r.root, created: r.created });
});

t.test("unbindable", async (t) => {
  const r = await propagation("unbindable");
  t.ok(r.root?.optional.includes("unbindable"), spec("config-linux.md#rootfs-mount-propagation", "unbindable: the rootfs mount is a private mount that cannot be bind-mounted"), { root: r.root, created: r.created });
  const name = spec("config-linux.md#rootfs-mount-propagation", "unbindable: the rootfs mount is a private mount", "no events from the host");
  if (r.sawHostMount === undefined) t.pass(name, { skip: "the container did not run (counted above)" });
  else t.equal(r.sawHostMount, false, name, r);
});

leavesNothingBehind(t, rt);
