// config-linux.md, Sysctl.
import t from "tap";
import fs from "node:fs";
import { observe } from "./lib/container.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);
const host = (name: string) => fs.readFileSync(`/proc/sys/${name.replace(/\./g, "/")}`, "utf8").trim();

t.test("namespaced sysctls", async (t) => {
  const values: Record<string, string> = {
    "net.ipv4.ip_forward": "1",
    "net.core.somaxconn": "256",
    "kernel.shmmax": "123456789",
    "kernel.msgmax": "16384",
  };
  const before = Object.fromEntries(Object.keys(values).map((k) => [k, host(k)]));
  const o = await observe(rt, {
    checker: Object.keys(values).flatMap((k) => ["sysctl", k]),
    config: (c) => (c.linux.sysctl = values),
  });
  t.equal(o.create.code, 0, "(setup) create with sysctls", { stderr: o.createErr });
  for (const [k, v] of Object.entries(values)) {
    t.equal(o.out?.[`sysctl ${k}`]?.value, v, spec("config-linux.md#sysctl", "sysctl allows kernel parameters to be modified at runtime for the container", k));
  }
  const after = Object.fromEntries(Object.keys(values).map((k) => [k, host(k)]));
  t.same(after, before, spec("config-linux.md#sysctl", "sysctl parameters are modified for the container", "not the host"));
});

t.test("sysctl of the UTS namespace", async (t) => {
  const o = await observe(rt, { checker: ["uname"], config: (c) => ((c.linux.sysctl = { "kernel.domainname": "sysctl.example" }), delete c.domainname) });
  t.equal(o.out?.uname?.domainname, "sysctl.example", spec("config-linux.md#sysctl", "sysctl allows kernel parameters to be modified at runtime for the container", "kernel.domainname"));
});

leavesNothingBehind(t, rt);
