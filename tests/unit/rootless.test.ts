// Rootless decisions (src/linux/rootless.ts, src/linux/cgroups/rootless.ts): pure functions fed
// any host.
import t from "tap";
import {
  askedLimits, checkUserNamespacesAllowed, defaultStateRoot, explainUserNsFailure, isIdentityMap, parseSubIds, planIdMapHelpers,
  rootlessCgroups, rootlessConfigProblems, uncoveredRanges, type IdMapHost,
} from "../../src/linux/rootless.ts";
import { pruneRootlessCgroup, devicesApplicable, withoutDevices, type CgroupAccess } from "../../src/linux/cgroups/rootless.ts";
import { planPaths } from "../../src/linux/cgroups/parse.ts";
import { explainRootlessError } from "../../src/lifecycle/rootless.ts";
import { TsrunError } from "../../src/errors.ts";
import { ErrorCode } from "../../src/boundary/gen/helper.ts";
import type { CgroupState } from "../../src/linux/cgroups/types.ts";
import type { Spec } from "../../src/spec/generated/types.ts";

t.test("rootless detection, as runc: euid != 0, or a user namespace that is not the initial one", async (t) => {
  t.ok(isIdentityMap("         0          0 4294967295\n"));
  t.notOk(isIdentityMap("         0       1001          1\n"));
  t.notOk(isIdentityMap("0 0 4294967295\n1 1 1\n"));
  t.equal(rootlessCgroups("auto", 1001, () => false), true);
  t.equal(rootlessCgroups("auto", 0, () => false), false);
  t.equal(rootlessCgroups("auto", 0, () => true), true, "root in a user namespace");
  t.equal(rootlessCgroups("false", 1001, () => true), false);
  t.equal(rootlessCgroups("true", 0, () => false), true);
});

t.test("the default state root: $XDG_RUNTIME_DIR/tsrun for a user without privileges", async (t) => {
  t.same(defaultStateRoot({ XDG_RUNTIME_DIR: "/run/user/1001" }, 1001, () => false), { root: "/run/user/1001/tsrun", xdg: true });
  t.same(defaultStateRoot({}, 1001, () => false), { root: "/run/tsrun", xdg: false }, "no XDG_RUNTIME_DIR");
  t.same(defaultStateRoot({ XDG_RUNTIME_DIR: "/run/user/0" }, 0, () => false), { root: "/run/tsrun", xdg: false }, "real root keeps /run/tsrun");
  t.same(defaultStateRoot({ XDG_RUNTIME_DIR: "/run/user/1001", USER: "me" }, 0, () => true), { root: "/run/user/1001/tsrun", xdg: true }, "root in a user namespace");
  t.same(defaultStateRoot({ XDG_RUNTIME_DIR: "/run/user/0", USER: "root" }, 0, () => true), { root: "/run/tsrun", xdg: false });
  t.same(defaultStateRoot({ XDG_RUNTIME_DIR: "relative" }, 1001, () => false), { root: "/run/tsrun", xdg: false });
});

t.test("subordinate ids", async (t) => {
  const text = "# comment\nalice:100000:65536\n1001:300000:10\nbob:165536:65536\nbroken\n";
  t.same(parseSubIds(text, "alice", 1000), [{ start: 100000, count: 65536 }]);
  t.same(parseSubIds(text, "carol", 1001), [{ start: 300000, count: 10 }], "by numeric id");
  t.same(parseSubIds(text, undefined, 5), []);
  const ranges = [{ start: 100000, count: 65536 }];
  t.same(uncoveredRanges([{ containerID: 0, hostID: 1001, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }], 1001, ranges), []);
  t.same(uncoveredRanges([{ containerID: 1, hostID: 100000, size: 65537 }], 1001, ranges).length, 1, "one past the end");
  t.same(uncoveredRanges([{ containerID: 0, hostID: 1000, size: 2 }], 1001, ranges).length, 1, "next to the own id");
  t.same(uncoveredRanges([{ containerID: 0, hostID: 100000, size: 10 }, { containerID: 10, hostID: 165536, size: 1 }], 1001, [...ranges, { start: 165536, count: 5 }]), [], "adjacent ranges");
});

