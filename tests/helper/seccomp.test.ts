/**
 * The helper's seccomp filters (libseccomp), needs root.
 * Run: node_modules/.bin/tap tests/helper/seccomp.test.ts
 */
import t from "tap";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn, execFileSync } from "node:child_process";
import { CAP, DEFAULT_CAPS, HELPER, basePlan, capMask, capMaskHex, cleanup, execPlan, killPid, makeRootfs, proc, runHelper, startFifo, tempDir, waitGone } from "./harness.ts";
import { SECCOMP_ARCHES, seccompPlan } from "../../src/linux/seccomp-plan.ts";
import type { CreatePlan, Seccomp } from "../../src/boundary/gen/helper.ts";
import type { SeccompAction, SeccompOperator } from "../../src/spec/generated/types.ts";

if (process.getuid?.() !== 0 || !fs.existsSync(HELPER)) {
  t.plan(0, "needs root and build/tsrun-helper (make build/tsrun-helper)");
  process.exit(0);
}

const EPERM = 1;
const EACCES = 13;
const O_CREAT = 0o100;

const dir = tempDir();
const rootfs = makeRootfs(dir);
t.teardown(async () => {
  await cleanup(dir);
});
let n = 0;

/** A rule as the config says it, without the SCMP_ACT_ and SCMP_CMP_ prefixes. */
interface Rule {
  names: string[];
  action: string;
  errnoRet: number;
  args: { index: number; op: string; value: bigint; valueTwo: bigint }[];
}

/**
 * The filter tsrun would plan for these rules (through seccompPlan, the real translation), on
 * x86_64, x86 and x32; `raw` then sets plan fields as they are (values the translation never
 * gives, to test the helper's own checks).
 */
function filter(rules: Rule[], over: { defaultAction?: string; defaultErrnoRet?: number } = {}, raw: Partial<Seccomp> = {}): Seccomp {
  const plan = seccompPlan({
    defaultAction: `SCMP_ACT_${over.defaultAction ?? "ALLOW"}` as SeccompAction,
    ...(over.defaultErrnoRet !== undefined ? { defaultErrnoRet: over.defaultErrnoRet } : {}),
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    syscalls: rules.map((r) => ({
      names: r.names,
      action: `SCMP_ACT_${r.action}` as SeccompAction,
      errnoRet: r.errnoRet,
      args: r.args.map((a) => ({ index: a.index, op: `SCMP_CMP_${a.op}` as SeccompOperator, value: Number(a.value), valueTwo: Number(a.valueTwo) })),
    })),
  });
  return { ...plan, ...raw };
}

async function run(args: string[], seccomp: Seccomp, mutate?: (p: CreatePlan) => void) {
  const f = path.join(dir, `fifo${n++}`);
  const plan = basePlan(rootfs, args, { execFifo: f, seccomp });
  mutate?.(plan);
  return runHelper(plan, { onReady: () => startFifo(f) });
}

t.test("ERRNO rule: the syscall fails with the given errno, the rest works", async (t) => {
  const r = await run(
    ["sh", "-c", "mkdir /tmp/d 2>&1; echo still-running; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"],
    filter([{ names: ["mkdir", "mkdirat"], action: "ERRNO", errnoRet: EPERM, args: [] }]),
  );
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /mkdir: can't create directory '\/tmp\/d': Operation not permitted\nstill-running\nNoNewPrivs:\t1\nSeccomp:\t2\n/);
  t.notOk(fs.existsSync(path.join(rootfs, "tmp/d")));
});

t.test("without no_new_privs the filter is loaded while CAP_SYS_ADMIN is still held", async (t) => {
  const r = await run(
    ["sh", "-c", "mkdir /tmp/d2 2>&1; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"],
    filter([{ names: ["mkdir", "mkdirat"], action: "ERRNO", errnoRet: EACCES, args: [] }]),
    (p) => {
      proc(p).noNewPrivileges = false;
      proc(p).uid = 1000;
    },
  );
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /Permission denied\nNoNewPrivs:\t0\nSeccomp:\t2\n/, "filter on, and libseccomp did not set no_new_privs");
});

