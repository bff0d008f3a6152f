// Bad input for each config field the lifecycle handles: create fails with one clear line that
// names the problem (the JSON path for config errors), exits non-zero, and leaves nothing.
import t from "tap";
import fs from "node:fs";
import { makeBundle, type ConfigObject } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { expectCreateRefused } from "../lib/refused-create.ts";
import { containerId, testRoot, tsrun } from "../lib/tsrun.ts";
import { probeResctrl } from "../../src/linux/resctrl.ts";

const cases: [string, (c: ConfigObject) => void, RegExp][] = [
  ["args empty", (c) => (c.process.args = []), /^tsrun: config\.json: process\.args: /],
  ["cwd relative", (c) => (c.process.cwd = "tmp"), /^tsrun: config\.json: process\.cwd: must be an absolute path/],
  ["cwd is a file", (c) => (c.process.cwd = "/etc/passwd"), /^tsrun: unable to start container process: .*\/etc\/passwd.*not a directory/],
  ["uid not a number", (c) => (c.process.user.uid = "root"), /^tsrun: config\.json: process\.user\.uid: must be/],
  ["unknown rlimit", (c) => (c.process.rlimits = [{ type: "RLIMIT_NOPE", soft: 1, hard: 1 }]), /^tsrun: config\.json: process\.rlimits\[0\]\.type: /],
  ["duplicate rlimit", (c) => (c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 1, hard: 1 }, { type: "RLIMIT_NOFILE", soft: 2, hard: 2 }]), /^tsrun: config\.json: process\.rlimits\[1\]/],
  ["soft over hard rlimit", (c) => (c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 2048, hard: 1024 }]), /^tsrun: .*RLIMIT_NOFILE|^tsrun: .*rlimit|^tsrun: .*invalid argument/],
  ["oomScoreAdj out of range", (c) => (c.process.oomScoreAdj = 5000), /^tsrun: .*oom/i],
  ["hostname without a uts namespace", (c) => {
    c.hostname = "x";
    c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "uts");
  }, /^tsrun: config\.json: hostname: requires a UTS namespace/],
  ["duplicate namespace", (c) => c.linux.namespaces.push({ type: "pid" }), /^tsrun: config\.json: linux\.namespaces\[\d+\]/],
  ["unknown namespace", (c) => c.linux.namespaces.push({ type: "pidd" }), /^tsrun: config\.json: linux\.namespaces\[\d+\]\.type: must be one of/],
  ["namespace path missing", (c) => (c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === "network" ? { type: "network", path: "/no/such/ns" } : n))), /^tsrun: unable to start container process: .*\/no\/such\/ns.*no such file or directory/],
  ["no mount namespace", (c) => (c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "mount")), /^tsrun: config\.json: /],
  ["mappings without a user namespace", (c) => (c.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]), /^tsrun: config\.json: linux\.uidMappings/],
  ["time offsets without a time namespace", (c) => (c.linux.timeOffsets = { monotonic: { secs: 1 } }), /^tsrun: config\.json: linux\.timeOffsets/],
  ["relative namespace path", (c) => c.linux.namespaces.push({ type: "time", path: "ns/time" }), /^tsrun: config\.json: linux\.namespaces\[\d+\]\.path/],
  ["hostname in the host's own UTS namespace", (c) => {
    c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === "uts" ? { type: "uts", path: "/proc/self/ns/uts" } : n));
  }, /^tsrun: config\.json: hostname: the UTS namespace \/proc\/self\/ns\/uts is the host's own/],
  ["network sysctl in the host's network namespace", (c) => {
    c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === "network" ? { type: "network", path: `/proc/${process.pid}/ns/net` } : n));
    c.linux.sysctl = { "net.ipv4.ip_forward": "1" };
  }, /^tsrun: config\.json: linux\.sysctl\["net\.ipv4\.ip_forward"\]: the network namespace .* is the host's own/],
  ["mount without a type or bind", (c) => c.mounts.push({ destination: "/x", source: "x" }), /^tsrun: .*mounts\[\d+\]/],
  ["bind source missing", (c) => c.mounts.push({ destination: "/x", type: "bind", source: "/no/such/dir", options: ["rbind"] }), /^tsrun: unable to start container process: .*\/no\/such\/dir.*no such file or directory/],
  ["unknown filesystem", (c) => c.mounts.push({ destination: "/x", type: "nosuchfs", source: "none" }), /^tsrun: unable to start container process: mount .*\/x: no such device/],
  ["device without major", (c) => (c.linux.devices = [{ path: "/dev/x", type: "c" }]), /^tsrun: config\.json: linux\.devices\[0\]/],
  ["device of unknown type", (c) => (c.linux.devices = [{ path: "/dev/x", type: "q", major: 1, minor: 3 }]), /^tsrun: config\.json: linux\.devices\[0\]\.type/],
  ["sysctl outside the container's namespaces", (c) => (c.linux.sysctl = { "vm.swappiness": "10" }), /^tsrun: config\.json: linux\.sysctl|^tsrun: unable to start container process: .*vm\.swappiness|^tsrun: .*vm\/swappiness/],
  ["masked path relative", (c) => c.linux.maskedPaths.push("proc/kcore"), /^tsrun: config\.json: linux\.maskedPaths\[\d+\]/],
  ["cgroup limit the host refuses", (c) => (c.linux.resources = { ...c.linux.resources, cpu: { cpus: "999" } }), /^tsrun: cgroup: write 999 to \/sys\/fs\/cgroup\/.*cpuset\.cpus: /],
  ["capability the host cannot grant", (c) => c.process.capabilities.bounding.push("CAP_SYS_RESOURCE"), /^tsrun: process\.capabilities\.bounding: CAP_SYS_RESOURCE cannot be granted/],
  ["root path missing", (c) => (c.root.path = "/no/such/rootfs"), /^tsrun: config\.json: root\.path: \/no\/such\/rootfs: no such file or directory/],
  ["ociVersion 2", (c) => (c.ociVersion = "2.0.0"), /^tsrun: config\.json: ociVersion: /],
];

