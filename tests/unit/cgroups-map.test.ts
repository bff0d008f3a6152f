import t from "tap";
import { TsrunError } from "../../src/errors.ts";
import { devicesRestrict, normalizeDeviceRules, parseDevicesList, v1DeviceWrites, v1TransitionWrites, type DevState } from "../../src/linux/cgroups/devices.ts";
import { blkioWeightToIoWeight, mapResources, sharesToWeight, type CgroupWrite, type Hier, type HostView } from "../../src/linux/cgroups/map.ts";
import { cleanCgroupPath, findHierarchies, parseMountinfo, parseProcSelfCgroup, planPaths } from "../../src/linux/cgroups/parse.ts";
import type { Resources } from "../../src/linux/cgroups/resources.ts";
import { hugePageSizeName, parseBlkioV1, parseCpuList, parseIoStat } from "../../src/linux/cgroups/stats.ts";

const HYBRID_MOUNTINFO = `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

const HYBRID_SELF = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

const V2_MOUNTINFO = `25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

/** A systemd-style v1 host: combined hierarchies, optional fields, extra super options. */
const SYSTEMD_V1_MOUNTINFO = `30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio
37 30 0:33 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,memory
38 30 0:33 / /mnt/again rw,relatime shared:17 - cgroup cgroup rw,memory
39 30 0:34 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids,release_agent=/x
`;

t.test("parseMountinfo", async (t) => {
  const m = parseMountinfo(HYBRID_MOUNTINFO);
  t.equal(m.length, 12);
  t.same(m[2], { root: "/", mountPoint: "/sys/fs/cgroup/cpu", fsType: "cgroup", superOptions: ["rw", "cpu"] });
  t.same(m[11], { root: "/", mountPoint: "/sys/fs/cgroup/unified", fsType: "cgroup2", superOptions: ["rw"] });
  const esc = parseMountinfo("50 1 0:40 /a\\040b /mnt/with\\040space rw shared:1 master:2 - cgroup2 none rw\n");
  t.same(esc, [{ root: "/a b", mountPoint: "/mnt/with space", fsType: "cgroup2", superOptions: ["rw"] }]);
  t.same(parseMountinfo("garbage\n\n"), []);
});

t.test("findHierarchies", async (t) => {
  const h = findHierarchies(parseMountinfo(HYBRID_MOUNTINFO));
  t.same(h.v2, { mountPoint: "/sys/fs/cgroup/unified", root: "/" });
  t.same(
    h.v1.map((x) => [x.controllers.join(","), x.mountPoint]),
    [
      ["cpu", "/sys/fs/cgroup/cpu"],
      ["cpuacct", "/sys/fs/cgroup/cpuacct"],
      ["cpuset", "/sys/fs/cgroup/cpuset"],
      ["memory", "/sys/fs/cgroup/memory"],
      ["devices", "/sys/fs/cgroup/devices"],
      ["freezer", "/sys/fs/cgroup/freezer"],
      ["blkio", "/sys/fs/cgroup/blkio"],
      ["pids", "/sys/fs/cgroup/pids"],
      ["name=systemd", "/sys/fs/cgroup/systemd"],
    ],
  );
  const s = findHierarchies(parseMountinfo(SYSTEMD_V1_MOUNTINFO));
  t.same(
    s.v1.map((x) => [x.controllers.join(","), x.mountPoint]),
    [
      ["name=systemd", "/sys/fs/cgroup/systemd"],
      ["cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct"],
      ["net_cls,net_prio", "/sys/fs/cgroup/net_cls,net_prio"],
      ["memory", "/sys/fs/cgroup/memory"],
      ["pids", "/sys/fs/cgroup/pids"],
    ],
    "super options that are not controllers are dropped; a second mount of a hierarchy is ignored",
  );
  const v2 = findHierarchies(parseMountinfo(V2_MOUNTINFO));
  t.same(v2, { v1: [], v2: { mountPoint: "/sys/fs/cgroup", root: "/" } });
});

