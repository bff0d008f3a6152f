// Tests of the leak checker (tests/lib/leaks.ts): it must see each kind of leak a test can
// leave, only when it is the test's own, and clean up after reporting.
import t from "tap";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { makeBundle } from "../lib/bundle.ts";
import { readMounts, removeTree, type TestLike } from "../lib/context.ts";
import { cgroupBases, diffSnapshots, isTagged, leakCheck, type Scope, type Snapshot } from "../lib/leaks.ts";
import { REPO } from "../lib/rootfs.ts";
import { TAG_ENV, TEST_TAG, containerId, testRoot } from "../lib/tsrun.ts";

/**
 * A stand-in for a tap test: records fail() calls; end() ends it as tap does: onbeforeend, then
 * the teardowns, last registered first. (The last test below runs the checker under real tap.)
 */
function fakeTest() {
  const teardowns: Array<() => unknown> = [];
  const fails: string[] = [];
  const ft: TestLike = {
    teardown: (fn) => void teardowns.push(fn),
    fail: (message) => (fails.push(message), false),
    comment: () => {},
    onbeforeend: () => {},
  };
  return {
    t: ft,
    fails,
    async end() {
      await ft.onbeforeend!();
      for (let fn; (fn = teardowns.pop()); ) await fn();
    },
  };
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-testlib-"));
  t.teardown(() => removeTree(d));
  return d;
}

function mountTmpfs(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const r = spawnSync("mount", ["-t", "tmpfs", "tsrun-leak-test", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`mount: ${r.stderr}`);
}

const isMounted = (dir: string) => fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === dir);

t.test("nothing left behind: no failure", async (t) => {
  const f = fakeTest();
  leakCheck(f.t);
  const b = makeBundle(f.t);
  testRoot(f.t);
  const fd = fs.openSync(b.configPath, "r");
  fs.closeSync(fd);
  await f.end();
  t.same(f.fails, []);
});

t.test("a tmpfs left mounted below a watched path is a leak, and is unmounted", async (t) => {
  const d = tempDir(t);
  const other = tempDir(t);
  const f = fakeTest();
  leakCheck(f.t, { paths: [d] });
  mountTmpfs(path.join(d, "m"));
  mountTmpfs(path.join(other, "m")); // not the test's: ignored
  await f.end();
  t.equal(f.fails.length, 1, "one failure");
  t.match(f.fails[0], `leaked mounts: ${path.join(d, "m")} (tmpfs)`);
  t.notOk(isMounted(path.join(d, "m")), "the leaked mount was cleaned up");
  t.ok(isMounted(path.join(other, "m")), "a mount outside the test's paths is not touched");
});

t.test("a mount left in a bundle is a leak; the bundle is still removed", async (t) => {
  const f = fakeTest();
  leakCheck(f.t);
  const b = makeBundle(f.t);
  mountTmpfs(path.join(b.dir, "rootfs"));
  await f.end();
  t.equal(f.fails.length, 1);
  t.match(f.fails[0], /^leaked mounts: .*rootfs \(tmpfs\)$/);
  t.notOk(fs.existsSync(b.dir), "bundle removed");
});

t.test("without leakCheck, a bundle with a mount below is unmounted, not deleted through", async (t) => {
  const keep = tempDir(t);
  fs.writeFileSync(path.join(keep, "precious"), "x");
  const f = fakeTest();
  const comments: unknown[] = [];
  f.t.comment = (...args) => void comments.push(...args);
  const b = makeBundle(f.t);
  fs.mkdirSync(path.join(b.dir, "bind"));
  spawnSync("mount", ["--bind", keep, path.join(b.dir, "bind")]);
  await f.end();
  t.same(f.fails, []);
  t.match(comments, [/still had mounts below it/]);
  t.ok(fs.existsSync(path.join(keep, "precious")), "the bind-mounted directory's files survive");
  t.notOk(fs.existsSync(b.dir));
});

t.test("a container left in the test's state dir is a leak", async (t) => {
  const f = fakeTest();
  leakCheck(f.t);
  const root = testRoot(f.t);
  const id = containerId();
  fs.mkdirSync(path.join(root, id));
  await f.end();
  t.equal(f.fails.length, 1);
  t.equal(f.fails[0], `leaked state: ${path.join(root, id)}`);
  t.notOk(fs.existsSync(root), "state dir removed");
});

