// config-linux.md, Allowed Device list (the devices controller), checked by opening device
// nodes inside the container: EPERM is the cgroup refusing; any other result means allowed.
//
// The nodes are bind-mounted from the host (c 240:0 and c 240:1, a major with no driver), not
// listed in linux.devices, so no runtime adds rules of its own for them.
import t from "tap";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { observe, type Config } from "./lib/container.ts";
import { EPERM } from "./lib/linux.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

const nodes = path.join(rt.scratch, "nodes");
fs.mkdirSync(nodes);
for (const minor of [0, 1]) execFileSync("mknod", ["-m", "0666", path.join(nodes, `cf-${minor}`), "c", "240", String(minor)]);

function withNodes(rules: Array<Record<string, unknown>>): (c: Config) => void {
  return (c) => {
    c.linux.resources.devices = rules;
    for (const minor of [0, 1]) c.mounts.push({ destination: `/dev/cf-${minor}`, type: "none", source: path.join(nodes, `cf-${minor}`), options: ["bind"] });
  };
}

const CHECKS = ["open", "/dev/cf-0", "r", "open", "/dev/cf-0", "w", "open", "/dev/cf-1", "r"];
const denied = (r: { errno?: number } | undefined) => r?.errno === EPERM;
const allowed = (r: { errno?: number } | undefined) => !!r && r.errno !== EPERM;

t.test("allow with access", async (t) => {
  const o = await observe(rt, {
    checker: CHECKS,
    config: withNodes([
      { allow: false, access: "rwm" },
      { allow: true, type: "c", major: 240, minor: 0, access: "r" },
    ]),
  });
  const out = o.out ?? {};
  t.ok(allowed(out["open /dev/cf-0 r"]), spec("config-linux.md#allowed-device-list", "allow (boolean, REQUIRED) - whether the entry is allowed or denied", "allowed"), { result: out["open /dev/cf-0 r"], stderr: o.createErr });
  t.ok(denied(out["open /dev/cf-0 w"]), spec("config-linux.md#allowed-device-list", "access (string, OPTIONAL) - cgroup permissions for device", "r only: write denied"), { result: out["open /dev/cf-0 w"] });
  t.ok(denied(out["open /dev/cf-1 r"]), spec("config-linux.md#allowed-device-list", "allow (boolean, REQUIRED) - whether the entry is allowed or denied", "denied"), { result: out["open /dev/cf-1 r"] });
});

t.test("entries apply in order", async (t) => {
  const a = await observe(rt, {
    checker: CHECKS,
    config: withNodes([
      { allow: false, access: "rwm" },
      { allow: true, type: "c", major: 240, access: "rw" },
      { allow: false, type: "c", major: 240, minor: 1, access: "rwm" },
    ]),
  });
  t.ok(
    allowed(a.out?.["open /dev/cf-0 r"]) && denied(a.out?.["open /dev/cf-1 r"]),
    spec("config-linux.md#allowed-device-list", "The runtime MUST apply entries in the listed order", "deny after allow"),
    { out: a.out },
  );
  const b = await observe(rt, {
    checker: CHECKS,
    config: withNodes([
      { allow: false, access: "rwm" },
      { allow: false, type: "c", major: 240, minor: 1, access: "rwm" },
      { allow: true, type: "c", major: 240, access: "rw" },
    ]),
  });
  t.ok(
    allowed(b.out?.["open /dev/cf-0 r"]) && allowed(b.out?.["open /dev/cf-1 r"]),
    spec("config-linux.md#allowed-device-list", "The runtime MUST apply entries in the listed order", "allow after deny"),
    { out: b.out },
  );
  const c = await observe(rt, {
    checker: CHECKS,
    config: withNodes([
      { allow: false, access: "rwm" },
      { allow: true, type: "c", access: "r" },
    ]),
  });
  t.ok(
    allowed(c.out?.["open /dev/cf-1 r"]) && denied(c.out?.["open /dev/cf-1 w"] ?? c.out?.["open /dev/cf-0 w"]),
    spec("config-linux.md#allowed-device-list", "major, minor: Unset values mean all", "any char device, read"),
    { out: c.out },
  );
});

leavesNothingBehind(t, rt);