t.test("parseProcSelfCgroup", async (t) => {
  const s = parseProcSelfCgroup(HYBRID_SELF);
  t.equal(s.v2, "/");
  t.equal(s.v1.memory, "/process_api/abc");
  t.equal(s.v1["name=systemd"], "/");
  t.same(parseProcSelfCgroup("12:cpu,cpuacct:/a/b\n1:name=systemd:/s\n"), { v1: { cpu: "/a/b", cpuacct: "/a/b", "name=systemd": "/s" } });
  t.same(parseProcSelfCgroup("0::/user.slice/x\n"), { v1: {}, v2: "/user.slice/x" });
});

t.test("cleanCgroupPath never climbs out", async (t) => {
  t.equal(cleanCgroupPath("../../etc"), "/etc");
  t.equal(cleanCgroupPath("/a/../../b/./c/"), "/b/c");
  t.equal(cleanCgroupPath("x//y"), "/x/y");
});

t.test("planPaths", async (t) => {
  const hybrid = findHierarchies(parseMountinfo(HYBRID_MOUNTINFO));
  const self = parseProcSelfCgroup(HYBRID_SELF);
  const def = planPaths({ id: "c1" }, hybrid, self);
  t.equal(def.version, "hybrid");
  t.equal(def.v1.memory, "/sys/fs/cgroup/memory/tsrun/c1");
  t.equal(def.v1["name=systemd"], "/sys/fs/cgroup/systemd/tsrun/c1");
  t.equal(def.v1.cpuacct, "/sys/fs/cgroup/cpuacct/tsrun/c1");
  t.equal(def.v2, "/sys/fs/cgroup/unified/tsrun/c1");
  t.same(def.created, []);
  t.equal(Object.keys(def.v1).length, 9);

  const abs = planPaths({ id: "c1", cgroupsPath: "/a/../../b" }, hybrid, self);
  t.equal(abs.v1.memory, "/sys/fs/cgroup/memory/b", "absolute: from the hierarchy root, '..' cannot escape");

  const rel = planPaths({ id: "c1", cgroupsPath: "../../x/y" }, hybrid, self);
  t.equal(rel.v1.memory, "/sys/fs/cgroup/memory/process_api/abc/x/y", "relative: below the caller's own cgroup");
  t.equal(rel.v1.pids, "/sys/fs/cgroup/pids/x/y");
  t.equal(rel.v2, "/sys/fs/cgroup/unified/x/y");

  const combined = planPaths({ id: "c2" }, findHierarchies(parseMountinfo(SYSTEMD_V1_MOUNTINFO)), { v1: {} });
  t.equal(combined.v1.cpu, "/sys/fs/cgroup/cpu,cpuacct/tsrun/c2");
  t.equal(combined.v1.cpuacct, combined.v1.cpu, "controllers sharing a hierarchy share a dir");

  const v2 = planPaths({ id: "c3", cgroupsPath: "sub" }, findHierarchies(parseMountinfo(V2_MOUNTINFO)), parseProcSelfCgroup("0::/user.slice/me.scope\n"));
  t.same(v2, { version: "v2", v1: {}, v2: "/sys/fs/cgroup/user.slice/me.scope/sub", created: [] });

  const v1only = planPaths({ id: "c4" }, { v1: [{ controllers: ["memory"], mountPoint: "/cg/memory", root: "/" }] }, { v1: {} });
  t.equal(v1only.version, "v1");
  t.equal(v1only.v2, undefined);

  // A mount of a sub-tree (as in a container without a cgroup namespace): strip the mount root.
  const sub = planPaths(
    { id: "c5", cgroupsPath: "child" },
    { v1: [], v2: { mountPoint: "/sys/fs/cgroup", root: "/kubepods/pod1" } },
    { v1: {}, v2: "/kubepods/pod1/ctr" },
  );
  t.equal(sub.v2, "/sys/fs/cgroup/ctr/child");

  t.throws(() => planPaths({ id: "c", cgroupsPath: "/.." }, hybrid, self), TsrunError);
  t.throws(() => planPaths({ id: "c" }, { v1: [] }, { v1: {} }), /no cgroup filesystem/);
});

