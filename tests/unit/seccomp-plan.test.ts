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
  t.equal(p.defaultAction, "ERRNO");
  t.equal(p.defaultErrnoRet, 1, "EPERM by default, as runc");
  t.same(p.architectures, ["x86_64", "x86", "x32", "aarch64"]);
  t.equal(p.flags, 2 | 4);
  t.same(p.syscalls[0], { names: ["read", "write"], action: "ALLOW", errnoRet: 0, args: [] });
  t.same(p.syscalls[1]!.args, [{ index: 0, op: "EQ", value: 8n, valueTwo: 0n }]);
  t.equal(p.syscalls[2]!.errnoRet, 38);
  t.equal(p.syscalls[3]!.errnoRet, 1);
  t.same(p.syscalls[4]!.args[0], { index: 0, op: "MASKED_EQ", value: 0x7e020000n, valueTwo: 0n });
  t.equal(p.syscalls[5]!.action, "KILL_PROCESS");
  t.notOk("listenerPath" in p);
});

t.test("defaults: no arches, no flags, no syscalls; listener kept", async (t) => {
  const p = seccompPlan({ defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/a.sock" }, "{}");
  t.same(p, { defaultAction: "ALLOW", defaultErrnoRet: 0, architectures: [], flags: 0, syscalls: [], listenerPath: "/run/a.sock", listenerState: "{}" });
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
