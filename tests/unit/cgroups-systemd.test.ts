// The systemd driver's pure parts: unit names from cgroupsPath, and the unit properties that stand
// for cgroup writes and device rules. (The driver itself is tested on a booted systemd:
// tests/integration/systemd-*.test.ts.)
import t from "tap";
import { chooseUnit, expandSlice } from "../../src/linux/cgroups/systemd/unit.ts";
import { INFINITY, deviceProperties, listToMask, propertiesForWrites, quotaPerSec, scopeProperties, type UnitProperty } from "../../src/linux/cgroups/systemd/properties.ts";
import { mapResources, type CgroupWrite, type HostView } from "../../src/linux/cgroups/map.ts";
import { DEFAULT_DEVICE_RULES } from "../../src/linux/default-devices.ts";

const asMap = (props: UnitProperty[]): Record<string, unknown> => Object.fromEntries(props.map(([n, [sig, v]]) => [n, `${sig}:${JSON.stringify(v)}`]));

t.test("expandSlice: systemd's slice hierarchy from the name", async (t) => {
  t.equal(expandSlice("system.slice"), "/system.slice");
  t.equal(expandSlice("kubepods-besteffort-pod12.slice"), "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice");
  t.equal(expandSlice("-.slice"), "/");
  for (const bad of ["system", ".slice", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice", "a b.slice"]) {
    t.throws(() => expandSlice(bad), { message: `systemd cgroup driver: invalid slice name ${JSON.stringify(bad)}` }, bad);
  }
});

t.test("chooseUnit: runc's slice:prefix:name, tsrun's default", async (t) => {
  t.same(chooseUnit(undefined, "c1", false), { slice: "system.slice", unit: "tsrun-c1.scope" });
  t.same(chooseUnit("", "c1", true), { slice: "user.slice", unit: "tsrun-c1.scope" });
  t.same(chooseUnit("kubepods-pod1.slice:cri-containerd:abc", "x", false), { slice: "kubepods-pod1.slice", unit: "cri-containerd-abc.scope" });
  t.same(chooseUnit(":libpod:abc", "x", false), { slice: "system.slice", unit: "libpod-abc.scope" });
  t.same(chooseUnit("machine.slice::abc", "x", false), { slice: "machine.slice", unit: "abc.scope" });
  t.throws(() => chooseUnit("/tsrun/c1", "c1", false), { message: /^config\.json: linux\.cgroupsPath: must be "slice:prefix:name" with the systemd cgroup driver/ });
  t.throws(() => chooseUnit("system.slice:a:b:c", "c1", false), { message: /^config\.json: linux\.cgroupsPath: must be "slice:prefix:name"/ });
  t.throws(() => chooseUnit("system:tsrun:c1", "c1", false), { message: /the slice must be a name ending in "\.slice"/ });
  t.throws(() => chooseUnit("a--b.slice:tsrun:c1", "c1", false), { message: 'systemd cgroup driver: invalid slice name "a--b.slice"' });
  t.throws(() => chooseUnit("system.slice:tsrun:pod.slice", "c1", false), { message: /names a slice: a container needs a scope/ });
  t.throws(() => chooseUnit(undefined, "a+b", false), { message: /^the container id "a\+b" gives the systemd unit name "tsrun-a\+b\.scope", which is not valid for systemd/ });
  t.throws(() => chooseUnit("system.slice:x:a b", "c1", false), { message: /^config\.json: linux\.cgroupsPath: the systemd unit name "x-a b\.scope" is not valid for systemd/ });
});

const w = (hierarchy: "v1" | "v2", file: string, value: string): CgroupWrite => ({ hierarchy, controller: file.split(".")[0]!, file, value });

t.test("propertiesForWrites: cgroup v1 (systemd's legacy and hybrid layouts)", async (t) => {
  const props = asMap(
    propertiesForWrites(
      [
        w("v1", "memory.limit_in_bytes", "104857600"),
        w("v1", "memory.memsw.limit_in_bytes", "209715200"),
        w("v1", "memory.swappiness", "10"),
        w("v1", "cpu.shares", "512"),
        w("v1", "cpu.cfs_period_us", "50000"),
        w("v1", "cpu.cfs_quota_us", "12345"),
        w("v1", "pids.max", "max"),
        w("v1", "blkio.weight", "300"),
        w("v1", "cpuset.cpus", "0"),
      ],
      () => 100000,
    ),
  );
  t.same(props, {
    MemoryLimit: 't:"104857600"',
    CPUShares: 't:"512"',
    TasksMax: `t:"${INFINITY}"`,
    BlockIOWeight: 't:"300"',
    CPUQuotaPeriodUSec: 't:"50000"',
    // 12345 per 50000 us is 246900 us per second, rounded up to 250 ms (systemd keeps whole percents)
    CPUQuotaPerSecUSec: 't:"250000"',
  }, "memsw, swappiness and v1 cpuset have no systemd property: files only");
  t.same(asMap(propertiesForWrites([w("v1", "memory.limit_in_bytes", "-1")], () => undefined)), { MemoryLimit: `t:"${INFINITY}"` });
});

t.test("propertiesForWrites: cgroup v2", async (t) => {
  const props = asMap(
    propertiesForWrites(
      [
        w("v2", "memory.max", "max"),
        w("v2", "memory.low", "1000"),
        w("v2", "memory.swap.max", "0"),
        w("v2", "memory.high", "5000"),
        w("v2", "cpu.weight", "39"),
        w("v2", "cpu.max", "20000"),
        w("v2", "pids.max", "10"),
        w("v2", "io.weight", "8:0 50"),
        w("v2", "cpuset.cpus", "0-2,9"),
        w("v2", "hugetlb.2MB.max", "2097152"),
      ],
      () => 50000,
    ),
  );
  t.same(props, {
    MemoryMax: `t:"${INFINITY}"`,
    MemoryLow: 't:"1000"',
    MemorySwapMax: 't:"0"',
    MemoryHigh: 't:"5000"',
    CPUWeight: 't:"39"',
    TasksMax: 't:"10"',
    AllowedCPUs: "ay:[7,2]",
    CPUQuotaPerSecUSec: 't:"400000"',
  }, "the quota is per the cgroup's current period; a per-device io.weight and hugetlb are files only");
  t.same(asMap(propertiesForWrites([w("v2", "cpu.max", "max 100000")], () => undefined)), { CPUQuotaPeriodUSec: 't:"100000"', CPUQuotaPerSecUSec: `t:"${INFINITY}"` });
});

t.test("the writes of mapResources map to properties (one table of choices)", async (t) => {
  const host: HostView = { v1: new Set(["memory", "cpu", "pids"]), exists: () => true, read: () => undefined };
  const writes = mapResources({ memory: { limit: 1 << 30 }, cpu: { shares: 256 }, pids: { limit: -1 } }, host, () => {});
  t.same(asMap(propertiesForWrites(writes, () => undefined)), { MemoryLimit: `t:"${1 << 30}"`, CPUShares: 't:"256"', TasksMax: `t:"${INFINITY}"` });
  // runtime-spec 1.3.0: 0 is a limit (no new process), only a negative value is unlimited.
  const none = mapResources({ pids: { limit: 0 } }, host, () => {});
  t.same(asMap(propertiesForWrites(none, () => undefined)), { TasksMax: 't:"0"' });
});

t.test("listToMask and quotaPerSec", async (t) => {
  t.same(listToMask("0", "x"), [1]);
  t.same(listToMask("1,3-4,8", "x"), [0b11010, 1]);
  t.throws(() => listToMask("1-", "linux.resources.cpu.cpus"), { message: 'linux.resources.cpu.cpus: invalid list "1-"' });
  t.equal(quotaPerSec(50000, 100000), "500000");
  t.equal(quotaPerSec(1000, 100000), "10000");
  t.equal(quotaPerSec(1001, 100000), "20000");
  t.equal(quotaPerSec(-1, 100000), INFINITY);
});

t.test("deviceProperties: the allow list systemd applies is the rules' result", async (t) => {
  const props = deviceProperties([{ allow: false, access: "rwm" }, ...DEFAULT_DEVICE_RULES]);
  t.same(props.slice(0, 2), [["DevicePolicy", ["s", "strict"]], ["DeviceAllow", ["a(ss)", []]]], "strict, and the list cleared first");
  t.same(
    (props[2]![1][1] as [string, string][]).sort(),
    [
      ["block-*", "m"], ["char-*", "m"], ["/dev/char/1:3", "rwm"], ["/dev/char/1:5", "rwm"], ["/dev/char/1:7", "rwm"], ["/dev/char/1:8", "rwm"],
      ["/dev/char/1:9", "rwm"], ["/dev/char/5:0", "rwm"], ["/dev/char/5:2", "rwm"], ["char-136", "rwm"], ["/dev/char/10:200", "rwm"],
    ].sort(),
  );
  t.same(deviceProperties([{ allow: true, access: "rwm" }, ...DEFAULT_DEVICE_RULES]), [["DevicePolicy", ["s", "auto"]], ["DeviceAllow", ["a(ss)", []]]], "allow all");
  t.throws(() => deviceProperties([{ allow: true, access: "rwm" }, { allow: false, type: "c", major: 1, minor: 3, access: "rwm" }]), {
    message: /^linux\.resources\.devices: systemd cannot express a device deny list \("allow all but c 1:3 rwm"\)/,
  });
  t.throws(() => deviceProperties([{ allow: true, type: "c", minor: 3, access: "r" }]), { message: /systemd cannot express the rule "allow c \*:3 r"/ });
});

t.test("scopeProperties: a delegated scope around one pid", async (t) => {
  const p = asMap(scopeProperties({ id: "c1", slice: "system.slice", pid: 42, unified: false }));
  t.equal(p.PIDs, "au:[42]");
  t.equal(p.Delegate, "b:true");
  t.equal(p.Slice, 's:"system.slice"');
  t.equal(p.CollectMode, 's:"inactive-or-failed"');
  t.equal(p.BlockIOAccounting, "b:true");
  t.equal(asMap(scopeProperties({ id: "c1", slice: "system.slice", pid: 42, unified: true })).IOAccounting, "b:true");
});