/** A fake host: which controllers each hierarchy has and which files exist (with content). */
function host(opts: { v1?: string[]; v2?: string[]; files?: Record<string, string> }): HostView {
  const files = opts.files ?? {};
  const view: HostView = {
    v1: new Set(opts.v1 ?? []),
    exists: (h: Hier, c: string, f: string) => `${h}:${c}:${f}` in files || `${h}:*:${f}` in files,
    read: (h: Hier, c: string, f: string) => files[`${h}:${c}:${f}`] ?? files[`${h}:*:${f}`],
  };
  if (opts.v2) view.v2 = new Set(opts.v2);
  return view;
}

const ALL_V1 = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb", "net_cls", "net_prio", "rdma"];
const ALL_V2 = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"];

function short(ws: CgroupWrite[]): string[] {
  return ws.map((w) => `${w.hierarchy} ${w.controller} ${w.file}=${w.value}${w.retry ? " (retry)" : ""}${w.verify ? " (verify)" : ""}`);
}

const FULL: Resources = {
  memory: { limit: 1 << 30, reservation: 1 << 29, swap: 2 * (1 << 30), kernelTCP: 1 << 20, swappiness: 10, disableOOMKiller: true },
  cpu: { shares: 1024, quota: 50000, period: 100000, burst: 1000, cpus: "0-1", mems: "0", idle: 0 },
  pids: { limit: 100 },
  blockIO: {
    weight: 500,
    weightDevice: [{ major: 8, minor: 0, weight: 300 }],
    throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
    throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 0 }],
  },
  hugepageLimits: [{ pageSize: "2MB", limit: 4194304 }],
};

t.test("mapResources: cgroup v1", async (t) => {
  const warnings: string[] = [];
  const ws = mapResources(
    { ...FULL, memory: { ...FULL.memory, kernel: 1 }, network: { classID: 0x100001, priorities: [{ name: "eth0", priority: 5 }] }, rdma: { mlx5_1: { hcaHandles: 3, hcaObjects: 1000 } } },
    host({ v1: ALL_V1, files: { "v1:blkio:blkio.bfq.weight": "", "v1:blkio:blkio.bfq.weight_device": "", "v1:hugetlb:hugetlb.2MB.rsvd.limit_in_bytes": "", "v1:cpu:cpu.idle": "0" } }),
    (m) => warnings.push(m),
  );
  t.same(short(ws), [
    "v1 memory memory.limit_in_bytes=1073741824 (retry)",
    "v1 memory memory.memsw.limit_in_bytes=2147483648 (retry)",
    "v1 memory memory.soft_limit_in_bytes=536870912",
    "v1 memory memory.kmem.tcp.limit_in_bytes=1048576",
    "v1 memory memory.swappiness=10",
    "v1 memory memory.oom_control=1",
    "v1 cpu cpu.shares=1024 (verify)",
    "v1 cpu cpu.cfs_period_us=100000 (retry)",
    "v1 cpu cpu.cfs_quota_us=50000 (retry)",
    "v1 cpu cpu.cfs_burst_us=1000 (retry)",
    "v1 cpu cpu.idle=0",
    "v1 cpuset cpuset.cpus=0-1",
    "v1 cpuset cpuset.mems=0",
    "v1 pids pids.max=100",
    "v1 blkio blkio.bfq.weight=500",
    "v1 blkio blkio.bfq.weight_device=8:0 300",
    "v1 blkio blkio.throttle.read_bps_device=8:0 1048576",
    "v1 blkio blkio.throttle.write_iops_device=8:16 0",
    "v1 hugetlb hugetlb.2MB.limit_in_bytes=4194304",
    "v1 hugetlb hugetlb.2MB.rsvd.limit_in_bytes=4194304",
    "v1 net_cls net_cls.classid=1048577",
    "v1 net_prio net_prio.ifpriomap=eth0 5",
    "v1 rdma rdma.max=mlx5_1 hca_handle=3 hca_object=1000",
  ]);
  t.equal(warnings.length, 1);
  t.match(warnings[0], /memory\.kernel/);

  const cfq = mapResources({ blockIO: { weight: 500, leafWeight: 200, weightDevice: [{ major: 8, minor: 0, leafWeight: 50 }] } }, host({ v1: ALL_V1, files: { "v1:blkio:blkio.weight": "" } }), () => {});
  t.same(short(cfq), ["v1 blkio blkio.weight=500", "v1 blkio blkio.leaf_weight=200", "v1 blkio blkio.leaf_weight_device=8:0 50"], "CFQ files when blkio.weight exists");
});

