// tsrun killed with SIGKILL at each step of create and delete (TSRUN_TEST_CRASH_AT, see
// src/lifecycle/crash-point.ts), and state dirs left half-written: afterwards `list`, `state`
// and `delete --force` work without a stack trace, and nothing is left on the host.
import t, { type Test } from "tap";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { makeBundle } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { TAG_ENV, TEST_TAG, containerId, testRoot, tsrun } from "../lib/tsrun.ts";
import { CRASH_POINTS } from "../../src/lifecycle/crash-point.ts";
import { alive, cgroupMounts, crashSign, defaultCgroupDirs, describe, existingCgroupDirs, processesWith, state, waitGone, waitForStatus } from "./util.ts";

const CREATE_POINTS = CRASH_POINTS.filter((p) => p.startsWith("create-"));
const DELETE_POINTS = CRASH_POINTS.filter((p) => p.startsWith("delete-"));


/** tsrun must not crash (a clean failure is fine): no stack trace, no internal error. */
function noCrash(t: Test, args: string[], root: string, label: string): ReturnType<typeof tsrun> {
  const r = tsrun(args, { root });
  t.notOk(crashSign(r), `${label}: ${args.join(" ")}: ${crashSign(r) ?? ""}`);
  return r;
}

/** After delete --force: no state dir, no default cgroup, no process of the container. */
async function assertGone(t: Test, root: string, id: string, mark: string): Promise<void> {
  t.notOk(fs.existsSync(path.join(root, id)), `${id}: no state dir`);
  t.same(defaultCgroupDirs(id).filter((d) => fs.existsSync(d)), [], `${id}: no cgroup dir`);
  // A helper killed with its parent may still be finishing: give the kernel a moment.
  const left = processesWith(mark);
  for (const pid of left) await waitGone(pid);
  t.same(left.filter(alive), [], `${id}: no process`);
  const list = noCrash(t, ["list", "-q"], root, id);
  t.notOk(list.stdout.split("\n").includes(id), `${id}: not listed`);
}

t.test("SIGKILL at each step of create, then delete --force cleans up", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const point of CREATE_POINTS) {
    const id = containerId(point);
    const mark = `RELIABILITY_MARK=${id}`;
    const bundle = makeBundle(t, {
      args: ["sleep", "1000"],
      config: (c) => c.process.env.push(mark),
    });
    const pidFile = path.join(bundle.dir, "init.pid");
    const r = tsrun(["create", "--bundle", bundle.dir, "--pid-file", pidFile, id], { root, env: { TSRUN_TEST_CRASH_AT: point } });
    t.equal(r.signal, "SIGKILL", `${point}: tsrun died there (${describe(r)})`);

    const list = noCrash(t, ["list", "--format", "json"], root, point);
    t.equal(list.code, 0, `${point}: list works`);
    const st = noCrash(t, ["state", id], root, point);
    if (point === "create-locked") t.equal(st.code, 0, `${point}: state of a dir without state.json works`);
    if (st.code === 0) {
      const status = (JSON.parse(st.stdout) as { status: string }).status;
      const expect = point === "create-record-complete" || point === "create-pid-file" ? ["created"] : ["stopped"];
      t.ok(expect.includes(status), `${point}: status ${status} is one of ${expect}`);
    }
    // Not the finished container: start must refuse it cleanly (or start it, for a complete one).
    const started = noCrash(t, ["start", id], root, point);
    if (point !== "create-record-complete" && point !== "create-pid-file") t.equal(started.code, 1, `${point}: start refuses an unfinished container`);
    noCrash(t, ["kill", id, "0"], root, point);

    const d = noCrash(t, ["delete", "--force", id], root, point);
    t.equal(d.code, 0, `${point}: delete --force (${describe(d)})`);
    await assertGone(t, root, id, mark);

    // The id is free again and a full create/delete works.
    const again = noCrash(t, ["create", "--bundle", bundle.dir, id], root, point);
    t.equal(again.code, 0, `${point}: create again (${describe(again)})`);
    t.equal(noCrash(t, ["delete", "--force", id], root, point).code, 0, `${point}: delete again`);
    await assertGone(t, root, id, mark);
  }
});

t.test("SIGKILL at each step of create with a cgroupsPath of its own: its dirs and new parents go", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const point of ["create-record-written", "create-cgroup-dirs", "create-cgroup-created", "create-helper-pid", "create-helper-ready"]) {
    const id = containerId(point);
    const cgPath = `/${TEST_TAG}-own/${id}`;
    const bundle = makeBundle(t, { args: ["sleep", "1000"], config: (c) => (c.linux.cgroupsPath = cgPath) });
    const r = tsrun(["create", "--bundle", bundle.dir, id], { root, env: { TSRUN_TEST_CRASH_AT: point } });
    t.equal(r.signal, "SIGKILL", `${point}: tsrun died there`);
    const d = noCrash(t, ["delete", "--force", id], root, point);
    t.equal(d.code, 0, `${point}: delete --force (${describe(d)})`);
    t.same(existingCgroupDirs(cgPath), [], `${point}: the container's cgroup dirs are gone`);
    t.same(existingCgroupDirs(path.dirname(cgPath)), [], `${point}: the parent it made is gone`);
    t.notOk(fs.existsSync(path.join(root, id)), `${point}: no state dir`);
  }
});

