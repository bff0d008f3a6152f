// The container lifecycle state machine, driven through the built binary on real containers:
// every command from every state, with the exact error runc's callers match on.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { makeBundle, writeConfig } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { containerId, spawnTsrun, state, testRoot, TSRUN, tsrun, waitForStatus } from "../lib/tsrun.ts";

t.test("create, start, state, kill, delete", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const id = containerId();
  const pidFile = path.join(bundle.dir, "init.pid");

  const created = tsrun(["create", "--bundle", bundle.dir, "--pid-file", pidFile, id], { root });
  t.equal(created.code, 0, `create: ${created.stderr}`);
  const s = state(root, id);
  t.equal(s.status, "created");
  t.equal(s.id, id);
  t.equal(s.bundle, bundle.dir);
  t.equal(s.ociVersion, "1.3.0");
  t.equal(Number(fs.readFileSync(pidFile, "utf8")), s.pid, "pid file holds the init's pid");
  t.ok(fs.existsSync(`/proc/${s.pid}`), "the init waits");
  t.equal(fs.statSync(path.join(root, id)).mode & 0o777, 0o700, "state dir is 0700");
  t.match(fs.readFileSync(`/proc/${s.pid}/cmdline`, "utf8"), /tsrun-helper/, "what waits is the helper, not sleep");
  // It runs from a sealed memfd copy at /proc/PID/fd/256, which the kernel would name it after.
  t.equal(fs.readFileSync(`/proc/${s.pid}/comm`, "utf8"), "tsrun-helper\n", "ps and top name it tsrun-helper");

  t.match(tsrun(["create", "--bundle", bundle.dir, id], { root }), { code: 1, stderr: /container with given ID already exists/ });
  t.match(tsrun(["kill", id, "0"], { root }), { code: 0 }, "signal 0 to a created container");

  t.equal(tsrun(["start", id], { root }).code, 0);
  t.equal(waitForStatus(root, id, "running"), "running");
  t.match(fs.readFileSync(`/proc/${s.pid}/cmdline`, "utf8"), /^sleep\0/, "start execs the user's process");
  t.match(tsrun(["start", id], { root }), { code: 1, stderr: /cannot start an already running container/ });
  t.match(tsrun(["delete", id], { root }), { code: 1, stderr: /cannot delete container .* that is not stopped: running/ });

  t.equal(tsrun(["kill", id, "KILL"], { root }).code, 0);
  t.equal(waitForStatus(root, id, "stopped"), "stopped");
  t.equal(state(root, id).pid, 0, "a stopped container has pid 0");
  t.match(tsrun(["kill", id], { root }), { code: 1, stderr: /container not running/ });
  t.match(tsrun(["start", id], { root }), { code: 1, stderr: /cannot start a container that has stopped/ });
  t.equal(tsrun(["delete", id], { root }).code, 0);
  t.notOk(fs.existsSync(path.join(root, id)), "delete removes the state dir");
  for (const cmd of [["state", id], ["start", id], ["kill", id], ["delete", id]]) {
    t.match(tsrun(cmd, { root }), { code: 1, stderr: /container does not exist/ }, cmd[0]!);
  }
});

t.test("delete of a created container kills its waiting init (as runc, which containerd relies on)", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const id = containerId();
  t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root }).code, 0);
  const pid = state(root, id).pid;
  t.equal(tsrun(["delete", id], { root }).code, 0);
  t.notOk(fs.existsSync(`/proc/${pid}/stat`) && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8")), "init gone");
});

t.test("delete --force of a running container", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const id = containerId();
  t.equal(tsrun(["run", "--detach", "--bundle", bundle.dir, id], { root }).code, 0);
  t.equal(state(root, id).status, "running");
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
  t.match(tsrun(["state", id], { root }), { code: 1, stderr: /container does not exist/ });
});

t.test("run in the foreground returns the exit code, and 128+signal", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const b1 = makeBundle(t, { args: ["sh", "-c", "echo out; echo err >&2; exit 7"] });
  const r = tsrun(["run", "--bundle", b1.dir, containerId()], { root });
  t.equal(r.code, 7);
  t.equal(r.stdout, "out\n");
  t.match(r.stderr, /err/);
  // Without a pid namespace the shell is not an init, which would be immune to its own SIGKILL.
  const b2 = makeBundle(t, {
    args: ["sh", "-c", "kill -9 $$"],
    config: (c) => (c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "pid")),
  });
  t.equal(tsrun(["run", "--bundle", b2.dir, containerId()], { root }).code, 137);
  t.same(fs.readdirSync(root), [], "run deletes the container");
});

t.test("run --keep leaves a stopped container to delete", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["true"] });
  const id = containerId();
  t.equal(tsrun(["run", "--keep", "--bundle", bundle.dir, id], { root }).code, 0);
  t.equal(state(root, id).status, "stopped");
  t.equal(tsrun(["delete", id], { root }).code, 0);
});

