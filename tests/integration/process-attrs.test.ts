// Process attributes from config.json (personality, ioPriority, scheduler, execCPUAffinity)
// and the LSM fields on a host without AppArmor or SELinux, checked from inside real
// containers or from the host on the running container's processes.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { makeBundle, type ConfigObject } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import type { TestLike } from "../lib/context.ts";
import { containerId, testRoot, tsrun } from "../lib/tsrun.ts";

/** Runs `sh -c script` in a container made from the base config after mutate; returns its output. */
function inside(t: TestLike, root: string, script: string, mutate: (c: ConfigObject) => void = () => {}): { code: number; out: string; err: string } {
  const bundle = makeBundle(t, { args: ["sh", "-c", script], config: mutate });
  const r = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** A running container (`sleep 1000`); returns its init's host pid. Deleted at teardown. */
function running(t: TestLike, root: string, mutate: (c: ConfigObject) => void = () => {}): { id: string; pid: number } {
  const bundle = makeBundle(t, { args: ["sleep", "1000"], config: mutate });
  const id = containerId();
  const r = tsrun(["run", "-d", "--bundle", bundle.dir, id], { root });
  if (r.code !== 0) throw new Error(`run -d: ${r.stderr}`);
  t.teardown(() => void tsrun(["delete", "--force", id], { root }));
  const st = tsrun(["state", id], { root });
  return { id, pid: JSON.parse(st.stdout).pid };
}

function host(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return `${r.stdout}${r.stderr}`;
}

function processFile(t: TestLike, proc: object): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-proc-"));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "process.json");
  fs.writeFileSync(file, JSON.stringify(proc));
  return file;
}

const ncpu = os.cpus().length;