t.test("SIGKILL at each step of delete, then delete --force finishes", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const point of DELETE_POINTS) {
    for (const started of [false, true]) {
      const id = containerId(`${point}-${started ? "running" : "created"}`);
      const mark = `RELIABILITY_MARK=${id}`;
      const bundle = makeBundle(t, { args: ["sleep", "1000"], config: (c) => c.process.env.push(mark) });
      t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root }).code, 0);
      if (started) {
        t.equal(tsrun(["start", id], { root }).code, 0);
        t.equal(waitForStatus(root, id, "running"), "running");
      }
      const r = tsrun(["delete", "--force", id], { root, env: { TSRUN_TEST_CRASH_AT: point } });
      t.equal(r.signal, "SIGKILL", `${point}: tsrun died there (${describe(r)})`);
      const st = noCrash(t, ["state", id], root, point);
      if (st.code === 0) t.equal((JSON.parse(st.stdout) as { status: string }).status, "stopped", `${point}: the container reads as stopped`);
      else t.match(st.stderr, /container does not exist/, `${point}: or is gone`);
      t.equal(noCrash(t, ["list"], root, point).code, 0, `${point}: list works`);
      const d = noCrash(t, ["delete", "--force", id], root, point);
      t.ok(d.code === 0 || /container does not exist/.test(d.stderr), `${point}: delete --force (${describe(d)})`);
      await assertGone(t, root, id, mark);
    }
  }
});

t.test("SIGKILL of a plain delete of a stopped container, then delete finishes", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const point of DELETE_POINTS) {
    const id = containerId(point);
    const bundle = makeBundle(t, { args: ["true"] });
    t.equal(tsrun(["run", "--keep", "--bundle", bundle.dir, id], { root }).code, 0);
    t.equal(state(root, id).status, "stopped");
    // The TypeScript delete (the front end's own delete of such a container has no crash points).
    const r = tsrun(["delete", id], { root, env: { TSRUN_TEST_CRASH_AT: point }, main: true });
    t.equal(r.signal, "SIGKILL", `${point}: tsrun died there`);
    const d = noCrash(t, ["delete", id], root, point);
    t.ok(d.code === 0 || /container does not exist/.test(d.stderr), `${point}: delete (${describe(d)})`);
    t.notOk(fs.existsSync(path.join(root, id)), `${point}: no state dir`);
    t.same(defaultCgroupDirs(id).filter((d) => fs.existsSync(d)), [], `${point}: no cgroup`);
  }
});

/** A process of this test placed in `dirs` (the cgroup of "someone else"). */
async function foreignProcess(t: Test, dirs: string[]): Promise<number> {
  const child = spawn("sleep", ["1000"], { stdio: "ignore", env: { ...process.env, [TAG_ENV]: TEST_TAG } });
  const pid = child.pid!;
  child.unref();
  t.teardown(() => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  });
  for (const d of dirs) {
    // A new v1 cpuset starts with no cpus and mems, and no task can join it until it has some.
    for (const f of ["cpuset.cpus", "cpuset.mems"]) {
      const file = path.join(d, f);
      if (fs.existsSync(file) && !fs.readFileSync(file, "utf8").trim()) fs.writeFileSync(file, fs.readFileSync(path.join(path.dirname(d), f), "utf8").trim());
    }
    fs.writeFileSync(path.join(d, "cgroup.procs"), String(pid));
  }
  return pid;
}