t.test("mapResources: memory limits and unlimited values", async (t) => {
  const v1 = host({ v1: ALL_V1, files: { "v1:memory:memory.memsw.limit_in_bytes": "" } });
  t.same(short(mapResources({ memory: { limit: -1 } }, v1, () => {})), ["v1 memory memory.limit_in_bytes=-1 (retry)", "v1 memory memory.memsw.limit_in_bytes=-1 (retry)"], "unlimited memory: unlimited swap");
  const noSwapAccounting = host({ v1: ALL_V1 });
  t.same(short(mapResources({ memory: { limit: -1 } }, noSwapAccounting, () => {})), ["v1 memory memory.limit_in_bytes=-1 (retry)"], "the implied swap limit needs swap accounting");
  t.same(short(mapResources({ memory: { limit: -1, swap: -1 } }, noSwapAccounting, () => {})).length, 2, "an explicit one is written (and fails on such a host)");
  t.same(short(mapResources({ memory: { limit: 9223372036854775807 } }, v1, () => {})), ["v1 memory memory.limit_in_bytes=-1 (retry)", "v1 memory memory.memsw.limit_in_bytes=-1 (retry)"], "int64 max is unlimited");
  t.same(short(mapResources({ memory: { limit: 0, swap: 0 } }, v1, () => {})), [], "0 is unset");
  t.throws(() => mapResources({ memory: { limit: 200, swap: 100 } }, v1, () => {}), /must not be lower than memory\.limit/);
  t.throws(() => mapResources({ memory: { swappiness: 101 } }, v1, () => {}), /swappiness: invalid value 101/);
  t.throws(() => mapResources({ memory: { limit: 1.5 } }, v1, () => {}), /memory\.limit: not an integer/);
  t.same(short(mapResources({ pids: { limit: 0 } }, v1, () => {})), ["v1 pids pids.max=0"], "pids.limit 0 is a limit (runtime-spec 1.3.0)");
  t.throws(() => mapResources({ cpu: { idle: 1 } }, v1, () => {}), { message: "cgroup: linux.resources.cpu.idle (1): not supported by this kernel's v1 cpu controller (no cpu.idle file)" }, "cpu.idle where the kernel has no such file");
  t.same(short(mapResources({ cpu: { idle: 1 } }, host({ v1: ALL_V1, files: { "v1:cpu:cpu.idle": "0" } }), () => {})), ["v1 cpu cpu.idle=1"], "and where it has one, on v1 too");
  t.same(short(mapResources({ pids: { limit: -1 } }, v1, () => {})), ["v1 pids pids.max=max"]);
  t.same(short(mapResources({ pids: { limit: -5 } }, v1, () => {})), ["v1 pids pids.max=max"], "any negative value is unlimited");
  t.same(short(mapResources({ memory: { useHierarchy: true } }, v1, () => {})), ["v1 memory memory.use_hierarchy=1"]);
});

