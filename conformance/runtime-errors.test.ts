// runtime.md, Errors (and config.md, Valid values / Extensibility): a config the runtime
// cannot or must not carry out makes create (or start) fail, and a failed create leaves the
// environment as if it was never attempted.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { createIn, makeBundle, observe, readText, type Config } from "./lib/container.ts";
import { CLEAN_TRACE, traceOf } from "./lib/host.ts";
import { newId } from "./lib/runtime.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

const ENV_ERROR = spec("runtime.md#lifecycle", "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error");
const INVALID = spec("config.md#valid-values", "Runtimes MUST generate an error when invalid or unsupported values are encountered");
const AS_IF = spec("runtime.md#errors", "generating an error MUST leave the state of the environment as if the operation were never attempted");

/** Cases whose create must fail: [name in the table, sentence, config change]. */
const cases: Array<[string, string, (c: Config) => void]> = [
  ["root.path does not exist", spec("config.md#root", "A directory MUST exist at the path declared by the field"), (c) => (c.root.path = "/nonexistent/rootfs")],
  ["mount source does not exist", ENV_ERROR, (c) => c.mounts.push({ destination: "/mnt/a", type: "none", source: "/nonexistent/dir", options: ["bind"] })],
  ["unknown filesystem type", ENV_ERROR, (c) => c.mounts.push({ destination: "/mnt/a", type: "nosuchfs", source: "none" })],
  ["sysctl that does not exist", ENV_ERROR, (c) => (c.linux.sysctl = { "net.conformance.nosuch": "1" })],
  ["cwd is relative", INVALID, (c) => (c.process.cwd = "relative/dir")],
  ["unknown namespace type", INVALID, (c) => c.linux.namespaces.push({ type: "nosuchns" })],
  ["unknown rootfsPropagation", INVALID, (c) => (c.linux.rootfsPropagation = "sideways")],
  ["unknown personality domain", INVALID, (c) => (c.linux.personality = { domain: "LINUX64" })],
  ["unknown seccomp action", INVALID, (c) => (c.linux.seccomp = { defaultAction: "SCMP_ACT_SOMETIMES" })],
  ["unknown rlimit type", spec("config.md#posix-process", "The runtime MUST generate an error for any values which cannot be mapped to a relevant kernel interface", "rlimits type"), (c) =>
    c.process.rlimits.push({ type: "RLIMIT_NOSUCH", soft: 1, hard: 1 })],
  ["duplicate rlimit", spec("config.md#posix-process", "If rlimits contains duplicated entries with same type, the runtime MUST generate an error"), (c) =>
    c.process.rlimits.push({ type: "RLIMIT_NOFILE", soft: 512, hard: 512 })],
  ["duplicate namespace", spec("config-linux.md#namespaces", "If a namespaces field contains duplicated namespaces with same type, the runtime MUST generate an error"), (c) =>
    c.linux.namespaces.push({ type: "ipc" })],
  ["namespace path of another type", spec("config-linux.md#namespaces", "The runtime MUST generate an error if path is not associated with a namespace of type type"), (c) =>
    (c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === "ipc" ? { type: "ipc", path: "/proc/self/ns/net" } : n)))],
  ["namespace path that does not exist", ENV_ERROR, (c) =>
    (c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === "uts" ? { type: "uts", path: "/nonexistent/ns" } : n)))],
  ["intelRdt without resctrl", spec("config-linux.md#intelrdt", "If no mounted resctrl pseudo-filesystem is available in the runtime mount namespace, the runtime MUST generate an error"), (c) =>
    (c.linux.intelRdt = { closID: "conformance" })],
];

for (const [label, sentence, change] of cases) {
  t.test(label, async (t) => {
    if (label === "intelRdt without resctrl" && fs.existsSync("/sys/fs/resctrl/schemata")) {
      t.pass(`${sentence} [${label}]`, { skip: "this host has resctrl mounted" });
      return;
    }
    const bundle = makeBundle(rt, { args: ["/checker", "argv"], config: change });
    const id = newId();
    const r = createIn(rt, id, bundle);
    t.not(r.code, 0, `${sentence} [${label}]`, { stderr: readText(bundle.err) });
    if (r.code === 0) {
      // No error to judge: counted once, by the assertion above.
      t.pass(`${AS_IF} [${label}]`, { skip: "create did not fail" });
      await rt.destroy(id);
      return;
    }
    t.same(await traceOf(rt, id), CLEAN_TRACE, `${AS_IF} [${label}]`);
    await rt.destroy(id);
  });
}

t.test("a program that cannot be run", async (t) => {
  // The error may come at create (runc checks the path early) or at start; either is an error.
  for (const [label, args] of [
    ["does not exist", ["/nonexistent/program"]],
    ["not executable", ["/etc/passwd"]],
  ] as const) {
    const o = await observe(rt, { args: [...args] });
    const failed = o.create.code !== 0 || (o.start !== undefined && o.start.code !== 0);
    t.ok(failed, spec("runtime.md#lifecycle", "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error", `program ${label}`), {
      create: o.create,
      start: o.start,
    });
    t.same(await traceOf(rt, o.id), CLEAN_TRACE, `${AS_IF} [program ${label}, after delete]`);
  }
});

t.test("unknown properties are ignored", async (t) => {
  const o = await observe(rt, {
    checker: ["uname"],
    config: (c) => {
      c["org.example.unknown"] = { nested: [1, 2, 3] };
      c.process["org.example.unknownProcessField"] = true;
      c.linux["org.example.unknownLinuxField"] = "x";
    },
  });
  t.equal(o.create.code, 0, spec("config.md#extensibility", "Runtimes MUST otherwise ignore unknown properties. That includes not generating errors"), { stderr: o.createErr });
  t.equal(o.out?.uname?.nodename, "conformance", spec("config.md#extensibility", "Runtimes MUST otherwise ignore unknown properties", "the container runs as configured"));
});

t.test("unknown annotation keys are handled like any other unknown property", async (t) => {
  const o = await observe(rt, {
    checker: ["uname"],
    config: (c) => (c.annotations = { "org.example.whatever": "1", "com.example.other": "" }),
  });
  t.equal(o.create.code, 0, spec("config.md#annotations", "Runtimes MUST handle unknown annotation keys like any other unknown property"));
  t.ok(o.out, spec("config.md#annotations", "Values MAY be an empty string", "the container runs"));
});

t.test("the state dir is private to the container that failed", async (t) => {
  // A failed create of one id must not disturb another container's state.
  const good = makeBundle(rt, { args: ["/checker", "wait-signal"] });
  const id = newId();
  createIn(rt, id, good);
  const bad = makeBundle(rt, { config: (c) => (c.root.path = "/nonexistent/rootfs") });
  createIn(rt, newId(), bad);
  t.equal(rt.status(id), "created", spec("runtime.md#errors", "generating an error MUST leave the state of the environment as if the operation were never attempted", "other containers"));
  await rt.destroy(id);
  fs.rmSync(path.join(good.dir, "stdout"), { force: true });
});

leavesNothingBehind(t, rt);