t.test("id maps: own id written directly, anything else through newuidmap/newgidmap, with clear errors", async (t) => {
  const host = (files: Record<string, string>, tools = true): IdMapHost => ({
    readFile: (p) => files[p],
    findExecutable: (n) => (tools ? `/usr/bin/${n}` : undefined),
  });
  const passwd = "root:x:0:0::/root:/bin/sh\nme:x:1001:1001::/home/me:/bin/sh\n";
  const ctx = { euid: 1001, egid: 1001 };
  const own = [{ containerID: 0, hostID: 1001, size: 1 }];
  const multi = [...own, { containerID: 1, hostID: 100000, size: 65536 }];
  t.same(planIdMapHelpers(own, own, ctx, host({})), { uidMapHelper: "", gidMapHelper: "" }, "own ids only: no helper, no files read");
  t.same(
    planIdMapHelpers(multi, own, ctx, host({ "/etc/passwd": passwd, "/etc/subuid": "me:100000:65536\n" })),
    { uidMapHelper: "/usr/bin/newuidmap", gidMapHelper: "" },
  );
  t.same(
    planIdMapHelpers(multi, multi, ctx, host({ "/etc/passwd": passwd, "/etc/subuid": "me:100000:65536\n", "/etc/subgid": "me:100000:65536\n" })),
    { uidMapHelper: "/usr/bin/newuidmap", gidMapHelper: "/usr/bin/newgidmap" },
  );
  t.throws(() => planIdMapHelpers(multi, own, ctx, host({ "/etc/passwd": passwd, "/etc/subuid": "other:100000:65536\n" })), {
    message: /needs an entry for user me \(uid 1001\) in \/etc\/subuid \(none found\): ask an administrator to add one \(usermod --add-subuids 100000-165535 me\)/,
  });
  t.throws(() => planIdMapHelpers(own, multi, ctx, host({ "/etc/passwd": passwd })), { message: /\/etc\/subgid \(none found\)/ }, "no subgid file");
  t.throws(() => planIdMapHelpers(multi, own, ctx, host({ "/etc/passwd": passwd, "/etc/subuid": "me:100000:100\n" })), {
    message: /host uids 100000-165535 are neither your own uid 1001 nor in the ranges \/etc\/subuid gives user me \(uid 1001\) \(100000-100099\)/,
  });
  t.throws(() => planIdMapHelpers(multi, own, ctx, host({ "/etc/passwd": passwd, "/etc/subuid": "me:100000:65536\n" }, false)), {
    message: /needs newuidmap; it is not installed \(Debian, Ubuntu: apt-get install uidmap\)/,
  });
  t.same(planIdMapHelpers([{ containerID: 0, hostID: 1002, size: 1 }], own, ctx, host({ "/etc/subuid": "1001:1002:1\n" })), { uidMapHelper: "/usr/bin/newuidmap", gidMapHelper: "" }, "a single id that is not one's own");
});

t.test("config checks for an unprivileged caller", async (t) => {
  const base = (): Spec => ({
    ociVersion: "1.3.0",
    root: { path: "rootfs" },
    process: { user: { uid: 0, gid: 0 }, cwd: "/", args: ["sh"] },
    mounts: [{ destination: "/dev/pts", type: "devpts", source: "devpts", options: ["newinstance", "gid=5"] }],
    linux: {
      namespaces: [{ type: "mount" }, { type: "user" }],
      uidMappings: [{ containerID: 0, hostID: 1001, size: 1 }],
      gidMappings: [{ containerID: 0, hostID: 1001, size: 1 }],
    },
  });
  const c = base();
  t.same(rootlessConfigProblems(c), ["config.json: mounts[0].options: gid=5: gid 5 is not mapped in the container's user namespace (a rootless container cannot use it; drop the option)"]);
  c.mounts = [];
  t.same(rootlessConfigProblems(c), []);
  c.process!.user = { uid: 5, gid: 0, additionalGids: [7] };
  t.same(rootlessConfigProblems(c), [
    "config.json: process.user.uid: 5 is not mapped by linux.uidMappings",
    "config.json: process.user.additionalGids[0]: 7 is not mapped by linux.gidMappings",
  ]);
  const noUserns = base();
  noUserns.linux!.namespaces = [{ type: "mount" }];
  t.match(rootlessConfigProblems(noUserns)[0], /a rootless container needs a user namespace/);
  const noMaps = base();
  delete noMaps.linux!.uidMappings;
  noMaps.mounts = [];
  t.match(rootlessConfigProblems(noMaps), [/linux\.uidMappings: a rootless container needs at least one uid mapping/]);
  const joined = base();
  joined.linux!.namespaces = [{ type: "mount" }, { type: "user", path: "/proc/1/ns/user" }];
  delete joined.linux!.uidMappings;
  t.same(rootlessConfigProblems(joined), [], "a joined user namespace brings its own maps");
});