t.test("mapResources: checkBeforeUpdate", async (t) => {
  const v1 = host({ v1: ALL_V1, files: { "v1:memory:memory.usage_in_bytes": "5000\n" } });
  t.throws(() => mapResources({ memory: { limit: 4096, checkBeforeUpdate: true } }, v1, () => {}), /lower than the current usage 5000/);
  t.equal(mapResources({ memory: { limit: 8192, checkBeforeUpdate: true } }, v1, () => {}).length, 1);
  t.equal(mapResources({ memory: { limit: 4096 } }, v1, () => {}).length, 1, "not checked unless asked");
  const v2 = host({ v2: ALL_V2, files: { "v2:memory:memory.current": "5000\n" } });
  t.throws(() => mapResources({ memory: { limit: 4096, checkBeforeUpdate: true } }, v2, () => {}), /lower than the current usage/);
});

t.test("mapResources: cgroup v2", async (t) => {
  const warnings: string[] = [];
  const ws = mapResources({ ...FULL, memory: { limit: 1 << 30, reservation: 1 << 29, swap: 2 * (1 << 30), kernelTCP: 5 }, unified: { "memory.high": "900000000" } }, host({ v2: ALL_V2, files: { "v2:hugetlb:hugetlb.2MB.rsvd.max": "", "v2:cpu:cpu.idle": "0" } }), (m) => warnings.push(m));
  t.same(short(ws), [
    "v2 memory memory.swap.max=1073741824",
    "v2 memory memory.max=1073741824",
    "v2 memory memory.low=536870912",
    "v2 cpu cpu.weight=39",
    "v2 cpu cpu.max=50000 100000 (retry)",
    "v2 cpu cpu.max.burst=1000 (retry)",
    "v2 cpu cpu.idle=0",
    "v2 cpuset cpuset.cpus=0-1",
    "v2 cpuset cpuset.mems=0",
    "v2 pids pids.max=100",
    `v2 io io.weight=${blkioWeightToIoWeight(500)}`,
    `v2 io io.weight=8:0 ${blkioWeightToIoWeight(300)}`,
    "v2 io io.max=8:0 rbps=1048576",
    "v2 io io.max=8:16 wiops=max",
    "v2 hugetlb hugetlb.2MB.max=4194304",
    "v2 hugetlb hugetlb.2MB.rsvd.max=4194304",
    "v2 memory memory.high=900000000",
  ]);
  t.match(warnings, [/kernelTCP/]);

  const bfq = mapResources({ blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 300 }] } }, host({ v2: ALL_V2, files: { "v2:io:io.bfq.weight": "" } }), () => {});
  t.same(short(bfq), ["v2 io io.bfq.weight=500", "v2 io io.bfq.weight=8:0 300"], "BFQ takes the v1 weight as it is");

  const v2 = host({ v2: ALL_V2, files: { "v2:memory:memory.swap.max": "max" } });
  t.same(short(mapResources({ cpu: { quota: -1 } }, v2, () => {})), ["v2 cpu cpu.max=max (retry)"]);
  t.same(short(mapResources({ cpu: { period: 20000 } }, v2, () => {})), ["v2 cpu cpu.max=max 20000 (retry)"]);
  t.same(short(mapResources({ memory: { limit: -1 } }, v2, () => {})), ["v2 memory memory.swap.max=max", "v2 memory memory.max=max"]);
  t.same(short(mapResources({ memory: { limit: 100, swap: 100 } }, v2, () => {})), ["v2 memory memory.swap.max=0", "v2 memory memory.max=100"], "swap equal to the limit: no swap");
  t.throws(() => mapResources({ memory: { swap: 100 } }, v2, () => {}), /needs a memory limit/);
  t.throws(() => mapResources({ memory: { swappiness: 60 } }, v2, () => {}), /swappiness \(60\): not supported on cgroup v2/);
  t.throws(() => mapResources({ cpu: { realtimeRuntime: 1000 } }, v2, () => {}), /realtimeRuntime/);
  t.throws(() => mapResources({ blockIO: { leafWeight: 10 } }, v2, () => {}), /leafWeight/);
  t.throws(() => mapResources({ network: { classID: 1 } }, v2, () => {}), /cannot write 1 to net_cls\.classid: the net_cls controller is not available \(no v1 hierarchy has it and it is not enabled/);
  t.throws(() => mapResources({ hugepageLimits: [{ pageSize: "../../x", limit: 1 }] }, v2, () => {}), /invalid page size/);
  t.throws(() => mapResources({ unified: { "../memory.max": "1" } }, v2, () => {}), /invalid cgroup file name/);
  for (const key of ["cgroup.procs", "cgroup.threads", "cgroup.freeze", "cgroup.kill"]) {
    t.throws(() => mapResources({ unified: { [key]: "1" } }, v2, () => {}), /is not a resource: tsrun manages it/, `unified ${key} is refused`);
  }
});

