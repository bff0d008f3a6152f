// config-linux.md, Memory (cgroup v1 memory controller here).
import t from "tap";
import { hostHas, withResources } from "./lib/cgroups.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);
const MiB = 1024 * 1024;

t.test("limits", async (t) => {
  const memory: Record<string, unknown> = { limit: 64 * MiB, reservation: 32 * MiB, swappiness: 10, disableOOMKiller: true };
  const swap = hostHas("memory", "memory.memsw.limit_in_bytes");
  if (swap) memory.swap = 96 * MiB;
  const r = await withResources(
    rt,
    { memory },
    { memory: ["memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.swappiness", "memory.oom_control"] },
    {
      checker: ["read", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
      config: (c) => c.mounts.push({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] }),
    },
  );
  const f = r.files.memory ?? {};
  t.equal(r.create.code, 0, "(setup) create with memory limits", { stderr: r.createErr });
  t.equal(f["memory.limit_in_bytes"], String(64 * MiB), spec("config-linux.md#memory", "limit (int64, OPTIONAL) - sets limit of memory usage"));
  t.equal(f["memory.soft_limit_in_bytes"], String(32 * MiB), spec("config-linux.md#memory", "reservation (int64, OPTIONAL) - sets soft limit of memory usage"));
  if (swap) t.equal(f["memory.memsw.limit_in_bytes"], String(96 * MiB), spec("config-linux.md#memory", "swap (int64, OPTIONAL) - sets limit of memory+Swap usage"));
  t.equal(f["memory.swappiness"], "10", spec("config-linux.md#memory", "swappiness (uint64, OPTIONAL) - sets swappiness parameter of vmscan"));
  t.match(f["memory.oom_control"] ?? "", /oom_kill_disable 1/, spec("config-linux.md#memory", "disableOOMKiller (bool, OPTIONAL) - enables or disables the OOM killer", "true"));
  t.equal(
    (r.out?.["read /sys/fs/cgroup/memory/memory.limit_in_bytes"] as { data?: string } | undefined)?.data?.trim(),
    String(64 * MiB),
    spec("config-linux.md#memory", "limit (int64, OPTIONAL) - sets limit of memory usage", "seen inside the container through a cgroup mount"),
  );
});

t.test("unlimited", async (t) => {
  const r = await withResources(rt, { memory: { limit: -1 } }, { memory: ["memory.limit_in_bytes"] });
  const v = BigInt(r.files.memory?.["memory.limit_in_bytes"] ?? "0");
  t.ok(v >= 2n ** 62n, spec("config-linux.md#memory", "Values for memory specify the limit in bytes, or -1 for unlimited memory"), { value: String(v) });
});

leavesNothingBehind(t, rt);
