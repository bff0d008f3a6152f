/**
 * The helper in create mode against a real busybox rootfs (needs root and build/tsrun-helper).
 * Run: node_modules/.bin/tap tests/helper/create.test.ts
 */
import t from "tap";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { Buffer } from "node:buffer";
import {
  HELPER,
  MS,
  CAP,
  DEFAULT_CAPS,
  basePlan,
  capMaskHex,
  cleanup,
  hostMountsUnder,
  makeRootfs,
  pidAlive,
  runHelper,
  startFifo,
  tempDir,
  waitGone,
  killPid,
  proc,
  namespaces,
  mnt,
  capMask,
  type PlanOver,
} from "./harness.ts";
import { toHelperFrame } from "../../src/boundary/frames.ts";
import { ErrorCode, Launch, type CreatePlan } from "../../src/boundary/gen/helper.ts";
import { CLONE_FLAGS } from "../../src/linux/namespaces.ts";

if (process.getuid?.() !== 0 || !fs.existsSync(HELPER)) {
  t.plan(0, "needs root and build/tsrun-helper (make build/tsrun-helper)");
  process.exit(0);
}

const dir = tempDir();
const rootfs = makeRootfs(dir);
t.teardown(async () => {
  await cleanup(dir);
});

let fifoN = 0;
function fifo(): string {
  const f = path.join(dir, `exec.fifo.${fifoN++}`);
  return f;
}

/** Create in foreground mode, start through the fifo, return the finished run. */
async function run(args: string[], over: PlanOver = {}, mutate?: (p: CreatePlan) => void) {
  const f = fifo();
  const plan = basePlan(rootfs, args, { execFifo: f, ...over });
  mutate?.(plan);
  return runHelper(plan, { onReady: () => startFifo(f) });
}

t.test("a container runs, with hostname, ids, umask, cwd, /dev, /proc", async (t) => {
  const r = await run(
    ["sh", "-c", "hostname; id; umask; pwd; ls /dev | tr '\\n' ' '; echo; grep ' /proc ' /proc/mounts; echo $$"],
    { debug: true },
    (p) => {
      proc(p).umask = 0o027;
      proc(p).cwd = "/tmp";
    },
  );
  t.equal(r.code, 0, "helper exits 0");
  t.equal(r.exit, 0, "exit 0 reported");
  t.notOk(r.error, "no error");
  const out = r.stdout.split("\n");
  t.equal(out[0], "tsrun-test");
  t.equal(out[1], "uid=0 gid=0");
  t.equal(out[2], "0027");
  t.equal(out[3], "/tmp");
  for (const d of ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd", "stdin", "stdout", "stderr"]) {
    t.match(out[4], new RegExp(`(^| )${d}( |$)`), `/dev/${d}`);
  }
  t.match(out[5], /^proc \/proc proc rw,nosuid,nodev,noexec/);
  t.equal(out[6], "1", "the container process is pid 1 in its pid namespace");
  t.ok(r.pid && r.pid > 1, "pid line with the host pid");
  const order = r.lines.map((l) => l.split(" ")[0]);
  t.ok(order.indexOf("pid") < order.indexOf("ready"), "pid before ready");
  t.equal(order.at(-1), "exit");
  const stages = r.lines.filter((l) => l.startsWith("debug ")).map((l) => l.replace(/^debug [\d.]+ /, ""));
  for (const s of ["plan read (create)", "init: mounts done", "init: pivot done", "init: ready"]) t.ok(stages.includes(s), `debug stage ${s}`);
});