t.test("user namespaces disabled: what to change", async (t) => {
  t.throws(() => checkUserNamespacesAllowed((p) => (p.endsWith("max_user_namespaces") ? "0\n" : undefined)), {
    message: /user namespaces are disabled on this host \(\/proc\/sys\/user\/max_user_namespaces is 0\): an administrator must raise it/,
  });
  t.throws(() => checkUserNamespacesAllowed((p) => (p.endsWith("unprivileged_userns_clone") ? "0\n" : "100\n")), {
    message: /kernel\.unprivileged_userns_clone is 0/,
  });
  t.doesNotThrow(() => checkUserNamespacesAllowed((p) => (p.endsWith("max_user_namespaces") ? "15000\n" : undefined)));
  t.match(explainUserNsFailure("unable to start container process: clone (new namespaces): operation not permitted"), /this host does not let your user create a user namespace/);
  const rl = { unprivileged: true, cgroups: true, inUserNs: false, euid: 1001, egid: 1001 };
  const e = explainRootlessError(new TsrunError("cannot create state directory /run/tsrun/x: permission denied", { access: { what: "state-dir", errno: "EACCES" } }), rl) as Error;
  t.match(e.message, /set XDG_RUNTIME_DIR to a directory you own, or pass --root DIR/);
  const words = explainRootlessError(new TsrunError("cannot create state directory /run/tsrun/x: permission denied"), rl);
  t.notMatch((words as Error).message, /XDG_RUNTIME_DIR/, "decided by what failed, not by the words");
  const clone = { code: ErrorCode.CLONE, errnum: 1, stage: 0, path: "", value: 0x10000000n, detail: "" };
  const c = explainRootlessError(new TsrunError("unable to start container process: clone (new namespaces): operation not permitted", { failure: clone }), rl) as Error;
  t.match(c.message, /this host does not let your user create a user namespace/);
  const same = new TsrunError("container does not exist");
  t.equal(explainRootlessError(same, rl), same, "other errors pass unchanged");
  t.equal(explainRootlessError(new TsrunError("bundle /x: permission denied"), { ...rl, unprivileged: false }) instanceof TsrunError, true);
});

t.test("limits a config asks for (device rules never count)", async (t) => {
  t.same(askedLimits(undefined), []);
  t.same(askedLimits({ devices: [{ allow: false, access: "rwm" }], memory: { limit: 0, kernel: 5 } }), [], "zero and kernel memory do not count");
  t.same(askedLimits({ pids: { limit: 0 } }).map((l) => l.setting), ["pids.limit"], "pids.limit 0 is a limit (runtime-spec 1.3.0)");
  t.same(askedLimits({ pids: { limit: -1 } }), [], "a negative pids.limit is unlimited");
  t.same(
    askedLimits({ memory: { limit: 1 << 20 }, pids: { limit: 10 }, cpu: { cpus: "0" }, blockIO: { weight: 100 }, unified: { "memory.high": "1M" } }).map((l) => `${l.setting}=${l.controller}`),
    ["memory.limit=memory", "cpu.cpus=cpuset", "pids.limit=pids", "blockIO.weight=blkio", 'unified."memory.high"=unified:memory'],
  );
});

