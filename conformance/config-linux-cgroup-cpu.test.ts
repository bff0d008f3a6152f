// config-linux.md, CPU (cgroup v1 cpu and cpuset controllers here).
import t from "tap";
import { hostHas, withResources } from "./lib/cgroups.ts";
import { TAG } from "./lib/runtime.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

t.test("cfs shares, quota, period, burst", async (t) => {
  const cpu: Record<string, unknown> = { shares: 512, quota: 50000, period: 100000 };
  const burst = hostHas("cpu", "cpu.cfs_burst_us");
  if (burst) cpu.burst = 10000;
  const r = await withResources(rt, { cpu }, { cpu: ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.cfs_burst_us"] });
  const f = r.files.cpu ?? {};
  t.equal(f["cpu.shares"], "512", spec("config-linux.md#cpu", "shares (uint64, OPTIONAL) - specifies a relative share of CPU time available to the tasks in a cgroup"), { stderr: r.createErr });
  t.equal(f["cpu.cfs_quota_us"], "50000", spec("config-linux.md#cpu", "quota (int64, OPTIONAL) - specifies the total amount of time in microseconds for which all tasks in a cgroup can run during one period"));
  t.equal(f["cpu.cfs_period_us"], "100000", spec("config-linux.md#cpu", "period (uint64, OPTIONAL) - specifies a period of time in microseconds for how regularly a cgroup's access to CPU resources should be reallocated"));
  if (burst) t.equal(f["cpu.cfs_burst_us"], "10000", spec("config-linux.md#cpu", "burst (uint64, OPTIONAL) - specifies the maximum amount of accumulated time in microseconds for which all tasks in a cgroup can run additionally"));
});

t.test("realtime", async (t) => {
  if (!hostHas("cpu", "cpu.rt_runtime_us")) {
    t.pass(spec("config-linux.md#cpu", "realtimeRuntime specifies a period of time in microseconds for the longest continuous period in which the tasks in a cgroup have access to CPU resources"), { skip: "no RT group scheduling" });
    return;
  }
  // Directly below the root cgroup: a new intermediate cgroup would have no realtime budget.
  const r = await withResources(rt, { cpu: { realtimePeriod: 1000000, realtimeRuntime: 10000 } }, { cpu: ["cpu.rt_period_us", "cpu.rt_runtime_us"] }, { cgroupsPath: `/${TAG}-rt` });
  const f = r.files.cpu ?? {};
  t.equal(f["cpu.rt_runtime_us"], "10000", spec("config-linux.md#cpu", "realtimeRuntime specifies a period of time in microseconds for the longest continuous period in which the tasks in a cgroup have access to CPU resources"), { stderr: r.createErr });
  t.equal(f["cpu.rt_period_us"], "1000000", spec("config-linux.md#cpu", "realtimePeriod (uint64, OPTIONAL) - same as period but applies to realtime scheduler only"));
});

t.test("idle", async (t) => {
  if (!hostHas("cpu", "cpu.idle")) {
    t.pass(spec("config-linux.md#cpu", "idle (int64, OPTIONAL) - cgroups are configured with minimum weight, 0: default behavior, 1: SCHED_IDLE"), { skip: "no cpu.idle" });
    return;
  }
  const r = await withResources(rt, { cpu: { idle: 1 } }, { cpu: ["cpu.idle"] });
  t.equal(r.files.cpu?.["cpu.idle"], "1", spec("config-linux.md#cpu", "idle (int64, OPTIONAL) - cgroups are configured with minimum weight, 0: default behavior, 1: SCHED_IDLE"), { stderr: r.createErr });
});

t.test("cpus and mems", async (t) => {
  const r = await withResources(rt, { cpu: { cpus: "0", mems: "0" } }, { cpuset: ["cpuset.cpus", "cpuset.mems"] }, { checker: ["sched"] });
  t.equal(r.files.cpuset?.["cpuset.cpus"], "0", spec("config-linux.md#cpu", "cpus (string, OPTIONAL) - list of CPUs the container will run on"), { stderr: r.createErr });
  t.same((r.out?.sched as { cpus?: number[] } | undefined)?.cpus, [0], spec("config-linux.md#cpu", "cpus (string, OPTIONAL) - list of CPUs the container will run on", "the process's affinity"));
  t.equal(r.files.cpuset?.["cpuset.mems"], "0", spec("config-linux.md#cpu", "mems (string, OPTIONAL) - list of memory nodes the container will run on"));
});

leavesNothingBehind(t, rt);
