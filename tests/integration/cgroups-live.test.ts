/**
 * The cgroup manager against this machine's real cgroups (root needed). Plain `sleep` processes
 * stand in for containers. Every test removes its cgroups and kills its processes in teardown.
 */
import t, { type Test } from "tap";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TsrunError } from "../../src/errors.ts";
import {
  applyResources,
  createCgroup,
  destroyCgroup,
  freeze,
  isFrozen,
  listPids,
  oomKillCount,
  planCgroup,
  procsFiles,
  signalAll,
  stats,
  thaw,
  type CgroupState,
  type Resources,
} from "../../src/linux/cgroups/index.ts";
import { findHierarchies, parseMountinfo } from "../../src/linux/cgroups/parse.ts";
import { planContainerCgroup } from "../../src/linux/cgroups/driver.ts";

if (process.getuid?.() !== 0 || !existsSync("/proc/self/cgroup")) {
  t.plan(0, "needs root and cgroups");
  process.exit(0);
}

const hier = findHierarchies(parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8")));
const mountPoints = [...hier.v1.map((h) => h.mountPoint), ...(hier.v2 ? [hier.v2.mountPoint] : [])];

let counter = 0;
/** A fresh top-level test path; teardown removes it from every hierarchy whatever happens. */
function testRoot(tt: Test): string {
  const name = `tsrun-test-${process.pid}-${++counter}`;
  tt.teardown(() => {
    for (const m of mountPoints) removeTree(join(m, name));
  });
  return `/${name}`;
}

function removeTree(dir: string): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) removeTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // best effort
  }
}

function sleeper(tt: Test): ChildProcess {
  const child = spawn("sleep", ["1000"], { stdio: "ignore" });
  tt.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return child;
}

function exited(child: ChildProcess): Promise<string | number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once("exit", (code, sig) => resolve(sig ?? code)));
}

function join2(state: CgroupState, pid: number): void {
  for (const f of procsFiles(state)) writeFileSync(f, String(pid));
}

function read(dir: string | undefined, file: string): string {
  if (!dir) throw new Error(`no dir for ${file}`);
  return readFileSync(join(dir, file), "utf8").trim();
}

function allDirs(state: CgroupState): string[] {
  return [...new Set([...Object.values(state.v1), ...(state.v2 ? [state.v2] : [])])];
}

const quiet = (): void => {};

t.test("plan on this host", async (t) => {
  const s = planCgroup({ id: "abc" });
  t.equal(s.version, hier.v1.length > 0 ? (hier.v2 ? "hybrid" : "v1") : "v2");
  if (s.v1.memory) t.match(s.v1.memory, /\/tsrun\/abc$/);
  if (hier.v2) t.equal(s.v2, join(hier.v2.mountPoint, "tsrun/abc"));
  t.same(s.created, []);
  if (!existsSync("/run/systemd/system")) {
    await t.rejects(planContainerCgroup({ id: "abc", cgroupsPath: "system.slice:tsrun:abc", systemd: true }), {
      message: "systemd cgroup driver: systemd is not running (no /run/systemd/system)",
    });
  }
});