t.test("a reused pid reads as stopped and is never signalled", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const id = containerId();
  t.equal(tsrun(["run", "--detach", "--bundle", bundle.dir, id], { root }).code, 0);
  // Point the record at a live process that is not the container: this test's own.
  const file = path.join(root, id, "state.json");
  const record = JSON.parse(fs.readFileSync(file, "utf8"));
  const realPid = record.pid;
  record.pid = process.pid;
  fs.writeFileSync(file, JSON.stringify(record));
  t.equal(state(root, id).status, "stopped");
  t.match(tsrun(["kill", id, "KILL"], { root }), { code: 1, stderr: /container not running/ });
  record.pid = realPid;
  fs.writeFileSync(file, JSON.stringify(record));
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
});

t.test("list shows containers in table, json and quiet form", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const a = containerId("a");
  const b = containerId("b");
  t.equal(tsrun(["create", "--bundle", bundle.dir, a], { root }).code, 0);
  t.equal(tsrun(["run", "-d", "--bundle", bundle.dir, b], { root }).code, 0);
  const json = JSON.parse(tsrun(["list", "--format", "json"], { root }).stdout) as { id: string; status: string }[];
  t.same(json.map((c) => [c.id, c.status]), [[a, "created"], [b, "running"]]);
  t.same(tsrun(["list", "-q"], { root }).stdout, `${a}\n${b}\n`);
  const table = tsrun(["list"], { root }).stdout.split("\n");
  t.match(table[0], /^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER$/);
  t.match(table[1], new RegExp(`^${a}\\s+\\d+\\s+created\\s+${bundle.dir}`));
  t.equal(tsrun(["delete", "-f", a], { root }).code, 0);
  t.equal(tsrun(["delete", "-f", b], { root }).code, 0);
});

t.test("pause and resume", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const id = containerId();
  t.equal(tsrun(["run", "-d", "--bundle", bundle.dir, id], { root }).code, 0);
  t.equal(tsrun(["pause", id], { root }).code, 0);
  t.equal(state(root, id).status, "paused");
  t.match(tsrun(["pause", id], { root }), { code: 1, stderr: /container already paused/ });
  t.match(tsrun(["start", id], { root }), { code: 1, stderr: /cannot start an already running container/ });
  t.equal(tsrun(["resume", id], { root }).code, 0);
  t.equal(state(root, id).status, "running");
  t.match(tsrun(["resume", id], { root }), { code: 1, stderr: /container not paused/ });
  const ps = JSON.parse(tsrun(["ps", "--format", "json", id], { root }).stdout) as number[];
  t.same(ps, [state(root, id).pid], "ps lists the init");
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
});

t.test("a failing create leaves nothing behind", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const cases: [string, (c: Record<string, any>) => void, RegExp][] = [
    ["missing binary", (c) => (c.process.args = ["nope-not-here"]), /unable to start container process: exec: "nope-not-here": executable file not found in \$PATH/],
    ["missing path", (c) => (c.process.args = ["/bin/nope"]), /exec: "\/bin\/nope": stat \/bin\/nope: no such file or directory/],
    ["not executable", (c) => (c.process.args = ["/etc/passwd"]), /exec: "\/etc\/passwd": permission denied/],
    ["bad mount", (c) => c.mounts.push({ destination: "/mnt", type: "nosuchfs", source: "x" }), /unable to start container process: .*mnt/],
    ["bad sysctl", (c) => (c.linux.sysctl = { "net.ipv4.no_such_thing": "1" }), /unable to start container process: .*no_such_thing/],
  ];
  for (const [name, mutate, error] of cases) {
    const bundle = makeBundle(t, { config: mutate });
    const id = containerId();
    const r = tsrun(["create", "--bundle", bundle.dir, id], { root });
    t.equal(r.code, 1, name);
    t.match(r.stderr, error, name);
    t.equal(r.stderr.trim().split("\n").length, 1, `${name}: one line`);
    t.notOk(fs.existsSync(path.join(root, id)), `${name}: no state dir`);
  }
});

t.test("json log lines for callers that read --log", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["nope-not-here"] });
  const log = path.join(bundle.dir, "log.json");
  const r = tsrun(["--log", log, "--log-format", "json", "create", "--bundle", bundle.dir, containerId()], { root });
  t.equal(r.code, 1);
  const lines = fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const last = lines[lines.length - 1];
  t.equal(last.level, "error");
  t.match(last.msg, /executable file not found in \$PATH/);
  t.ok(!Number.isNaN(Date.parse(last.time)), "time is a date");
});

