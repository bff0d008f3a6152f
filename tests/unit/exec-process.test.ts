// The process `tsrun exec` starts: the container's own process with the flags over it, or
// --process FILE; --apparmor and --process-label go into it either way.
import t from "tap";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execProcess, type ExecOptions } from "../../src/lifecycle/exec.ts";

const base = { args: ["sleep", "1000"], cwd: "/", env: ["A=1"], user: { uid: 0, gid: 0 }, apparmorProfile: "from-config" };

function opts(over: Partial<ExecOptions>): ExecOptions {
  return {
    root: "/run/x", id: "c", args: ["true"], tty: false, detach: false, env: [], additionalGids: [], caps: [],
    noNewPrivs: false, preserveFds: 0, ignorePaused: false, debug: false, ...over,
  };
}

t.test("--apparmor and --process-label set the process's profile and label", async (t) => {
  const p = execProcess(base, opts({ apparmor: "my-profile", processLabel: "system_u:system_r:x_t:s0" }));
  t.equal(p.apparmorProfile, "my-profile");
  t.equal(p.selinuxLabel, "system_u:system_r:x_t:s0");
  t.same(p.args, ["true"]);
  t.equal(base.apparmorProfile, "from-config", "the container's record is not changed");
  t.equal(execProcess(base, opts({})).apparmorProfile, "from-config", "without the flag the container's profile stays");
});

t.test("they also apply over --process FILE", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tsrun-exec-process-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "process.json");
  writeFileSync(file, JSON.stringify({ args: ["id"], cwd: "/", user: { uid: 1, gid: 1 } }));
  const p = execProcess(base, opts({ processFile: file, apparmor: "p2", processLabel: "l2" }));
  t.same({ args: p.args, apparmorProfile: p.apparmorProfile, selinuxLabel: p.selinuxLabel }, { args: ["id"], apparmorProfile: "p2", selinuxLabel: "l2" });
});
