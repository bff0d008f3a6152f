// config-linux.md, Namespaces: new ones, inherited ones, and ones joined by path.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { nsOf, observe, startRunning } from "./lib/container.ts";
import { persistentNamespace } from "./lib/host.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

/** OCI namespace type -> /proc/PID/ns name. */
const PROC_NAME: Record<string, string> = { pid: "pid", network: "net", mount: "mnt", ipc: "ipc", uts: "uts", cgroup: "cgroup", user: "user", time: "time" };

t.test("new namespaces", async (t) => {
  const types = ["pid", "network", "mount", "ipc", "uts", "cgroup"];
  const o = await observe(rt, { checker: ["ns"], config: (c) => (c.linux.namespaces = types.map((type) => ({ type }))) });
  for (const type of types) {
    const name = PROC_NAME[type]!;
    const inside = o.out?.ns?.[name];
    t.ok(inside && inside !== nsOf("self", name), spec("config-linux.md#namespaces", "If path is not specified, the runtime MUST create a new container namespace of type type", type), {
      inside,
      host: nsOf("self", name),
    });
  }
});

t.test("inherited namespaces", async (t) => {
  // Only a mount namespace (every runtime needs one to pivot into the rootfs).
  const inheritable = ["pid", "network", "ipc", "uts", "cgroup", "user", "time"];
  const o = await observe(rt, {
    checker: ["ns"],
    config: (c) => {
      c.linux.namespaces = [{ type: "mount" }];
      // No UTS namespace: a hostname would be the host's. Never set it here.
      delete c.hostname;
      delete c.domainname;
      // Without a network namespace a new sysfs cannot be mounted: bind the host's instead.
      c.mounts = c.mounts.map((m: { destination: string }) => (m.destination === "/sys" ? { destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"] } : m));
    },
  });
  t.equal(o.create.code, 0, "(setup) create with only a mount namespace", { stderr: o.createErr });
  for (const type of inheritable) {
    const name = PROC_NAME[type]!;
    t.equal(o.out?.ns?.[name], nsOf("self", name), spec("config-linux.md#namespaces", "If a namespace type is not specified in the namespaces array, the container MUST inherit the runtime namespace of that type", type));
  }
});

t.test("namespaces joined by path", async (t) => {
  const kept: Array<() => void> = [];
  try {
    const files: Record<string, string> = {};
    for (const [type, flag] of [
      ["network", "net"],
      ["ipc", "ipc"],
      ["uts", "uts"],
      ["cgroup", "cgroup"],
    ] as const) {
      const file = path.join(rt.scratch, `ns-${type}`);
      kept.push(persistentNamespace(file, flag));
      files[type] = file;
    }
    const o = await observe(rt, {
      checker: ["ns"],
      config: (c) =>
        (c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (files[n.type] ? { type: n.type, path: files[n.type] } : n))),
    });
    for (const [type, file] of Object.entries(files)) {
      const want = `${PROC_NAME[type]}:[${fs.statSync(file).ino}]`;
      t.equal(o.out?.ns?.[PROC_NAME[type]!], want, spec("config-linux.md#namespaces", "The runtime MUST place the container process in the namespace associated with that path", type));
    }
  } finally {
    for (const release of kept) release();
  }
});

t.test("another container's namespaces", async (t) => {
  const first = await startRunning(rt);
  try {
    const paths = ["network", "ipc", "uts", "pid"].map((type) => ({ type, path: `/proc/${first.pid}/ns/${PROC_NAME[type]}` }));
    const o = await observe(rt, {
      checker: ["ns"],
      config: (c) =>
        (c.linux.namespaces = [...c.linux.namespaces.filter((n: { type: string }) => !paths.some((p) => p.type === n.type)), ...paths]),
    });
    for (const { type } of paths) {
      const name = PROC_NAME[type]!;
      t.equal(o.out?.ns?.[name], nsOf(first.pid, name), spec("config-linux.md#namespaces", "The runtime MUST place the container process in the namespace associated with that path", `${type} of a running container`));
    }
  } finally {
    await first.stop();
  }
});

leavesNothingBehind(t, rt);