t.test("KILL_PROCESS: the process dies of SIGSYS", async (t) => {
  const r = await run(["uname"], filter([{ names: ["uname"], action: "KILL_PROCESS", errnoRet: 0, args: [] }]));
  t.equal(r.exit, 159, "128 + SIGSYS");
  t.equal(r.stdout, "");
});

t.test("argument conditions: EQ, MASKED_EQ, and two conditions on one argument", async (t) => {
  fs.writeFileSync(path.join(rootfs, "tmp/f"), "");
  const r = await run(
    [
      "sh",
      "-c",
      "chmod 777 /tmp/f 2>&1; chmod 700 /tmp/f 2>&1; chmod 755 /tmp/f && echo chmod-755-ok; cat /tmp/f && echo read-ok; touch /tmp/new 2>&1",
    ],
    filter([
      {
        names: ["chmod"],
        action: "ERRNO",
        errnoRet: EPERM,
        args: [
          { index: 1, op: "EQ", value: 0o777n, valueTwo: 0n },
          { index: 1, op: "EQ", value: 0o700n, valueTwo: 0n },
        ],
      },
      {
        names: ["fchmodat"],
        action: "ERRNO",
        errnoRet: EPERM,
        args: [
          { index: 2, op: "EQ", value: 0o777n, valueTwo: 0n },
          { index: 2, op: "EQ", value: 0o700n, valueTwo: 0n },
        ],
      },
      { names: ["openat"], action: "ERRNO", errnoRet: EACCES, args: [{ index: 2, op: "MASKED_EQ", value: BigInt(O_CREAT), valueTwo: BigInt(O_CREAT) }] },
      { names: ["open"], action: "ERRNO", errnoRet: EACCES, args: [{ index: 1, op: "MASKED_EQ", value: BigInt(O_CREAT), valueTwo: BigInt(O_CREAT) }] },
      { names: ["creat"], action: "ERRNO", errnoRet: EACCES, args: [] },
    ]),
  );
  t.equal(r.exit, 1, `the last command (touch) fails ${r.error ?? ""}`);
  const lines = r.stdout.trim().split("\n");
  t.match(lines[0], /Operation not permitted/, "chmod 777 refused");
  t.match(lines[1], /Operation not permitted/, "chmod 700 refused (second condition on the same argument)");
  t.equal(lines[2], "chmod-755-ok");
  t.equal(lines[3], "read-ok", "open without O_CREAT allowed");
  t.match(lines[4], /Permission denied/, "open with O_CREAT refused");
});

t.test("unknown syscalls are skipped with a warning; a rule with the default action is dropped", async (t) => {
  const r = await run(
    ["true"],
    filter([
      { names: ["nosuchsyscall", "getpid"], action: "ERRNO", errnoRet: EPERM, args: [] },
      { names: ["read"], action: "ALLOW", errnoRet: 0, args: [] },
    ]),
  );
  t.equal(r.exit, 0, r.error ?? "");
  t.ok(r.lines.includes("warn seccomp: unknown syscall nosuchsyscall, skipped"));
});

t.test("default ERRNO with an allow list", async (t) => {
  // a small allow list for `echo`: everything else gets ENOSYS... except what execve and the
  // helper's last steps need, which are allowed too.
  const allow = [
    "execve", "brk", "arch_prctl", "mmap", "munmap", "mprotect", "uname", "readlink", "readlinkat",
    "access", "faccessat", "faccessat2", "newfstatat", "fstat", "set_tid_address", "set_robust_list", "rseq", "prlimit64",
    "getuid", "geteuid", "getgid", "getegid", "getpid", "getppid", "write", "writev", "exit_group", "exit",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "getrandom", "ioctl", "close", "fcntl", "openat", "read", "lseek",
    "futex", "sigaltstack", "statx", "getcwd", "dup2", "dup3",
  ];
  const r = await run(
    ["echo", "allowed"],
    filter([{ names: allow, action: "ALLOW", errnoRet: 0, args: [] }], { defaultAction: "ERRNO", defaultErrnoRet: 38 }),
  );
  t.equal(r.exit, 0, `${r.error ?? ""} ${r.stderr}`);
  t.equal(r.stdout, "allowed\n");
});

