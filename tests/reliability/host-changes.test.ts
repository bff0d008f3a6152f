// The host changing under a container: its init killed from outside, its pid reused by another
// process, its bundle deleted, the whole --root state dir removed. tsrun must keep giving
// clean answers (never a stack trace) and `delete` must still clean up.
import { procStat } from "../../src/linux/proc.ts";
import t, { type Test } from "tap";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { makeBundle } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { TAG_ENV, TEST_TAG, containerId, testRoot, tsrun } from "../lib/tsrun.ts";
import { alive, crashSign, defaultCgroupDirs, describe, state, waitForStatus, waitGone } from "./util.ts";

function ok(t: Test, args: string[], root: string, what = args.join(" ")): ReturnType<typeof tsrun> {
  const r = tsrun(args, { root });
  t.notOk(crashSign(r), `${what}: no crash ${crashSign(r) ?? ""}`);
  t.equal(r.code, 0, `${what} (${describe(r)})`);
  return r;
}

function fails(t: Test, args: string[], root: string, message: RegExp, what = args.join(" ")): void {
  const r = tsrun(args, { root });
  t.notOk(crashSign(r), `${what}: no crash ${crashSign(r) ?? ""}`);
  t.equal(r.code, args[0] === "exec" ? 255 : 1, `${what} fails`); // exec's own failures exit 255, as runc's
  t.match(r.stderr, message, what);
}

function noCgroup(t: Test, id: string): void {
  t.same(defaultCgroupDirs(id).filter((d) => fs.existsSync(d)), [], `${id}: no cgroup left`);
}

/** A process of this test (tagged, so a leak of it would show), killed at the end of t. */

function otherProcess(t: Test): number {
  const child = spawn("sleep", ["1000"], { stdio: "ignore", env: { ...process.env, [TAG_ENV]: TEST_TAG } });
  child.unref();
  const pid = child.pid!;
  t.teardown(() => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  });
  return pid;
}

t.test("the init killed from outside: state reads stopped, delete works", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  for (const how of ["created", "running", "paused"]) {
    const id = containerId(how);
    if (how === "created") ok(t, ["create", "--bundle", bundle.dir, id], root);
    else ok(t, ["run", "-d", "--bundle", bundle.dir, id], root);
    if (how === "paused") ok(t, ["pause", id], root);
    const pid = state(root, id).pid;
    process.kill(pid, "SIGKILL");
    if (how === "paused") {
      // A frozen process cannot die: it still counts as paused, and delete --force thaws and reaps it.
      t.equal(state(root, id).status, "paused", "a frozen init killed from outside is still paused");
      fails(t, ["delete", id], root, /that is not stopped: paused/);
      ok(t, ["delete", "--force", id], root);
    } else {
      t.ok(await waitGone(pid), "the init is gone");
      t.equal(waitForStatus(root, id, "stopped"), "stopped", `${how}: reads stopped`);
      t.equal(state(root, id).pid, 0, "with pid 0");
      fails(t, ["start", id], root, /cannot start a container that has stopped|container not running/);
      fails(t, ["kill", id, "TERM"], root, /container not running/);
      fails(t, ["pause", id], root, /container not running/);
      ok(t, ["list"], root);
      ok(t, ["delete", id], root, `${how}: delete without --force`);
    }
    t.notOk(fs.existsSync(path.join(root, id)), "state gone");
    noCgroup(t, id);
  }
});

t.test("a reused pid reads as stopped and is never signalled, by any command", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  for (const del of [["delete"], ["delete", "--force"]]) {
    const id = containerId();
    ok(t, ["run", "-d", "--bundle", bundle.dir, id], root);
    const file = path.join(root, id, "state.json");
    const record = JSON.parse(fs.readFileSync(file, "utf8")) as { pid: number; pidStartTime: string };
    const realPid = record.pid;
    // The init's pid now belongs to someone else: another process of the host (ours, here),
    // with a different start time than the one recorded (start times count clock ticks: one
    // started in the same tick as the init would be the init, to tsrun as to runc).
    let other = otherProcess(t);
    while (procStat(other)!.startTime === String(record.pidStartTime)) {
      process.kill(other, "SIGKILL");
      await new Promise((r) => setTimeout(r, 20));
      other = otherProcess(t);
    }
    fs.writeFileSync(file, JSON.stringify({ ...record, pid: other }));
    t.equal(state(root, id).status, "stopped");
    t.equal(state(root, id).pid, 0);
    for (const sig of ["KILL", "TERM", "STOP"]) fails(t, ["kill", id, sig], root, /container not running/);
    // As runc, --all signals what is left in the container's cgroup (the real init here), never the pid's new owner.
    ok(t, ["kill", "--all", id, "KILL"], root);
    fails(t, ["pause", id], root, /container not running/);
    fails(t, ["start", id], root, /cannot start a container that has stopped/);
    fails(t, ["exec", id, "true"], root, /stopped|not running/);
    t.ok(alive(other), "the other process was not signalled");
    // delete treats it as stopped; it must still not touch the other process, and the real init
    // (in the container's cgroup) goes with the cgroup.
    ok(t, [...del, id], root);
    t.ok(alive(other), `${del.join(" ")}: the other process is still alive`);
    t.ok(await waitGone(realPid), `${del.join(" ")}: the real init went with the cgroup`);
    noCgroup(t, id);
    process.kill(other, "SIGKILL");
    await waitGone(other);
  }
});