t.test("process attributes", async (t) => {
  leakCheck(t);
  const root = testRoot(t);

  t.test("personality LINUX32: a 32-bit machine name, in the init and in exec", async (t) => {
    const r = inside(t, root, "uname -m", (c) => (c.linux.personality = { domain: "LINUX32" }));
    t.equal(r.code, 0, r.err);
    t.match(r.out.trim(), /^(i[3-6]86|armv[0-9].*|ppc|s390|mips)$/, `uname -m: ${r.out}`);
    const plain = inside(t, root, "uname -m");
    t.equal(plain.out, `${os.machine()}\n`, "without personality the host machine name");

    const c = running(t, root, (cfg) => (cfg.linux.personality = { domain: "LINUX32" }));
    const e = tsrun(["exec", c.id, "uname", "-m"], { root });
    t.equal(e.code, 0, e.stderr);
    t.match(e.stdout.trim(), /^i[3-6]86$|^arm|^ppc$|^s390$|^mips$/, "exec gets the container's personality, as runc's setns init");
  });

  t.test("personality flags are ignored with a warning, as runc", async (t) => {
    const r = inside(t, root, "uname -m", (c) => (c.linux.personality = { domain: "LINUX", flags: ["SOMETHING"] }));
    t.equal(r.code, 0, r.err);
    t.equal(r.out, `${os.machine()}\n`);
    t.match(r.err, /ignoring unsupported personality flags: SOMETHING/);
  });

  t.test("Windows fields (commandLine, user.username) are ignored with a warning", async (t) => {
    const r = inside(t, root, "id -u", (c) => {
      c.process.commandLine = "cmd.exe /c echo hi";
      c.process.user.username = "ContainerUser";
    });
    t.equal(r.code, 0, r.err);
    t.equal(r.out, "0\n", "args and uid are what runs");
    t.match(r.err, /warning: process\.commandLine is for Windows: ignored on Linux \(process\.args is run\)/);
    t.match(r.err, /warning: process\.user\.username is for Windows: ignored on Linux/);
  });

  t.test("ioPriority: read back from the host with ionice", async (t) => {
    const c = running(t, root, (cfg) => (cfg.process.ioPriority = { class: "IOPRIO_CLASS_BE", priority: 6 }));
    t.equal(host("ionice", ["-p", String(c.pid)]).trim(), "best-effort: prio 6");
    const idle = running(t, root, (cfg) => (cfg.process.ioPriority = { class: "IOPRIO_CLASS_IDLE", priority: 0 }));
    t.equal(host("ionice", ["-p", String(idle.pid)]).trim(), "idle");
  });

  t.test("ioPriority of an exec'd process from --process", async (t) => {
    const c = running(t, root);
    const file = processFile(t, {
      args: ["sh", "-c", "sleep 0.3 & ionice -p $! 2>/dev/null || cat /proc/self/stat >/dev/null; wait"],
      cwd: "/", user: { uid: 0, gid: 0 }, ioPriority: { class: "IOPRIO_CLASS_RT", priority: 3 },
    });
    // busybox may lack ionice: check from the host on the exec'd process instead.
    const detached = tsrun(["exec", "-d", "--pid-file", path.join(path.dirname(file), "pid"), "--process", file, c.id], { root });
    t.equal(detached.code, 0, detached.stderr);
    const pid = fs.readFileSync(path.join(path.dirname(file), "pid"), "utf8").trim();
    t.equal(host("ionice", ["-p", pid]).trim(), "realtime: prio 3");
  });

  t.test("scheduler SCHED_BATCH with nice 5", async (t) => {
    const c = running(t, root, (cfg) => (cfg.process.scheduler = { policy: "SCHED_BATCH", nice: 5 }));
    t.match(host("chrt", ["-p", String(c.pid)]), /current scheduling policy: SCHED_BATCH/);
    const stat = fs.readFileSync(`/proc/${c.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    t.equal(fields[19 - 3], "5", "nice (field 19 of /proc/PID/stat)");
    const r = inside(t, root, "cut -d' ' -f19 /proc/self/stat", (cfg) => (cfg.process.scheduler = { policy: "SCHED_IDLE", nice: 0 }));
    t.equal(r.out, "0\n", r.err);
  });

  t.test("scheduler SCHED_RR with a priority", async (t) => {
    const rt = fs.existsSync("/sys/fs/cgroup/cpu/cpu.rt_runtime_us");
    if (rt) {
      // cgroup v1 with RT group scheduling: a new cpu cgroup has no real-time budget, and the
      // kernel refuses the policy, as it does for runc (same message).
      const r = inside(t, root, "true", (cfg) => (cfg.process.scheduler = { policy: "SCHED_RR", priority: 10 }));
      t.not(r.code, 0);
      t.match(r.err, /error setting scheduler: operation not permitted/);
      return; // a budget would need one on tsrun's parent cgroup as well
    }
    const c = running(t, root, (cfg) => (cfg.process.scheduler = { policy: "SCHED_RR", priority: 10 }));
    const out = host("chrt", ["-p", String(c.pid)]);
    t.match(out, /SCHED_RR/);
    t.match(out, /priority: 10/);
  });

  t.test("scheduler SCHED_DEADLINE with runtime, deadline, period and a flag", async (t) => {
    const c = running(t, root, (cfg) => (cfg.process.scheduler = { policy: "SCHED_DEADLINE", runtime: 10_000_000, deadline: 30_000_000, period: 40_000_000, flags: ["SCHED_FLAG_RESET_ON_FORK"] }));
    const out = host("chrt", ["-p", String(c.pid)]);
    t.match(out, /current scheduling policy: SCHED_DEADLINE\|SCHED_RESET_ON_FORK\n/, "policy and flags");
    t.match(out, /current runtime\/deadline\/period parameters: 10000000\/30000000\/40000000/, "read back from the host");
  });

  t.test("execCPUAffinity: final, initial only, and never the init", { skip: ncpu < 2 ? "needs 2 CPUs" : false }, async (t) => {
    const c = running(t, root, (cfg) => (cfg.process.execCPUAffinity = { final: "0" }));
    const init = fs.readFileSync(`/proc/${c.pid}/status`, "utf8");
    t.notMatch(init, /^Cpus_allowed_list:\t0$/m, "the init is not affected (runtime-spec: not applicable to the init)");
    const e = tsrun(["exec", c.id, "grep", "Cpus_allowed_list", "/proc/self/status"], { root });
    t.equal(e.stdout, "Cpus_allowed_list:\t0\n", e.stderr);

    const only = processFile(t, { args: ["grep", "Cpus_allowed_list", "/proc/self/status"], cwd: "/", user: { uid: 0, gid: 0 }, execCPUAffinity: { initial: "1" } });
    const e2 = tsrun(["exec", "--process", only, c.id], { root });
    t.equal(e2.stdout, "Cpus_allowed_list:\t1\n", `only initial: the process keeps it ${e2.stderr}`);

    const both = processFile(t, { args: ["grep", "Cpus_allowed_list", "/proc/self/status"], cwd: "/", user: { uid: 0, gid: 0 }, execCPUAffinity: { initial: "1", final: "0-1" } });
    const e3 = tsrun(["exec", "--process", both, c.id], { root });
    t.equal(e3.stdout, "Cpus_allowed_list:\t0-1\n", e3.stderr);
  });

  t.test("apparmorProfile on a host without AppArmor: an error, as runc's", async (t) => {
    t.notOk(fs.existsSync("/sys/kernel/security/apparmor"), "this host has no AppArmor");
    const bundle = makeBundle(t, { config: (c) => (c.process.apparmorProfile = "tsrun-test-profile") });
    const id = containerId();
    const r = tsrun(["--debug", "create", "--bundle", bundle.dir, id], { root });
    t.not(r.code, 0);
    t.match(r.stderr, /apparmor: config provided but apparmor not supported/);
    t.match(r.stderr, /AppArmor is not enabled on this host/, "says why with --debug");
    t.not(tsrun(["state", id], { root }).code, 0, "nothing was created");
  });

  t.test("selinuxLabel without SELinux: runc's validation error; mountLabel: ignored", async (t) => {
    const bundle = makeBundle(t, { config: (c) => (c.process.selinuxLabel = "system_u:system_r:container_t:s0") });
    const r = tsrun(["create", "--bundle", bundle.dir, containerId()], { root });
    t.not(r.code, 0);
    t.match(r.stderr, /selinux label is specified in config, but selinux is disabled or not supported/);
    const m = inside(t, root, "echo ok", (c) => (c.linux.mountLabel = "system_u:object_r:container_file_t:s0"));
    t.equal(m.out, "ok\n", m.err);
  });
});