t.test("create, apply, join, freeze, stats, signal, destroy", async (t) => {
  const root = testRoot(t);
  const planned = planCgroup({ id: "x", cgroupsPath: `${root}/ctr` });
  const resources: Resources = {
    memory: { limit: 64 << 20, reservation: 32 << 20, kernel: 1 },
    pids: { limit: 50 },
    cpu: { shares: 512, quota: 20000, period: 100000, cpus: "0", mems: "0" },
  };
  const hasSwapAccounting = planned.v1.memory ? existsSync(join(hier.v1.find((h) => h.controllers.includes("memory"))!.mountPoint, "memory.memsw.limit_in_bytes")) : false;
  if (hasSwapAccounting) resources.memory!.swap = 128 << 20;
  const warnings: string[] = [];
  const state = createCgroup(planned, resources, (m) => warnings.push(m));
  t.match(warnings, [/memory\.kernel/], "kernel memory is a warning");

  for (const d of allDirs(state)) t.ok(existsSync(d), `${d} exists`);
  for (const d of allDirs(state)) {
    t.ok(state.created.includes(d), `${d} recorded as created`);
    t.ok(state.created.includes(join(d, "..")), `its new parent too`);
  }
  t.equal(state.created.length, allDirs(state).length * 2);

  if (state.v1.memory) {
    t.equal(read(state.v1.memory, "memory.limit_in_bytes"), String(64 << 20));
    t.equal(read(state.v1.memory, "memory.soft_limit_in_bytes"), String(32 << 20));
    if (hasSwapAccounting) t.equal(read(state.v1.memory, "memory.memsw.limit_in_bytes"), String(128 << 20));
  } else t.equal(read(state.v2, "memory.max"), String(64 << 20));
  t.equal(read(state.v1.pids ?? state.v2, "pids.max"), "50");
  if (state.v1.cpu) {
    t.equal(read(state.v1.cpu, "cpu.shares"), "512");
    t.equal(read(state.v1.cpu, "cpu.cfs_quota_us"), "20000");
    t.equal(read(state.v1.cpu, "cpu.cfs_period_us"), "100000");
  } else t.equal(read(state.v2, "cpu.max"), "20000 100000");
  t.equal(read(state.v1.cpuset ?? state.v2, "cpuset.cpus"), "0");
  if (state.v1.cpuset) t.equal(read(join(state.v1.cpuset, ".."), "cpuset.mems"), read(join(state.v1.cpuset, "../.."), "cpuset.mems"), "the new parent cpuset inherited mems");

  // Raising and lowering coupled limits in one update must both work (write order).
  if (state.v1.memory && hasSwapAccounting) {
    applyResources(state, { memory: { limit: 256 << 20, swap: 512 << 20 } }, quiet);
    t.equal(read(state.v1.memory, "memory.limit_in_bytes"), String(256 << 20));
    applyResources(state, { memory: { limit: 16 << 20, swap: 16 << 20 } }, quiet);
    t.equal(read(state.v1.memory, "memory.memsw.limit_in_bytes"), String(16 << 20));
    applyResources(state, { memory: { limit: 64 << 20, swap: 128 << 20 } }, quiet);
  }
  applyResources(state, { cpu: { quota: 5000, period: 10000 } }, quiet);
  if (state.v1.cpu) t.equal(read(state.v1.cpu, "cpu.cfs_period_us"), "10000");

  // blkio weight where this kernel has a weight file.
  if (state.v1.blkio) {
    const f = ["blkio.weight", "blkio.bfq.weight"].find((x) => existsSync(join(state.v1.blkio!, x)));
    if (f) {
      applyResources(state, { blockIO: { weight: 200 } }, quiet);
      t.match(read(state.v1.blkio, f), /(^|\s)200$/, `${f} set`);
    }
  }
  // hugetlb, in cgroup2 on a hybrid host.
  const hugetlbDir = state.v1.hugetlb ?? (state.v2 && read(state.v2, "cgroup.controllers").split(" ").includes("hugetlb") ? state.v2 : undefined);
  if (hugetlbDir && existsSync("/sys/kernel/mm/hugepages/hugepages-2048kB")) {
    applyResources(state, { hugepageLimits: [{ pageSize: "2MB", limit: 4 << 20 }] }, quiet);
    t.equal(read(hugetlbDir, state.v1.hugetlb ? "hugetlb.2MB.limit_in_bytes" : "hugetlb.2MB.max"), String(4 << 20));
    t.ok(stats(state).hugetlb["2MB"], "hugetlb stats");
    if (!state.v1.hugetlb) {
      applyResources(state, { unified: { "hugetlb.2MB.max": String(2 << 20) } }, quiet);
      t.equal(read(hugetlbDir, "hugetlb.2MB.max"), String(2 << 20), "a unified key is written in the cgroup2 dir");
    }
  }
  if (state.v1.devices) {
    applyResources(state, { devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }, { allow: true, type: "c", major: 136, access: "rw" }] }, quiet);
    t.equal(read(state.v1.devices, "devices.list"), "c 1:3 rwm\nc 136:* rw");
  }

  const child = sleeper(t);
  const pid = child.pid!;
  join2(state, pid);
  t.same(listPids(state), [pid]);
  if (state.v1.memory) t.equal(read(state.v1.memory, "cgroup.procs"), String(pid));

  t.notOk(isFrozen(state));
  freeze(state);
  t.ok(isFrozen(state));
  t.match(readFileSync(`/proc/${pid}/status`, "utf8"), /State:\s+[SDT]/);
  thaw(state);
  t.notOk(isFrozen(state));

  const st = stats(state);
  t.type(st.cpu.usage.kernel, "number");
  t.type(st.cpu.usage.user, "number");
  t.equal(st.memory.usage.limit, 64 << 20);
  t.ok(st.memory.raw && Object.keys(st.memory.raw).length > 5, "memory.stat in raw");
  t.equal(st.pids.current, 1);
  t.equal(st.pids.limit, 50);
  t.same(st.intel_rdt, {});
  t.equal(oomKillCount(state), 0);
  t.doesNotThrow(() => JSON.stringify(st));

  signalAll(state, 15);
  t.equal(await exited(child), "SIGTERM");

  const child2 = sleeper(t);
  join2(state, child2.pid!);
  destroyCgroup(state);
  t.equal(await exited(child2), "SIGKILL");
  for (const d of state.created) t.notOk(existsSync(d), `${d} removed`);
  for (const m of mountPoints) t.ok(existsSync(m), `${m} kept`);
  t.doesNotThrow(() => destroyCgroup(state), "idempotent");
});