// What busybox echo needs, and what the helper still calls once the filter is loaded: capset
// and prctl (the final capabilities), then the "ready" line, the exec.fifo, the signal reset
// and execve. Not the cwd check (chdir, getcwd), the executable lookup (newfstatat,
// faccessat2) or close_range. landlock_restrict_self is named so that the syscalls newer than
// the rest keep the default EPERM (the ENOSYS stub would otherwise answer faccessat2 and
// close_range), as in the runtime-tools suite's profile.
const ECHO_AND_AFTER_FILTER = [
  "arch_prctl", "brk", "execve", "exit_group", "getrandom", "getuid", "mprotect", "prlimit64", "readlink", "rseq",
  "set_robust_list", "set_tid_address", "write", "capset", "prctl", "read", "close", "rt_sigaction", "rt_sigprocmask",
  "landlock_restrict_self",
];

t.test("the filter comes after the cwd check, the executable lookup and close_range, with or without no_new_privs", async (t) => {
  for (const nnp of [true, false]) {
    for (const uid of [0, 1000]) {
      const r = await run(
        ["echo", "allowed"],
        filter([{ names: ECHO_AND_AFTER_FILTER, action: "ALLOW", errnoRet: 0, args: [] }], { defaultAction: "ERRNO", defaultErrnoRet: EPERM }),
        (p) => {
          proc(p).noNewPrivileges = nnp;
          proc(p).uid = uid;
          proc(p).gid = uid;
          proc(p).cwd = "/tmp";
        },
      );
      t.equal(r.exit, 0, `noNewPrivileges ${nnp}, uid ${uid}: ${r.error ?? ""} ${r.stderr}`);
      t.equal(r.stdout, "allowed\n", `noNewPrivileges ${nnp}, uid ${uid}`);
    }
  }
});

t.test("without no_new_privs, CAP_SYS_ADMIN held for the filter is gone when the process runs", async (t) => {
  const ALLOWED = [CAP.KILL, CAP.CHOWN];
  const r = await run(
    ["sh", "-c", "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status"],
    filter([{ names: ["mkdir", "mkdirat"], action: "ERRNO", errnoRet: EPERM, args: [] }]),
    (p) => {
      proc(p).noNewPrivileges = false;
      proc(p).uid = 1000;
      proc(p).gid = 1000;
      proc(p).capabilities = { bounding: capMask(ALLOWED), effective: capMask(ALLOWED), inheritable: capMask(ALLOWED), permitted: capMask(ALLOWED), ambient: capMask(ALLOWED) };
    },
  );
  t.equal(r.exit, 0, r.error ?? "");
  const m = capMaskHex(ALLOWED);
  t.equal(r.stdout, `CapInh:\t${m}\nCapPrm:\t${m}\nCapEff:\t${m}\nCapBnd:\t${m}\nCapAmb:\t${m}\nNoNewPrivs:\t0\nSeccomp:\t2\n`);
  const root = await run(
    ["sh", "-c", "grep -E '^Cap(Prm|Eff):' /proc/self/status"],
    filter([{ names: ["mkdir", "mkdirat"], action: "ERRNO", errnoRet: EPERM, args: [] }]),
    (p) => {
      proc(p).noNewPrivileges = false;
    },
  );
  t.equal(root.stdout, `CapPrm:\t${capMaskHex(DEFAULT_CAPS)}\nCapEff:\t${capMaskHex(DEFAULT_CAPS)}\n`, "root: the default set, no CAP_SYS_ADMIN");
  // A plan without capabilities (TypeScript always sends them): what the uid change leaves.
  const bare = await run(
    ["sh", "-c", "grep -E '^(Cap(Prm|Eff|Amb)|Seccomp):' /proc/self/status"],
    filter([{ names: ["mkdir", "mkdirat"], action: "ERRNO", errnoRet: EPERM, args: [] }]),
    (p) => {
      proc(p).noNewPrivileges = false;
      proc(p).uid = 1000;
      proc(p).gid = 1000;
      proc(p).capabilities = undefined;
    },
  );
  t.equal(bare.stdout, `CapPrm:\t${"0".repeat(16)}\nCapEff:\t${"0".repeat(16)}\nCapAmb:\t${"0".repeat(16)}\nSeccomp:\t2\n`, "no capabilities object, uid 1000: none left");
});

