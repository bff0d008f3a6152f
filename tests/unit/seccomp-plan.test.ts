import t from "tap";
import { seccompPlan, renderListenerState } from "../../src/linux/seccomp-plan.ts";

t.test("translates actions, arches, flags, errno defaults and args", async (t) => {
  const p = seccompPlan({
    defaultAction: "SCMP_ACT_ERRNO",
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
    flags: ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    syscalls: [
      { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
      { names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }] },
      { names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 38 },
      { names: ["ptrace"], action: "SCMP_ACT_TRACE" },
      { names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] },
      { names: ["kill"], action: "SCMP_ACT_KILL_PROCESS" },
    ],
  });
  // libseccomp's own values (seccomp.h): SCMP_ACT_ERRNO(n) is 0x00050000|n, SCMP_CMP_EQ 4, ...
  t.equal(p.defaultAction, 0x00050001, "SCMP_ACT_ERRNO(EPERM) by default, as runc");
  t.same(p.architectures, [0xc000003e, 0x40000003, 0x4000003e, 0xc00000b7], "AUDIT_ARCH_* tokens");
  t.equal(p.flags, 2 | 4);
  t.same(p.rules[0], { names: ["read", "write"], action: 0x7fff0000, args: [] });
  t.same(p.rules[1]!.args, [{ index: 0, op: 4, value: 8n, valueTwo: 0n }]);
  t.equal(p.rules[2]!.action, 0x00050000 | 38);
  t.equal(p.rules[3]!.action, 0x7ff00001, "SCMP_ACT_TRACE(EPERM)");
  t.same(p.rules[4]!.args[0], { index: 0, op: 7, value: 0x7e020000n, valueTwo: 0n });
  t.equal(p.rules[5]!.action, 0x80000000);
  t.equal(p.listenerPath, "");
});

t.test("defaults: no arches, no flags, no syscalls; listener kept", async (t) => {
  const p = seccompPlan({ defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/a.sock" }, "{}");
  t.same(p, { defaultAction: 0x7fff0000, architectures: [], flags: 0, rules: [], listenerPath: "/run/a.sock", listenerState: "{}" });
});

t.test("every action, operator and architecture has its libseccomp value", async (t) => {
  // The values seccomp.h gives (checked against libseccomp 2.5.4's header).
  const p = seccompPlan({
    defaultAction: "SCMP_ACT_KILL",
    syscalls: (["SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"] as const).map((action) => ({ names: ["x"], action })),
  });
  t.same([p.defaultAction, ...p.rules.map((r) => r.action)], [0, 0, 0x00030000, 0x7ffc0000, 0x7fc00000]);
  t.throws(() => seccompPlan({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_NOPE" as never] }), /unknown architecture/);
});

t.test("listener state: runc's shape, @PID@ placeholders, no @ from the data", async (t) => {
  const s = renderListenerState({ ociVersion: "1.2.0", id: "c1", status: "creating", bundle: "/b", annotations: { a: "x@PID@y" }, metadata: "m@" });
  const tokens = s.match(/@PID@/g) ?? [];
  t.equal(tokens.length, 2, "only the two pid placeholders");
  const parsed = JSON.parse(s.replaceAll("@PID@", "42")) as Record<string, unknown>;
  t.same(parsed, {
    ociVersion: "1.2.0",
    fds: ["seccompFd"],
    pid: 42,
    metadata: "m@",
    state: { ociVersion: "1.2.0", id: "c1", status: "creating", pid: 42, bundle: "/b", annotations: { a: "x@PID@y" } },
  });
});