t.test("every command from every state", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const id = containerId();
  // What each command answers in each state; undefined: it succeeds.
  type Expect = Record<string, RegExp | undefined>;
  const expect: Record<string, Expect> = {
    nonexistent: { start: /container does not exist/, kill: /container does not exist/, pause: /container does not exist/, resume: /container does not exist/, state: /container does not exist/, delete: /container does not exist/, exec: /container does not exist/ },
    // The one command that changes the state comes last in each row.
    created: { pause: /container not running/, resume: /container not paused/, state: undefined, exec: undefined, kill: undefined, start: undefined },
    running: { start: /cannot start an already running container/, resume: /container not paused/, state: undefined, delete: /that is not stopped: running/, exec: undefined, kill: undefined, pause: undefined },
    paused: { start: /cannot start an already running container/, pause: /container already paused/, delete: /that is not stopped: paused/, exec: /cannot exec in a paused container/, state: undefined, resume: undefined },
    stopped: { start: /cannot start a container that has stopped/, kill: /container not running/, pause: /container not running/, resume: /container not paused/, exec: /cannot exec in a stopped container/, state: undefined },
  };
  const args = (cmd: string): string[] => (cmd === "exec" ? ["exec", id, "true"] : cmd === "kill" ? ["kill", id, "0"] : [cmd, id]);
  const check = (status: string) => {
    for (const [cmd, want] of Object.entries(expect[status]!)) {
      // Commands that change the state are tried only where they must fail, or last.
      const r = tsrun(args(cmd), { root });
      // exec exits 255 for its own errors, as runc's does
      if (want) t.match(r, { code: cmd === "exec" ? 255 : 1, stderr: want }, `${cmd} when ${status}`);
      else t.equal(r.code, 0, `${cmd} when ${status}: ${r.stderr}`);
      if (!want && (cmd === "start" || cmd === "pause" || cmd === "resume")) return;
    }
  };
  check("nonexistent");
  t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root }).code, 0);
  check("created"); // ends with start
  t.equal(state(root, id).status, "running");
  check("running"); // ends with pause
  t.equal(state(root, id).status, "paused");
  check("paused"); // ends with resume
  t.equal(tsrun(["kill", id, "KILL"], { root }).code, 0);
  t.equal(waitForStatus(root, id, "stopped"), "stopped");
  check("stopped");
  t.equal(tsrun(["delete", id], { root }).code, 0);
});

t.test("kill --all signals every process of the container", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  // Without a pid namespace: the shell is not an init, so SIGTERM's default action applies to it.
  const bundle = makeBundle(t, {
    args: ["sh", "-c", "sleep 1000 & sleep 1000 & wait"],
    config: (c) => (c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "pid")),
  });
  const id = containerId();
  t.equal(tsrun(["run", "-d", "--bundle", bundle.dir, id], { root }).code, 0);
  let pids: number[] = [];
  for (let i = 0; i < 200 && pids.length < 3; i++) {
    pids = JSON.parse(tsrun(["ps", "--format", "json", id], { root }).stdout);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  t.equal(pids.length, 3, "sh and two sleeps");
  t.equal(tsrun(["kill", "--all", id, "TERM"], { root }).code, 0);
  t.equal(waitForStatus(root, id, "stopped"), "stopped");
  t.same(JSON.parse(tsrun(["ps", "--format", "json", id], { root }).stdout), [], "no process left");
  t.equal(tsrun(["delete", id], { root }).code, 0);
});

t.test("editing config.json after create changes nothing", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sh", "-c", "echo original"] });
  const id = containerId();
  const out = path.join(bundle.dir, "out");
  const fd = fs.openSync(out, "w");
  const created = spawnSync(TSRUN, ["--root", root, "create", "--bundle", bundle.dir, id], { stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  t.equal(created.status, 0);
  bundle.config.process.args = ["sh", "-c", "echo edited"];
  bundle.config.hostname = "edited";
  writeConfig(bundle);
  t.equal(tsrun(["start", id], { root }).code, 0);
  t.equal(waitForStatus(root, id, "stopped"), "stopped");
  t.equal(fs.readFileSync(out, "utf8"), "original\n");
  t.equal(tsrun(["delete", id], { root }).code, 0);
});

t.test("run in the foreground forwards signals to the container", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done"] });
  const { child, done } = spawnTsrun(["run", "--bundle", bundle.dir, containerId()], { root });
  child.stdin!.end();
  let seen = "";
  await new Promise<void>((resolve) => child.stdout!.on("data", (d: Buffer) => ((seen += d.toString()), seen.includes("ready") && resolve())));
  child.kill("SIGTERM");
  const r = await done;
  t.match(r.stdout, /got TERM/);
  t.equal(r.code, 3, "the container's exit code");
  t.same(fs.readdirSync(root), [], "deleted after it exited");
});

t.test("a foreground run whose container was deleted, and its id taken again, leaves the new container alone", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sh", "-c", "echo ready; exec sleep 1000"] });
  const id = containerId();
  const { child, done } = spawnTsrun(["run", "--bundle", bundle.dir, id], { root });
  child.stdin!.end();
  await new Promise<void>((resolve) => child.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resolve()));
  // Held still while its container is deleted and the id is created anew.
  process.kill(child.pid!, "SIGSTOP");
  try {
    t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
    const created = tsrun(["create", "--bundle", bundle.dir, id], { root });
    t.equal(created.code, 0, `create: ${created.stderr}`);
  } finally {
    process.kill(child.pid!, "SIGCONT");
  }
  const r = await done;
  t.equal(r.code, 137, "run reports its own container's end (killed)");
  t.match(r.stderr, new RegExp(`container ${id} was deleted by another command while it ran`));
  t.equal(state(root, id).status, "created", "the new container is untouched");
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
});
