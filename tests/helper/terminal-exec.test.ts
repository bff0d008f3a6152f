/**
 * The helper's terminal handling (console socket, foreground proxy) and exec mode (needs root).
 * Run: node_modules/.bin/tap tests/helper/terminal-exec.test.ts
 */
import t from "tap";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { HELPER, CAP, basePlan, cleanup, capMask, execPlan, namespaces, killPid, makeRootfs, pidAlive, proc, runHelper, startFifo, tempDir, waitGone, type PlanOver } from "./harness.ts";
import type { NamespaceType } from "../../src/linux/namespaces.ts";

if (process.getuid?.() !== 0 || !fs.existsSync(HELPER)) {
  t.plan(0, "needs root and build/tsrun-helper (make build/tsrun-helper)");
  process.exit(0);
}

const dir = tempDir();
fs.chmodSync(dir, 0o755); // user namespace containers run as an unprivileged host uid
const rootfs = makeRootfs(dir);
t.teardown(async () => {
  await cleanup(dir);
});
let n = 0;
const fifoPath = () => path.join(dir, `fifo${n++}`);

/** A console socket server that records the payload and what the pty master shows. */
async function consoleReceiver(): Promise<{ sock: string; out: string; done: Promise<number | null> }> {
  const sock = path.join(dir, `console${n++}.sock`);
  const out = path.join(dir, `console${n++}.out`);
  const py = spawn("python3", [path.join(path.dirname(new URL(import.meta.url).pathname), "console-receiver.py"), sock, out], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve) => py.stdout!.once("data", () => resolve()));
  const done = new Promise<number | null>((resolve) => py.on("exit", (c) => resolve(c)));
  t.teardown(() => {
    py.kill("SIGKILL");
  });
  return { sock, out, done };
}

t.test("terminal with a console socket: master sent with the slave path, /dev/console bound", async (t) => {
  const rcv = await consoleReceiver();
  const f = fifoPath();
  const plan = basePlan(rootfs, ["sh", "-c", "tty; stty size; ls -l /dev/console; readlink /proc/self/fd/1"], {
    execFifo: f,
    foreground: false,
    consoleSocket: rcv.sock,
  });
  proc(plan).terminal = { height: 40, width: 100, uid: 0 };
  const r = await runHelper(plan);
  t.equal(r.code, 0, r.error ?? "");
  startFifo(f);
  t.ok(await waitGone(r.pid!), "container ran");
  await rcv.done;
  const out = fs.readFileSync(rcv.out, "utf8");
  t.match(out, /^payload=\/dev\/pts\/0\n/);
  t.match(out, /\/dev\/pts\/0\r\n40 100\r\ncrw--w---- +1 0 +5 +136, +0 .* \/dev\/console\r\n\/dev\/pts\/0\r\n/);
});

t.test("terminal in the foreground without a console socket: the helper proxies stdio", async (t) => {
  const f = fifoPath();
  const plan = basePlan(rootfs, ["sh"], { execFifo: f });
  proc(plan).terminal = { height: 30, width: 90, uid: 0 };
  const r = await runHelper(plan, {
    onReady: () => startFifo(f),
    stdin: "stty size; echo from-$((6*7)); exit 3\n",
  });
  t.equal(r.code, 0, r.error ?? "");
  t.equal(r.exit, 3);
  t.match(r.stdout, /30 90\r\n/);
  t.match(r.stdout, /from-42\r\n/);
});

t.test("a detached terminal without a console socket is refused", async (t) => {
  const plan = basePlan(rootfs, ["true"], { execFifo: fifoPath(), foreground: false });
  proc(plan).terminal = { height: 0, width: 0, uid: 0 };
  const r = await runHelper(plan);
  t.match(r.error, /^cannot allocate a pseudo-TTY without a console socket/);
  t.equal(r.code, 1);
  t.notOk(fs.existsSync(plan.execFifo!), "no fifo left behind");
});

/** A running container: its init is `sleep 1000`. */
async function runningContainer(over: PlanOver = {}): Promise<number> {
  const f = fifoPath();
  const r = await runHelper(basePlan(rootfs, ["sleep", "1000"], { execFifo: f, foreground: false, ...over }));
  if (r.code !== 0) throw new Error(`create failed: ${r.error}`);
  startFifo(f);
  // wait until it has exec'd sleep
  for (let i = 0; i < 100; i++) {
    if (fs.readFileSync(`/proc/${r.pid}/cmdline`, "utf8").startsWith("sleep")) break;
    await new Promise((res) => setTimeout(res, 10));
  }
  return r.pid!;
}

const CTR_NS: NamespaceType[] = ["pid", "network", "ipc", "uts", "mount"];