t.test("a tagged process left running is a leak, and is killed", async (t) => {
  const f = fakeTest();
  leakCheck(f.t, { settleMs: 200 });
  const env = { ...process.env, [TAG_ENV]: TEST_TAG };
  const leaked = spawn("/bin/sleep", ["1000"], { env, stdio: "ignore" });
  const exited = new Promise((r) => leaked.on("exit", r));
  const notOurs = spawn("/bin/sleep", ["1000"], { env: { ...process.env, [TAG_ENV]: "other-1" }, stdio: "ignore" });
  // Tagged by its command line only (as `tsrun ... ID` or a helper showing the id would be).
  const byArgs = spawn("/bin/sleep", ["1000"], { argv0: containerId(), stdio: "ignore" });
  const shortLived = spawn("/bin/sleep", ["0.1"], { env, stdio: "ignore" });
  await new Promise((r) => shortLived.on("spawn", r));
  await f.end();
  notOurs.kill("SIGKILL");
  t.equal(f.fails.length, 1, f.fails.join("\n"));
  t.match(f.fails[0], `${leaked.pid} (/bin/sleep 1000)`);
  t.match(f.fails[0], `${byArgs.pid} (${TEST_TAG}-`);
  t.notMatch(f.fails[0], `${notOurs.pid} `, "another test's process is not reported");
  t.notMatch(f.fails[0], `${shortLived.pid} `, "a process that ends on its own is not reported");
  await exited;
  t.equal(leaked.signalCode, "SIGKILL", "the leaked process was killed");
});

const hierarchy = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"].find((h) =>
  fs.existsSync(path.join(h, "cgroup.procs")),
);
t.test("a tagged cgroup left behind is a leak, and is removed", { skip: !hierarchy && "no cgroup hierarchy" }, async (t) => {
  const parent = path.join(hierarchy!, "tsrun");
  const madeParent = !fs.existsSync(parent);
  fs.mkdirSync(parent, { recursive: true });
  t.teardown(() => {
    if (madeParent) fs.rmdirSync(parent);
  });
  const f = fakeTest();
  leakCheck(f.t);
  const cg = path.join(parent, containerId());
  fs.mkdirSync(cg);
  const other = path.join(parent, "someone-else-1");
  fs.mkdirSync(other);
  t.teardown(() => fs.rmdirSync(other));
  await f.end();
  t.same(f.fails, [`leaked cgroups: ${cg}`]);
  t.notOk(fs.existsSync(cg), "the leaked cgroup was removed");
});

t.test("an fd the test left open is a leak", async (t) => {
  const f = fakeTest();
  leakCheck(f.t);
  const fd = fs.openSync("/proc/self/mountinfo", "r");
  await f.end();
  fs.closeSync(fd);
  t.equal(f.fails.length, 1);
  t.match(f.fails[0], new RegExp(`^leaked fds: ${fd} -> /proc/\\d+/mountinfo$`));
});

t.test("cgroupBases: every hierarchy root and this process's cgroup in it", async (t) => {
  const mounts = readMounts();
  const bases = cgroupBases(mounts);
  for (const m of mounts.filter((m) => m.fsType === "cgroup" || m.fsType === "cgroup2")) {
    t.ok(bases.includes(m.mountPoint), `${m.mountPoint} is a base`);
  }
  for (const line of fs.readFileSync("/proc/self/cgroup", "utf8").split("\n").filter(Boolean)) {
    const own = line.split(":").slice(2).join(":");
    if (own !== "/") t.ok(bases.some((b) => b.endsWith(own)), `own cgroup ${line} is a base`);
  }
});

t.test("isTagged matches whole tags only", async (t) => {
  t.ok(isTagged("/tsrun/x-12-3", "x-12"));
  t.ok(isTagged("TSRUN_TEST_TAG=x-12\0HOME=/", "x-12"));
  t.ok(isTagged("/run/tsrun-test/x-12-r1", "x-12"));
  t.ok(isTagged("x-12", "x-12"));
  t.notOk(isTagged("/tsrun/x-123-3", "x-12"), "a longer pid");
  t.notOk(isTagged("/tsrun/y-x-12-3", "x-12"), "a longer file stem");
  t.notOk(isTagged("/tsrun/other-1", "x-12"));
});

