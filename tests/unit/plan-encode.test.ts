import t from "tap";
import { Buffer } from "node:buffer";
import { encodePlan, Tag, PLAN_VERSION, CLONE_FLAGS } from "../../src/linux/plan-encode.ts";
import type { LaunchPlan } from "../../src/linux/launch-plan.ts";

function basePlan(): LaunchPlan {
  return {
    mode: "create",
    foreground: false,
    debug: false,
    namespaces: [{ type: "pid" }, { type: "mount" }],
    uidMappings: [],
    gidMappings: [],
    timeOffsets: [],
    cgroupProcs: [],
    rootfs: "/bundle/rootfs",
    rootfsPropagation: 0x80000 | 0x4000,
    noPivot: false,
    readonlyRoot: false,
    mounts: [],
    devices: [],
    symlinks: [],
    maskedPaths: [],
    readonlyPaths: [],
    sysctls: [],
    process: {
      args: ["/bin/sh"],
      env: ["PATH=/bin"],
      cwd: "/",
      uid: 0,
      gid: 0,
      additionalGids: [],
      rlimits: [],
      noNewPrivileges: true,
      terminal: false,
      consoleHeight: 0,
      consoleWidth: 0,
    },
    preserveFds: 0,
  };
}

interface Rec {
  tag: number;
  payload: Buffer;
}

/** An independent reader of the format, as the C helper reads it. */
function records(buf: Buffer): Rec[] {
  const out: Rec[] = [];
  let off = 12;
  while (off < buf.length) {
    const tag = buf.readUInt16LE(off);
    const len = buf.readUInt32LE(off + 2);
    off += 6;
    if (off + len > buf.length) throw new Error("record overruns the plan");
    out.push({ tag, payload: buf.subarray(off, off + len) });
    off += len;
  }
  return out;
}

function byTag(buf: Buffer, tag: number): Buffer[] {
  return records(buf)
    .filter((r) => r.tag === tag)
    .map((r) => r.payload);
}

/** Reads u32s then NUL-terminated strings; checks the payload is consumed exactly. */
function fields(b: Buffer, nU32: number, nStr: number): { ints: number[]; strs: string[] } {
  const ints: number[] = [];
  let off = 0;
  for (let i = 0; i < nU32; i++, off += 4) ints.push(b.readUInt32LE(off));
  const strs: string[] = [];
  for (let i = 0; i < nStr; i++) {
    const end = b.indexOf(0, off);
    if (end < 0) throw new Error("unterminated string");
    strs.push(b.subarray(off, end).toString("utf8"));
    off = end + 1;
  }
  if (off !== b.length) throw new Error(`payload has ${b.length - off} extra bytes`);
  return { ints, strs };
}

t.test("header: magic, version, total length", async (t) => {
  const buf = encodePlan(basePlan());
  t.equal(buf.subarray(0, 4).toString("latin1"), "TSRP");
  t.equal(buf.readUInt32LE(4), PLAN_VERSION);
  t.equal(PLAN_VERSION, 1);
  t.equal(buf.readUInt32LE(8), buf.length);
  t.doesNotThrow(() => records(buf), "records tile the buffer exactly");
});

t.test("general and process records", async (t) => {
  const plan = basePlan();
  plan.foreground = true;
  plan.debug = true;
  plan.noPivot = true;
  plan.readonlyRoot = true;
  plan.preserveFds = 2;
  plan.process.terminal = true;
  plan.process.noNewPrivileges = true;
  plan.process.uid = 1000;
  plan.process.gid = 100;
  plan.process.consoleHeight = 24;
  plan.process.consoleWidth = 80;
  plan.process.cwd = "/work dir";
  const buf = encodePlan(plan);
  const recs = records(buf);
  t.equal(recs[0]?.tag, Tag.General, "GENERAL comes first");
  const g = fields(byTag(buf, Tag.General)[0]!, 4, 0);
  t.same(g.ints, [0, 1 | 2 | 4 | 8, 0x84000, 2]);
  const pr = fields(byTag(buf, Tag.Process)[0]!, 5, 1);
  t.same(pr.ints, [1 | 2, 1000, 100, 24, 80]);
  t.same(pr.strs, ["/work dir"]);

  plan.mode = "exec";
  plan.foreground = false;
  plan.debug = false;
  plan.noPivot = false;
  plan.readonlyRoot = false;
  plan.process.terminal = false;
  plan.process.noNewPrivileges = false;
  const g2 = fields(byTag(encodePlan(plan), Tag.General)[0]!, 4, 0);
  t.same(g2.ints, [1, 0, 0x84000, 2]);
  t.same(fields(byTag(encodePlan(plan), Tag.Process)[0]!, 5, 1).ints[0], 0);
});