t.test("mapResources: hybrid routing", async (t) => {
  const hybrid = host({ v1: ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "name=systemd"], v2: ["hugetlb"], files: { "v1:blkio:blkio.bfq.weight": "" } });
  const ws = mapResources({ memory: { limit: 1000000 }, hugepageLimits: [{ pageSize: "2MB", limit: 2097152 }], blockIO: { weight: 100 }, unified: { "hugetlb.1GB.max": "0" } }, hybrid, () => {});
  t.same(short(ws), [
    "v1 memory memory.limit_in_bytes=1000000 (retry)",
    "v1 blkio blkio.bfq.weight=100",
    "v2 hugetlb hugetlb.2MB.max=2097152",
    "v2 hugetlb hugetlb.1GB.max=0",
  ]);
  t.throws(() => mapResources({ network: { priorities: [{ name: "lo", priority: 1 }] } }, hybrid, () => {}), /net_prio controller is not available/);
  t.throws(() => mapResources({ rdma: { mlx: { hcaHandles: 1 } } }, hybrid, () => {}), /rdma controller is not available/);
  t.same(mapResources({ memory: {}, cpu: {}, network: {}, rdma: {}, unified: {} }, hybrid, () => {}), [], "empty sections need no controller");
  t.throws(() => mapResources({ unified: { "memory.max": "1" } }, host({ v1: ALL_V1 }), () => {}), /needs cgroup v2/);
});

const DEFAULT_RULES = [
  { allow: false, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 3, access: "rwm" },
  { allow: true, type: "c", major: 136, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 1, access: "rw" },
];

