// Cgroup resources on real containers: limits read back from the host's cgroup files, their
// effect from inside, `update` (flags, a file, stdin), `events` with stats and OOM kills.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { makeBundle } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { containerId, spawnTsrun, testRoot, tsrun } from "../lib/tsrun.ts";
import { probeResctrl } from "../../src/linux/resctrl.ts";

/** The container's cgroup dir for a v1 controller, from its init's /proc/PID/cgroup. */
function cgroupDir(pid: number, controller: string): string {
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((l) => l.split(":")[1]!.split(",").includes(controller));
  if (!line) throw new Error(`no ${controller} cgroup for ${pid}`);
  return path.join("/sys/fs/cgroup", controller, line.split(":")[2]!);
}
const read = (dir: string, file: string) => fs.readFileSync(path.join(dir, file), "utf8").trim();
const statePid = (root: string, id: string) => JSON.parse(tsrun(["state", id], { root }).stdout).pid as number;

t.test("limits at create, read back, then changed by update", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, {
    args: ["sleep", "1000"],
    config: (c) => (c.linux.resources = { ...c.linux.resources, memory: { limit: 64 << 20 }, pids: { limit: 20 }, cpu: { shares: 512 } }),
  });
  const id = containerId();
  t.equal(tsrun(["run", "-d", "--bundle", bundle.dir, id], { root }).code, 0);
  const pid = statePid(root, id);
  const mem = cgroupDir(pid, "memory");
  t.equal(read(mem, "memory.limit_in_bytes"), String(64 << 20));
  t.equal(read(cgroupDir(pid, "pids"), "pids.max"), "20");
  t.equal(read(cgroupDir(pid, "cpu"), "cpu.shares"), "512");

  t.equal(tsrun(["update", "--memory", "128m", "--pids-limit", "30", id], { root }).code, 0);
  t.equal(read(mem, "memory.limit_in_bytes"), String(128 << 20));
  t.equal(read(cgroupDir(pid, "pids"), "pids.max"), "30");

  const file = path.join(bundle.dir, "resources.json");
  fs.writeFileSync(file, JSON.stringify({ cpu: { shares: 256 } }));
  t.equal(tsrun(["update", "--resources", file, id], { root }).code, 0);
  t.equal(read(cgroupDir(pid, "cpu"), "cpu.shares"), "256");

  t.equal(tsrun(["update", "--resources", "-", id], { root, input: JSON.stringify({ pids: { limit: 40 } }) }).code, 0);
  t.equal(read(cgroupDir(pid, "pids"), "pids.max"), "40");
  const saved = JSON.parse(fs.readFileSync(path.join(root, id, "state.json"), "utf8")).config.linux.resources;
  t.match(saved, { memory: { limit: 128 << 20 }, pids: { limit: 40 }, cpu: { shares: 256 } }, "the record keeps the new values");

  t.match(tsrun(["update", "--resources", "-", id], { root, input: "{" }), { code: 1, stderr: /^tsrun: stdin: invalid JSON: / });
  t.match(tsrun(["update", "--resources", "-", id], { root, input: JSON.stringify({ memory: { limit: "lots" } }) }), { code: 1, stderr: /^tsrun: stdin: memory\.limit: must be/ });
  t.match(tsrun(["update", "--memory", "lots", id], { root }), { code: 1, stderr: /^tsrun: invalid value "lots" for --memory/ });
  t.match(tsrun(["update", "--cpuset-cpus", "999", id], { root }), { code: 1, stderr: /cpuset\.cpus/ });

  const ev = tsrun(["events", "--stats", id], { root });
  t.equal(ev.code, 0, ev.stderr);
  const event = JSON.parse(ev.stdout);
  t.equal(event.type, "stats");
  t.equal(event.id, id);
  t.ok(event.data.pids.current >= 1, "pids.current counts the init");
  t.equal(event.data.memory.usage.limit, 128 << 20, "memory limit in the stats");

  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
  t.match(tsrun(["update", "--memory", "1m", id], { root }), { code: 1, stderr: /container does not exist/ });
});

t.test("pids.limit 0 is a limit, at create and by update (runtime-spec 1.3.0)", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"], config: (c) => (c.linux.resources = { ...c.linux.resources, pids: { limit: 0 } }) });
  const id = containerId();
  t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root }).code, 0);
  const pids = cgroupDir(statePid(root, id), "pids");
  t.equal(read(pids, "pids.max"), "0", "create writes 0, not max");
  t.equal(tsrun(["update", "--pids-limit", "-1", id], { root }).code, 0);
  t.equal(read(pids, "pids.max"), "max", "a negative limit is unlimited");
  t.equal(tsrun(["update", "--pids-limit", "0", id], { root }).code, 0);
  t.equal(read(pids, "pids.max"), "0", "update --pids-limit 0 writes 0");
  t.equal(tsrun(["update", "--resources", "-", id], { root, input: JSON.stringify({ pids: { limit: 5 } }) }).code, 0);
  t.equal(tsrun(["update", "--resources", "-", id], { root, input: JSON.stringify({ pids: { limit: 0 } }) }).code, 0);
  t.equal(read(pids, "pids.max"), "0", "update --resources with limit 0 writes 0");
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
});