t.test("diffSnapshots keeps only new things in scope", async (t) => {
  const scope: Scope = { tag: "f-7", paths: ["/b/bundle"], roots: ["/r/mine"], sharedRoots: ["/run/tsrun"] };
  const m = (id: string, mountPoint: string) => ({ id, root: "/", mountPoint, fsType: "tmpfs", source: "x", superOptions: "rw" });
  const p = (pid: number, extra: Partial<Snapshot["procs"][number]> = {}) => ({
    pid,
    ppid: 1,
    state: "S",
    cmdline: "sleep",
    cgroup: "0::/",
    environ: "",
    ...extra,
  });
  const before: Snapshot = {
    mounts: [m("1", "/"), m("2", "/b/bundle/old")],
    cgroups: ["/sys/fs/cgroup/pids/tsrun/f-7-1"],
    state: ["/r/mine/f-7-1", "/run/tsrun/f-7-2"],
    pids: [1, 10],
    procs: [],
    fds: { "0": "/dev/null", "1": "pipe:[1]" },
  };
  const after: Snapshot = {
    mounts: [
      m("1", "/"),
      m("2", "/b/bundle/old"),
      m("3", "/b/bundle/old"), // stacked on an old mount point: new
      m("4", "/b/bundle"),
      m("5", "/b/bundle2"), // not below /b/bundle
      m("6", "/x/f-7-3/rootfs"), // tagged
      m("7", "/x/f-77-3/rootfs"), // another test's
    ],
    cgroups: ["/sys/fs/cgroup/pids/tsrun/f-7-1", "/sys/fs/cgroup/pids/tsrun/f-7-3", "/sys/fs/cgroup/pids/tsrun/g-8-1"],
    state: ["/r/mine/f-7-1", "/r/mine/anything", "/run/tsrun/f-7-2", "/run/tsrun/f-7-4", "/run/tsrun/g-8-1"],
    pids: [1, 10, 11, 12, 13, 14, 15],
    procs: [
      p(11, { environ: "A=1\0TSRUN_TEST_TAG=f-7\0" }),
      p(12, { cgroup: "4:pids:/tsrun/f-7-3\n" }),
      p(13, { cmdline: "tsrun create f-7-5" }),
      p(14, { environ: "TSRUN_TEST_TAG=f-7\0", state: "Z" }), // zombie: already dead
      p(15, { environ: "TSRUN_TEST_TAG=g-8\0" }),
    ],
    fds: { "0": "/dev/null", "1": "pipe:[2]", "5": "socket:[3]" },
  };
  const l = diffSnapshots(before, after, scope);
  t.same(
    l.mounts.map((x) => x.id),
    ["3", "4", "6"],
  );
  t.same(l.cgroups, ["/sys/fs/cgroup/pids/tsrun/f-7-3"]);
  t.same(l.state, ["/r/mine/anything", "/run/tsrun/f-7-4"]);
  t.same(
    l.processes.map((x) => x.pid),
    [11, 12, 13],
  );
  t.same(l.fds, [
    { fd: "1", target: "pipe:[2]" },
    { fd: "5", target: "socket:[3]" },
  ]);
  t.same(diffSnapshots(before, before, scope), { mounts: [], cgroups: [], state: [], processes: [], fds: [] });
});

t.test("under real tap, leaks fail the leaking test itself", async (t) => {
  // A test file that leaks a tmpfs in one subtest and nothing in another, run as tap runs files.
  const lib = path.resolve(import.meta.dirname, "../lib");
  fs.mkdirSync(path.join(REPO, "build"), { recursive: true });
  const dir = fs.mkdtempSync(path.join(REPO, "build", "testlib-fixture-"));
  const watched = tempDir(t);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "leaky.test.ts");
  fs.writeFileSync(
    file,
    `import t from "tap";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { leakCheck } from ${JSON.stringify(path.join(lib, "leaks.ts"))};
import { makeBundle } from ${JSON.stringify(path.join(lib, "bundle.ts"))};
t.test("leaks", async (t) => {
  leakCheck(t, { paths: [${JSON.stringify(watched)}] });
  t.teardown(() => console.log("# user teardown ran"));
  fs.mkdirSync(${JSON.stringify(path.join(watched, "m"))});
  spawnSync("mount", ["-t", "tmpfs", "x", ${JSON.stringify(path.join(watched, "m"))}]);
  t.pass("body");
});
t.test("clean", async (t) => {
  leakCheck(t);
  makeBundle(t);
  t.pass("body");
});
`,
  );
  const r = spawnSync(process.execPath, [...process.execArgv, file], { encoding: "utf8", cwd: REPO });
  t.equal(r.status, 1, "the file fails");
  t.match(r.stdout, /^ {4}not ok 2 - leaked mounts: \S+\/m \(tmpfs\)$/m, "reported inside the leaking test");
  t.match(r.stdout, /^not ok 1 - leaks/m);
  t.match(r.stdout, /^ok 2 - clean/m);
  t.notMatch(r.stdout, /assertion after/, "no assertion after the test ended");
  t.match(r.stdout, /# user teardown ran/);
  t.notOk(isMounted(path.join(watched, "m")), "the leak was cleaned up");
});