t.test("device rules: cgroup v1 writes", async (t) => {
  const { writes, final } = v1DeviceWrites(DEFAULT_RULES);
  t.same(
    writes.map((w) => `${w.file} ${w.value}`),
    ["devices.deny a", "devices.deny a", "devices.allow c 1:3 rwm", "devices.allow c 136:* rwm", "devices.allow c 5:1 rw"],
  );
  t.notOk(final.defaultAllow);
  t.same(v1TransitionWrites(parseDevicesList("c 1:3 rwm\nc 136:* rwm\nc 5:1 rw\n"), final), [], "the list shows the state: nothing to write");
  t.same(v1TransitionWrites(parseDevicesList("c 1:3 rwm\nc 136:* rwm\n"), final).map((w) => `${w.file} ${w.value}`), ["devices.allow c 5:1 rw"]);
  t.equal(parseDevicesList("a *:* rwm\n"), undefined, "a default-allow list hides its exceptions");

  // A later wider deny removes every narrower exception it covers, access bit by bit.
  const w2 = v1DeviceWrites([...DEFAULT_RULES, { allow: false, type: "c", major: 1, access: "w" }, { allow: false, type: "c", access: "m" }]);
  t.same(
    w2.writes.slice(5).map((w) => `${w.file} ${w.value}`),
    ["devices.deny c 1:3 w", "devices.deny c 1:3 m", "devices.deny c 136:* m"],
  );
  t.same(v1TransitionWrites(parseDevicesList("c 1:3 r\nc 136:* rw\nc 5:1 rw\n"), w2.final), []);

  // Allow everything, then deny some: exceptions of a default-allow list.
  const w3 = v1DeviceWrites([{ allow: true }, { allow: false, type: "b", major: 8, minor: 0, access: "w" }]);
  t.same(w3.writes.map((w) => `${w.file} ${w.value}`), ["devices.deny a", "devices.allow a", "devices.deny b 8:0 w"]);
  t.ok(w3.final.defaultAllow);
  t.same(v1TransitionWrites(parseDevicesList("a *:* rwm\n"), w3.final).map((w) => `${w.file} ${w.value}`), ["devices.allow a", "devices.deny b 8:0 w"], "a default-allow list with exceptions cannot be compared: it starts over");

  // A hole in a wider earlier rule is not expressible: an error, never a wider permission.
  t.throws(() => v1DeviceWrites([{ allow: false }, { allow: true, type: "c", access: "rwm" }, { allow: false, type: "c", major: 1, minor: 3, access: "rwm" }]), /cannot be expressed by the cgroup v1 devices controller/);
  t.throws(() => v1DeviceWrites([{ allow: true }, { allow: false, type: "b" }, { allow: true, type: "b", major: 8, minor: 0, access: "r" }]), /cannot be expressed/);

  // An "a" rule that is not everything becomes a "b" and a "c" rule.
  t.same(normalizeDeviceRules([{ allow: true, type: "a", major: 1, access: "mr" }]), [
    { allow: true, type: "b", major: 1, minor: -1, access: "rm" },
    { allow: true, type: "c", major: 1, minor: -1, access: "rm" },
  ]);
  t.throws(() => normalizeDeviceRules([{ allow: true, type: "x" }]), /invalid device type/);
  t.same(normalizeDeviceRules([{ allow: true, type: "c", major: 1, minor: 3, access: "mwrw" }])[0]?.access, "rwm", "any order, repeats: as runc");
  t.same(normalizeDeviceRules([{ allow: true, type: "c", major: 1, minor: 3, access: "rwx" }])[0]?.access, "rw", "other characters are ignored (validation warns)");
  t.throws(() => normalizeDeviceRules([{ allow: true, access: "x" }]), /invalid device access/);
  t.throws(() => normalizeDeviceRules([{ allow: true, access: "" }]), /invalid device access/);
  t.throws(() => normalizeDeviceRules([{ allow: true, major: -5 }]), /invalid device number/);

  t.notOk(devicesRestrict([{ allow: true }]));
  t.notOk(devicesRestrict([]));
  t.ok(devicesRestrict(DEFAULT_RULES));
});

t.test("device rules: cgroup v1 transition (runc's rule)", async (t) => {
  const state = (list: string): DevState => parseDevicesList(list)!;
  const show = (from: DevState | undefined, rules: typeof DEFAULT_RULES) => v1TransitionWrites(from, v1DeviceWrites(rules).final).map((w) => `${w.file} ${w.value}`);
  // Kept devices are never denied on the way: drops first, then additions, no "a".
  t.same(show(state("c 1:3 rwm\nc 136:* rwm\nc 5:1 rw\nc 4:7 rw\n"), [...DEFAULT_RULES, { allow: true, type: "b", major: 8, minor: 0, access: "r" }]), [
    "devices.deny c 4:7 rw",
    "devices.allow b 8:0 r",
  ]);
  // Partial changes of one device: only the bits that differ.
  t.same(show(state("c 1:3 rw\nc 136:* rwm\nc 5:1 rwm\n"), DEFAULT_RULES), ["devices.deny c 5:1 m", "devices.allow c 1:3 m"]);
  // A new default (deny-all to allow-all) or an unreadable current state starts over with "a".
  t.same(show(state("c 1:3 rwm\n"), [{ allow: true, access: "rwm" }]), ["devices.allow a"]);
  t.same(show(undefined, DEFAULT_RULES), ["devices.deny a", "devices.allow c 1:3 rwm", "devices.allow c 136:* rwm", "devices.allow c 5:1 rw"]);
  t.same(show(state(""), DEFAULT_RULES), ["devices.allow c 1:3 rwm", "devices.allow c 136:* rwm", "devices.allow c 5:1 rw"], "from deny-all: no \"a\" write");
});