t.test("namespaces keep order, carry CLONE_NEW* and path", async (t) => {
  const plan = basePlan();
  plan.namespaces = [
    { type: "pid" },
    { type: "network", path: "/proc/42/ns/net" },
    { type: "user" },
    { type: "time" },
    { type: "cgroup" },
    { type: "uts" },
    { type: "ipc" },
    { type: "mount" },
  ];
  const got = byTag(encodePlan(plan), Tag.Namespace).map((b) => fields(b, 1, 1));
  t.same(
    got.map((g) => g.ints[0]),
    [0x20000000, 0x40000000, 0x10000000, 0x80, 0x02000000, 0x04000000, 0x08000000, 0x20000],
  );
  t.same(
    got.map((g) => g.strs[0]),
    ["", "/proc/42/ns/net", "", "", "", "", "", ""],
  );
  t.equal(CLONE_FLAGS.network, 0x40000000);
});

t.test("id mappings, time offsets, cgroup procs", async (t) => {
  const plan = basePlan();
  plan.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  plan.gidMappings = [
    { containerID: 0, hostID: 200000, size: 1 },
    { containerID: 1, hostID: 300000, size: 10 },
  ];
  plan.timeOffsets = [
    { clock: "monotonic", secs: -5n, nanosecs: 7 },
    { clock: "boottime", secs: 1n << 40n, nanosecs: 999999999 },
  ];
  plan.cgroupProcs = ["/sys/fs/cgroup/a/cgroup.procs", "/sys/fs/cgroup/b/cgroup.procs"];
  const buf = encodePlan(plan);
  t.same(
    byTag(buf, Tag.UidMapping).map((b) => fields(b, 3, 0).ints),
    [[0, 100000, 65536]],
  );
  t.same(
    byTag(buf, Tag.GidMapping).map((b) => fields(b, 3, 0).ints),
    [
      [0, 200000, 1],
      [1, 300000, 10],
    ],
  );
  const to = byTag(buf, Tag.TimeOffset);
  t.equal(to.length, 2);
  t.equal(to[0]!.length, 16);
  t.equal(to[0]!.readUInt32LE(0), 1);
  t.equal(to[0]!.readBigInt64LE(4), -5n);
  t.equal(to[0]!.readUInt32LE(12), 7);
  t.equal(to[1]!.readUInt32LE(0), 7);
  t.equal(to[1]!.readBigInt64LE(4), 1n << 40n);
  t.same(
    byTag(buf, Tag.CgroupProcs).map((b) => fields(b, 0, 1).strs[0]),
    plan.cgroupProcs,
  );
});

t.test("mounts: fixed fields, propagation list, four strings, in order", async (t) => {
  const plan = basePlan();
  plan.mounts = [
    {
      source: "proc",
      destination: "/proc",
      fstype: "proc",
      flags: 0xe,
      remountFlags: 0,
      propagation: [],
      recAttrSet: 0,
      recAttrClr: 0,
      data: "",
      destKind: "dir",
    },
    {
      source: "/host/file",
      destination: "/etc/resolv.conf",
      fstype: "",
      flags: 0x1000 | 0x4000,
      remountFlags: 1,
      propagation: [0x40000 | 0x4000, 0x100000],
      recAttrSet: 1,
      recAttrClr: 2,
      data: "x=y",
      destKind: "file",
    },
  ];
  const ms = byTag(encodePlan(plan), Tag.Mount);
  t.equal(ms.length, 2);
  const a = fields(ms[0]!, 6, 4);
  t.same(a.ints, [0xe, 0, 0, 0, 0, 0]);
  t.same(a.strs, ["proc", "/proc", "proc", ""]);
  const b = fields(ms[1]!, 8, 4);
  t.same(b.ints, [0x5000, 1, 1, 2, 1, 2, 0x44000, 0x100000]);
  t.same(b.strs, ["/host/file", "/etc/resolv.conf", "", "x=y"]);
});

