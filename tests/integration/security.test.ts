// Process security from the inside: seccomp profiles, the default `tsrun spec` config's
// confinement, container id rules, and fds that must not leak into the container.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { makeBundle, writeConfig, type ConfigObject } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { containerId, testRoot, tsrun, TSRUN } from "../lib/tsrun.ts";
import type { TestLike } from "../lib/context.ts";

function inside(t: TestLike, root: string, script: string, mutate: (c: ConfigObject) => void = () => {}): { code: number; out: string; err: string } {
  const bundle = makeBundle(t, { args: ["sh", "-c", script], config: mutate });
  const r = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

const features = JSON.parse(spawnSync(TSRUN, ["features"], { encoding: "utf8" }).stdout) as {
  linux: { seccomp: { enabled: boolean; archs: string[]; actions: string[] } };
};

/** A Docker-like profile: everything allowed but a few syscalls, which fail with EPERM. */
function dockerLikeProfile(archs: string[]): object {
  return {
    defaultAction: "SCMP_ACT_ALLOW",
    architectures: archs,
    syscalls: [
      { names: ["mount", "umount2", "unshare", "keyctl", "reboot", "mkdirat", "mkdir", "no_such_syscall_xyz"], action: "SCMP_ACT_ERRNO", errnoRet: 1 },
    ],
  };
}

t.test("seccomp", async (t) => {
  leakCheck(t);
  const root = testRoot(t);

  t.test("a Docker-like profile denies what it lists with EPERM and allows the rest", async (t) => {
    const r = inside(t, root, "mkdir /tmp/d 2>&1; unshare -m true 2>&1; echo still running; ls / >/dev/null && echo ls works", (c) => {
      c.linux.seccomp = dockerLikeProfile(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    });
    t.match(r.out, /mkdir: can't create directory '\/tmp\/d': Operation not permitted/);
    t.match(r.out, /unshare: .*Operation not permitted/);
    t.match(r.out, /still running\nls works\n$/);
    t.match(r.err, /no_such_syscall_xyz/, "an unknown syscall name is a warning");
    t.equal(r.code, 0);
  });

  t.test("each architecture `features` lists is known to the helper", async (t) => {
    t.ok(features.linux.seccomp.enabled);
    for (const arch of features.linux.seccomp.archs) {
      const r = inside(t, root, "mkdir /tmp/d 2>&1 | grep -c 'not permitted'", (c) => {
        c.linux.seccomp = dockerLikeProfile(["SCMP_ARCH_X86_64", arch]);
      });
      // libseccomp refuses to mix byte orders in one filter (runc fails the same way): then the
      // error must say so plainly; an unknown name would say "unknown architecture".
      if (r.code === 0) t.equal(r.out, "1\n", arch);
      else t.match(r.err, new RegExp(`^tsrun: unable to start container process: seccomp: add architecture ${arch.slice(10).toLowerCase()}: numerical argument out of domain\n`), arch);
    }
  });

  t.test("defaultAction errno with an allow list, and an argument filter", async (t) => {
    const allow = ["read", "write", "exit_group", "exit", "rt_sigreturn", "brk", "mmap", "munmap", "mprotect", "arch_prctl", "set_tid_address",
      "execve", "getpid", "getppid", "fcntl", "dup2", "dup3", "close", "rt_sigaction", "rt_sigprocmask", "getuid", "geteuid", "uname", "ioctl",
      "wait4", "clone", "fork", "vfork", "openat", "newfstatat", "fstat", "stat", "lstat", "getcwd", "prlimit64", "set_robust_list", "rseq", "futex"];
    const r = inside(t, root, "echo allowed; kill -0 1 2>&1 || echo kill denied", (c) => {
      c.linux.seccomp = {
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrnoRet: 38,
        syscalls: [
          { names: allow, action: "SCMP_ACT_ALLOW" },
          // kill(2) only with signal 0 ... and then denied by the argument filter below.
          { names: ["kill"], action: "SCMP_ACT_ERRNO", errnoRet: 13, args: [{ index: 1, value: 0, op: "SCMP_CMP_EQ" }] },
        ],
      };
    });
    t.match(r.out, /^allowed\n/, r.err);
    t.match(r.out, /Permission denied|kill denied/, "kill(1, 0) hit the argument filter (EACCES)");
  });
});

t.test("the default `tsrun spec` config confines the container", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t);
  const specDir = fs.mkdtempSync(path.join(bundle.dir, "spec-"));
  t.equal(spawnSync(TSRUN, ["spec", "--bundle", specDir]).status, 0);
  const spec = JSON.parse(fs.readFileSync(path.join(specDir, "config.json"), "utf8"));
  spec.root = bundle.config.root;
  spec.process.terminal = false;
  spec.process.env.push(...bundle.config.process.env.filter((e: string) => e.startsWith("TSRUN_TEST_TAG=")));
  spec.process.args = ["sh", "-c", [
    "grep -E '^Cap(Bnd|Eff|Prm|Amb)' /proc/self/status",
    "echo mount=$(mount -t tmpfs none /dev/shm 2>&1)",
    "echo x > /dev/shm/m.ko; echo insmod=$(insmod /dev/shm/m.ko 2>&1)",
    "echo pids=$(ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' ')",
    "echo root=$(touch /x 2>&1)",
    "grep NoNewPrivs /proc/self/status",
  ].join("; ")];
  bundle.config = spec;
  writeConfig(bundle);
  const r = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
  t.equal(r.code, 0, r.stderr);
  // CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10): 0x20000420.
  t.match(r.stdout, /CapPrm:\s+0000000020000420\nCapEff:\s+0000000020000420\nCapBnd:\s+0000000020000420\nCapAmb:\s+0000000000000000\n/, "exactly the listed capabilities");
  t.match(r.stdout, /^mount=.*(permission denied|not permitted)/im, "mount is refused");
  // This kernel may have no module support at all; either way insmod fails and CAP_SYS_MODULE
  // (bit 16) is outside the bounding set checked above.
  t.match(r.stdout, /^insmod=insmod: can't insert/m, "module loading fails");
  const pids = /^pids=(.*)$/m.exec(r.stdout)?.[1]?.trim().split(" ").map(Number) ?? [];
  t.equal(pids[0], 1, "its own pid namespace: the shell is pid 1");
  t.ok(pids.length <= 6 && pids.every((p) => p < 100), `no host pids: ${pids.join(" ")}`);
  t.match(r.stdout, /^root=.*Read-only file system$/m, "the root is read-only");
  t.match(r.stdout, /NoNewPrivs:\s+1/);
});

t.test("the default device rules do not open the host's console (c 5:1) to a container that may mknod", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  // The base config: CAP_MKNOD, a deny-all device rule, /dev a tmpfs without nodev. A node made
  // there is usable exactly when a device rule allows it: /dev/null's number is, the console's
  // must not be (runc 1.1.5's default rules leave it out: it is the host's system console).
  const open = (node: string, major: number, minor: number) =>
    `mknod /dev/${node} c ${major} ${minor} && dd if=/dev/${node} of=/dev/null count=0 2>/dev/null && echo ${node}=opened || echo ${node}=refused`;
  const r = inside(t, root, `${open("null2", 1, 3)}; ${open("console2", 5, 1)}`);
  t.equal(r.out, "null2=opened\nconsole2=refused\n", r.err);
});

t.test("container ids that could name a path are refused, and nothing is created", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t);
  for (const id of ["../x", "a/b", ".", "..", "", "x".repeat(1025), "a b", "a\nb"]) {
    const r = tsrun(["create", "--bundle", bundle.dir, "--", id], { root });
    t.equal(r.code, 1, JSON.stringify(id.slice(0, 20)));
    t.match(r.stderr, /invalid container id/);
    t.same(fs.readdirSync(root), [], "nothing created");
  }
  t.notOk(fs.existsSync(path.join(path.dirname(root), "x")), "../x made nothing beside the root");
});

t.test("inherited fds do not reach the container; --preserve-fds passes exactly N", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; cat <&3; cat <&4"] });
  const file = (text: string) => {
    const p = path.join(bundle.dir, `fd-${text}`);
    fs.writeFileSync(p, text + "\n");
    return fs.openSync(p, "r");
  };
  const fd3 = file("three");
  const fd4 = file("four");
  const extra = file("leak");
  const run = (preserve: number) =>
    spawnSync(TSRUN, ["--root", root, "run", "--preserve-fds", String(preserve), "--bundle", bundle.dir, containerId()], {
      stdio: ["ignore", "pipe", "pipe", fd3, fd4, extra], encoding: "utf8", env: { ...process.env },
    });
  const two = run(2);
  t.equal(two.stdout, "0 1 2 3 4 5 three\nfour\n", `fds 3 and 4 passed, 5 (ls's own) is the only other: ${two.stderr}`);
  const none = run(0);
  t.match(none.stdout, /^0 1 2 3 $/m, "without --preserve-fds only stdio (and ls's own fd)");
  t.match(none.stderr, /can't open|Bad file descriptor/, "fd 3 is closed in the container");
  for (const fd of [fd3, fd4, extra]) fs.closeSync(fd);
});