t.test("the bundle deleted after create: start, state, kill, delete still work", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const copy of [false, true]) {
    const bundle = makeBundle(t, { args: ["sleep", "1000"], copyRootfs: copy });
    const id = containerId(copy ? "own-rootfs" : "shared-rootfs");
    ok(t, ["create", "--bundle", bundle.dir, id], root);
    fs.rmSync(bundle.dir, { recursive: true, force: true });
    t.equal(state(root, id).status, "created", "state works without the bundle");
    ok(t, ["list"], root);
    ok(t, ["start", id], root);
    // With its rootfs deleted too, the exec of sleep may fail: running or stopped are both fine.
    const status = waitForStatus(root, id, copy ? "stopped" : "running");
    t.ok(["running", "stopped"].includes(status), `started: ${status}`);
    const k = tsrun(["kill", id, "KILL"], { root });
    t.notOk(crashSign(k), "kill: no crash");
    t.equal(waitForStatus(root, id, "stopped"), "stopped");
    ok(t, ["delete", id], root);
    noCgroup(t, id);
  }
});

t.test("the --root state dir removed while containers exist", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const ids = [containerId("created"), containerId("running")];
  ok(t, ["create", "--bundle", bundle.dir, ids[0]!], root);
  ok(t, ["run", "-d", "--bundle", bundle.dir, ids[1]!], root);
  const saved = ids.map((id) => fs.readFileSync(path.join(root, id, "state.json"), "utf8"));
  const pids = ids.map((id) => state(root, id).pid);

  fs.rmSync(root, { recursive: true, force: true });
  t.equal(ok(t, ["list"], root).stdout.split("\n").length, 2, "list shows only its header");
  t.equal(ok(t, ["list", "--format", "json"], root).stdout.trim(), "[]", "list --format json shows nothing");
  t.equal(ok(t, ["list", "-q"], root).stdout, "", "list -q shows nothing");
  for (const id of ids) {
    fails(t, ["state", id], root, /container does not exist/);
    fails(t, ["kill", id], root, /container does not exist/);
    fails(t, ["start", id], root, /container does not exist/);
  }
  t.ok(pids.every(alive), "the containers' processes are still there (nothing knows them now)");

  // create works again: the root is made anew.
  const fresh = containerId("fresh");
  ok(t, ["run", "-d", "--bundle", bundle.dir, fresh], root);
  t.equal(state(root, fresh).status, "running");
  // The old ids are free in the state dir, but their cgroups still hold the old inits: a create
  // of one of them must fail cleanly (and leave nothing of its own).
  const again = tsrun(["create", "--bundle", bundle.dir, ids[0]!], { root });
  t.notOk(crashSign(again), "create over a leftover cgroup: no crash");
  if (again.code === 0) ok(t, ["delete", "--force", ids[0]!], root);
  else t.match(again.stderr, /is not empty/, "create over a leftover cgroup says why");
  t.ok(alive(pids[0]!), "and did not kill the old init");
  ok(t, ["delete", "--force", fresh], root);

  // Putting the records back is enough for delete --force to finish the old containers.
  ids.forEach((id, i) => {
    fs.mkdirSync(path.join(root, id), { mode: 0o700 });
    fs.writeFileSync(path.join(root, id, "state.json"), saved[i]!);
  });
  for (const id of ids) {
    t.ok(["stopped", "running"].includes(state(root, id).status), `${id}: a restored record without exec.fifo reads`);
    ok(t, ["delete", "--force", id], root);
    noCgroup(t, id);
  }
  for (const pid of pids) t.ok(await waitGone(pid), `init ${pid} gone`);
});