t.test("idmapped mounts: a MOUNT_IDMAP record (tag 45) right after its MOUNT", async (t) => {
  const plan = basePlan();
  const bind = (destination: string) => ({
    source: "/srv/d", destination, fstype: "", flags: 0x1000 | 0x4000, remountFlags: 0, propagation: [],
    recAttrSet: 0, recAttrClr: 0, data: "", destKind: "dir" as const,
  });
  plan.mounts = [
    { ...bind("/a"), idmap: { recursive: true, uidMappings: [{ containerID: 1000, hostID: 100000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 200000, size: 10 }, { containerID: 10, hostID: 300000, size: 5 }] } },
    bind("/b"),
    { ...bind("/c"), idmap: { recursive: false, uidMappings: [], gidMappings: [], usernsPath: "/proc/42/ns/user" } },
  ];
  const recs = records(encodePlan(plan)).filter((r) => r.tag === Tag.Mount || r.tag === Tag.MountIdmap);
  t.same(recs.map((r) => r.tag), [Tag.Mount, Tag.MountIdmap, Tag.Mount, Tag.Mount, Tag.MountIdmap], "each after its own mount");
  t.equal(Tag.MountIdmap, 45);
  const a = fields(recs[1]!.payload, 3 + 3 * 3, 1);
  t.same(a.ints, [1, 1, 2, 1000, 100000, 1, 0, 200000, 10, 10, 300000, 5]);
  t.same(a.strs, [""]);
  const c = fields(recs[4]!.payload, 3, 1);
  t.same(c.ints, [0, 0, 0]);
  t.same(c.strs, ["/proc/42/ns/user"]);
  plan.mounts = [{ ...bind("/d"), idmap: { recursive: false, uidMappings: [{ containerID: 0, hostID: 1, size: 1 }], gidMappings: [] } }];
  t.throws(() => encodePlan(plan), /mounts\[0\]\.idmap: needs uid and gid mappings or a user namespace path/);
});

t.test("devices, symlinks, masked, readonly, sysctls, hostname", async (t) => {
  const plan = basePlan();
  plan.devices = [
    { path: "/dev/null", type: "c", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0, bindFromHost: false },
    { path: "/dev/sda", type: "b", major: 8, minor: 0, fileMode: 0o660, uid: 1, gid: 6, bindFromHost: true },
    { path: "/dev/fifo", type: "p", major: 0, minor: 0, fileMode: 0o600, uid: 0, gid: 0, bindFromHost: false },
    { path: "/dev/u", type: "u", major: 5, minor: 1, fileMode: 0o600, uid: 0, gid: 0, bindFromHost: false },
  ];
  plan.symlinks = [{ path: "/dev/fd", target: "/proc/self/fd" }];
  plan.maskedPaths = ["/proc/kcore", "/proc/acpi"];
  plan.readonlyPaths = ["/proc/sys"];
  plan.sysctls = [{ key: "net.ipv4.ip_forward", value: "1" }];
  plan.hostname = "box";
  plan.domainname = "example.org";
  const buf = encodePlan(plan);
  const ds = byTag(buf, Tag.Device).map((b) => fields(b, 7, 1));
  t.same(ds[0], { ints: [0x63, 1, 3, 0o666, 0, 0, 0], strs: ["/dev/null"] });
  t.same(ds[1], { ints: [0x62, 8, 0, 0o660, 1, 6, 1], strs: ["/dev/sda"] });
  t.equal(ds[2]!.ints[0], "p".charCodeAt(0));
  t.equal(ds[3]!.ints[0], "u".charCodeAt(0));
  t.same(fields(byTag(buf, Tag.Symlink)[0]!, 0, 2).strs, ["/dev/fd", "/proc/self/fd"]);
  t.same(
    byTag(buf, Tag.MaskedPath).map((b) => fields(b, 0, 1).strs[0]),
    ["/proc/kcore", "/proc/acpi"],
  );
  t.same(fields(byTag(buf, Tag.ReadonlyPath)[0]!, 0, 1).strs, ["/proc/sys"]);
  t.same(fields(byTag(buf, Tag.Sysctl)[0]!, 0, 2).strs, ["net.ipv4.ip_forward", "1"]);
  t.same(fields(byTag(buf, Tag.Hostname)[0]!, 0, 1).strs, ["box"]);
  t.same(fields(byTag(buf, Tag.Domainname)[0]!, 0, 1).strs, ["example.org"]);
});