t.test("mapResources: device rules per host", async (t) => {
  const v1 = host({ v1: ALL_V1, files: { "v1:devices:devices.list": "a *:* rwm\n" } });
  t.same(
    mapResources({ devices: DEFAULT_RULES }, v1, () => {}).map((w) => `${w.file} ${w.value}`),
    ["devices.deny a", "devices.allow c 1:3 rwm", "devices.allow c 136:* rwm", "devices.allow c 5:1 rw"],
  );
  const running = host({ v1: ALL_V1, files: { "v1:devices:devices.list": "c 1:3 rwm\nc 136:* rwm\nc 5:1 rw\nc 4:7 rw\n" } });
  t.same(
    mapResources({ devices: DEFAULT_RULES }, running, () => {}).map((w) => `${w.file} ${w.value}`),
    ["devices.deny c 4:7 rw"],
    "an update never denies everything first: the devices it keeps stay usable throughout",
  );
  const same = host({ v1: ALL_V1, files: { "v1:devices:devices.list": "c 1:3 rwm\nc 136:* rwm\nc 5:1 rw\n" } });
  t.same(mapResources({ devices: DEFAULT_RULES }, same, () => {}), [], "an unchanged list is not rewritten");
  const v2 = mapResources({ devices: DEFAULT_RULES }, host({ v2: ALL_V2 }), () => {});
  t.equal(v2.length, 1, "cgroup v2: one device program");
  t.match(v2[0], { hierarchy: "v2", controller: "devices" });
  t.ok(v2[0]!.deviceProgram && v2[0]!.deviceProgram.length > 0 && v2[0]!.deviceProgram.length % 8 === 0, "whole eBPF instructions");
  t.throws(() => mapResources({ devices: DEFAULT_RULES }, host({ v1: ["memory"] }), () => {}), /devices controller is not available/);
  const allowAll = mapResources({ devices: [{ allow: true, access: "rwm" }] }, host({ v2: ALL_V2 }), () => {});
  t.equal(allowAll.length, 1, "allow-all gets a program too, so it can replace a restrictive one");
  t.match(allowAll[0], { hierarchy: "v2", controller: "devices" });
});

t.test("conversions", async (t) => {
  t.equal(sharesToWeight(2), 1);
  t.equal(sharesToWeight(1024), 39);
  t.equal(sharesToWeight(262144), 10000);
  t.equal(blkioWeightToIoWeight(10), 1);
  t.equal(blkioWeightToIoWeight(500), 4950);
  t.equal(blkioWeightToIoWeight(1000), 10000);
});

t.test("stats parsers", async (t) => {
  t.same(parseCpuList("0-2,5\n"), [0, 1, 2, 5]);
  t.same(parseCpuList(""), []);
  t.same(parseBlkioV1("8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n"), [
    { major: 8, op: "Read", value: 4096 },
    { major: 8, op: "Write" },
    { major: 8, op: "Total", value: 4096 },
  ]);
  t.same(parseBlkioV1("8:16 123\n"), [{ major: 8, minor: 16, value: 123 }]);
  t.same(parseIoStat("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"), {
    ioServiceBytesRecursive: [
      { major: 8, op: "Read", value: 10 },
      { major: 8, op: "Write", value: 20 },
    ],
    ioServicedRecursive: [
      { major: 8, op: "Read", value: 1 },
      { major: 8, op: "Write", value: 2 },
    ],
  });
  t.equal(hugePageSizeName(2 * 1024 * 1024), "2MB");
  t.equal(hugePageSizeName(1024 * 1024 * 1024), "1GB");
  t.equal(hugePageSizeName(64 * 1024), "64KB");
});
