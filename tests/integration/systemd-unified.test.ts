// The systemd cgroup driver (--systemd-cgroup) on a real systemd in its unified layout (cgroup v2
// alone, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1). The controllers this machine binds to cgroup v1
// are absent from its cgroup2 hierarchy: what that hierarchy has (hugetlb, the freezer, kill,
// device programs) is applied, and what it lacks is refused in one line with nothing left.
import t, { type Test } from "tap";
import fs from "node:fs";
import { makeBundle, type Bundle } from "../lib/bundle.ts";
import { rootlessConfig } from "../lib/rootless.ts";
import { leakCheck } from "../lib/leaks.ts";
import { onSystemdHost, type SystemdHost } from "../lib/systemd-host.ts";
import { TEST_TAG, containerId, type TsrunResult } from "../lib/tsrun.ts";

await onSystemdHost(t, { unified: true }, suite);

async function suite(host: SystemdHost): Promise<void> {
  const ROOT = `/run/tsrun-test/${TEST_TAG}`;
  const ts = (args: string[], input?: string): TsrunResult => host.tsrun(["--root", ROOT, ...args], input === undefined ? {} : { input });
  const sd = host.systemctl;
  const inside = (cmd: string): string => host.run(["sh", "-c", cmd]).stdout;
  const ok = (tt: Test, r: TsrunResult, what: string): boolean => tt.equal(r.code, 0, `${what}: ${r.stderr.trim()}`);
  const bundle = (tt: Test, args: string[], config?: (c: Record<string, any>) => void): Bundle =>
    makeBundle(tt, { parent: host.share, args, config: (c) => config?.(c) });
  const TSRUN_IN = host.tsrunPath;
  const controllers = inside("cat /sys/fs/cgroup/cgroup.controllers").trim().split(/\s+/).filter(Boolean);

  const nothingLeft = (tt: Test, id: string): void => {
    const unit = `tsrun-${id}.scope`;
    tt.notOk(fs.existsSync(`/proc/${host.pid}/root${ROOT}/${id}`), "no state dir");
    tt.match(sd(["status", unit]).stderr, /could not be found/, `no unit ${unit}`);
    tt.equal(inside(`find /sys/fs/cgroup -name '${unit}'`).trim(), "", "no cgroup dir");
  };

  t.test("the scope on cgroup v2: one dir, systemctl status, freeze, exec, kill", async (t) => {
    leakCheck(t);
    const id = containerId();
    const unit = `tsrun-${id}.scope`;
    const dir = `/sys/fs/cgroup/system.slice/${unit}`;
    const b = bundle(t, ["sleep", "1000"], (c) => (c.linux.devices = [{ path: "/dev/k", type: "c", major: 1, minor: 12 }]));
    if (!ok(t, ts(["--systemd-cgroup", "run", "-d", "--bundle", b.dir, id]), "run -d")) return;
    const cg = JSON.parse(inside(`cat ${ROOT}/${id}/state.json`)).cgroup;
    t.same({ version: cg.version, v1: cg.v1, v2: cg.v2, created: cg.created }, { version: "v2", v1: {}, v2: dir, created: [] }, "systemd made the only dir");
    t.match(sd(["status", unit]).stdout, /Active: active \(running\)/, "systemctl status shows the scope");
    const pid = JSON.parse(ts(["state", id]).stdout).pid;
    t.equal(inside(`cat ${dir}/cgroup.procs`).trim(), String(pid), "the init alone");
    t.match(sd(["show", unit, "--property=DevicePolicy"]).stdout, /^DevicePolicy=strict$/m);
    // /dev/k is c 1:12, a number no driver has: opening it is refused by the device rules
    // (EPERM) until a rule allows it, and then fails in the kernel (ENXIO).
    t.match(ts(["exec", id, "head", "-c", "0", "/dev/k"]).stderr, /Operation not permitted/, "c 1:12: no rule allows it");
    const devices = [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 12, access: "r" }, { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }];
    ok(t, ts(["update", "--resources", "-", id], JSON.stringify({ devices })), "update the device rules");
    t.match(ts(["exec", id, "head", "-c", "0", "/dev/k"]).stderr, /No such device or address/, "c 1:12 allowed now");
    t.equal(ts(["exec", id, "sh", "-c", "head -c 0 /dev/null && echo ok"]).stdout.trim(), "ok", "/dev/null too");
    ok(t, ts(["exec", "-d", "--pid-file", `${host.share}/${id}.pid`, id, "sleep", "500"]), "exec -d");
    t.match(inside(`cat ${dir}/cgroup.procs`), new RegExp(`^${fs.readFileSync(`${host.share}/${id}.pid`, "utf8").trim()}$`, "m"), "the exec'd process is in the scope");
    ok(t, ts(["pause", id]), "pause");
    t.match(inside(`cat ${dir}/cgroup.events`), /^frozen 1$/m, "cgroup.freeze");
    t.equal(JSON.parse(ts(["state", id]).stdout).status, "paused");
    ok(t, ts(["resume", id]), "resume");
    const ev = ts(["events", "--stats", id]);
    ok(t, ev, "events --stats");
    t.ok(JSON.parse(ev.stdout).data.cpu.usage.total > 0, "cpu usage from the scope's cpu.stat");
    ok(t, ts(["kill", "--all", id, "9"]), "kill --all (cgroup.kill)");
    for (let i = 0; i < 100 && JSON.parse(ts(["state", id]).stdout).status !== "stopped"; i++) await new Promise((r) => setTimeout(r, 20));
    ok(t, ts(["delete", id]), "delete");
    nothingLeft(t, id);
  });

  t.test("limits this hierarchy has are applied; the rest is refused in one line, nothing left", async (t) => {
    leakCheck(t);
    if (controllers.includes("hugetlb")) {
      const id = containerId();
      const unit = `tsrun-${id}.scope`;
      const b = bundle(t, ["sleep", "1000"], (c) => (c.linux.resources = { hugepageLimits: [{ pageSize: "2MB", limit: 4 << 20 }] }));
      if (ok(t, ts(["--systemd-cgroup", "create", "--bundle", b.dir, id]), "create with a hugetlb limit")) {
        t.equal(inside(`cat /sys/fs/cgroup/system.slice/${unit}/hugetlb.2MB.max`).trim(), String(4 << 20), "read back from the scope's cgroup");
        ok(t, ts(["update", "--resources", "-", id], JSON.stringify({ hugepageLimits: [{ pageSize: "2MB", limit: 2 << 20 }] })), "update");
        t.equal(inside(`cat /sys/fs/cgroup/system.slice/${unit}/hugetlb.2MB.max`).trim(), String(2 << 20), "updated");
        ok(t, ts(["delete", "--force", id]), "delete");
      }
      nothingLeft(t, id);
    } else {
      t.comment(`this machine's cgroup2 hierarchy has no controller (${controllers.join(" ") || "none"}): no limit to apply`);
    }
    for (const [what, resources, want] of [
      ["memory", { memory: { limit: 64 << 20 } }, /^tsrun: cgroup: cannot write 67108864 to memory\.max: the memory controller is not available \(no v1 hierarchy has it and it is not enabled in the container's cgroup2 directory\)\n$/],
      ["pids", { pids: { limit: 10 } }, /^tsrun: cgroup: cannot write 10 to pids\.max: the pids controller is not available/],
      ["cpu", { cpu: { shares: 100 } }, /^tsrun: cgroup: cannot write 4 to cpu\.weight: the cpu controller is not available/],
    ] as const) {
      if (controllers.includes(what)) continue;
      const id = containerId(what);
      const b = bundle(t, ["true"], (c) => (c.linux.resources = resources));
      const r = ts(["--systemd-cgroup", "create", "--bundle", b.dir, id]);
      t.equal(r.code, 1, `${what}: refused`);
      t.match(r.stderr, want, `${what}: one line naming the file and why`);
      nothingLeft(t, id);
    }
  });

  t.test("device rules hold in the scope", async (t) => {
    leakCheck(t);
    const id = containerId();
    // /dev/k (c 1:12, no driver has it) exists in the container, but no rule allows it.
    const b = bundle(t, ["sh", "-c", "head -c 0 /dev/null && echo null-ok; head -c 1 /dev/k || echo k-refused"], (c) => {
      c.linux.devices = [{ path: "/dev/k", type: "c", major: 1, minor: 12 }];
    });
    const r = ts(["--systemd-cgroup", "run", "--bundle", b.dir, id]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^null-ok$/m);
    t.match(r.stdout, /^k-refused$/m);
    t.match(r.stderr, /Operation not permitted/);
    nothingLeft(t, id);
  });

  t.test("rootless: a user's own systemd manager makes the scope", async (t) => {
    leakCheck(t);
    // A user of the systemd host only, with a user manager as user@.service runs one (no PAM
    // here: the host's /etc is empty), its cgroup delegated.
    const uid = 4242;
    const xdg = `/run/user/${uid}`;
    const manager = `systemd-user-${uid}.service`;
    const setup = host.run(["sh", "-c", `grep -q '^sdtest:' /etc/passwd || { echo 'sdtest:x:${uid}:${uid}::/tmp:/bin/sh' >> /etc/passwd; echo 'sdtest:x:${uid}:' >> /etc/group; }; mkdir -p ${xdg} && chown ${uid}:${uid} ${xdg} && chmod 700 ${xdg}`]);
    t.equal(setup.code, 0, setup.stderr);
    const started = host.run(["systemd-run", `--unit=${manager}`, `--uid=${uid}`, `--gid=${uid}`, "-p", "Delegate=yes", "-p", "Type=notify", `--setenv=XDG_RUNTIME_DIR=${xdg}`, "/lib/systemd/systemd", "--user"]);
    if (!t.equal(started.code, 0, `user manager: ${started.stderr}`)) return;
    t.teardown(() => void sd(["stop", manager]));
    const asUser = (cmd: string[]): TsrunResult => host.run(["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "env", `XDG_RUNTIME_DIR=${xdg}`, ...cmd]);
    // tsrun runs in the user's session, as a user's shell would: in a scope of the user's manager
    // (moving a process into a cgroup needs the common parent's cgroup.procs to be the user's).
    const inSession = (args: string[]): TsrunResult => asUser(["systemd-run", "--user", "--scope", "--quiet", TSRUN_IN, ...args]);
    const id = containerId("rootless");
    const unit = `tsrun-${id}.scope`;
    const b = makeBundle(t, { parent: host.share, args: ["sleep", "1000"] });
    b.config = rootlessConfig({ name: "sdtest", uid, gid: uid, subuid: { start: 0, count: 0 }, subgid: { start: 0, count: 0 }, xdg }, ["sleep", "1000"]);
    fs.writeFileSync(b.configPath, JSON.stringify(b.config));
    if (!ok(t, inSession(["--systemd-cgroup", "run", "-d", "--bundle", b.dir, id]), "run -d as the user")) return;
    const status = asUser(["systemctl", "--user", "status", unit, "--no-pager"]);
    t.match(status.stdout, /Active: active \(running\)/, "systemctl --user status shows the scope");
    t.match(status.stdout, new RegExp(`CGroup: /system\\.slice/${manager.replace(/[.]/g, "\\.")}/user\\.slice/${unit.replace(/[.+]/g, "\\$&")}`), "in the user manager's user.slice");
    ok(t, asUser([TSRUN_IN, "pause", id]), "pause");
    t.equal(JSON.parse(asUser([TSRUN_IN, "state", id]).stdout).status, "paused");
    ok(t, asUser([TSRUN_IN, "resume", id]), "resume");
    t.match(inSession(["exec", id, "echo", "exec-ok"]), { code: 0, stdout: "exec-ok\n" }, "exec");
    ok(t, asUser([TSRUN_IN, "delete", "--force", id]), "delete --force");
    t.equal(asUser(["systemctl", "--user", "list-units", "--all", "--plain", "--no-legend", unit]).stdout.trim(), "", "no unit left");
    t.equal(inside(`find /sys/fs/cgroup -name '${unit}'`).trim(), "", "no cgroup dir left");
  });
}