t.test("absent optional fields produce no record; empty hostname is kept", async (t) => {
  const buf = encodePlan(basePlan());
  for (const tag of [
    Tag.Hostname,
    Tag.Domainname,
    Tag.Umask,
    Tag.Capabilities,
    Tag.OomScoreAdj,
    Tag.ConsoleSocket,
    Tag.ExecFifo,
    Tag.Seccomp,
  ]) {
    t.equal(byTag(buf, tag).length, 0, `no record ${tag}`);
  }
  const plan = basePlan();
  plan.hostname = "";
  plan.rootfs = "";
  const b2 = encodePlan(plan);
  t.same(fields(byTag(b2, Tag.Hostname)[0]!, 0, 1).strs, [""]);
  t.equal(byTag(b2, Tag.Rootfs).length, 0, "exec-mode empty rootfs is omitted");
});

t.test("process: args, env (utf-8), gids, umask, rlimits, caps, oom, console, fifo", async (t) => {
  const plan = basePlan();
  plan.process.args = ["sh", "-c", "echo ünïcode"];
  plan.process.env = ["PATH=/usr/bin", "A=b=c", "E="];
  plan.process.additionalGids = [10, 20];
  plan.process.umask = 0o22;
  plan.process.rlimits = [
    { resource: 7, soft: 1024n, hard: 4096n },
    { resource: 4, soft: (1n << 64n) - 1n, hard: (1n << 64n) - 1n },
  ];
  plan.process.capabilities = {
    bounding: [0, 1, 40],
    effective: [21],
    inheritable: [],
    permitted: [21, 63],
    ambient: [0],
  };
  plan.process.oomScoreAdj = -500;
  plan.consoleSocket = "/run/console.sock";
  plan.execFifo = "/run/tsrun/x/exec.fifo";
  const buf = encodePlan(plan);
  t.same(
    byTag(buf, Tag.Arg).map((b) => fields(b, 0, 1).strs[0]),
    plan.process.args,
  );
  t.same(
    byTag(buf, Tag.Env).map((b) => fields(b, 0, 1).strs[0]),
    plan.process.env,
  );
  t.same(
    byTag(buf, Tag.AdditionalGid).map((b) => fields(b, 1, 0).ints[0]),
    [10, 20],
  );
  t.same(fields(byTag(buf, Tag.Umask)[0]!, 1, 0).ints, [0o22]);
  const rl = byTag(buf, Tag.Rlimit);
  t.equal(rl[0]!.length, 20);
  t.equal(rl[0]!.readUInt32LE(0), 7);
  t.equal(rl[0]!.readBigUInt64LE(4), 1024n);
  t.equal(rl[0]!.readBigUInt64LE(12), 4096n);
  t.equal(rl[1]!.readBigUInt64LE(4), 0xffffffffffffffffn);
  const caps = byTag(buf, Tag.Capabilities)[0]!;
  t.equal(caps.length, 40);
  t.equal(caps.readBigUInt64LE(0), (1n << 0n) | (1n << 1n) | (1n << 40n));
  t.equal(caps.readBigUInt64LE(8), 1n << 21n);
  t.equal(caps.readBigUInt64LE(16), 0n);
  t.equal(caps.readBigUInt64LE(24), (1n << 21n) | (1n << 63n));
  t.equal(caps.readBigUInt64LE(32), 1n);
  const oom = byTag(buf, Tag.OomScoreAdj)[0]!;
  t.equal(oom.length, 4);
  t.equal(oom.readInt32LE(0), -500);
  t.same(fields(byTag(buf, Tag.ConsoleSocket)[0]!, 0, 1).strs, ["/run/console.sock"]);
  t.same(fields(byTag(buf, Tag.ExecFifo)[0]!, 0, 1).strs, ["/run/tsrun/x/exec.fifo"]);
});

t.test("umask 0 and oomScoreAdj 0 are present, not absent", async (t) => {
  const plan = basePlan();
  plan.process.umask = 0;
  plan.process.oomScoreAdj = 0;
  const buf = encodePlan(plan);
  t.equal(byTag(buf, Tag.Umask).length, 1);
  t.equal(byTag(buf, Tag.OomScoreAdj).length, 1);
});