t.test("destroy removes exactly what it created", async (t) => {
  const root = testRoot(t);
  // A sibling that existed before: the shared parent and the sibling must stay.
  const mem = hier.v1.find((h) => h.controllers.includes("memory"))?.mountPoint ?? hier.v2!.mountPoint;
  mkdirSync(join(mem, root, "other"), { recursive: true });
  const state = createCgroup(planCgroup({ id: "y", cgroupsPath: `${root}/ctr` }), undefined, quiet);
  const memDir = state.v1.memory ?? state.v2!;
  t.notOk(state.created.includes(join(mem, root)), "a parent that existed is not recorded");
  // the container makes a sub-cgroup of its own
  mkdirSync(join(memDir, "inner"));
  const child = sleeper(t);
  join2(state, child.pid!);
  writeFileSync(join(memDir, "inner", "cgroup.procs"), String(child.pid));
  t.same(listPids(state), [child.pid]);
  destroyCgroup(state);
  t.equal(await exited(child), "SIGKILL");
  t.notOk(existsSync(memDir));
  t.ok(existsSync(join(mem, root, "other")), "the sibling is still there");
  for (const d of allDirs(state)) t.notOk(existsSync(d));
});

t.test("a shared parent stays while another container uses it", async (t) => {
  const root = testRoot(t);
  const a = createCgroup(planCgroup({ id: "a", cgroupsPath: `${root}/a` }), undefined, quiet);
  const b = createCgroup(planCgroup({ id: "b", cgroupsPath: `${root}/b` }), undefined, quiet);
  t.ok(a.created.length > b.created.length, "a made the parent, b did not");
  destroyCgroup(a);
  for (const d of allDirs(b)) t.ok(existsSync(d), `${d} still there`);
  destroyCgroup(b);
  for (const d of allDirs(b)) t.notOk(existsSync(d));
  for (const d of allDirs(a)) t.ok(existsSync(join(d, "..")), "the parent a created stays: b existed when a went");
});

t.test("a failing create leaves nothing behind", async (t) => {
  const root = testRoot(t);
  const planned = planCgroup({ id: "z", cgroupsPath: `${root}/ctr` });
  let err: unknown;
  try {
    createCgroup(planned, { memory: { limit: 64 << 20 }, cpu: { cpus: "999" } }, quiet);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof TsrunError, "a TsrunError");
  t.match((err as Error).message, /^cgroup: write 999 to \/\S+\/cpuset\.cpus: (invalid argument|numerical result out of range)$/);
  for (const d of allDirs(planned)) t.notOk(existsSync(d), `${d} not left`);
  for (const m of mountPoints) t.notOk(existsSync(join(m, root)), `${join(m, root)} not left`);

  t.throws(() => createCgroup(planned, { memory: { swappiness: 200 } }, quiet), /swappiness/);
  for (const m of mountPoints) t.notOk(existsSync(join(m, root)));

  t.throws(() => createCgroup(planned, { unified: { "nosuch.file": "1" } }, quiet), /nosuch\.file: no such file or directory|needs cgroup v2/);
  for (const m of mountPoints) t.notOk(existsSync(join(m, root)));
});