t.test("pruning the cgroup a rootless container can have", async (t) => {
  const state: CgroupState = {
    version: "hybrid",
    v1: { memory: "/sys/fs/cgroup/memory/c", pids: "/sys/fs/cgroup/pids/mine/c", cpu: "/sys/fs/cgroup/cpu,cpuacct/c", cpuacct: "/sys/fs/cgroup/cpu,cpuacct/c" },
    v2: "/sys/fs/cgroup/unified/deleg/c",
    created: [],
  };
  const writable = new Set(["/sys/fs/cgroup/pids/mine", "/sys/fs/cgroup/unified/deleg", "/sys/fs/cgroup/unified/deleg/cgroup.procs"]);
  const access = (own?: string): CgroupAccess => ({
    writable: (p) => (writable.has(p) ? undefined : "permission denied"),
    exists: (p) => ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids/mine", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/unified/deleg", "/sys/fs/cgroup/unified", "/sys/fs/cgroup", "/sys/fs", "/sys", "/"].includes(p),
    ownV2Dir: () => own,
  });
  const opts = { explicitPath: false, uid: 1001 };
  const pruned = pruneRootlessCgroup(state, { devices: [{ allow: false, access: "rwm" }] }, opts, access("/sys/fs/cgroup/unified/deleg/caller"));
  t.same(pruned.v1, { pids: "/sys/fs/cgroup/pids/mine/c" }, "only the creatable v1 dir stays");
  t.equal(pruned.v2, "/sys/fs/cgroup/unified/deleg/c", "cgroup2: creatable and joinable from inside the subtree");
  t.equal(pruneRootlessCgroup(state, undefined, opts, access("/other")).v2, undefined, "cgroup2 from outside the subtree: cannot move processes in");
  t.same(pruneRootlessCgroup(state, { pids: { limit: 5 } }, opts, access("/sys/fs/cgroup/unified/deleg/caller")).v1.pids, "/sys/fs/cgroup/pids/mine/c", "a limit in a usable hierarchy is fine");
  t.throws(() => pruneRootlessCgroup(state, { memory: { limit: 1 << 20 }, cpu: { shares: 512 } }, opts, access()), {
    message: /^rootless: linux\.resources\.memory\.limit: cannot be applied without a memory cgroup \(cannot create \/sys\/fs\/cgroup\/memory\/c: \/sys\/fs\/cgroup\/memory: permission denied\): remove the setting, or delegate it to uid 1001 .*\nrootless: linux\.resources\.cpu\.shares: cannot be applied without a cpu cgroup/,
  });
  t.throws(() => pruneRootlessCgroup(state, undefined, { ...opts, explicitPath: true }, access()), { message: /^rootless: linux\.cgroupsPath: cannot create \/sys\/fs\/cgroup\/memory\/c/ });
  const allowed: CgroupAccess = { writable: () => undefined, exists: () => true, ownV2Dir: () => undefined };
  t.equal(pruneRootlessCgroup(state, { memory: { limit: 1 } }, opts, allowed), state, "a delegated cgroup is kept whole");
  t.equal(devicesApplicable(true, true, false), false);
  t.equal(devicesApplicable(true, false, false), true, "root with --rootless=true");
  t.equal(devicesApplicable(false, true, false), true);
  t.same(withoutDevices({ devices: [], pids: { limit: 1 } }), { pids: { limit: 1 } });
});

t.test("cgroup paths: runc's rootless default", async (t) => {
  const h = { v1: [{ controllers: ["memory"], mountPoint: "/sys/fs/cgroup/memory", root: "/" }], v2: { mountPoint: "/sys/fs/cgroup/unified", root: "/" } };
  const self = { v1: { memory: "/user/1001" }, v2: "/user/1001/session" };
  const s = planPaths({ id: "c", rootless: true }, h, self);
  t.equal(s.v1.memory, "/sys/fs/cgroup/memory/user/1001/c", "v1: below the caller's own cgroup");
  t.equal(s.v2, "/sys/fs/cgroup/unified/user/1001/c", "cgroup2: below the parent of the caller's cgroup");
  t.equal(planPaths({ id: "c" }, h, self).v2, "/sys/fs/cgroup/unified/tsrun/c", "not rootless: /tsrun/<id>");
  t.equal(planPaths({ id: "c", rootless: true, cgroupsPath: "/x/c" }, h, self).v2, "/sys/fs/cgroup/unified/x/c", "an explicit path wins");
});