t.test("bad input: one clear line, exit 1, nothing left", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const [name, mutate, want] of cases) {
    const r = expectCreateRefused(t, root, name, mutate, want);
    // Several problems of one config are reported at once: each line is then a whole error.
    for (const line of r.stderr.trim().split("\n")) t.match(line, /^tsrun: \S/, `${name}: a complete line: ${line}`);
  }
});

t.test("a missing bundle or config.json is named", async (t) => {
  const root = testRoot(t);
  t.match(tsrun(["create", "--bundle", "/no/such/bundle", containerId()], { root }), { code: 1, stderr: /^tsrun: bundle \/no\/such\/bundle: no such file or directory\n$/ });
  const bundle = makeBundle(t);
  fs.rmSync(bundle.configPath);
  t.match(tsrun(["create", "--bundle", bundle.dir, containerId()], { root }), { code: 1, stderr: /^tsrun: config\.json: cannot read .*: no such file or directory\n$/ });
  fs.writeFileSync(bundle.configPath, "{");
  t.match(tsrun(["create", "--bundle", bundle.dir, containerId()], { root }), { code: 1, stderr: /^tsrun: config\.json: invalid JSON: / });
  t.same(fs.readdirSync(root), []);
});

t.test("linux.intelRdt where no resctrl is mounted: one line naming it, nothing left", { skip: probeResctrl() ? "resctrl is mounted here" : false }, async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const want = /^tsrun: config\.json: linux\.intelRdt: Intel RDT is not supported or enabled on this host \(no resctrl file system is mounted\)\n$/;
  for (const [name, rdt] of [
    ["an empty intelRdt", {}],
    ['the default class, closID "/"', { closID: "/", enableMonitoring: true }],
    ["a class with schemata", { closID: "gold", l3CacheSchema: "L3:0=f", memBwSchema: "MB:0=20", schemata: ["L2:0=f"] }],
  ] as const) {
    const r = expectCreateRefused(t, root, name, (c) => (c.linux.intelRdt = rdt), want);
    t.equal(r.stderr.split("\n").length, 2, `${name}: one line`);
  }
});
