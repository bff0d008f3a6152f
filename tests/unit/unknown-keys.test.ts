// tsrun check's warnings for keys runtime-spec 1.3.0 does not define, with the nearest key.
import t from "tap";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { nearestKey, unknownKeys } from "../../src/spec/unknown-keys.ts";

const lines = (config: unknown) => unknownKeys(config).map((p) => `${p.path}: ${p.message}`);

t.test("misspelled keys, each with the nearest known key", async (t) => {
  t.same(
    lines({
      ociVersion: "1.3.0",
      process: { enviroment: ["A=1"], args: ["sh"], user: { uid: 0, gid: 0, umaks: 18 } },
      linux: { rootPropagation: "shared", resources: { memory: { limt: 1 }, cpu: { shars: 2 } }, namespaces: [{ type: "pid", pathh: "/x" }] },
      mounts: [{ destination: "/x", optoins: ["ro"] }],
      hostnme: "x",
    }),
    [
      'process.enviroment: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "env"?',
      'process.user.umaks: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "umask"?',
      'linux.rootPropagation: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "rootfsPropagation"?',
      'linux.resources.memory.limt: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "limit"?',
      'linux.resources.cpu.shars: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "shares"?',
      'linux.namespaces[0].pathh: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "path"?',
      'mounts[0].optoins: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "options"?',
      'hostnme: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "hostname"?',
    ],
  );
  t.same(lines({ linux: { intelRdt: { closId: "x" } } }), ['linux.intelRdt.closId: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "closID"?'], "case differences");
  t.same(lines({ process: { frobnicate: true } }), ["process.frobnicate: is not a key of runtime-spec 1.3.0 and is ignored"], "no suggestion when nothing is close");
});

t.test("keys of maps are the config's own: annotations, sysctl, unified, rdma, netDevices", async (t) => {
  t.same(
    lines({
      annotations: { "org.example.anything": "x", enviroment: "y" },
      linux: {
        sysctl: { "net.ipv4.ip_forward": "1" },
        resources: { unified: { "memory.high": "1M" }, rdma: { mlx5_0: { hcaHandles: 1 } } },
        netDevices: { eth0: { name: "ctr0" } },
        timeOffsets: { monotonic: { secs: 1 } },
      },
    }),
    [],
  );
  t.same(lines({ linux: { resources: { rdma: { mlx5_0: { hcaHandels: 1 } } } } }), ['linux.resources.rdma.mlx5_0.hcaHandels: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "hcaHandles"?'], "but the values' keys are checked");
});

t.test("keys the spec defines for other platforms or did in earlier versions are said as such", async (t) => {
  t.same(lines({ windows: {}, vm: {}, linux: { intelRdt: { enableCMT: true, enableMBM: false } } }), [
    "windows: is runtime-spec's section for Windows: ignored on Linux",
    "vm: is runtime-spec's section for virtual-machine runtimes: ignored by tsrun",
    "linux.intelRdt.enableCMT: is runtime-spec 1.1's (1.3.0 replaced it with enableMonitoring): applied as enableMonitoring",
    "linux.intelRdt.enableMBM: is runtime-spec 1.1's (1.3.0 replaced it with enableMonitoring): applied as enableMonitoring",
  ]);
});

t.test("the good corpus has no unknown key but the ones it is about", async (t) => {
  const dir = join(import.meta.dirname, "..", "corpus", "good");
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".json"))) {
    const found = lines(JSON.parse(readFileSync(join(dir, f), "utf8")));
    if (f === "unknown-properties.json") t.ok(found.length > 0, `${f}: its unknown keys are found`);
    else t.same(found, [], f);
  }
});

t.test("nearestKey", async (t) => {
  t.equal(nearestKey("limt", ["limit", "swap"]), "limit");
  t.equal(nearestKey("lmiit", ["limit"]), "limit", "two swapped neighbours count as one edit");
  t.equal(nearestKey("x", ["y", "z"]), "y", "one edit is always close enough");
  t.equal(nearestKey("abcdef", ["uvwxyz"]), undefined);
});
