// config.md, Linux Process: capabilities (bounding, effective, inheritable, permitted, ambient).
//
// What the process sees is after execve(2), which recomputes the sets: a root process without
// file capabilities gets permitted = effective = bounding | inheritable; a non-root one gets
// permitted = effective = ambient. So bounding, inheritable and ambient are checked as
// configured, and effective/permitted where the kernel keeps them: for a non-root user whose
// configured effective = permitted = ambient.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { makeBundle, createIn, observe, readText } from "./lib/container.ts";
import { capNames, sorted } from "./lib/linux.ts";
import { newId } from "./lib/runtime.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);
const S = (set: string, detail?: string) =>
  spec("config.md#linux-process", `capabilities.${set}: the ${set} field is an array of ${set} capabilities that are kept for the process`, detail);

t.test("root process", async (t) => {
  const bounding = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID"];
  const inheritable = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
  const o = await observe(rt, {
    checker: ["caps"],
    config: (c) =>
      (c.process.capabilities = {
        bounding,
        permitted: bounding,
        effective: bounding,
        inheritable,
        ambient: ["CAP_NET_BIND_SERVICE"],
      }),
  });
  const caps = o.out?.caps;
  t.same(capNames(caps?.bounding), sorted(bounding), S("bounding", "root"));
  t.same(capNames(caps?.inheritable), sorted(inheritable), S("inheritable", "root"));
  t.same(capNames(caps?.ambient), ["CAP_NET_BIND_SERVICE"], S("ambient", "root"));
  t.same(capNames(caps?.permitted), sorted(bounding), S("permitted", "root: permitted = bounding"));
  t.same(capNames(caps?.effective), sorted(bounding), S("effective", "root: effective = bounding"));
});

t.test("non-root process", async (t) => {
  const bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT"];
  const kept = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
  const o = await observe(rt, {
    checker: ["ids", "caps"],
    config: (c) => {
      c.process.user = { uid: 1000, gid: 1000 };
      c.process.capabilities = { bounding, permitted: kept, effective: kept, inheritable: kept, ambient: kept };
    },
  });
  const caps = o.out?.caps;
  t.equal(o.out?.ids?.uid, 1000, "(setup) runs as uid 1000");
  t.same(capNames(caps?.bounding), sorted(bounding), S("bounding", "non-root"));
  t.same(capNames(caps?.inheritable), sorted(kept), S("inheritable", "non-root"));
  t.same(capNames(caps?.ambient), sorted(kept), S("ambient", "non-root"));
  t.same(capNames(caps?.permitted), sorted(kept), S("permitted", "non-root"));
  t.same(capNames(caps?.effective), sorted(kept), S("effective", "non-root"));

  const none = await observe(rt, {
    checker: ["caps"],
    config: (c) => {
      c.process.user = { uid: 1000, gid: 1000 };
      c.process.capabilities = { bounding, permitted: kept, effective: kept };
    },
  });
  t.same(capNames(none.out?.caps?.effective), [], S("effective", "non-root without ambient: none after exec"));
  t.same(capNames(none.out?.caps?.ambient), [], S("ambient", "none configured"));
});

t.test("empty sets", async (t) => {
  const o = await observe(rt, {
    checker: ["caps"],
    config: (c) => (c.process.capabilities = { bounding: [], permitted: [], effective: [], inheritable: [], ambient: [] }),
  });
  const caps = o.out?.caps;
  t.same(
    [caps?.bounding, caps?.permitted, caps?.effective, caps?.inheritable, caps?.ambient],
    [[], [], [], [], []],
    S("bounding", "empty: no capability at all"),
  );
});

t.test("capabilities that cannot be granted", async (t) => {
  // CAP_SYS_RESOURCE when this host's bounding set lacks it; otherwise a made-up name only.
  const hostBnd = BigInt("0x" + (/^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0"));
  const sysResourceMissing = ((hostBnd >> 24n) & 1n) === 0n;
  const unknown = "CAP_CONFORMANCE_NO_SUCH_CAP";
  const log = path.join(rt.scratch, "caps-warning.log");
  const bundle = makeBundle(rt, {
    args: ["/checker", "caps"],
    config: (c) => {
      for (const set of ["bounding", "permitted", "effective"]) c.process.capabilities[set].push(unknown);
    },
  });
  const id = newId();
  const r = createIn(rt, id, bundle, { log });
  t.equal(r.code, 0, spec("config.md#linux-process", "Runtimes SHOULD NOT fail if the container configuration requests capabilities that cannot be granted", "unknown name"), {
    stderr: readText(bundle.err),
  });
  const said = readText(bundle.err) + readText(log);
  t.ok(r.code === 0 && said.includes(unknown), spec("config.md#linux-process", "Any value which cannot be mapped to a relevant kernel interface MUST be logged as a warning by the runtime", "unknown name"), {
    stderr: readText(bundle.err),
    log: readText(log),
  });
  await rt.destroy(id);

  if (!sysResourceMissing) {
    t.pass(spec("config.md#linux-process", "Runtimes SHOULD NOT fail if the container configuration requests capabilities that cannot be granted", "not in the runtime's bounding set"), {
      skip: "this host can grant every capability",
    });
    return;
  }
  const o = await observe(rt, {
    checker: ["caps"],
    config: (c) => {
      for (const set of ["bounding", "permitted", "effective"]) c.process.capabilities[set].push("CAP_SYS_RESOURCE");
    },
  });
  t.equal(o.create.code, 0, spec("config.md#linux-process", "Runtimes SHOULD NOT fail if the container configuration requests capabilities that cannot be granted", "not in the runtime's bounding set"), {
    stderr: o.createErr,
  });
});

leavesNothingBehind(t, rt);