t.test("devices: modes, numbers, owners; symlinks", async (t) => {
  const r = await run(["true"], {}, (p) => {
    p.devices.push({ path: "/dev/fuse-like", mode: 0o020000 | 0o600, major: 10, minor: 229, uid: 12, gid: 34, bindFromHost: false });
    p.devices.push({ path: "/dev/sub/pipe", mode: 0o010000 | 0o640, major: 0, minor: 0, uid: 0, gid: 0, bindFromHost: false });
    proc(p).args = ["sh", "-c", "ls -ln /dev/null /dev/zero /dev/tty /dev/fuse-like /dev/sub/pipe; readlink /dev/fd; readlink /dev/ptmx; echo x > /dev/null && echo ok"];
  });
  t.equal(r.exit, 0, r.error ?? r.stderr);
  t.match(r.stdout, /crw-rw-rw- +1 0 +0 +1, +3 .* \/dev\/null/);
  t.match(r.stdout, /crw-rw-rw- +1 0 +0 +1, +5 .* \/dev\/zero/);
  t.match(r.stdout, /crw-rw-rw- +1 0 +0 +5, +0 .* \/dev\/tty/);
  t.match(r.stdout, /crw------- +1 12 +34 +10, +229 .* \/dev\/fuse-like/);
  t.match(r.stdout, /prw-r----- +1 0 +0 .* \/dev\/sub\/pipe/);
  t.match(r.stdout, /\/proc\/self\/fd\npts\/ptmx\nok/);
});

t.test("on the rootfs's own /dev a missing device is made, the same device already there is kept, anything else is an error", async (t) => {
  const d = tempDir();
  t.teardown(() => cleanup(d));
  const rf = makeRootfs(d);
  execFileSync("mknod", ["-m", "600", path.join(rf, "dev/zero"), "c", "1", "5"]);
  // no /dev tmpfs: the devices are made in the rootfs's own /dev
  const plan = (f: string) => {
    const p = basePlan(rf, ["sh", "-c", "ls -ln /dev/null /dev/zero"], { execFifo: f });
    p.mounts = p.mounts.filter((m) => !m.destination.startsWith("/dev"));
    p.symlinks = [];
    return p;
  };
  const f = path.join(d, "fifo");
  const r = await runHelper(plan(f), { onReady: () => startFifo(f) });
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /^crw-rw-rw- +1 0 +0 +1, +3 .* \/dev\/null\n/m, "the missing device is made");
  t.match(r.stdout, /^crw------- +1 0 +0 +1, +5 .* \/dev\/zero\n/m, "the device already there is kept as it is (as runc)");

  // runtime-spec config-linux.md: a file at the path that is not the requested device is an error
  fs.rmSync(path.join(rf, "dev/null"));
  fs.writeFileSync(path.join(rf, "dev/null"), "not a device");
  const f2 = path.join(d, "fifo2");
  const r2 = await runHelper(plan(f2), { onReady: () => startFifo(f2) });
  t.equal(r2.error, "device /dev/null: a regular file is there, not the device asked for, and it is not tsrun's to replace");
  t.equal(fs.readFileSync(path.join(rf, "dev/null"), "utf8"), "not a device", "and it is left as it is");
});

