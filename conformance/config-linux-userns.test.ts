// config-linux.md, User namespace mappings (uidMappings, gidMappings).
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { ensureRootfs } from "./lib/build.ts";
import { nsOf, observe, startRunning, type Config } from "./lib/container.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

function userns(c: Config, uid: Array<[number, number, number]>, gid = uid): void {
  c.linux.namespaces.push({ type: "user" });
  c.linux.uidMappings = uid.map(([containerID, hostID, size]) => ({ containerID, hostID, size }));
  c.linux.gidMappings = gid.map(([containerID, hostID, size]) => ({ containerID, hostID, size }));
}

const mapLines = (text: string | undefined) =>
  (text ?? "")
    .split("\n")
    .map((l) => l.trim().split(/\s+/).join(" "))
    .filter(Boolean);

t.test("single mapping", async (t) => {
  const o = await observe(rt, {
    checker: ["ns", "ids", "read", "/proc/self/uid_map", "read", "/proc/self/gid_map", "stat", "/checker"],
    config: (c) => userns(c, [[0, 100000, 65536]]),
  });
  t.equal(o.create.code, 0, "(setup) create with a user namespace", { stderr: o.createErr });
  t.ok(o.out?.ns?.user && o.out.ns.user !== nsOf("self", "user"), spec("config-linux.md#namespaces", "If path is not specified, the runtime MUST create a new container namespace of type type", "user"));
  t.same(mapLines(o.out?.["read /proc/self/uid_map"]?.data), ["0 100000 65536"], spec("config-linux.md#user-namespace-mappings", "uidMappings describes the user namespace uid mappings from the host to the container"));
  t.same(mapLines(o.out?.["read /proc/self/gid_map"]?.data), ["0 100000 65536"], spec("config-linux.md#user-namespace-mappings", "gidMappings describes the user namespace gid mappings from the host to the container"));
  t.same([o.out?.ids?.uid, o.out?.ids?.gid], [0, 0], spec("config-linux.md#user-namespace-mappings", "containerID is the starting uid/gid in the container"));
  // Host-owned files (uid 0 outside the mapping) show as the overflow id, untouched.
  t.equal(o.out?.["stat /checker"]?.uid, 65534, spec("config-linux.md#user-namespace-mappings", "The runtime SHOULD NOT modify the ownership of referenced filesystems to realize the mapping", "seen inside"));
  const st = fs.statSync(path.join(ensureRootfs(), "checker"));
  t.same([st.uid, st.gid], [0, 0], spec("config-linux.md#user-namespace-mappings", "The runtime SHOULD NOT modify the ownership of referenced filesystems to realize the mapping", "on the host"));
});

t.test("the host sees the mapped ids", async (t) => {
  const c = await startRunning(rt, { config: (c) => ((c.process.user = { uid: 1, gid: 2 }), userns(c, [[0, 200000, 1000]])) });
  try {
    let status = "";
    try {
      status = fs.readFileSync(`/proc/${c.pid}/status`, "utf8");
    } catch {
      // no process
    }
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    const gid = /^Gid:\s+(\d+)/m.exec(status)?.[1];
    t.same([uid, gid], ["200001", "200002"], spec("config-linux.md#user-namespace-mappings", "hostID is the starting uid/gid on the host to be mapped to containerID"), { ready: c.ready });
  } finally {
    await c.stop();
  }
});

t.test("several mapping entries", async (t) => {
  const o = await observe(rt, {
    checker: ["read", "/proc/self/uid_map", "read", "/proc/self/gid_map"],
    config: (c) =>
      userns(
        c,
        [
          [0, 300000, 1000],
          [1000, 400000, 2000],
        ],
        [
          [0, 300000, 500],
          [500, 500000, 100],
        ],
      ),
  });
  t.same(mapLines(o.out?.["read /proc/self/uid_map"]?.data), ["0 300000 1000", "1000 400000 2000"], spec("config-linux.md#user-namespace-mappings", "uidMappings describes the user namespace uid mappings from the host to the container", "two entries"));
  t.same(mapLines(o.out?.["read /proc/self/gid_map"]?.data), ["0 300000 500", "500 500000 100"], spec("config-linux.md#user-namespace-mappings", "gidMappings describes the user namespace gid mappings from the host to the container", "two entries"));
});

leavesNothingBehind(t, rt);
