// config-linux.md, Control groups and Cgroups Path.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { startRunning } from "./lib/container.ts";
import { cgroupMountPoints, cgroupsOf, removeCgroupParents, testCgroupPath } from "./lib/host.ts";
import { TAG } from "./lib/runtime.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);
const V1 = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"].filter((c) => cgroupMountPoints().has(c));

t.test("absolute cgroupsPath", async (t) => {
  const cg = testCgroupPath("abs");
  const c = await startRunning(rt, { config: (c) => (c.linux.cgroupsPath = cg) });
  const seen = Object.fromEntries(V1.map((ctl) => [ctl, cgroupsOf(c.pid).get(ctl)]));
  const dirs = V1.map((ctl) => path.join(cgroupMountPoints().get(ctl)!, cg));
  await c.stop();
  t.same(seen, Object.fromEntries(V1.map((ctl) => [ctl, cg])), spec("config-linux.md#cgroups-path", "In the case of an absolute path (starting with /), the runtime MUST take the path to be relative to the cgroups mount point"));
  t.same(dirs.filter((d) => fs.existsSync(d)), [], spec("runtime.md#delete", "Deleting a container MUST delete the resources that were created during the create step", "cgroups in every hierarchy"));
  removeCgroupParents();
});

t.test("the same cgroupsPath, the same place", async (t) => {
  const cg = testCgroupPath("same");
  const a = await startRunning(rt, { config: (c) => (c.linux.cgroupsPath = cg) });
  const first = Object.fromEntries(cgroupsOf(a.pid));
  await a.stop();
  const b = await startRunning(rt, { config: (c) => (c.linux.cgroupsPath = cg) });
  const second = Object.fromEntries(cgroupsOf(b.pid));
  await b.stop();
  t.same(second, first, spec("config-linux.md#cgroups-path", "If the value is specified, the runtime MUST consistently attach to the same place in the cgroups hierarchy given the same value of cgroupsPath"));
  removeCgroupParents();
});

t.test("nested cgroupsPath is created", async (t) => {
  const cg = testCgroupPath("a/b/c");
  const c = await startRunning(rt, { config: (c) => (c.linux.cgroupsPath = cg) });
  t.equal(cgroupsOf(c.pid).get("pids"), cg, spec("config-linux.md#cgroups-path", "The cgroups will be created if they don't exist"));
  await c.stop();
  removeCgroupParents();
});

t.test("a cgroup the container did not create survives delete", async (t) => {
  const name = `${TAG}-precreated`;
  const mp = cgroupMountPoints().get("pids")!;
  const dir = path.join(mp, name);
  fs.mkdirSync(dir);
  try {
    const c = await startRunning(rt, { config: (c) => (c.linux.cgroupsPath = `/${name}`) });
    t.equal(cgroupsOf(c.pid).get("pids"), `/${name}`, "(setup) the container is in the existing cgroup");
    await c.stop();
    t.ok(fs.existsSync(dir), spec("runtime.md#delete", "resources associated with the container, but not created by this container, MUST NOT be deleted", "an existing cgroup given as cgroupsPath"));
  } finally {
    for (const mpt of new Set(cgroupMountPoints().values())) {
      try {
        fs.rmdirSync(path.join(mpt, name));
      } catch {
        // not there
      }
    }
  }
});

leavesNothingBehind(t, rt);
