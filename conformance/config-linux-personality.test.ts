// config-linux.md, Personality.
import t from "tap";
import os from "node:os";
import { observe } from "./lib/container.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);
const PER_LINUX32 = 0x0008;

t.test("LINUX32", async (t) => {
  const o = await observe(rt, { checker: ["personality"], config: (c) => (c.linux.personality = { domain: "LINUX32" }) });
  t.equal(o.create.code, 0, "(setup) create with personality LINUX32", { stderr: o.createErr });
  t.equal((o.out?.personality?.persona ?? -1) & 0xff, PER_LINUX32, spec("config-linux.md#personality", "domain (string, REQUIRED) - the execution domain", "LINUX32"), {
    seen: o.out?.personality,
    stderr: o.stderr,
  });
  if (os.arch() === "x64") {
    t.equal(o.out?.personality?.machine, "i686", spec("config-linux.md#personality", "LINUX32 will set the uname system call to show a 32 bit CPU type, such as i686"));
  }
});

t.test("LINUX", async (t) => {
  const o = await observe(rt, { checker: ["personality"], config: (c) => (c.linux.personality = { domain: "LINUX" }) });
  t.equal((o.out?.personality?.persona ?? -1) & 0xff, 0, spec("config-linux.md#personality", "domain (string, REQUIRED) - the execution domain", "LINUX"));
  t.equal(o.out?.personality?.machine, os.machine(), spec("config-linux.md#personality", "domain LINUX: uname shows the host's machine"));
});

leavesNothingBehind(t, rt);