t.test("capabilities, user, groups, no_new_privs", async (t) => {
  const r = await run(["sh", "-c", "id; grep -E '^(Cap|NoNewPrivs)' /proc/self/status"], {}, (p) => {
    proc(p).uid = 1000;
    proc(p).gid = 1001;
    proc(p).additionalGids = [10, 20];
    proc(p).capabilities = {
      bounding: capMask(DEFAULT_CAPS),
      effective: capMask([CAP.NET_BIND_SERVICE]),
      inheritable: capMask([CAP.NET_BIND_SERVICE]),
      permitted: capMask([CAP.NET_BIND_SERVICE, CAP.KILL]),
      ambient: capMask([CAP.NET_BIND_SERVICE]),
    };
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /^uid=1000 gid=1001 groups=10,20\n/);
  const nbs = capMaskHex([CAP.NET_BIND_SERVICE]);
  // After execve as non-root: P' = ambient (+ inheritable & file inheritable = 0), E' = ambient.
  t.match(r.stdout, new RegExp(`CapInh:\\t${nbs}`));
  t.match(r.stdout, new RegExp(`CapPrm:\\t${nbs}`));
  t.match(r.stdout, new RegExp(`CapEff:\\t${nbs}`));
  t.match(r.stdout, new RegExp(`CapBnd:\\t${capMaskHex(DEFAULT_CAPS)}`));
  t.match(r.stdout, new RegExp(`CapAmb:\\t${nbs}`));
  t.match(r.stdout, /NoNewPrivs:\t1/);
});

t.test("root keeps the bounding set as its capabilities; nnp off", async (t) => {
  const r = await run(["sh", "-c", "grep -E '^(Cap|NoNewPrivs)' /proc/self/status"], {}, (p) => {
    proc(p).noNewPrivileges = false;
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, new RegExp(`CapEff:\\t${capMaskHex(DEFAULT_CAPS)}`));
  t.match(r.stdout, new RegExp(`CapBnd:\\t${capMaskHex(DEFAULT_CAPS)}`));
  t.match(r.stdout, /NoNewPrivs:\t0/);
});

t.test("a capability the helper does not hold is named in the error", async (t) => {
  // CAP_SYS_RESOURCE is missing from this machine's bounding set (design notes, section 6).
  const have = BigInt("0x" + fs.readFileSync("/proc/self/status", "utf8").match(/CapBnd:\t(\w+)/)![1]);
  if (have & (1n << BigInt(CAP.SYS_RESOURCE))) {
    t.comment("this machine has CAP_SYS_RESOURCE");
    return;
  }
  const caps = [...DEFAULT_CAPS, CAP.SYS_RESOURCE];
  const r = await run(["true"], {}, (p) => {
    proc(p).uid = 1000;
    proc(p).capabilities = { bounding: capMask(caps), effective: capMask(caps), inheritable: 0n, permitted: capMask(caps), ambient: 0n };
  });
  t.equal(r.error, "capability CAP_SYS_RESOURCE: operation not permitted");
  t.not(r.code, 0);
  t.ok(r.pid && (await waitGone(r.pid)), "the init is gone");
});

t.test("rlimits", async (t) => {
  const r = await run(["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"], {}, (p) => {
    proc(p).rlimits = [
      { resource: 7, soft: 1024n, hard: 2048n },
      { resource: 4, soft: 0n, hard: 0n },
    ];
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.equal(r.stdout, "1024\n2048\n0\n");
});

t.test("domainname and oom_score_adj", async (t) => {
  const r = await run(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname /proc/self/oom_score_adj"], { hostname: "h1", domainname: "example.org" }, (p) => {
    proc(p).oomScoreAdj = 432;
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.equal(r.stdout, "h1\nexample.org\n432\n");
});

t.test("an execve that fails after start: message on stderr, 127 (126 for EACCES)", async (t) => {
  fs.writeFileSync(path.join(rootfs, "garbage"), "\x7fELF-not-really", { mode: 0o755 });
  fs.chmodSync(path.join(rootfs, "garbage"), 0o755);
  const r = await run(["/garbage"]);
  t.equal(r.exit, 127, r.error ?? "");
  t.equal(r.stderr, "tsrun-helper: the container process could not start: EXECVE /garbage: ENOEXEC\n", "no one reads frames any more: names, not words");
  // a mount with noexec: executable bits, but execve says EACCES
  const src = path.join(dir, "noexec-src");
  fs.mkdirSync(src, { recursive: true });
  fs.copyFileSync("/bin/busybox", path.join(src, "bb"));
  fs.chmodSync(path.join(src, "bb"), 0o755);
  const r2 = await run(["/nx/bb", "true"], {}, (p) => {
    p.mounts.push(mnt("/nx", "", src, MS.BIND, "", { remountFlags: MS.NOEXEC }));
  });
  // faccessat(X_OK) already fails on a noexec mount: reported before ready, as runc does
  t.equal(r2.error, 'exec: "/nx/bb": permission denied');
});

t.test("the foreground helper ignores the signals TypeScript forwards", async (t) => {
  const f = fifo();
  const plan = basePlan(rootfs, ["sh", "-c", "sleep 0.3; echo survived"], { execFifo: f });
  const r = await runHelper(plan, {
    onReady: (res) => {
      startFifo(f);
      // the helper is the container init's parent
      const helper = Number(fs.readFileSync(`/proc/${res.pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ")[1]);
      for (const sig of ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGPIPE"] as const) process.kill(helper, sig);
    },
  });
  t.equal(r.code, 0);
  t.equal(r.signal, null);
  t.equal(r.exit, 0);
  t.equal(r.stdout, "survived\n");
});

t.test("exit status and signal deaths are reported", async (t) => {
  const a = await run(["sh", "-c", "exit 7"]);
  t.equal(a.exit, 7);
  t.equal(a.code, 0, "the helper itself exits 0");
  // pid 1 of a pid namespace cannot SIGKILL itself: run without one for this case
  const b = await run(["sh", "-c", "kill -9 $$"], { namespaces: namespaces(["mount", "uts"]) });
  t.equal(b.exit, 137);
});

t.test("args[0] lookup errors use runc's words", async (t) => {
  fs.writeFileSync(path.join(rootfs, "noexec"), "#!/bin/sh\n", { mode: 0o644 });
  fs.chmodSync(path.join(rootfs, "noexec"), 0o644);
  const cases: [string[], string][] = [
    [["nosuchcmd"], 'exec: "nosuchcmd": executable file not found in $PATH'],
    [["/bin/nosuch"], 'exec: "/bin/nosuch": stat /bin/nosuch: no such file or directory'],
    [["/noexec"], 'exec: "/noexec": permission denied'],
    [["noexec"], 'exec: "noexec": executable file not found in $PATH'],
    [["/tmp"], 'exec: "/tmp": is a directory'],
  ];
  for (const [args, want] of cases) {
    const r = await run(args);
    t.equal(r.error, want, args[0]);
    t.equal(r.code, 1, "helper exits 1");
    t.equal(r.lines.filter((l) => l.startsWith("error ")).length, 1, "exactly one error line");
    t.notOk(r.lines.includes("ready"), "never ready");
    t.ok(r.pid && (await waitGone(r.pid)), "the init was killed");
  }
  // relative path lookup uses the plan's PATH
  const r = await run(["busybox", "echo", "found"], {}, (p) => (proc(p).env = ["PATH=/bin"]));
  t.equal(r.stdout, "found\n");
});

t.test("a missing cwd is created (as runc); a cwd that is a file is an error", async (t) => {
  const r = await run(["pwd"], {}, (p) => (proc(p).cwd = "/new/cwd/dir"));
  t.equal(r.exit, 0, r.error ?? "");
  t.equal(r.stdout, "/new/cwd/dir\n");
  t.ok(fs.statSync(path.join(rootfs, "new/cwd/dir")).isDirectory());
  fs.writeFileSync(path.join(rootfs, "afile"), "");
  const bad = await run(["true"], {}, (p) => (proc(p).cwd = "/afile"));
  t.equal(bad.error, 'chdir to cwd ("/afile") set in config.json failed: not a directory');
});

t.test("a mount error is reported with errno text and nothing is left", async (t) => {
  const r = await run(["true"], {}, (p) => {
    p.mounts.push(mnt("/mnt", "nosuchfs", "none", 0));
  });
  t.equal(r.error, "mount none on /mnt: no such device");
  t.equal(r.code, 1);
  t.ok(r.pid && (await waitGone(r.pid)));
  t.same(hostMountsUnder(dir), []);
});

t.test("sysctls are written in the container's namespaces", async (t) => {
  const host = fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
  const r = await run(["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni"], {}, (p) => {
    p.sysctls = [
      { path: "net/ipv4/ip_forward", value: host === "1" ? "0" : "1" },
      { path: "kernel/shmmni", value: "1234" },
    ];
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.equal(r.stdout, `${host === "1" ? "0" : "1"}\n1234\n`);
  t.equal(fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim(), host, "host value untouched");
  const bad = await run(["true"], {}, (p) => (p.sysctls = [{ path: "net/nosuch/key", value: "1" }]));
  t.equal(bad.error, "sysctl net.nosuch.key: open /proc/sys/net/nosuch/key: no such file or directory");
});

t.test("read-only root, readonly paths, masked paths", async (t) => {
  const r = await run(
    [
      "sh",
      "-c",
      [
        "touch /x 2>&1 | head -1",
        "touch /proc/sys/x 2>&1 | head -1",
        "grep ' /proc/sys ' /proc/mounts",
        "wc -c < /proc/timer_list",
        "ls /proc/driver | wc -l",
        "grep ' /proc/driver ' /proc/mounts",
        "touch /proc/driver/x 2>&1 | head -1",
        "echo x > /tmp/still-writable-tmpfs-or-not 2>&1 | head -1",
      ].join("; "),
    ],
    { readonlyRoot: true },
    (p) => {
      p.readonlyPaths = ["/proc/sys", "/proc/bus", "/proc/does-not-exist"];
      // /proc/kcore and /proc/scsi do not exist on every kernel: missing paths are skipped
      p.maskedPaths = ["/proc/kcore", "/proc/scsi", "/proc/nope", "/proc/timer_list", "/proc/driver"];
    },
  );
  t.equal(r.exit, 0, r.error ?? "");
  const out = r.stdout.split("\n");
  t.match(out[0], /Read-only file system/);
  t.match(out[1], /Read-only file system|Permission denied|No such file/);
  t.match(out[2], /^proc \/proc\/sys proc ro,nosuid,nodev,noexec/);
  t.equal(out[3], "0", "/proc/timer_list is masked by /dev/null");
  t.equal(out[4], "0", "/proc/driver is masked by an empty tmpfs");
  t.match(out[5], /^tmpfs \/proc\/driver tmpfs ro[, ]/);
  t.match(out[6], /Read-only file system/);
});

t.test("masking refuses a /dev/null that is not the null device", async (t) => {
  const d = tempDir();
  t.teardown(() => cleanup(d));
  const rf = makeRootfs(d);
  fs.writeFileSync(path.join(rf, "dev/null"), "");
  fs.symlinkSync("/proc/sys/kernel/core_pattern", path.join(rf, "dev/zero-link"));
  const f = path.join(d, "fifo");
  const plan = basePlan(rf, ["true"], { execFifo: f });
  plan.mounts = plan.mounts.filter((m) => !m.destination.startsWith("/dev"));
  plan.devices = [];
  plan.symlinks = [];
  plan.maskedPaths = ["/proc/kcore"];
  const r = await runHelper(plan, { onReady: () => startFifo(f) });
  t.equal(r.error, "masked paths: /dev/null in the container is not the null device (character device 1:3)");
  // a symlink /dev/null -> somewhere is refused as well (not followed)
  fs.rmSync(path.join(rf, "dev/null"));
  fs.symlinkSync("/proc/sys/kernel/core_pattern", path.join(rf, "dev/null"));
  const f2 = path.join(d, "fifo2");
  const r2 = await runHelper({ ...plan, execFifo: f2 }, { onReady: () => startFifo(f2) });
  t.match(r2.error, /^masked paths: (open \/dev\/null in the container: too many levels of symbolic links|\/dev\/null in the container is not the null device)/);
});

t.test("rootfs propagation shared and private work", async (t) => {
  for (const prop of [MS.SHARED | MS.REC, MS.PRIVATE | MS.REC, MS.SLAVE]) {
    const r = await run(["true"], { rootfsPropagation: prop });
    t.equal(r.exit, 0, `propagation 0x${prop.toString(16)}: ${r.error ?? ""}`);
  }
  t.same(hostMountsUnder(dir), [], "nothing propagated to the host");
});

t.test("bind mounts with remount flags, propagation and recursive attributes", async (t) => {
  const src = path.join(dir, "bindsrc");
  fs.mkdirSync(path.join(src, "sub"), { recursive: true });
  fs.writeFileSync(path.join(src, "file"), "hello\n");
  const r = await run(
    ["sh", "-c", "cat /data/file /etc/hostfile; touch /data/x 2>&1 | head -1; grep -E ' /(data|etc/hostfile|rdata/deep/er) ' /proc/self/mountinfo"],
    {},
    (p) => {
      p.mounts.push({
        source: src,
        destination: "/data",
        fstype: "",
        flags: MS.BIND | MS.REC,
        remountFlags: MS.RDONLY | MS.NOSUID | MS.NODEV,
        propagation: [MS.PRIVATE],
        recAttrSet: 0,
        recAttrClr: 0,
        data: "",
        destIsFile: false, copyUp: false, idmap: undefined, detachedSource: undefined, readonlyLate: false,
      });
      p.mounts.push({
        source: path.join(src, "file"),
        destination: "/etc/hostfile",
        fstype: "",
        flags: MS.BIND,
        remountFlags: 0,
        propagation: [],
        recAttrSet: 0,
        recAttrClr: 0,
        data: "",
        destIsFile: true, copyUp: false, idmap: undefined, detachedSource: undefined, readonlyLate: false,
      });
      p.mounts.push({
        source: src,
        destination: "/rdata/deep/er",
        fstype: "",
        flags: MS.BIND | MS.REC,
        remountFlags: 0,
        propagation: [],
        recAttrSet: 0x1 /* MOUNT_ATTR_RDONLY */,
        recAttrClr: 0,
        data: "",
        destIsFile: false, copyUp: false, idmap: undefined, detachedSource: undefined, readonlyLate: false,
      });
    },
  );
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /^hello\nhello\n.*Read-only file system/);
  t.match(r.stdout, / \/data ro,nosuid,nodev/);
  t.match(r.stdout, / \/rdata\/deep\/er ro[, ]/);
  t.ok(fs.existsSync(path.join(rootfs, "etc/hostfile")), "file mount point created as a file");
  t.ok(fs.statSync(path.join(rootfs, "rdata/deep/er")).isDirectory(), "nested directories created");
});

t.test("no pivot: MS_MOVE + chroot", async (t) => {
  const r = await run(["sh", "-c", "ls / | tr '\\n' ' '; cat /proc/self/mountinfo | wc -l"], { noPivot: true });
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /(^| )bin .*dev etc .*proc /);
});

t.test("detached create: the helper exits after ready, the init waits on the fifo holding no socket", async (t) => {
  const f = fifo();
  const out = path.join(dir, "detached-out");
  const plan = basePlan(rootfs, ["sh", "-c", `echo started > /tmp/marker`], { execFifo: f, foreground: false });
  const r = await runHelper(plan);
  t.equal(r.code, 0);
  t.same(r.lines, [`pid ${r.pid}`, "ready"]);
  const pid = r.pid!;
  t.ok(pidAlive(pid), "init alive after the helper exited");
  const fds = fs.readdirSync(`/proc/${pid}/fd`);
  const targets = fds.map((fd) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
  t.notOk(targets.some((x) => x.startsWith("socket:") && !["0", "1", "2"].includes(fds[targets.indexOf(x)]!)), `no socket beyond stdio: ${targets.join(" ")}`);
  t.ok(targets.some((x) => x.endsWith(path.basename(f))), "holds exec.fifo");
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  t.match(stat, /^\d+ \(.*\) S /, "sleeping (blocked on the fifo)");
  const exe = fs.readlinkSync(`/proc/${pid}/exe`);
  t.match(exe, /^\/memfd:tsrun-helper/, "runs from the sealed memfd copy");
  t.throws(() => fs.openSync(`/proc/${pid}/exe`, "r+"), "its exe cannot be opened for writing");
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(status.match(/VmRSS:\s+(\d+)/)![1]);
  t.ok(rss < 4096, `waiting init RSS ${rss} kB`);
  startFifo(f);
  t.ok(await waitGone(pid), "init ran and exited");
  t.equal(fs.readFileSync(path.join(rootfs, "tmp/marker"), "utf8"), "started\n");
  fs.rmSync(path.join(rootfs, "tmp/marker"));
  void out;
});

t.test("a create whose fifo is never written can be killed; start on a dead init gives ENXIO", async (t) => {
  const f = fifo();
  const r = await runHelper(basePlan(rootfs, ["true"], { execFifo: f, foreground: false }));
  t.equal(r.code, 0);
  killPid(r.pid!);
  t.ok(await waitGone(r.pid!));
  t.throws(() => startFifo(f), { code: "ENXIO" });
});

t.test("preserved fds pass, every other inherited fd is closed", async (t) => {
  const extra = fs.openSync(path.join(dir, "preserved"), "w");
  t.teardown(() => fs.closeSync(extra));
  const f = fifo();
  const plan = basePlan(rootfs, ["sh", "-c", "echo via-fd-3 >&3; ls /proc/self/fd | tr '\\n' ' '"], { execFifo: f, preserveFds: 1 });
  const r = await runHelper(plan, { extraFds: [extra], onReady: () => startFifo(f) });
  t.equal(r.exit, 0, r.error ?? "");
  t.equal(r.stdout, "0 1 2 3 4 ", "0-2, the preserved fd 3, and ls's own directory fd");
  t.equal(fs.readFileSync(path.join(dir, "preserved"), "utf8"), "via-fd-3\n");
});

t.test("a cwd reached through a leaked host directory fd is refused (CVE-2024-21626 class)", async (t) => {
  const hostDir = fs.openSync(dir, "r");
  t.teardown(() => fs.closeSync(hostDir));
  const f = fifo();
  const plan = basePlan(rootfs, ["pwd"], { execFifo: f, preserveFds: 1 });
  proc(plan).cwd = "/proc/self/fd/3";
  const r = await runHelper(plan, { extraFds: [hostDir], onReady: () => startFifo(f) });
  t.equal(r.error, "current working directory is outside of container mount namespace root -- possible container breakout detected");
  t.notOk(r.stdout.includes(dir));
});

t.test("user namespace: maps written, root inside, devices bound from the host", async (t) => {
  const d = tempDir();
  t.teardown(() => cleanup(d));
  const rf = makeRootfs(d);
  fs.chmodSync(d, 0o755);
  const f = path.join(d, "fifo");
  const plan = basePlan(rf, ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id; ls -ln /dev/null; stat -c %u /proc/1/root/."], {
    execFifo: f,
    namespaces: namespaces(["user", "pid", "network", "ipc", "uts", "mount", "cgroup"]),
    uidMappings: [{ containerId: 0, hostId: 100000, size: 65536 }],
    gidMappings: [{ containerId: 0, hostId: 100000, size: 65536 }],
  });
  plan.devices = plan.devices.map((x) => ({ ...x, bindFromHost: true }));
  const r = await runHelper(plan, { onReady: () => startFifo(f) });
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /^ +0 +100000 +65536\n +0 +100000 +65536\nuid=0 gid=0\n/);
  t.match(r.stdout, /crw-rw-rw- +1 65534 +65534 +1, +3 .*\/dev\/null/, "host /dev/null bound (owned by an unmapped id)");
});

t.test("time namespace offsets", async (t) => {
  const r = await run(["cat", "/proc/uptime"], {
    namespaces: namespaces(["pid", "mount", "time"]),
    hostname: undefined,
    timeOffsets: [{ clockId: 7, secs: 86400n * 1000n, nanosecs: 0 }],
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.ok(Number(r.stdout.split(" ")[0]) > 86400 * 1000, `uptime ${r.stdout.trim()}`);
});

t.test("cgroup placement before the process runs", async (t) => {
  const base = "/sys/fs/cgroup/pids";
  if (!fs.existsSync(path.join(base, "cgroup.procs"))) {
    t.comment("no pids cgroup v1 hierarchy");
    return;
  }
  const cg = path.join(base, `tsrun-helper-test-${process.pid}`);
  fs.mkdirSync(cg);
  t.teardown(() => fs.rmdirSync(cg));
  const r = await run(["sh", "-c", "cat /proc/self/cgroup | grep pids"], {
    cgroupProcs: [path.join(cg, "cgroup.procs")],
  });
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, new RegExp(`pids:/tsrun-helper-test-${process.pid}`));
  const r2 = await run(["sh", "-c", "cat /proc/self/cgroup | grep pids"], {
    cgroupProcs: [path.join(cg, "cgroup.procs")],
    namespaces: namespaces(["pid", "mount", "cgroup"]),
    hostname: undefined,
  });
  t.equal(r2.exit, 0, r2.error ?? "");
  t.match(r2.stdout, /pids:\/\n/, "a new cgroup namespace is rooted at the container's cgroup");
  const bad = await run(["true"], { cgroupProcs: ["/sys/fs/cgroup/pids/nope-tsrun/cgroup.procs"] });
  t.equal(bad.error, "open /sys/fs/cgroup/pids/nope-tsrun/cgroup.procs: no such file or directory");
});

t.test("joining a namespace by path", async (t) => {
  // join the network namespace of a detached init
  const f = fifo();
  const a = await runHelper(basePlan(rootfs, ["true"], { execFifo: f, foreground: false }));
  t.equal(a.code, 0);
  const pid = a.pid!;
  const netns = fs.readlinkSync(`/proc/${pid}/ns/net`);
  const r = await runHelper(
    basePlan(rootfs, ["true"], {
      execFifo: fifo(),
      namespaces: [...namespaces(["pid", "mount"]), { cloneFlag: CLONE_FLAGS.network, path: `/proc/${pid}/ns/net` }],
      hostname: undefined,
      foreground: false,
    }),
  );
  t.equal(r.code, 0, r.error ?? "");
  t.equal(fs.readlinkSync(`/proc/${r.pid}/ns/net`), netns, "the second init is in the first one's netns");
  killPid(pid);
  killPid(r.pid!);
  await waitGone(pid);
  await waitGone(r.pid!);
  const bad = await run(["true"], { namespaces: [{ cloneFlag: CLONE_FLAGS.mount, path: "" }, { cloneFlag: CLONE_FLAGS.network, path: "/proc/nonexistent/ns/net" }], hostname: undefined });
  t.equal(bad.error, "open network namespace /proc/nonexistent/ns/net: no such file or directory");
});

/** A varint, as protobuf writes it. */
function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function frame(body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(body.length);
  return Buffer.concat([len, body]);
}

t.test("plan errors: frames the helper refuses, each with a Failure, never half carried out", async (t) => {
  const plan = basePlan(rootfs, ["true"]);
  const good = toHelperFrame({ msg: { $case: "create", value: plan } });
  const body = good.subarray(4);
  // a field this helper does not know, at the top and deep inside (varint field 1000 = 1)
  const unknown = Buffer.concat([varint((1000 << 3) | 0), varint(1)]);
  let r = await runHelper(null, { raw: frame(Buffer.concat([body, unknown])) });
  t.equal(r.failure?.code, ErrorCode.UNKNOWN_FIELD);
  t.equal(r.error, "plan: ToHelper field 1000 is unknown to this tsrun-helper (it belongs to another version of tsrun)");
  t.equal(r.code, 1);
  t.notOk(r.pid, "nothing was started");
  // ToHelper.create (field 1) = a CreatePlan holding only its launch (field 1), which carries the unknown field
  const launchBytes = Buffer.concat([Buffer.from(Launch.encode(plan.launch!).finish()), unknown]);
  const createBody = Buffer.concat([Buffer.from([0x0a]), varint(launchBytes.length), launchBytes]);
  r = await runHelper(null, { raw: frame(Buffer.concat([Buffer.from([0x0a]), varint(createBody.length), createBody])) });
  t.equal(r.error, "plan: Launch field 1000 is unknown to this tsrun-helper (it belongs to another version of tsrun)", "inside a nested message too");
  r = await runHelper(null, { raw: frame(Buffer.from([0xff, 0xff, 0xff])) });
  t.equal(r.error, "plan: a message of 3 bytes does not decode");
  const huge = Buffer.alloc(4);
  huge.writeUInt32LE(0xffffffff);
  r = await runHelper(null, { raw: huge });
  t.equal(r.error, "plan: 4294967295 bytes is more than the helper reads");
  r = await runHelper(null, { raw: toHelperFrame({ msg: { $case: "hookAnswer", value: { proceed: true } } }) });
  t.equal(r.error, "plan: message 3 where it does not belong", "a hook answer cannot start the helper");
  // truncated: the helper sees the end of input
  r = await runHelper(null, { raw: good.subarray(0, 30), endAfterPlan: true });
  t.equal(r.error, "read the plan: it ended early");
});

t.test("killing the helper while the init is being set up kills the init too", async (t) => {
  const f = fifo();
  const plan = basePlan(rootfs, ["true"], { execFifo: f, debug: true, foreground: false });
  // many mounts keep the child busy for a while after "namespaces ready"
  for (let i = 0; i < 300; i++) {
    plan.mounts.push(mnt(`/tmp/m${i}`, "tmpfs", "tmpfs", 0, "size=4k"));
  }
  const r = await runHelper(plan, {
    onLine: (line, _res, helper) => {
      if (line.endsWith("init: namespaces ready")) helper.kill("SIGKILL");
    },
  });
  t.equal(r.signal, "SIGKILL");
  t.notOk(r.lines.includes("ready"), "killed before ready");
  t.ok(r.pid && (await waitGone(r.pid)), "the half-made init died with the helper");
  t.same(hostMountsUnder(dir), []);
});

t.test("no mounts leaked on the host", async (t) => {
  t.same(hostMountsUnder(dir), []);
  const mi = fs.readFileSync("/proc/self/mountinfo", "utf8");
  t.notMatch(mi, /tsrun-helper-test/);
});