t.test("update --cpu-idle, --l3-cache-schema and --mem-bw-schema (runc's flags)", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"], config: (c) => (c.linux.resources = { ...c.linux.resources, pids: { limit: 50 } }) });
  const id = containerId();
  t.equal(tsrun(["run", "-d", "--bundle", bundle.dir, id], { root }).code, 0);
  const pid = statePid(root, id);
  const cpu = cgroupDir(pid, "cpu");
  if (fs.existsSync(path.join(cpu, "cpu.idle"))) {
    const r = tsrun(["update", "--cpu-idle", "1", id], { root });
    t.equal(r.code, 0, r.stderr);
    t.equal(read(cpu, "cpu.idle"), "1", "cpu.idle written (this kernel has it in the v1 cpu controller)");
    t.equal(tsrun(["update", "--cpu-idle=0", id], { root }).code, 0);
    t.equal(read(cpu, "cpu.idle"), "0");
    t.match(JSON.parse(fs.readFileSync(path.join(root, id, "state.json"), "utf8")).config.linux.resources, { cpu: { idle: 0 } }, "kept in the record");
  } else {
    t.match(tsrun(["update", "--cpu-idle", "1", id], { root }), { code: 1, stderr: /^tsrun: cgroup: linux\.resources\.cpu\.idle \(1\): not supported by this kernel's v1 cpu controller \(no cpu\.idle file\)\n$/ });
  }
  t.match(tsrun(["update", "--cpu-idle", "2", id], { root }), { code: 1, stderr: /^tsrun: invalid value "2" for --cpu-idle: want 0 \(default behaviour\) or 1 \(SCHED_IDLE\)\n$/ });
  if (!probeResctrl()) {
    const pids = cgroupDir(pid, "pids");
    const r = tsrun(["update", "--l3-cache-schema", "L3:0=f", "--pids-limit", "7", id], { root });
    t.same({ code: r.code, stdout: r.stdout, stderr: r.stderr }, {
      code: 1, stdout: "", stderr: "tsrun: update --l3-cache-schema: Intel RDT/CAT: l3 cache schema is not enabled (no resctrl file system is mounted)\n",
    }, "refused where no resctrl is mounted");
    t.equal(read(pids, "pids.max"), "50", "and nothing else of that update applied");
    t.match(tsrun(["update", "--mem-bw-schema", "MB:0=20", id], { root }), { code: 1, stderr: /^tsrun: update --mem-bw-schema: Intel RDT\/MBA: memory bandwidth schema is not enabled \(no resctrl file system is mounted\)\n$/ });
  }
  t.match(tsrun(["update", "--mem-bw-schema", "L3:0=f", id], { root }), { code: 1, stderr: /^tsrun: invalid value "L3:0=f" for --mem-bw-schema: / });
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
});

t.test("limits take effect inside", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const run = (script: string, resources: object, mutate: (c: Record<string, any>) => void = () => {}) => {
    const bundle = makeBundle(t, {
      args: ["sh", "-c", script],
      config: (c) => {
        c.linux.resources = { ...c.linux.resources, ...resources };
        mutate(c);
      },
    });
    return tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
  };
  const forks = run("for i in $(seq 30); do sleep 10 & done; kill $(jobs -p) 2>/dev/null; true", { pids: { limit: 8 } });
  t.match(forks.stderr, /can't fork|Resource temporarily unavailable|Try again/, "pids.max stops the fork bomb");

  const pinned = run("grep Cpus_allowed_list /proc/self/status", { cpu: { cpus: "0" } });
  t.match(pinned.stdout, /Cpus_allowed_list:\s+0\n/, pinned.stderr);

  const denied = run("head -c1 /dev/allowed >/dev/null && echo allowed-ok; head -c1 /dev/denied 2>&1", {}, (c) => {
    c.linux.devices = [
      { path: "/dev/allowed", type: "c", major: 1, minor: 5 },
      { path: "/dev/denied", type: "c", major: 1, minor: 11 },
    ];
    c.linux.resources.devices = [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 5, access: "rwm" }];
  });
  t.match(denied.stdout, /allowed-ok\n.*Operation not permitted/, "the device cgroup denies a device without a rule");
});

t.test("events reports an OOM kill", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, {
    args: ["sh", "-c", "sleep 0.5; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000"],
    config: (c) => (c.linux.resources = { ...c.linux.resources, memory: { limit: 16 << 20, swap: 16 << 20 } }),
  });
  const id = containerId();
  t.equal(tsrun(["run", "-d", "--bundle", bundle.dir, id], { root }).code, 0);
  const { child, done } = spawnTsrun(["events", "--interval", "100ms", id], { root });
  child.stdin!.end();
  let out = "";
  await new Promise<void>((resolve) => child.stdout!.on("data", (d: Buffer) => ((out += d.toString()), out.includes('"oom"') && resolve())));
  const events = out.trim().split("\n").map((l) => JSON.parse(l) as { type: string; id: string });
  t.ok(events.some((e) => e.type === "stats" && e.id === id), "stats events");
  t.ok(events.some((e) => e.type === "oom" && e.id === id), "an oom event");
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
  await done;
  t.pass("events ends when the container is gone");
});