t.test("ENOSYS stub: a syscall newer than every one the profile names gets ENOSYS", async (t) => {
  const bin = path.join(rootfs, "bin/syscall-errno");
  try {
    execFileSync("cc", ["-static", "-no-pie", "-O1", "-o", bin, path.join(path.dirname(new URL(import.meta.url).pathname), "syscall-errno.c")]);
  } catch {
    t.comment("no static C toolchain: skipped");
    return;
  }
  const CLONE3 = 435;
  const FCHMODAT2 = 452; // newer than everything below; the kernel has it since 6.6
  const UNAME = 63;
  const free = await run(["/bin/syscall-errno", String(FCHMODAT2), `i386:${FCHMODAT2}`], filter([]));
  if (/ENOSYS/.test(free.stdout)) {
    t.comment(`this kernel lacks syscall ${FCHMODAT2} (${free.stdout.trim()}): skipped`);
    return;
  }
  // what the program itself needs (a static glibc binary)
  const own = [
    "arch_prctl", "brk", "execve", "exit_group", "getrandom", "ioctl", "mprotect", "newfstatat", "prlimit64", "readlink", "rseq",
    "set_robust_list", "set_tid_address", "write",
  ];
  const allow = (names: string[]): Rule => ({ names, action: "ALLOW", errnoRet: 0, args: [] });
  const deny = { defaultAction: "ERRNO", defaultErrnoRet: EPERM };
  // x32 calls are x86_64 ones with bit 30 set; x32's own numbers go up to 547 (its ioctl is 514),
  // so 600 is above the bar there. (The kernel here may not run x32 calls: the filter sees them.)
  const x32 = (nr: number) => `0x${(0x40000000 + nr).toString(16)}`;

  const a = await run(["/bin/syscall-errno", String(CLONE3), String(FCHMODAT2), String(UNAME), `i386:${FCHMODAT2}`, x32(600), x32(UNAME)], filter([allow(own)], deny));
  t.equal(
    a.stdout,
    `${CLONE3}=ENOSYS ${FCHMODAT2}=ENOSYS ${UNAME}=EPERM i386:${FCHMODAT2}=ENOSYS ${x32(600)}=ENOSYS ${x32(UNAME)}=EPERM\n`,
    "default ERRNO(EPERM): above the largest named syscall ENOSYS, on x86_64, x86 and x32; below it the default errno",
  );

  const b = await run(
    ["/bin/syscall-errno", String(CLONE3), String(FCHMODAT2)],
    filter([allow(own), { names: ["landlock_restrict_self"], action: "ERRNO", errnoRet: EPERM, args: [] }], deny),
  );
  t.equal(b.stdout, `${CLONE3}=EPERM ${FCHMODAT2}=ENOSYS\n`, "a rule naming landlock_restrict_self (446), even with the default action, raises the bar; clone3 is no special case");

  const c = await run(["/bin/syscall-errno", String(FCHMODAT2)], filter([allow(own)], { defaultAction: "KILL_PROCESS" }));
  t.same([c.exit, c.stdout], [0, `${FCHMODAT2}=ENOSYS\n`], "default KILL_PROCESS: ENOSYS, not SIGSYS");
  const trap = await run(["/bin/syscall-errno", String(FCHMODAT2)], filter([allow(own)], { defaultAction: "TRAP" }));
  t.same([trap.exit, trap.stdout], [0, `${FCHMODAT2}=ENOSYS\n`], "default TRAP: ENOSYS");

  const d = await run(["/bin/syscall-errno", String(FCHMODAT2), String(UNAME)], filter([allow(own)], { defaultAction: "ERRNO", defaultErrnoRet: EACCES }));
  t.equal(d.stdout, `${FCHMODAT2}=ENOSYS ${UNAME}=EACCES\n`, "defaultErrnoRet EACCES: the stub still answers ENOSYS above the bar");

  const e = await run(["/bin/syscall-errno", String(FCHMODAT2)], filter([allow(own)], deny, { architectures: [SECCOMP_ARCHES.SCMP_ARCH_X86!] }));
  t.equal(e.stdout, `${FCHMODAT2}=ENOSYS\n`, "the native architecture gets the stub even when the profile lists only x86");

  const f = await run(
    ["/bin/syscall-errno", String(FCHMODAT2), String(UNAME)],
    filter([{ names: ["uname"], action: "ERRNO", errnoRet: EPERM, args: [] }]),
  );
  t.equal(f.stdout, `${free.stdout.split(" ")[0]} ${UNAME}=EPERM\n`, "default ALLOW: no stub, the kernel answers");
  const g = await run(["/bin/syscall-errno", String(FCHMODAT2)], filter([allow(own)], { defaultAction: "LOG" }));
  t.equal(g.stdout, `${free.stdout.split(" ")[0]}\n`, "default LOG: no stub");
});

