// runtime.md, Lifecycle and Operations: create, start, kill, delete, in every state, with and
// without the container id.
import t, { type Test } from "tap";
import fs from "node:fs";
import path from "node:path";
import { createIn, makeBundle, readText, startRunning, writeConfig } from "./lib/container.ts";
import { cgroupDir, CLEAN_TRACE, persistentNamespace, traceOf } from "./lib/host.ts";
import { alive, newId, TAG } from "./lib/runtime.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

/** After an operation that should have failed: judged only when it did fail. */
function asIfNeverAttempted(t: Test, code: number, unchanged: boolean, label: string): void {
  const name = spec("runtime.md#errors", "generating an error MUST leave the state of the environment as if the operation were never attempted", label);
  if (code === 0) t.pass(name, { skip: "the operation did not fail (counted above)" });
  else t.ok(unchanged, name);
}

t.test("create", async (t) => {
  const bundle = makeBundle(rt, {
    args: ["/checker", "argv"],
    config: (c) => (c.linux.resources.pids = { limit: 42 }),
  });
  const id = newId();
  t.equal(createIn(rt, id, bundle).code, 0, spec("runtime.md#create", "Using the data in config.json, this operation MUST create a new container"));
  const s = rt.state(id).state;
  const pid = typeof s?.pid === "number" ? s.pid : 0;
  t.equal(readText(bundle.out), "", spec("runtime.md#create", "the user-specified program MUST NOT be run at this time", "nothing printed"));
  let cmdline = "";
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    // no process
  }
  t.ok(pid > 0 && !cmdline.startsWith("/checker\0"), spec("runtime.md#create", "the user-specified program MUST NOT be run at this time", "the container process is not yet the program"), {
    cmdline,
  });
  const nsDiffers = ["pid", "net", "ipc", "uts", "mnt", "cgroup"].every((ns) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/ns/${ns}`) !== fs.readlinkSync(`/proc/self/ns/${ns}`);
    } catch {
      return false;
    }
  });
  t.ok(nsDiffers, spec("runtime.md#create", "all of the resources associated with the container MUST be created", "namespaces exist at create"));
  const pidsDir = cgroupDir(pid, "pids");
  t.equal(pidsDir && readText(path.join(pidsDir, "pids.max")).trim(), "42", spec("runtime.md#create", "all of the resources associated with the container MUST be created", "cgroup limits applied at create"));

  // Change config.json between create and start: the container must not notice.
  bundle.config.process.args = ["/checker", "exit", "7"];
  bundle.config.process.env.push("CHANGED=1");
  writeConfig(bundle);
  t.equal(rt.start(id).code, 0, spec("runtime.md#start", "This operation MUST run the user-specified program as specified by process", "start exits 0"));
  t.equal(await rt.waitStatus(id, "stopped"), "stopped", "(setup) the program ran to its end");
  const out = readText(bundle.out);
  t.match(out, /"argv":\["\/checker","argv"\]/, spec("runtime.md#start", "This operation MUST run the user-specified program as specified by process", "its output appears"));
  t.ok(out.includes('"argv":["/checker","argv"]') && !out.includes("exit 7"), spec("runtime.md#lifecycle", "Any updates to config.json after this step MUST NOT affect the container"), { out });
  t.equal(rt.delete(id).code, 0, "(setup) delete");
  t.notOk(pidsDir && fs.existsSync(pidsDir), spec("runtime.md#delete", "Deleting a container MUST delete the resources that were created during the create step", "its cgroup"));
  t.notOk(alive(pid), spec("runtime.md#delete", "Deleting a container MUST delete the resources that were created during the create step", "its process"));
  t.not(rt.state(id).result.code, 0, spec("runtime.md#delete", "Deleting a container MUST delete the resources that were created during the create step", "state no longer knows it"));

  const again = createIn(rt, id, makeBundle(rt, { args: ["/checker"] }));
  t.equal(again.code, 0, spec("runtime.md#delete", "Once a container is deleted its ID MAY be used by a subsequent container"));
  await rt.destroy(id);
});

t.test("create without an id or a bundle", async (t) => {
  const bundle = makeBundle(rt);
  const noId = rt.run(["create", "--bundle", bundle.dir]);
  t.not(noId.code, 0, spec("runtime.md#create", "This operation MUST generate an error if it is not provided a path to the bundle and the container ID to associate with the container", "no id"));
  // runc's command line defaults the bundle to the current directory: run it where there is none.
  const empty = path.join(rt.scratch, "no-bundle-here");
  fs.mkdirSync(empty, { recursive: true });
  const id = newId();
  const noBundle = rt.create(id, empty);
  t.not(noBundle.code, 0, spec("runtime.md#create", "This operation MUST generate an error if it is not provided a path to the bundle and the container ID to associate with the container", "no config.json"));
  t.same(await traceOf(rt, id), CLEAN_TRACE, spec("runtime.md#errors", "generating an error MUST leave the state of the environment as if the operation were never attempted", "create without a bundle"));
});

t.test("create with an id already in use", async (t) => {
  const first = await startRunning(rt);
  try {
    const before = rt.state(first.id).state;
    const other = makeBundle(rt, { args: ["/checker", "argv"] });
    const r = createIn(rt, first.id, other);
    t.not(r.code, 0, spec("runtime.md#create", "If the ID provided is not unique across all containers within the scope of the runtime, the implementation MUST generate an error"));
    const after = rt.state(first.id).state;
    t.same(
      { pid: after?.pid, bundle: after?.bundle, status: after?.status },
      { pid: before?.pid, bundle: before?.bundle, status: "running" },
      spec("runtime.md#create", "If the ID provided is not unique, a new container MUST NOT be created", "the existing container is unchanged"),
    );
    t.equal(readText(other.out), "", spec("runtime.md#create", "If the ID provided is not unique, a new container MUST NOT be created", "the second process never ran"));
  } finally {
    await first.stop();
  }
});

t.test("create with an invalid id", async (t) => {
  for (const [label, id] of [
    ["contains /", `${TAG}/x`],
    ["is ..", ".."],
    ["escapes the state dir", `../${TAG}-escape`],
  ] as const) {
    const bundle = makeBundle(rt);
    const r = createIn(rt, id, bundle);
    t.not(r.code, 0, spec("runtime.md#create", "If the ID provided is not valid in any other way, the implementation MUST generate an error", label));
    const escaped = fs.existsSync(path.join(rt.root, "..", `${TAG}-escape`));
    if (escaped) fs.rmSync(path.join(rt.root, "..", `${TAG}-escape`), { recursive: true, force: true });
    t.ok(r.code !== 0 && !escaped && readText(bundle.out) === "", spec("runtime.md#create", "If the ID provided is not valid, a new container MUST NOT be created", label));
    if (r.code === 0) await rt.destroy(id);
  }
});

t.test("start", async (t) => {
  t.not(rt.run(["start"]).code, 0, spec("runtime.md#start", "This operation MUST generate an error if it is not provided the container ID"));
  t.not(rt.start(newId()).code, 0, spec("runtime.md#start", "Attempting to start a container that does not exist MUST generate an error"));

  const c = await startRunning(rt);
  try {
    const again = rt.start(c.id);
    t.not(again.code, 0, spec("runtime.md#start", "Attempting to start an already started container MUST generate an error", "running"));
    const s = rt.state(c.id).state;
    const readies = readText(c.bundle.err).split("ready\n").length - 1;
    t.ok(
      s?.status === "running" && s?.pid === c.pid && alive(c.pid) && readies === 1,
      spec("runtime.md#start", "Attempting to start an already started container MUST have no effect on the container", "running"),
      { state: s, readies },
    );
    rt.kill(c.id, "KILL");
    await rt.waitStatus(c.id, "stopped");
    const onStopped = rt.start(c.id);
    t.not(onStopped.code, 0, spec("runtime.md#start", "Attempting to start an already started container MUST generate an error", "stopped"));
    t.equal(rt.status(c.id), "stopped", spec("runtime.md#start", "Attempting to start an already started container MUST have no effect on the container", "stopped"));
  } finally {
    await c.stop();
  }
});

t.test("kill", async (t) => {
  t.not(rt.run(["kill"]).code, 0, spec("runtime.md#kill", "This operation MUST generate an error if it is not provided the container ID"));
  t.not(rt.kill(newId(), "KILL").code, 0, spec("runtime.md#kill", "Attempting to send a signal to a container that is not running MUST generate an error", "does not exist"));

  for (const [label, sig, num] of [
    ["by number", "10", 10],
    ["by name", "SIGUSR2", 12],
    ["short name", "HUP", 1],
  ] as const) {
    const c = await startRunning(rt);
    try {
      const r = rt.kill(c.id, sig);
      t.equal(r.code, 0, spec("runtime.md#kill", "This operation MUST send the specified signal to the process in the container", `${label}: kill exits 0`));
      await rt.waitStatus(c.id, "stopped");
      t.equal(c.out()?.["wait-signal"], num, spec("runtime.md#kill", "This operation MUST send the specified signal to the process in the container", `${label}: the process got it`));
    } finally {
      await c.stop();
    }
  }

  const c = await startRunning(rt);
  try {
    rt.kill(c.id, "KILL");
    await rt.waitStatus(c.id, "stopped");
    const r = rt.kill(c.id, "KILL");
    t.not(r.code, 0, spec("runtime.md#kill", "Attempting to send a signal to a container that is not running MUST generate an error", "stopped"));
    t.equal(rt.status(c.id), "stopped", spec("runtime.md#kill", "Attempting to send a signal to a container that is not running MUST have no effect on the container", "stopped"));
  } finally {
    await c.stop();
  }
});

t.test("delete", async (t) => {
  t.not(rt.run(["delete"]).code, 0, spec("runtime.md#delete", "This operation MUST generate an error if it is not provided the container ID"));
  t.not(rt.delete(newId()).code, 0, spec("runtime.md#delete", "Attempting to delete a container that does not exist MUST generate an error"));

  const c = await startRunning(rt);
  try {
    const r = rt.delete(c.id);
    t.not(r.code, 0, spec("runtime.md#delete", "Attempting to delete a container whose process is still running MUST generate an error", "running"));
    asIfNeverAttempted(t, r.code, rt.status(c.id) === "running" && alive(c.pid), "delete of a running container");
  } finally {
    await c.stop();
  }

  // The container process exists (waiting to run the program) between create and start.
  const bundle = makeBundle(rt, { args: ["/checker", "argv"] });
  const id = newId();
  createIn(rt, id, bundle);
  const pid = rt.containers.get(id) ?? 0;
  const r = rt.delete(id);
  t.not(r.code, 0, spec("runtime.md#delete", "Attempting to delete a container whose process is still running MUST generate an error", "created, not started"));
  asIfNeverAttempted(t, r.code, rt.status(id) === "created" && alive(pid), "delete of a created container");
  await rt.destroy(id);
});

t.test("delete keeps what the container did not create", async (t) => {
  const shared = path.join(rt.scratch, "shared-volume");
  fs.mkdirSync(shared);
  fs.writeFileSync(path.join(shared, "keep"), "data");
  const nsFile = path.join(rt.scratch, "netns");
  const release = persistentNamespace(nsFile, "net");
  try {
    const netns = fs.readlinkSync(`/proc/self/ns/net`);
    const c = await startRunning(rt, {
      config: (c) => {
        c.mounts.push({ destination: "/data", type: "none", source: shared, options: ["rbind", "rw"] });
        c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === "network" ? { type: "network", path: nsFile } : n));
      },
    });
    rt.kill(c.id, "KILL");
    await rt.waitStatus(c.id, "stopped");
    t.equal(rt.delete(c.id).code, 0, "(setup) delete of the stopped container");
    await c.stop();
    t.equal(readText(path.join(shared, "keep")), "data", spec("runtime.md#delete", "resources associated with the container, but not created by this container, MUST NOT be deleted", "bind mount source"));
    let stillNs = false;
    try {
      // The file still holds a network namespace (not the host's).
      const st = fs.statSync(nsFile);
      stillNs = st.isFile() && netns !== "" && fs.readFileSync("/proc/self/mountinfo", "utf8").includes(nsFile);
    } catch {
      stillNs = false;
    }
    t.ok(stillNs, spec("runtime.md#delete", "resources associated with the container, but not created by this container, MUST NOT be deleted", "joined namespace"));
  } finally {
    release();
  }
});

leavesNothingBehind(t, rt);
