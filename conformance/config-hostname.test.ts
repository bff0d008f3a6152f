// config.md, Hostname and Domainname.
import t from "tap";
import { observe } from "./lib/container.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

t.test("hostname", async (t) => {
  const o = await observe(rt, { checker: ["uname"], config: (c) => (c.hostname = "conformance-host") });
  t.equal(o.out?.uname?.nodename, "conformance-host", spec("config.md#hostname", "hostname specifies the container's hostname as seen by processes running inside the container"));
});

t.test("domainname", async (t) => {
  const o = await observe(rt, { checker: ["uname"], config: (c) => (c.domainname = "conformance.example") });
  t.equal(o.out?.uname?.domainname, "conformance.example", spec("config.md#domainname", "domainname specifies the container's domainname as seen by processes running inside the container"));
});

t.test("the host's names are untouched", async (t) => {
  const host = await import("node:os").then((os) => os.hostname());
  await observe(rt, { checker: ["uname"], config: (c) => ((c.hostname = "conformance-other"), (c.domainname = "other.example")) });
  t.equal((await import("node:os")).hostname(), host, spec("config.md#hostname", "this will change the hostname in the container UTS namespace", "not the host's"));
});

leavesNothingBehind(t, rt);
