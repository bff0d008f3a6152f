// The systemd cgroup driver (--systemd-cgroup) on a real systemd in the layout nspawn gives on
// this machine: cgroup v1 controllers plus the unified hierarchy (systemd's "hybrid" layout).
// One systemd host for the whole file (tests/lib/systemd-host.ts); tsrun runs inside it.
import t, { type Test } from "tap";
import fs from "node:fs";
import path from "node:path";
import { makeBundle, type Bundle } from "../lib/bundle.ts";
import { rootlessConfig } from "../lib/rootless.ts";
import { leakCheck } from "../lib/leaks.ts";
import { onSystemdHost, type SystemdHost } from "../lib/systemd-host.ts";
import { TEST_TAG, containerId, type TsrunResult } from "../lib/tsrun.ts";

await onSystemdHost(t, { unified: false }, suite);

async function suite(host: SystemdHost): Promise<void> {
  const ROOT = `/run/tsrun-test/${TEST_TAG}`;
  const ts = (args: string[], input?: string): TsrunResult => host.tsrun(["--root", ROOT, ...args], input === undefined ? {} : { input });
  const sd = host.systemctl;
  /** `systemctl show`: NAME=VALUE lines; a property given on several lines (DeviceAllow) is joined with "; ". */
  const show = (unit: string, props: string[]): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const l of sd(["show", unit, ...props.map((p) => `--property=${p}`)]).stdout.split("\n").filter(Boolean)) {
      const [k, v] = [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)];
      out[k] = out[k] === undefined ? v : `${out[k]}; ${v}`;
    }
    return out;
  };
  const inside = (cmd: string): string => host.run(["sh", "-c", cmd]).stdout;
  const ok = (tt: Test, r: TsrunResult, what: string): boolean => tt.equal(r.code, 0, `${what}: ${r.stderr.trim()}`);
  const bundle = (tt: Test, args: string[], config?: (c: Record<string, any>) => void): Bundle =>
    makeBundle(tt, { parent: host.share, args, config: (c) => config?.(c) });
  const record = (id: string): { cgroup: { v1: Record<string, string>; v2?: string; created: string[]; systemd: { unit: string } } } =>
    JSON.parse(inside(`cat ${ROOT}/${id}/state.json`));

  /** Nothing of the container is left: no state, no unit, no cgroup dir in any hierarchy (inside and on the machine). */
  const nothingLeft = (tt: Test, id: string, unit = `tsrun-${id}.scope`): void => {
    tt.notOk(fs.existsSync(`/proc/${host.pid}/root${ROOT}/${id}`), "no state dir");
    tt.match(sd(["status", unit]).stderr, /could not be found/, `no unit ${unit}`);
    tt.equal(sd(["list-units", "--all", "--plain", "--no-legend", unit]).stdout.trim(), "", "not listed either");
    tt.equal(inside(`find /sys/fs/cgroup -name '${unit}'`).trim(), "", "no cgroup dir inside");
    const onMachine = host.cgroupDirs.flatMap((d) => findDirs(d, unit));
    tt.same(onMachine, [], "no cgroup dir on the machine");
  };

  t.test("a container's scope: systemctl status shows it, every hierarchy has its dir, only the init is in it", async (t) => {
    leakCheck(t);
    const id = containerId();
    const unit = `tsrun-${id}.scope`;
    const b = bundle(t, ["sleep", "1000"]);
    if (!ok(t, ts(["--systemd-cgroup", "create", "--bundle", b.dir, id]), "create")) return;
    const pid = JSON.parse(ts(["state", id]).stdout).pid as number;
    const status = sd(["status", unit]);
    t.match(status.stdout, new RegExp(`${unit.replace(/[.+]/g, "\\$&")} - tsrun container ${id}`), "systemctl status names the scope");
    t.match(status.stdout, /Active: active \(running\)/);
    t.match(status.stdout, /CGroup: \/system\.slice\/tsrun-/);
    const props = show(unit, ["Delegate", "Slice", "ControlGroup", "Transient", "CollectMode"]);
    t.same(props, { Delegate: "yes", Slice: "system.slice", ControlGroup: `/system.slice/${unit}`, Transient: "yes", CollectMode: "inactive-or-failed" });
    const cg = record(id).cgroup;
    t.equal(cg.systemd.unit, unit);
    for (const c of ["memory", "pids", "cpu", "devices", "freezer", "cpuset", "name=systemd"]) {
      const dir = cg.v1[c];
      t.equal(dir, `/sys/fs/cgroup/${c.replace("name=", "")}/system.slice/${unit}`, `${c} dir`);
      t.equal(inside(`cat ${dir}/cgroup.procs`).trim(), String(pid), `${c}: the init alone (the placeholder is gone)`);
    }
    t.equal(cg.v2, `/sys/fs/cgroup/unified/system.slice/${unit}`);
    t.same(cg.created.filter((d) => d.endsWith(unit)).map((d) => d.split("/")[4]).sort(), ["cpuacct", "cpuset", "freezer"], "tsrun made the dirs of the hierarchies systemd does not manage");
    ok(t, ts(["start", id]), "start");
    t.equal(JSON.parse(ts(["state", id]).stdout).status, "running");
    ok(t, ts(["delete", "--force", id]), "delete");
    nothingLeft(t, id);
  });

  t.test("limits: unit properties where systemd has them, and the cgroup files", async (t) => {
    leakCheck(t);
    const id = containerId();
    const unit = `tsrun-${id}.scope`;
    const b = bundle(t, ["sleep", "1000"], (c) => {
      c.linux.devices = [{ path: "/dev/k", type: "c", major: 1, minor: 12 }];
      c.linux.resources = { memory: { limit: 64 << 20, swappiness: 7 }, pids: { limit: 30 }, cpu: { shares: 512, quota: 25000, period: 50000, cpus: "0" } };
    });
    if (!ok(t, ts(["--systemd-cgroup", "run", "-d", "--bundle", b.dir, id]), "run -d")) return;
    t.same(show(unit, ["MemoryLimit", "TasksMax", "CPUShares", "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "DevicePolicy"]), {
      MemoryLimit: String(64 << 20), TasksMax: "30", CPUShares: "512", CPUQuotaPerSecUSec: "500ms", CPUQuotaPeriodUSec: "50ms", DevicePolicy: "strict",
    });
    const d = (c: string, f: string) => inside(`cat /sys/fs/cgroup/${c}/system.slice/${unit}/${f}`).trim();
    t.equal(d("memory", "memory.limit_in_bytes"), String(64 << 20));
    t.equal(d("memory", "memory.swappiness"), "7", "no property for it: the file");
    t.equal(d("pids", "pids.max"), "30");
    t.equal(d("cpu", "cpu.shares"), "512");
    t.equal(d("cpu", "cpu.cfs_quota_us"), "25000");
    t.equal(d("cpu", "cpu.cfs_period_us"), "50000");
    t.equal(d("cpuset", "cpuset.cpus"), "0");
    const allow = show(unit, ["DeviceAllow"]).DeviceAllow ?? "";
    for (const dev of ["/dev/char/1:3 rwm", "char-136 rwm", "char-* m"]) t.match(allow, dev, `DeviceAllow has ${dev}`);
    t.match(d("devices", "devices.list"), /^c 1:3 rwm$/m, "systemd and tsrun agree on devices.list");
    t.notMatch(d("devices", "devices.list"), /^a /m);

    // update: SetUnitProperties and the files; systemd keeps the new values.
    const up = ts(["update", "--resources", "-", id], JSON.stringify({ memory: { limit: 96 << 20 }, pids: { limit: 40 }, cpu: { shares: 256 } }));
    ok(t, up, "update");
    t.same(show(unit, ["MemoryLimit", "TasksMax", "CPUShares"]), { MemoryLimit: String(96 << 20), TasksMax: "40", CPUShares: "256" });
    t.equal(d("memory", "memory.limit_in_bytes"), String(96 << 20));
    t.equal(d("pids", "pids.max"), "40");
    ok(t, ts(["update", "--pids-limit", "41", id]), "update --pids-limit");
    t.equal(show(unit, ["TasksMax"]).TasksMax, "41");
    // A later change systemd makes to the unit applies its properties again: they must be the container's.
    sd(["set-property", "--runtime", unit, "CPUWeight=100"]);
    t.equal(d("memory", "memory.limit_in_bytes"), String(96 << 20), "still the updated limit");
    // New device rules while it runs: they apply, and what stays allowed goes on working.
    // /dev/k is c 1:12, a number no driver has: refused by the rules (EPERM), else ENXIO.
    t.match(ts(["exec", id, "head", "-c", "0", "/dev/k"]).stderr, /Operation not permitted/, "c 1:12: no rule allows it");
    const devices = [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 12, access: "r" }];
    ok(t, ts(["update", "--resources", "-", id], JSON.stringify({ devices })), "update devices");
    t.match(ts(["exec", id, "head", "-c", "0", "/dev/k"]).stderr, /No such device or address/, "c 1:12 allowed now");
    t.match(show(unit, ["DeviceAllow"]).DeviceAllow ?? "", "/dev/char/1:12 r", "systemd has the new list");
    t.equal(ts(["exec", id, "sh", "-c", "echo x > /dev/null && echo ok"]).stdout.trim(), "ok", "/dev/null still usable");
    t.equal(JSON.parse(ts(["state", id]).stdout).status, "running", "thawed after the device update");
    ok(t, ts(["delete", "--force", id]), "delete");
    nothingLeft(t, id);
  });

  t.test("exec joins the scope; pause, resume, events, kill --all", async (t) => {
    leakCheck(t);
    const id = containerId();
    const unit = `tsrun-${id}.scope`;
    const b = bundle(t, ["sleep", "1000"], (c) => {
      c.linux.resources = { memory: { limit: 128 << 20 } };
    });
    if (!ok(t, ts(["--systemd-cgroup", "run", "-d", "--bundle", b.dir, id]), "run -d")) return;
    ok(t, ts(["exec", "-d", "--pid-file", `${host.share}/${id}.pid`, id, "sleep", "500"]), "exec -d");
    const execPid = fs.readFileSync(`${host.share}/${id}.pid`, "utf8").trim();
    for (const c of ["memory", "pids", "freezer", "cpuset", "systemd", "unified"]) {
      t.match(inside(`cat /sys/fs/cgroup/${c}/system.slice/${unit}/cgroup.procs`), new RegExp(`^${execPid}$`, "m"), `exec'd process in the ${c} dir`);
    }
    t.match(sd(["status", unit]).stdout, /sleep 500/, "systemctl status lists the exec'd process");
    ok(t, ts(["pause", id]), "pause");
    t.equal(JSON.parse(ts(["state", id]).stdout).status, "paused");
    t.equal(inside(`cat /sys/fs/cgroup/freezer/system.slice/${unit}/freezer.state`).trim(), "FROZEN");
    ok(t, ts(["resume", id]), "resume");
    t.equal(JSON.parse(ts(["state", id]).stdout).status, "running");
    const ev = ts(["events", "--stats", id]);
    ok(t, ev, "events --stats");
    const stats = JSON.parse(ev.stdout).data;
    t.equal(stats.memory.usage.limit, 128 << 20, "the memory limit, as the scope's cgroup has it");
    t.ok(stats.memory.usage.usage > 0, "memory used");
    t.equal(stats.pids.current, 2, "two processes: the init and the exec'd one");
    const ps = ts(["ps", "--format", "json", id]);
    t.same((JSON.parse(ps.stdout) as number[]).length, 2, "ps lists both");
    ok(t, ts(["kill", "--all", id, "9"]), "kill --all");
    for (let i = 0; i < 100 && JSON.parse(ts(["state", id]).stdout).status !== "stopped"; i++) await new Promise((r) => setTimeout(r, 20));
    t.equal(JSON.parse(ts(["state", id]).stdout).status, "stopped");
    ok(t, ts(["delete", id]), "delete");
    nothingLeft(t, id);
  });

  t.test("every connection to systemd is answered (20 updates, one connection each)", async (t) => {
    leakCheck(t);
    // systemd 252's private socket ignored a call sent right behind the client's BEGIN: about half
    // of all connections hung before tsrun sent BEGIN with AUTH (src/linux/cgroups/systemd/bus.ts).
    const id = containerId();
    const b = bundle(t, ["sleep", "1000"]);
    if (!ok(t, ts(["--systemd-cgroup", "create", "--bundle", b.dir, id]), "create")) return;
    let answered = 0;
    for (let i = 1; i <= 20; i++) if (ts(["update", "--pids-limit", String(100 + i), id]).code === 0) answered++;
    t.equal(answered, 20, "all 20 updates done");
    t.equal(show(`tsrun-${id}.scope`, ["TasksMax"]).TasksMax, "120", "the last one is the unit's");
    ok(t, ts(["delete", "--force", id]), "delete");
    nothingLeft(t, id);
  });

  t.test("run in the foreground, with a cgroupsPath slice:prefix:name in a slice of its own", async (t) => {
    leakCheck(t);
    const id = containerId();
    const slice = `systemd-tsrun${process.pid}.slice`;
    const unit = `tsrun-${id}.scope`;
    const b = bundle(t, ["sh", "-c", "cat /proc/self/cgroup; exit 3"], (c) => {
      c.linux.cgroupsPath = `${slice}:tsrun:${id}`;
      c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "cgroup");
    });
    const r = ts(["--systemd-cgroup", "run", "--bundle", b.dir, id]);
    t.equal(r.code, 3, `the container's exit status: ${r.stderr}`);
    t.match(r.stdout, new RegExp(`^\\d+:memory:/systemd\\.slice/${slice.replace(/\./g, "\\.")}/${unit.replace(/[.+]/g, "\\$&")}$`, "m"), "in the scope, in the slice (systemd's hierarchy for the name)");
    nothingLeft(t, id);
    sd(["stop", slice, "systemd.slice"]);
  });

  t.test("bad input and conflicts: one line, nothing left", async (t) => {
    leakCheck(t);
    const id = containerId();
    const b = bundle(t, ["true"], (c) => (c.linux.cgroupsPath = "/tsrun/plain"));
    const r = ts(["--systemd-cgroup", "create", "--bundle", b.dir, id]);
    t.equal(r.code, 1);
    t.match(r.stderr, /^tsrun: config\.json: linux\.cgroupsPath: must be "slice:prefix:name" with the systemd cgroup driver \(got "\/tsrun\/plain"\)\n$/);
    nothingLeft(t, id);

    // Two containers, one unit name: the second is refused, the first untouched.
    const [a, c] = [containerId(), containerId()];
    const shared = `system.slice:tsrun:shared${process.pid}`;
    const ba = bundle(t, ["sleep", "100"], (cfg) => (cfg.linux.cgroupsPath = shared));
    const bc = bundle(t, ["sleep", "100"], (cfg) => (cfg.linux.cgroupsPath = shared));
    ok(t, ts(["--systemd-cgroup", "create", "--bundle", ba.dir, a]), "first");
    const second = ts(["--systemd-cgroup", "create", "--bundle", bc.dir, c]);
    t.equal(second.code, 1);
    t.match(second.stderr, new RegExp(`^tsrun: systemd: unit tsrun-shared${process.pid}\\.scope already exists`));
    t.equal(JSON.parse(ts(["state", a]).stdout).status, "created", "the first is untouched");
    t.notOk(fs.existsSync(`/proc/${host.pid}/root${ROOT}/${c}`), "no state of the second");
    ok(t, ts(["delete", a]), "delete the first");
    nothingLeft(t, a, `tsrun-shared${process.pid}.scope`);

    // A limit the host cannot apply: refused after the unit started, which is removed again.
    const d = containerId();
    const bd = bundle(t, ["true"], (cfg) => (cfg.linux.resources = { rdma: { mlx: { hcaHandles: 1 } } }));
    const refused = ts(["--systemd-cgroup", "create", "--bundle", bd.dir, d]);
    t.equal(refused.code, 1);
    t.match(refused.stderr, /^tsrun: cgroup: cannot write mlx hca_handle=1 to rdma\.max: the rdma controller is not available/);
    nothingLeft(t, d);
  });

  t.test("a create killed at any point: delete --force removes the unit and every dir", async (t) => {
    leakCheck(t);
    for (const point of ["create-record-written", "create-unit-started", "create-cgroup-dirs", "create-cgroup-created", "create-helper-pid", "create-helper-ready", "create-record-complete"]) {
      const id = containerId(point.replace(/^create-/, ""));
      const b = bundle(t, ["sleep", "100"]);
      const r = host.tsrun(["--root", ROOT, "--systemd-cgroup", "create", "--bundle", b.dir, id], { env: { TSRUN_TEST_CRASH_AT: point } });
      t.equal(r.signal, "SIGKILL", `${point}: killed there`);
      ok(t, ts(["delete", "--force", id]), `${point}: delete --force`);
      nothingLeft(t, id);
    }
  });

  t.test("rootless on this layout: refused in one line (a user's manager cannot delegate v1 controllers)", async (t) => {
    leakCheck(t);
    const id = containerId();
    const b = bundle(t, ["true"]);
    b.config = rootlessConfig({ name: "sdtest", uid: 4242, gid: 4242, subuid: { start: 0, count: 0 }, subgid: { start: 0, count: 0 }, xdg: "/tmp" }, ["true"]);
    fs.writeFileSync(b.configPath, JSON.stringify(b.config));
    const r = host.run(["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", "env", "XDG_RUNTIME_DIR=/tmp", host.tsrunPath, "--root", "/tmp/tsrun-rootless", "--systemd-cgroup", "create", "--bundle", b.dir, id]);
    t.equal(r.code, 1);
    t.match(r.stderr, /^tsrun: systemd cgroup driver: a user's systemd manager can delegate cgroups only on the unified hierarchy \(cgroup v2 alone\), and this host mounts cgroup v1 controllers: run as root, or without --systemd-cgroup\n$/);
    t.equal(host.run(["sh", "-c", "ls /tmp/tsrun-rootless 2>/dev/null"]).stdout, "", "no state");
  });
}

function findDirs(dir: string, name: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(d, e.name);
      if (e.name === name) out.push(p);
      walk(p);
    }
  };
  walk(dir);
  return out;
}