async function removeForeign(pid: number, dirs: string[]): Promise<void> {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // gone
  }
  await waitGone(pid);
  for (let i = 0; i < 100; i++) {
    const left = dirs.filter((d) => fs.existsSync(d));
    if (!left.length) return;
    for (const d of left) {
      try {
        fs.rmdirSync(d);
      } catch {
        // busy until the killed process has left
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test("a create into a cgroup that holds someone else's process fails without killing it", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const cgPath = `/${TEST_TAG}-shared`;
  const dirs = cgroupMounts().map((mp) => path.join(mp, cgPath));
  for (const d of dirs) fs.mkdirSync(d, { recursive: true });
  const pid = await foreignProcess(t, dirs);
  const bundle = makeBundle(t, { args: ["sleep", "1000"], config: (c) => (c.linux.cgroupsPath = cgPath) });

  const id = containerId("plain");
  const r = noCrash(t, ["create", "--bundle", bundle.dir, id], root, "create");
  t.equal(r.code, 1);
  t.match(r.stderr, /is not empty/);
  t.ok(alive(pid), "the other process still runs after the failed create");
  t.same(existingCgroupDirs(cgPath).sort(), [...dirs].sort(), "its cgroup dirs are still there");

  for (const point of ["create-record-written", "create-cgroup-dirs"]) {
    const cid = containerId(point);
    const k = tsrun(["create", "--bundle", bundle.dir, cid], { root, env: { TSRUN_TEST_CRASH_AT: point } });
    t.equal(k.signal, "SIGKILL", `${point}: tsrun died there`);
    const d = noCrash(t, ["delete", "--force", cid], root, point);
    t.equal(d.code, 0, `${point}: delete --force (${describe(d)})`);
    t.ok(alive(pid), `${point}: delete --force of the half-made container left the other process alone`);
    t.same(existingCgroupDirs(cgPath).sort(), [...dirs].sort(), `${point}: and its cgroup dirs`);
  }
  await removeForeign(pid, dirs);
  t.same(existingCgroupDirs(cgPath), [], "cleaned up");
});

t.test("state dirs left half-written are handled: no stack trace, delete --force removes them", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  // A real record, to build damaged variants from.
  const realId = containerId("real");
  t.equal(tsrun(["create", "--bundle", bundle.dir, realId], { root }).code, 0);
  const realText = fs.readFileSync(path.join(root, realId, "state.json"), "utf8");
  const real = JSON.parse(realText) as Record<string, unknown>;
  t.equal(tsrun(["delete", "--force", realId], { root }).code, 0);

  // An empty directory a tampered record names as its cgroup: delete must not remove it.
  const notCgroup = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-not-cgroup-"));
  t.teardown(() => fs.rmSync(notCgroup, { recursive: true, force: true }));
  const variants: Array<[string, (dir: string) => void]> = [
    ["empty dir", () => {}],
    ["empty state.json", (d) => fs.writeFileSync(path.join(d, "state.json"), "")],
    ["truncated state.json", (d) => fs.writeFileSync(path.join(d, "state.json"), realText.slice(0, realText.length >> 1))],
    ["state.json is null", (d) => fs.writeFileSync(path.join(d, "state.json"), "null")],
    ["state.json is an array", (d) => fs.writeFileSync(path.join(d, "state.json"), "[1,2]")],
    ["state.json is a string", (d) => fs.writeFileSync(path.join(d, "state.json"), '"x"')],
    ["state.json is {}", (d) => fs.writeFileSync(path.join(d, "state.json"), "{}")],
    ["fields of the wrong type", (d) =>
      fs.writeFileSync(path.join(d, "state.json"), JSON.stringify({ ...real, pid: "12", pidStartTime: 5, bundle: null, created: 3, config: [], annotations: "a", complete: "yes" }))],
    ["a negative pid", (d) => fs.writeFileSync(path.join(d, "state.json"), JSON.stringify({ ...real, pid: -1 }))],
    ["pid 1", (d) => fs.writeFileSync(path.join(d, "state.json"), JSON.stringify({ ...real, pid: 1, pidStartTime: "" }))],
    ["cgroup of the wrong shape", (d) => fs.writeFileSync(path.join(d, "state.json"), JSON.stringify({ ...real, cgroup: { v1: 5, created: null } }))],
    ["cgroup with relative paths", (d) => fs.writeFileSync(path.join(d, "state.json"), JSON.stringify({ ...real, cgroup: { version: "v1", v1: { memory: "x" }, created: [] } }))],
    ["cgroup naming a directory that is no cgroup", (d) => {
      fs.writeFileSync(path.join(d, "state.json"), JSON.stringify({ ...real, cgroup: { version: "v1", v1: { memory: notCgroup }, created: [notCgroup] } }));
    }],
    ["only a temp file", (d) => fs.writeFileSync(path.join(d, ".state.json.12345"), realText.slice(0, 100))],
    ["state.json is a directory", (d) => fs.mkdirSync(path.join(d, "state.json"))],
    ["a stale exec.fifo", (d) => fs.writeFileSync(path.join(d, "exec.fifo"), "")],
    ["incomplete record with a dead pid", (d) => fs.writeFileSync(path.join(d, "state.json"), JSON.stringify({ ...real, complete: false }))],
    ["the id is a file, not a directory", (d) => {
      fs.rmdirSync(d);
      fs.writeFileSync(d, realText);
    }],
    ["deep JSON", (d) => fs.writeFileSync(path.join(d, "state.json"), "[".repeat(100000) + "]".repeat(100000))],
  ];
  for (const [name, make] of variants) {
    const id = containerId("damaged");
    const dir = path.join(root, id);
    fs.mkdirSync(dir, { mode: 0o700 });
    make(dir);
    for (const args of [["state", id], ["list"], ["list", "--format", "json"], ["kill", id, "KILL"], ["start", id], ["ps", id], ["pause", id], ["delete", id]]) {
      noCrash(t, args, root, name);
    }
    // The plain delete above removes a record that reads as stopped; --force gets the rest.
    const d = noCrash(t, ["delete", "--force", id], root, name);
    t.ok(d.code === 0 || /container does not exist/.test(d.stderr), `${name}: delete --force (${describe(d)})`);
    t.match(noCrash(t, ["state", id], root, name).stderr, /container does not exist/, `${name}: gone`);
    if (fs.existsSync(dir)) {
      t.fail(`${name}: state dir left`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  t.ok(fs.existsSync(notCgroup), "the directory a record named as its cgroup, though no cgroup, is still there");
});
