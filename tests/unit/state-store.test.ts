import t from "tap";
import { mkdtempSync, rmSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateId, lockNewContainer, writeRecord, readRecord, listIds, computeStatus, stateDirIdentity, isOwnStateDir, type ContainerRecord } from "../../src/lifecycle/state-store.ts";
import { procStat } from "../../src/linux/proc.ts";
import { isContainerCgroupDir } from "../../src/linux/cgroups/dir-check.ts";
import { isResctrlDir } from "../../src/linux/resctrl.ts";

const root = mkdtempSync(join(tmpdir(), "tsrun-state-"));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

t.test("container ids", async (t) => {
  for (const good of ["a", "A-b_c.d+e", "x".repeat(1024)]) t.doesNotThrow(() => validateId(good), good.slice(0, 20));
  for (const bad of ["", ".", "..", "../x", "a/b", "a b", "x".repeat(1025), "é"]) {
    t.throws(() => validateId(bad), /invalid container id/, JSON.stringify(bad.slice(0, 20)));
  }
});

t.test("the state directory is the lock", async (t) => {
  const dir = lockNewContainer(root, "one");
  t.equal(statSync(dir).mode & 0o777, 0o700);
  t.throws(() => lockNewContainer(root, "one"), /^container with given ID already exists$/);
});

const me = procStat(process.pid)!;
const record = (over: Partial<ContainerRecord>): ContainerRecord => ({
  ociVersion: "1.3.0", id: "two", pid: process.pid, pidStartTime: me.startTime, bundle: "/b", rootfs: "/b/rootfs",
  created: new Date().toISOString(), owner: "", config: { ociVersion: "1.3.0" }, complete: true, ...over,
});

t.test("records are written whole and status is computed", async (t) => {
  const dir = lockNewContainer(root, "two");
  writeRecord(dir, record({}));
  t.same(readdirSync(dir), ["state.json"], "no temp file left");
  const r = readRecord(root, "two");
  t.equal(computeStatus(root, r, () => false), "running");
  t.equal(computeStatus(root, r, () => true), "paused");
  writeFileSync(join(dir, "exec.fifo"), "");
  t.equal(computeStatus(root, r, () => false), "created");
  t.equal(computeStatus(root, { ...r, pidStartTime: "1" }, () => false), "stopped", "a reused pid reads as stopped");
  t.equal(computeStatus(root, { ...r, complete: false, creator: { pid: process.pid, startTime: me.startTime } }, () => false), "creating", "a create still at work");
  t.equal(computeStatus(root, { ...r, complete: false, creator: { pid: process.pid, startTime: "1" } }, () => false), "stopped", "a create that died half-way");
  t.equal(computeStatus(root, { ...r, complete: false }, () => false), "stopped", "an incomplete record without its creator");
  t.throws(() => readRecord(root, "nope"), /^container does not exist$/);
});

t.test("a directory without state.json (a create killed half-way) reads as stopped", async (t) => {
  lockNewContainer(root, "three");
  const r = readRecord(root, "three");
  t.equal(r.complete, false);
  t.equal(computeStatus(root, r, () => false), "stopped");
  t.same(listIds(root), ["one", "three", "two"]);
});

t.test("a record's cgroup is trusted only if every dir is a cgroup below a hierarchy's root", async (t) => {
  const hierarchy = "/sys/fs/cgroup/memory";
  const inside = mkdtempSync(join(hierarchy, "tsrun-unit-"));
  t.teardown(() => rmSync(inside, { recursive: true, force: true }));
  const notCgroup = mkdtempSync(join(tmpdir(), "tsrun-not-cgroup-"));
  t.teardown(() => rmSync(notCgroup, { recursive: true, force: true }));
  t.ok(isContainerCgroupDir(inside), "a cgroup below the root");
  t.ok(isContainerCgroupDir(join(inside, "gone")), "a cgroup dir that is gone already");
  for (const bad of [hierarchy, "/sys/fs/cgroup/unified", `${inside}/..`, `${inside}/../..`, notCgroup, "/", "relative/dir"]) {
    t.notOk(isContainerCgroupDir(bad), bad);
  }
  const dir = lockNewContainer(root, "cg");
  const cgroup = (dirs: string[]) => ({ version: "v1" as const, v1: { memory: dirs[0]! }, created: dirs });
  writeRecord(dir, record({ id: "cg", cgroup: cgroup([inside]) }));
  t.same(readRecord(root, "cg").cgroup, cgroup([inside]), "kept");
  for (const bad of [[hierarchy], [notCgroup], [inside, hierarchy]]) {
    writeRecord(dir, record({ id: "cg", cgroup: cgroup(bad) }));
    t.equal(readRecord(root, "cg").cgroup, undefined, `dropped: ${bad.join(" ")}`);
  }
});

t.test("a record's Intel RDT group is trusted only on a resctrl file system", async (t) => {
  const notResctrl = mkdtempSync(join(tmpdir(), "tsrun-not-resctrl-"));
  t.teardown(() => rmSync(notResctrl, { recursive: true, force: true }));
  t.ok(isResctrlDir("/sys/fs/resctrl-gone/x"), "a dir that is gone: nothing left to act on");
  for (const bad of [notResctrl, "/", "/proc/sys/kernel", "relative/x", `${notResctrl}/../x`]) t.notOk(isResctrlDir(bad), bad);
  const dir = lockNewContainer(root, "rdt");
  const gone = "/sys/fs/resctrl-gone/c1";
  writeRecord(dir, record({ id: "rdt", intelRdt: { group: gone, ownGroup: true, created: [gone] } }));
  t.same(readRecord(root, "rdt").intelRdt, { group: gone, ownGroup: true, created: [gone] }, "kept");
  for (const bad of [{ group: "/proc/sys/kernel", ownGroup: false, created: [] }, { group: gone, monitor: notResctrl, ownGroup: true, created: [] }, { group: gone, created: [] }]) {
    writeRecord(dir, record({ id: "rdt", intelRdt: bad as never }));
    t.equal(readRecord(root, "rdt").intelRdt, undefined, `dropped: ${JSON.stringify(bad)}`);
  }
});

t.test("a create never writes into a state dir that replaced the one it locked", async (t) => {
  const dir = lockNewContainer(root, "retaken");
  const identity = stateDirIdentity(dir);
  writeRecord(dir, record({ id: "retaken" }), identity);
  rmSync(dir, { recursive: true });
  const other = lockNewContainer(root, "retaken");
  writeRecord(other, record({ id: "retaken", bundle: "/other" }));
  t.throws(() => writeRecord(dir, record({ id: "retaken" }), identity), /^container retaken was deleted while it was being created$/);
  t.equal(readRecord(root, "retaken").bundle, "/other", "the other create's record is untouched");
  t.notOk(isOwnStateDir(root, record({ id: "retaken" }), identity), "not ours to clean up");
});
