// config-linux.md, PIDs (cgroup v1 pids controller here).
import t from "tap";
import { withResources } from "./lib/cgroups.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

t.test("limit", async (t) => {
  const r = await withResources(rt, { pids: { limit: 50 } }, { pids: ["pids.max"] });
  t.equal(r.files.pids?.["pids.max"], "50", spec("config-linux.md#pids", "limit (int64, REQUIRED) - specifies the maximum number of tasks in the cgroup"), { stderr: r.createErr });
});

t.test("the limit holds", async (t) => {
  // A small limit, and the container process counted in the cgroup.
  const r = await withResources(rt, { pids: { limit: 3 } }, { pids: ["pids.max", "pids.current"] });
  t.equal(r.files.pids?.["pids.max"], "3", spec("config-linux.md#pids", "limit (int64, REQUIRED) - specifies the maximum number of tasks in the cgroup", "a small limit"));
  t.ok(Number(r.files.pids?.["pids.current"]) >= 1, spec("config-linux.md#pids", "pids represents the cgroup subsystem pids", "the container process is counted"), { files: r.files });
});

leavesNothingBehind(t, rt);