t.test("values out of range are refused, naming the field", async (t) => {
  const cases: [string, (p: LaunchPlan) => void, RegExp][] = [
    ["negative uid", (p) => (p.process.uid = -1), /process\.uid/],
    ["fractional gid", (p) => (p.process.gid = 1.5), /process\.gid/],
    ["uid over 32 bits", (p) => (p.process.uid = 2 ** 32), /process\.uid/],
    [
      "capability 64",
      (p) =>
        (p.process.capabilities = { bounding: [64], effective: [], inheritable: [], permitted: [], ambient: [] }),
      /capabilities\.bounding\[0\]/,
    ],
    [
      "negative rlimit",
      (p) => (p.process.rlimits = [{ resource: 1, soft: -1n, hard: 0n }]),
      /rlimits\[0\]\.soft/,
    ],
    ["rlimit over 64 bits", (p) => (p.process.rlimits = [{ resource: 1, soft: 0n, hard: 1n << 64n }]), /hard/],
    ["oom out of i32", (p) => (p.process.oomScoreAdj = 2 ** 31), /oomScoreAdj/],
    ["NUL in a string", (p) => (p.process.env = ["A=\0"]), /process\.env\[0\].*NUL/],
    ["empty args", (p) => (p.process.args = []), /process\.args/],
    [
      "time offset secs beyond i64",
      (p) => (p.timeOffsets = [{ clock: "boottime", secs: 1n << 63n, nanosecs: 0 }]),
      /timeOffsets\[0\]\.secs/,
    ],
    [
      "mount flags NaN",
      (p) =>
        (p.mounts = [
          {
            source: "x",
            destination: "/x",
            fstype: "tmpfs",
            flags: Number.NaN,
            remountFlags: 0,
            propagation: [],
            recAttrSet: 0,
            recAttrClr: 0,
            data: "",
            destKind: "dir",
          },
        ]),
      /mounts\[0\]\.flags/,
    ],
  ];
  for (const [name, mutate, re] of cases) {
    const plan = basePlan();
    mutate(plan);
    t.throws(() => encodePlan(plan), re, name);
  }
});

t.test("a large plan: many mounts and env entries still tile exactly", async (t) => {
  const plan = basePlan();
  for (let i = 0; i < 500; i++) {
    plan.mounts.push({
      source: `/src/${i}`,
      destination: `/dst/${i}`,
      fstype: "",
      flags: 0x1000,
      remountFlags: 0,
      propagation: [0x40000],
      recAttrSet: 0,
      recAttrClr: 0,
      data: "",
      destKind: "dir",
    });
    plan.process.env.push(`V${i}=${"x".repeat(100)}`);
  }
  const buf = encodePlan(plan);
  t.equal(buf.readUInt32LE(8), buf.length);
  t.equal(byTag(buf, Tag.Mount).length, 500);
  t.equal(byTag(buf, Tag.Env).length, 501);
  t.equal(fields(byTag(buf, Tag.Mount)[499]!, 7, 4).strs[1], "/dst/499");
});