t.test("filter flags: LOG and SPEC_ALLOW accepted, unknown flags refused", async (t) => {
  const ok = await run(["true"], filter([], {}, { flags: 2 | 4 | 1 }));
  t.equal(ok.exit, 0, ok.error ?? "");
  const killable = await run(["true"], filter([], {}, { flags: 32 }));
  t.equal(killable.exit, 0, `WAIT_KILLABLE_RECV without a listener is ignored, as libseccomp 2.6 does ${killable.error ?? ""}`);
  const bad = await run(["true"], filter([], {}, { flags: 64 }));
  t.equal(bad.error, "seccomp: filter flags 0x40 are not supported by this tsrun-helper");
  t.equal(bad.code, 1);
});

t.test("an architecture libseccomp does not know is an error", async (t) => {
  const r = await run(["true"], filter([], {}, { architectures: [0xc000003e, 0x12345678] }));
  t.equal(r.error, "seccomp: add architecture 0x12345678: invalid argument");
});

t.test("NOTIFY: the listener fd goes to the listener socket with the rendered state", async (t) => {
  const sock = path.join(dir, "listener.sock");
  const out = path.join(dir, "listener.out");
  const py = spawn("python3", [path.join(path.dirname(new URL(import.meta.url).pathname), "console-receiver.py"), sock, out], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.teardown(() => {
    py.kill("SIGKILL");
  });
  await new Promise<void>((res) => py.stdout!.once("data", () => res()));
  const exited = new Promise<void>((res) => py.on("exit", () => res()));
  const r = await run(
    ["sh", "-c", "mkdir /tmp/notified 2>&1; echo after"],
    filter([{ names: ["mkdir", "mkdirat"], action: "NOTIFY", errnoRet: 0, args: [] }], {}, {
      listenerPath: sock,
      listenerState: '{"ociVersion":"1.2.0","fds":["seccompFd"],"pid":@PID@,"metadata":"meta","state":{"pid":@PID@}}',
    }),
  );
  await exited;
  t.equal(r.exit, 0, r.error ?? "");
  // the receiver closes the listener without answering: the kernel fails the syscall
  t.match(r.stdout, /Function not implemented\nafter\n/);
  const payload = fs.readFileSync(out, "utf8").split("\n")[0];
  t.equal(payload, `payload={"ociVersion":"1.2.0","fds":["seccompFd"],"pid":${r.pid},"metadata":"meta","state":{"pid":${r.pid}}}`);
  const none = await run(["true"], filter([{ names: ["mkdir"], action: "NOTIFY", errnoRet: 0, args: [] }]));
  t.equal(none.error, "seccomp: a NOTIFY action needs a listener path");
});

t.test("NOTIFY with WAIT_KILLABLE_RECV (and TSYNC): loaded with seccomp(2), the listener fd still sent", async (t) => {
  const sock = path.join(dir, "listener-wk.sock");
  const out = path.join(dir, "listener-wk.out");
  const py = spawn("python3", [path.join(path.dirname(new URL(import.meta.url).pathname), "console-receiver.py"), sock, out], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.teardown(() => {
    py.kill("SIGKILL");
  });
  await new Promise<void>((res) => py.stdout!.once("data", () => res()));
  const exited = new Promise<void>((res) => py.on("exit", () => res()));
  const r = await run(
    ["sh", "-c", "mkdir /tmp/notified-wk 2>&1; echo after"],
    filter([{ names: ["mkdir", "mkdirat"], action: "NOTIFY", errnoRet: 0, args: [] }, { names: ["getpid"], action: "ERRNO", errnoRet: EPERM, args: [] }], {}, {
      flags: 32 | 1,
      listenerPath: sock,
      listenerState: '{"pid":@PID@}',
    }),
  );
  await exited;
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /Function not implemented\nafter\n/, "the listener went away unanswered: the kernel fails the syscall");
  t.equal(fs.readFileSync(out, "utf8").split("\n")[0], `payload={"pid":${r.pid}}`);
});

t.test("rules apply to every listed architecture (32-bit syscalls through int $0x80)", async (t) => {
  const bin = path.join(rootfs, "bin/int80-mkdir");
  try {
    execFileSync("cc", ["-static", "-no-pie", "-O1", "-o", bin, path.join(path.dirname(new URL(import.meta.url).pathname), "int80-mkdir.c")]);
  } catch {
    t.comment("no static C toolchain: skipped");
    return;
  }
  // unfiltered, the 32-bit entry works on this kernel (else there is nothing to test)
  const free = await run(["/bin/int80-mkdir", "/tmp/int80-free"], filter([]));
  if (free.stdout !== "0\n") {
    t.comment(`int $0x80 unavailable (${free.stdout.trim()}): skipped`);
    return;
  }
  const deny = filter([{ names: ["mkdir", "mkdirat"], action: "ERRNO", errnoRet: EPERM, args: [] }]);
  const r = await run(["/bin/int80-mkdir", "/tmp/int80-denied"], deny);
  t.equal(r.stdout, "-1\n", "x86 mkdir gets EPERM from the x86 part of the filter");
  t.notOk(fs.existsSync(path.join(rootfs, "tmp/int80-denied")));
  // with only x86_64 listed, the kernel's x86 calls fall to libseccomp's bad-arch action
  const r2 = await run(["/bin/int80-mkdir", "/tmp/int80-badarch"], { ...deny, architectures: [0xc000003e] });
  t.equal(r2.exit, 159, "killed (SIGSYS) by the bad-architecture action");
});

t.test("exec mode loads the filter too", async (t) => {
  const f = path.join(dir, `fifo${n++}`);
  const c = await runHelper(basePlan(rootfs, ["sleep", "1000"], { execFifo: f, foreground: false }));
  t.equal(c.code, 0, c.error ?? "");
  startFifo(f);
  t.teardown(async () => {
    killPid(c.pid!);
    await waitGone(c.pid!);
  });
  const plan = execPlan(c.pid!, ["sh", "-c", "mkdir /tmp/exec-d 2>&1; grep Seccomp: /proc/self/status"], ["pid", "network", "ipc", "uts", "mount"], {
    seccomp: filter([{ names: ["mkdir", "mkdirat"], action: "ERRNO", errnoRet: EPERM, args: [] }]),
  });
  const r = await runHelper(plan);
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /Operation not permitted\nSeccomp:\t2\n/);
});