t.test("exec: joins the container's namespaces, runs as the given user in the given cwd", async (t) => {
  const pid = await runningContainer();
  t.teardown(() => killPid(pid));
  const plan = execPlan(pid, ["sh", "-c", "hostname; cat /proc/1/cmdline; echo; echo $$; pwd; id; grep CapEff /proc/self/status"], CTR_NS);
  proc(plan).cwd = "/tmp";
  proc(plan).uid = 1000;
  proc(plan).gid = 1000;
  proc(plan).capabilities = { bounding: capMask([CAP.KILL]), effective: 0n, inheritable: 0n, permitted: 0n, ambient: 0n };
  const r = await runHelper(plan);
  t.equal(r.code, 0, r.error ?? "");
  t.equal(r.exit, 0);
  const out = r.stdout.split("\n");
  t.equal(out[0], "tsrun-test");
  t.equal(out[1], "sleep\u00001000\u0000");
  t.not(out[2], "1", "not the init");
  t.equal(out[3], "/tmp");
  t.equal(out[4], "uid=1000 gid=1000");
  t.equal(out[5], "CapEff:\t0000000000000000");
  t.ok(r.pid && r.pid > 1);
  t.same(
    r.lines.map((l) => l.split(" ")[0]),
    ["pid", "ready", "exit"],
  );
  t.ok(pidAlive(pid), "the container init is still running");
});

t.test("exec: errors use runc's words and leave nothing running", async (t) => {
  const pid = await runningContainer();
  t.teardown(() => killPid(pid));
  let r = await runHelper(execPlan(pid, ["nosuchcmd"], CTR_NS));
  t.equal(r.error, 'exec: "nosuchcmd": executable file not found in $PATH');
  t.equal(r.code, 1);
  t.ok(r.pid && (await waitGone(r.pid)));
  const plan = execPlan(pid, ["true"], CTR_NS);
  proc(plan).cwd = "/nonexistent";
  r = await runHelper(plan);
  t.equal(r.error, 'chdir to cwd ("/nonexistent") set in config.json failed: no such file or directory');
  r = await runHelper(execPlan(pid, ["true"], CTR_NS, { namespaces: namespaces(["mount"]) }));
  t.equal(r.error, "plan: exec would make a new mount namespace (every namespace of an exec is joined by path)");
  t.notOk(r.pid, "refused before anything ran");
});

t.test("exec: detached, the process keeps running after the helper exits", async (t) => {
  const pid = await runningContainer();
  t.teardown(() => killPid(pid));
  const r = await runHelper(execPlan(pid, ["sh", "-c", "sleep 0.2; echo done > /tmp/exec-detached"], CTR_NS, { foreground: false }));
  t.equal(r.code, 0, r.error ?? "");
  t.same(r.lines, [`pid ${r.pid}`, "ready"]);
  await waitGone(r.pid!);
  t.equal(fs.readFileSync(path.join(rootfs, "tmp/exec-detached"), "utf8"), "done\n");
});

t.test("exec: with a terminal, proxied in the foreground", async (t) => {
  const pid = await runningContainer();
  t.teardown(() => killPid(pid));
  const plan = execPlan(pid, ["sh", "-c", "tty; exit 5"], CTR_NS);
  proc(plan).terminal = { height: 0, width: 0, uid: 0 };
  const r = await runHelper(plan);
  t.equal(r.exit, 5, r.error ?? "");
  t.match(r.stdout, /^\/dev\/pts\/\d+\r\n/);
});

t.test("exec: into a container with a user namespace", async (t) => {
  const pid = await runningContainer({
    namespaces: namespaces(["user", "pid", "mount", "uts", "ipc", "network", "time"]),
    uidMappings: [{ containerId: 0, hostId: 200000, size: 65536 }],
    gidMappings: [{ containerId: 0, hostId: 200000, size: 65536 }],
    devices: basePlan("", []).devices.map((d) => ({ ...d, bindFromHost: true })),
  });
  t.teardown(() => killPid(pid));
  const r = await runHelper(execPlan(pid, ["sh", "-c", "cat /proc/self/uid_map; id"], ["user", "pid", "mount", "uts", "ipc", "network", "time"]));
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, /^ +0 +200000 +65536\nuid=0 gid=0\n/);
});

t.test("exec: placed in the cgroup before it runs", async (t) => {
  const base = "/sys/fs/cgroup/pids";
  if (!fs.existsSync(path.join(base, "cgroup.procs"))) {
    t.comment("no pids cgroup v1 hierarchy");
    return;
  }
  const pid = await runningContainer();
  t.teardown(() => killPid(pid));
  const cg = path.join(base, `tsrun-helper-exec-${process.pid}`);
  fs.mkdirSync(cg);
  t.teardown(() => fs.rmdirSync(cg));
  const r = await runHelper(execPlan(pid, ["sh", "-c", "grep pids /proc/self/cgroup"], CTR_NS, { cgroupProcs: [path.join(cg, "cgroup.procs")] }));
  t.equal(r.exit, 0, r.error ?? "");
  t.match(r.stdout, new RegExp(`pids:/tsrun-helper-exec-${process.pid}\n`));
});