t.test("seccomp: header record, architectures, rules with args and names", async (t) => {
  const plan = basePlan();
  plan.seccomp = {
    defaultAction: "ERRNO",
    defaultErrnoRet: 38,
    architectures: ["x86_64", "x86"],
    flags: 2,
    syscalls: [
      { names: ["read", "write"], action: "ALLOW", errnoRet: 0, args: [] },
      {
        names: ["personality"],
        action: "ERRNO",
        errnoRet: 1,
        args: [
          { index: 0, op: "MASKED_EQ", value: 0xffn, valueTwo: 8n },
          { index: 1, op: "NE", value: (1n << 64n) - 1n, valueTwo: 0n },
        ],
      },
      { names: ["mkdir"], action: "NOTIFY", errnoRet: 0, args: [] },
    ],
    listenerPath: "/run/agent.sock",
    listenerState: '{"pid":@PID@}',
  };
  const buf = encodePlan(plan);
  const head = fields(byTag(buf, Tag.Seccomp)[0]!, 3, 2);
  t.same(head.ints, [4, 38, 2]);
  t.same(head.strs, ["/run/agent.sock", '{"pid":@PID@}']);
  t.same(
    byTag(buf, Tag.SeccompArch).map((b) => fields(b, 0, 1).strs[0]),
    ["x86_64", "x86"],
  );
  const rules = byTag(buf, Tag.SeccompRule);
  t.equal(rules.length, 3);
  t.same(fields(rules[0]!, 4, 2), { ints: [6, 0, 2, 0], strs: ["read", "write"] });
  const r1 = rules[1]!;
  t.same([r1.readUInt32LE(0), r1.readUInt32LE(4), r1.readUInt32LE(8), r1.readUInt32LE(12)], [4, 1, 1, 2]);
  t.same([r1.readUInt32LE(16), r1.readUInt32LE(20)], [0, 6], "arg 0: index, MASKED_EQ");
  t.equal(r1.readBigUInt64LE(24), 0xffn);
  t.equal(r1.readBigUInt64LE(32), 8n);
  t.same([r1.readUInt32LE(40), r1.readUInt32LE(44)], [1, 0], "arg 1: index, NE");
  t.equal(r1.readBigUInt64LE(48), (1n << 64n) - 1n);
  t.equal(r1.subarray(64).toString("latin1"), "personality\0");
  t.same(fields(rules[2]!, 4, 1).ints, [8, 0, 1, 0]);

  const minimal = basePlan();
  minimal.seccomp = { defaultAction: "ALLOW", defaultErrnoRet: 0, architectures: [], flags: 0, syscalls: [] };
  t.same(fields(byTag(encodePlan(minimal), Tag.Seccomp)[0]!, 3, 2), { ints: [6, 0, 0], strs: ["", ""] });
});

t.test("seccomp: bad values are refused", async (t) => {
  const plan = basePlan();
  plan.seccomp = {
    defaultAction: "ALLOW",
    defaultErrnoRet: 0,
    architectures: [],
    flags: 0,
    syscalls: [{ names: ["x"], action: "ERRNO", errnoRet: 1, args: [{ index: 6, op: "EQ", value: 0n, valueTwo: 0n }] }],
  };
  t.throws(() => encodePlan(plan), /seccomp\.syscalls\[0\]\.args\[0\]\.index/);
  plan.seccomp.syscalls = [{ names: ["x"], action: "ERRNO", errnoRet: 1, args: [{ index: 0, op: "EQ", value: -1n, valueTwo: 0n }] }];
  t.throws(() => encodePlan(plan), /seccomp\.syscalls\[0\]\.args\[0\]\.value/);
});

t.test("process attributes: personality, ioprio, scheduler, CPU affinity, apparmor (tags 40..44)", async (t) => {
  const plan = basePlan();
  t.equal(byTag(encodePlan(plan), Tag.Personality).length + byTag(encodePlan(plan), Tag.Scheduler).length, 0, "absent: no records");
  plan.personality = 8;
  plan.process.ioPriority = (2 << 13) | 6;
  plan.process.scheduler = { policy: 3, nice: -5, priority: 0, flags: 1n, runtime: 0n, deadline: 0n, period: 7n };
  plan.cpuAffinity = { initial: [1], final: [0, 2, 3] };
  plan.process.apparmorProfile = "prof";
  const buf = encodePlan(plan);
  t.same(fields(byTag(buf, Tag.Personality)[0]!, 1, 0).ints, [8]);
  t.same(fields(byTag(buf, Tag.IoPriority)[0]!, 1, 0).ints, [(2 << 13) | 6]);
  const s = byTag(buf, Tag.Scheduler)[0]!;
  t.equal(s.length, 44);
  t.same([s.readUInt32LE(0), s.readInt32LE(4), s.readUInt32LE(8)], [3, -5, 0]);
  t.same([s.readBigUInt64LE(12), s.readBigUInt64LE(20), s.readBigUInt64LE(28), s.readBigUInt64LE(36)], [1n, 0n, 0n, 7n]);
  t.same(byTag(buf, Tag.CpuAffinity).map((b) => fields(b, b.length / 4, 0).ints), [[0, 1, 1], [1, 3, 0, 2, 3]]);
  t.same(fields(byTag(buf, Tag.ApparmorProfile)[0]!, 0, 1).strs, ["prof"]);
  plan.cpuAffinity = { final: [] };
  t.throws(() => encodePlan(plan), /cpuAffinity\.final: must not be empty/);
});