t.test("joining a cgroup that has processes is refused", async (t) => {
  const root = testRoot(t);
  const first = createCgroup(planCgroup({ id: "p", cgroupsPath: `${root}/ctr` }), undefined, quiet);
  const child = sleeper(t);
  join2(first, child.pid!);
  t.throws(() => createCgroup(planCgroup({ id: "q", cgroupsPath: `${root}/ctr` }), undefined, quiet), /is not empty: 1 process\(es\) found/);
  for (const d of allDirs(first)) t.ok(existsSync(d), "the other one's dirs stay");
  destroyCgroup(first);
  await exited(child);
});

t.test("cgroup2 only: cgroup.freeze, cgroup.kill", { skip: hier.v2 ? false : "no cgroup2" }, async (t) => {
  const root = testRoot(t);
  const planned: CgroupState = { version: "v2", v1: {}, v2: join(hier.v2!.mountPoint, root, "ctr"), created: [] };
  const state = createCgroup(planned, undefined, quiet);
  t.same(state.created, [join(hier.v2!.mountPoint, root), planned.v2]);
  const child = sleeper(t);
  join2(state, child.pid!);
  t.same(listPids(state), [child.pid]);
  freeze(state);
  t.ok(isFrozen(state));
  t.equal(read(state.v2, "cgroup.freeze"), "1");
  thaw(state);
  t.notOk(isFrozen(state));
  freeze(state);
  signalAll(state, 9); // cgroup.kill; a frozen cgroup is thawed so the kill lands
  t.equal(await exited(child), "SIGKILL");
  t.notOk(isFrozen(state));
  t.same(listPids(state), []);
  destroyCgroup(state);
  for (const d of state.created) t.notOk(existsSync(d));
});

t.test("destroy of a frozen container", async (t) => {
  const root = testRoot(t);
  const state = createCgroup(planCgroup({ id: "f", cgroupsPath: `${root}/ctr` }), { pids: { limit: 10 } }, quiet);
  const child = sleeper(t);
  join2(state, child.pid!);
  freeze(state);
  destroyCgroup(state);
  t.equal(await exited(child), "SIGKILL");
  for (const d of state.created) t.notOk(existsSync(d));
});

t.test("OOM kills are counted", async (t) => {
  const root = testRoot(t);
  const memory: Resources["memory"] = { limit: 8 << 20 };
  const state0 = planCgroup({ id: "o", cgroupsPath: `${root}/ctr` });
  const memDir = state0.v1.memory;
  const swapFile = memDir ? "memory.memsw.limit_in_bytes" : "memory.swap.max";
  const memRoot = memDir ? hier.v1.find((h) => h.controllers.includes("memory"))!.mountPoint : hier.v2!.mountPoint;
  if (existsSync(join(memRoot, swapFile)) || !memDir) memory!.swap = 8 << 20; // no swapping out of the OOM
  const state = createCgroup(state0, { memory }, quiet);
  t.equal(oomKillCount(state), 0);
  // A shell that holds 64 MB in a variable: the kernel's OOM killer ends it.
  const child = spawn("sh", ["-c", "read -r go; x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#x}"], { stdio: ["pipe", "ignore", "ignore"] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  join2(state, child.pid!);
  child.stdin!.end("go\n");
  await exited(child);
  t.ok(oomKillCount(state) >= 1, `oom_kill counted (${oomKillCount(state)})`);
  destroyCgroup(state);
  for (const d of state.created) t.notOk(existsSync(d));
});

t.test("SIGKILL to a paused container takes effect", async (t) => {
  const root = testRoot(t);
  const state = createCgroup(planCgroup({ id: "k", cgroupsPath: `${root}/ctr` }), undefined, quiet);
  const a = sleeper(t);
  const b = sleeper(t);
  join2(state, a.pid!);
  join2(state, b.pid!);
  t.same(listPids(state), [a.pid!, b.pid!].sort((x, y) => x - y));
  freeze(state);
  signalAll(state, 28); // SIGWINCH: ignored by sleep, so the SIGKILL below is what ends them
  t.ok(isFrozen(state), "another signal leaves it paused");
  signalAll(state, 9);
  t.same(await Promise.all([exited(a), exited(b)]), ["SIGKILL", "SIGKILL"]);
  t.notOk(isFrozen(state));
  destroyCgroup(state);
  for (const d of state.created) t.notOk(existsSync(d));
});
