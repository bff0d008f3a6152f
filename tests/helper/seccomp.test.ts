/**
 * The helper's seccomp filters (libseccomp), needs root.
 * Run: node_modules/.bin/tap tests/helper/seccomp.test.ts
 */
import t from "tap";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn, execFileSync } from "node:child_process";
import { HELPER, basePlan, cleanup, execPlan, killPid, makeRootfs, proc, runHelper, startFifo, tempDir, waitGone } from "./harness.ts";
import { seccompPlan } from "../../src/linux/seccomp-plan.ts";
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
