// config-linux.md, Seccomp: actions, errno values, argument filters, and the errors the
// runtime must generate.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { observe } from "./lib/container.ts";
import { EPERM } from "./lib/linux.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);
const EXDEV = 18;
const ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

function seccomp(syscalls: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) {
  return { defaultAction: "SCMP_ACT_ALLOW", architectures: ARCHES, syscalls, ...extra };
}

t.test("SCMP_ACT_ERRNO", async (t) => {
  const o = await observe(rt, {
    checker: ["mkdir", "/tmp/denied", "sys", "getpid"],
    config: (c) => (c.linux.seccomp = seccomp([{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }])),
  });
  t.equal(o.out?.["mkdir /tmp/denied"]?.errno, EPERM, spec("config-linux.md#seccomp", "errnoRet: If not specified its default value is EPERM"), { stderr: o.createErr });
  t.equal(o.out?.["sys getpid"]?.ok, true, spec("config-linux.md#seccomp", "defaultAction (string, REQUIRED) - the default action for seccomp", "SCMP_ACT_ALLOW"));
});

t.test("errnoRet", async (t) => {
  const o = await observe(rt, {
    checker: ["mkdir", "/tmp/denied"],
    config: (c) => (c.linux.seccomp = seccomp([{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: EXDEV }])),
  });
  t.equal(o.out?.["mkdir /tmp/denied"]?.errno, EXDEV, spec("config-linux.md#seccomp", "errnoRet (uint, OPTIONAL) - the errno return code to use"), { stderr: o.createErr });
});

t.test("argument filters", async (t) => {
  const SIGWINCH = 28;
  const o = await observe(rt, {
    checker: ["sys", "killwinch", "sys", "kill0"],
    config: (c) => (c.linux.seccomp = seccomp([{ names: ["kill"], action: "SCMP_ACT_ERRNO", args: [{ index: 1, value: SIGWINCH, op: "SCMP_CMP_EQ" }] }])),
  });
  t.equal(o.out?.["sys killwinch"]?.errno, EPERM, spec("config-linux.md#seccomp", "args: the specific syscall in seccomp", "matching argument: action taken"), { stderr: o.createErr });
  t.equal(o.out?.["sys kill0"]?.ok, true, spec("config-linux.md#seccomp", "args: the specific syscall in seccomp", "other argument: default action"));
  const masked = await observe(rt, {
    checker: ["sys", "killwinch", "sys", "kill0"],
    config: (c) =>
      (c.linux.seccomp = seccomp([{ names: ["kill"], action: "SCMP_ACT_ERRNO", args: [{ index: 1, value: 0x18, valueTwo: 0x18, op: "SCMP_CMP_MASKED_EQ" }] }])),
  });
  t.ok(
    masked.out?.["sys killwinch"]?.errno === EPERM && masked.out?.["sys kill0"]?.ok === true,
    spec("config-linux.md#seccomp", "op: SCMP_CMP_MASKED_EQ with value and valueTwo"),
    { out: masked.out, stderr: masked.createErr },
  );
});

t.test("killing actions", async (t) => {
  for (const action of ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"]) {
    const o = await observe(rt, {
      checker: ["ids", "sys", "getppid", "cwd"],
      config: (c) => (c.linux.seccomp = seccomp([{ names: ["getppid"], action }])),
    });
    t.ok(
      o.create.code === 0 && o.stdout.includes('"ids"') && !o.stdout.includes('"cwd"') && o.finalStatus === "stopped",
      spec("config-linux.md#seccomp", "action (string, REQUIRED) - the action for seccomp rules", `${action}: the process dies at the syscall`),
      { stdout: o.stdout, stderr: o.createErr },
    );
  }
  const log = await observe(rt, { checker: ["sys", "getppid"], config: (c) => (c.linux.seccomp = seccomp([{ names: ["getppid"], action: "SCMP_ACT_LOG" }])) });
  t.equal(log.out?.["sys getppid"]?.ok, true, spec("config-linux.md#seccomp", "action (string, REQUIRED) - the action for seccomp rules", "SCMP_ACT_LOG: allowed"), { stderr: log.createErr });
});

t.test("defaultAction and defaultErrnoRet", async (t) => {
  // Allow every syscall the kernel headers name but mkdir and mkdirat; those get the default.
  const header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
  if (!fs.existsSync(header) || process.arch !== "x64") {
    t.pass(spec("config-linux.md#seccomp", "defaultErrnoRet (uint, OPTIONAL) - the errno return code to use"), { skip: "needs x86_64 kernel headers" });
    return;
  }
  const names = [...fs.readFileSync(header, "utf8").matchAll(/^#define __NR_(\w+) \d+/gm)].map((m) => m[1]!).filter((n) => n !== "mkdir" && n !== "mkdirat");
  const o = await observe(rt, {
    checker: ["mkdir", "/tmp/denied", "sys", "getpid"],
    config: (c) =>
      (c.linux.seccomp = {
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrnoRet: EXDEV,
        architectures: ARCHES,
        syscalls: [{ names, action: "SCMP_ACT_ALLOW" }],
      }),
  });
  t.equal(o.out?.["mkdir /tmp/denied"]?.errno, EXDEV, spec("config-linux.md#seccomp", "defaultErrnoRet (uint, OPTIONAL) - the errno return code to use"), { stderr: o.createErr });
  t.equal(o.out?.["sys getpid"]?.ok, true, spec("config-linux.md#seccomp", "syscalls: match a syscall in seccomp", "allow list under a denying default"));
});

t.test("errors", async (t) => {
  for (const [label, sentence, sc] of [
    ["errnoRet on SCMP_ACT_KILL", "errnoRet: When the action doesn't support an errno, the runtime MUST print and error and fail", seccomp([{ names: ["getppid"], action: "SCMP_ACT_KILL", errnoRet: 1 }])],
    ["defaultErrnoRet on SCMP_ACT_ALLOW", "defaultErrnoRet: When the action doesn't support an errno, the runtime MUST print and error and fail", seccomp([], { defaultErrnoRet: 1 })],
    ["empty names", "names MUST contain at least one entry", seccomp([{ names: [], action: "SCMP_ACT_ERRNO" }])],
    ["listener socket missing", "listenerPath: If sending to this socket fails, the runtime MUST generate an error", seccomp([{ names: ["getppid"], action: "SCMP_ACT_NOTIFY" }], { listenerPath: path.join(rt.scratch, "no-such-socket") })],
    ["listenerMetadata without listenerPath", "listenerMetadata: This field MUST NOT be set if listenerPath is not set", seccomp([], { listenerMetadata: "x" })],
  ] as const) {
    const o = await observe(rt, { checker: ["ids"], config: (c) => (c.linux.seccomp = sc) });
    t.not(o.create.code === 0 && o.start?.code === 0, true, spec("config-linux.md#seccomp", sentence, label), { create: o.create.code, start: o.start?.code });
  }
});

leavesNothingBehind(t, rt);
