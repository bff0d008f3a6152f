// runtime.md, State and Query State: what `state` returns in each status.
import t from "tap";
import path from "node:path";
import { createIn, makeBundle, startRunning } from "./lib/container.ts";
import { alive, newId } from "./lib/runtime.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/**
 * The state schema of runtime.md (and the spec's schema/state-schema.json), checked by hand:
 * returns what is wrong, empty when the state conforms.
 */
function stateProblems(s: Record<string, unknown>): string[] {
  const p: string[] = [];
  for (const k of ["ociVersion", "id", "status", "bundle"]) if (typeof s[k] !== "string") p.push(`${k} must be a string`);
  if (!["creating", "created", "running", "stopped"].includes(s.status as string) && typeof s.status === "string") {
    // Additional values are allowed, for new states only; the ones we drive through are standard.
    p.push(`status ${JSON.stringify(s.status)} is not a standard status`);
  }
  if ((s.status === "created" || s.status === "running") && !(Number.isInteger(s.pid) && (s.pid as number) > 0)) p.push("pid must be a positive integer while created or running");
  if (s.pid !== undefined && !Number.isInteger(s.pid)) p.push("pid must be an integer");
  if (s.annotations !== undefined) {
    const a = s.annotations;
    if (typeof a !== "object" || a === null || Array.isArray(a)) p.push("annotations must be a map");
    else for (const [k, v] of Object.entries(a)) if (typeof v !== "string") p.push(`annotation ${k} must be a string`);
  }
  return p;
}

t.test("state of a created, running and stopped container", async (t) => {
  const annotations = { "org.example.conformance": "yes", "com.example.empty": "" };
  const bundle = makeBundle(rt, { args: ["/checker", "wait-signal"], config: (c) => (c.annotations = annotations) });
  const id = newId();
  const created = createIn(rt, id, bundle);
  t.equal(created.code, 0, spec("runtime.md#create", "Using the data in config.json, this operation MUST create a new container", "create exits 0"));

  const s = rt.state(id);
  const st = s.state ?? {};
  t.equal(s.result.code, 0, spec("runtime.md#query-state", "This operation MUST return the state of a container", "state exits 0"));
  t.ok(s.state, spec("runtime.md#query-state", "This operation MUST return the state of a container", "state prints JSON"));
  t.same(stateProblems(st), [], spec("runtime.md#state", "When serialized in JSON, the format MUST adhere to the state schema", "created"));
  t.equal(st.id, id, spec("runtime.md#state", "id (string, REQUIRED) is the container's ID"));
  t.equal(st.status, "created", spec("runtime.md#create", "Upon successful completion of this operation the status property of this container MUST be created"));
  t.ok(typeof st.ociVersion === "string" && SEMVER.test(st.ociVersion), spec("runtime.md#state", "ociVersion (string, REQUIRED) is the OCI specification version used when creating the container", "SemVer"), {
    found: st.ociVersion,
  });
  t.ok(typeof st.pid === "number" && st.pid > 0, spec("runtime.md#state", "pid (int, REQUIRED when status is created or running on Linux) is the ID of the container process", "created"), {
    found: st.pid,
  });
  t.ok(typeof st.pid === "number" && alive(st.pid), spec("runtime.md#state", "pid is the ID of the container process, as seen by the host", "created: a live host process"));
  t.equal(st.bundle, bundle.dir, spec("runtime.md#state", "bundle (string, REQUIRED) is the absolute path to the container's bundle directory"));
  t.same(st.annotations, annotations, spec("runtime.md#state", "annotations (map, OPTIONAL) contains the list of annotations associated with the container"));

  t.equal(rt.start(id).code, 0, spec("runtime.md#start", "This operation MUST run the user-specified program as specified by process", "start exits 0"));
  const r = rt.state(id).state ?? {};
  t.equal(r.status, "running", spec("runtime.md#start", "Upon successful completion of this operation the status property of this container MUST be running"));
  t.same(stateProblems(r), [], spec("runtime.md#state", "When serialized in JSON, the format MUST adhere to the state schema", "running"));
  t.equal(r.pid, st.pid, spec("runtime.md#state", "pid (int, REQUIRED when status is created or running on Linux) is the ID of the container process", "running: same process as created"));

  t.equal(rt.kill(id, "KILL").code, 0, spec("runtime.md#kill", "This operation MUST send the specified signal to the process in the container", "kill exits 0"));
  const status = await rt.waitStatus(id, "stopped");
  t.equal(status, "stopped", spec("runtime.md#kill", "When the process in the container is stopped, irrespective of it being as a result of a kill operation or any other reason, the status property of this container MUST be stopped", "killed"));
  const stopped = rt.state(id).state ?? {};
  t.same(stateProblems(stopped), [], spec("runtime.md#state", "When serialized in JSON, the format MUST adhere to the state schema", "stopped"));
  t.equal(stopped.id, id, spec("runtime.md#state", "id (string, REQUIRED) is the container's ID", "stopped"));
  t.equal(stopped.bundle, bundle.dir, spec("runtime.md#state", "bundle (string, REQUIRED) is the absolute path to the container's bundle directory", "stopped"));
  t.equal(rt.delete(id).code, 0, spec("runtime.md#delete", "Deleting a container MUST delete the resources that were created during the create step", "delete of a stopped container exits 0"));
});

t.test("the process exiting by itself makes the container stopped", async (t) => {
  const bundle = makeBundle(rt, { args: ["/checker", "exit", "0"] });
  const id = newId();
  createIn(rt, id, bundle);
  rt.start(id);
  t.equal(
    await rt.waitStatus(id, "stopped"),
    "stopped",
    spec("runtime.md#kill", "When the process in the container is stopped, irrespective of it being as a result of a kill operation or any other reason, the status property of this container MUST be stopped", "exited"),
  );
  rt.delete(id);
});

t.test("a relative bundle path is reported absolute", async (t) => {
  const bundle = makeBundle(rt, { args: ["/checker", "wait-signal"] });
  const id = newId();
  const r = rt.create(id, path.basename(bundle.dir), { cwd: path.dirname(bundle.dir) });
  t.equal(r.code, 0, spec("runtime.md#create", "Using the data in config.json, this operation MUST create a new container", "relative bundle path"));
  t.equal(rt.state(id).state?.bundle, bundle.dir, spec("runtime.md#state", "bundle (string, REQUIRED) is the absolute path to the container's bundle directory", "given as a relative path"));
  await rt.destroy(id);
});

t.test("no annotations: absent or an empty map", async (t) => {
  const c = await startRunning(rt);
  try {
    const a = rt.state(c.id).state?.annotations;
    t.ok(
      a === undefined || (typeof a === "object" && a !== null && Object.keys(a).length === 0),
      spec("runtime.md#state", "If no annotations were provided then this property MAY either be absent or an empty map"),
      { found: a },
    );
  } finally {
    await c.stop();
  }
});

t.test("query state errors", async (t) => {
  t.not(rt.run(["state"]).code, 0, spec("runtime.md#query-state", "This operation MUST generate an error if it is not provided the ID of a container"));
  t.not(rt.run(["state", newId()]).code, 0, spec("runtime.md#query-state", "Attempting to query a container that does not exist MUST generate an error"));
});

leavesNothingBehind(t, rt);
