// containerd 1.6 running containers through tsrun with the io.containerd.runc.v2 shim, as a user
// of ctr does: `ctr run --runc-binary /path/to/tsrun`. containerd runs in the background with
// its root, state, sockets and config under a temp dir, and is stopped by pid at the end.
// tsrun's state goes where the shim puts it: --runc-root DIR (the shim adds the namespace).
import t, { type Test } from "tap";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { CriClient, NamespaceMode, podSandboxConfig } from "./cri.ts";
import {
  CAP, IMAGE, TSRUN, buildImageArchive, callLines, capMask, cgroupDirOf, createdIds, denyMkdirProfile,
  forceCleanup, hasCap, makeWorkspace, mountsOf, processesMatching, readTrim, removeEmptyCgroups, run, runInTty,
  skipReason, sleep, startContainerd, stateEntries, topCgroups, type Containerd, type Result,
} from "./lib.ts";

const skip = skipReason("containerd", ["containerd", "ctr", "containerd-shim-runc-v2"]);

t.test("containerd (ctr, runc v2 shim) with tsrun", { skip }, async (t) => {
  const ws = makeWorkspace("containerd");
  // The namespace names the cgroup parent (/<namespace>/<id>) and the state dir below runc-root.
  const ns = `tsrun-mgr-${process.pid}`;
  const runcRoot = path.join(ws.dir, "runc-root");
  const fifoDir = path.join(ws.dir, "fifo");
  const defaultRuncRoot = path.join("/run/containerd/runc", ns);
  const podCgroup = `tsrun-mgr-cri-${process.pid}`;
  const runcDirExisted = fs.existsSync("/run/containerd/runc");
  const criRoot = path.join(ws.dir, "cri-root");
  let ctd: Containerd | undefined;
  t.teardown(async () => {
    if (ctd?.daemon.alive()) {
      for (const id of listTasks()) ctr(["task", "kill", "--all", "--signal", "KILL", id]);
      await sleep(500);
      for (const id of listContainers()) {
        ctr(["task", "delete", "--force", id]);
        ctr(["container", "delete", id]);
      }
      await ctd.daemon.stop();
    }
    for (const n of await forceCleanup(ws, [ns, podCgroup])) t.comment(`cleanup: ${n}`);
    removeEmptyCgroups([...topCgroups(ns), ...topCgroups(podCgroup)]);
    try {
      fs.rmdirSync(defaultRuncRoot); // made by the --no-pivot scenario; empty unless it leaked
      if (!runcDirExisted) fs.rmdirSync("/run/containerd/runc");
    } catch {
      // absent, or not empty: reported by the test
    }
  });

  // `ctr run --no-pivot` replaces the task's runtime options, dropping --runc-binary and
  // --runc-root (ctr 1.6): the shim then runs "runc" from PATH with its default root. For that
  // one scenario the shims find tsrun as "runc" first on their PATH.
  const shadow = path.join(ws.dir, "runc-shadow");
  fs.mkdirSync(shadow);
  fs.symlinkSync(ws.wrapper, path.join(shadow, "runc"));
  ctd = await startContainerd(ws, { runcOnPath: shadow, cri: { binary: ws.wrapper, root: criRoot } });
  const ctr = (args: string[], opts: Parameters<typeof run>[2] = {}): Result => run("ctr", ["--address", ctd!.socket, "--namespace", ns, ...args], opts);
  const ctrArgv = (args: string[]) => ["ctr", "--address", ctd!.socket, "--namespace", ns, ...args];
  const runArgs = (rest: string[]) => ["run", "--runc-binary", ws.wrapper, "--runc-root", runcRoot, "--fifo-dir", fifoDir, ...rest];
  const ctrRun = (rest: string[], opts: Parameters<typeof run>[2] = {}) => ctr(runArgs(rest), opts);
  const exec = (rest: string[], opts: Parameters<typeof run>[2] = {}) => ctr(["task", "exec", "--fifo-dir", fifoDir, ...rest], opts);
  const listTasks = () => ctr(["task", "list", "--quiet"]).stdout.split("\n").filter(Boolean);
  const listContainers = () => ctr(["container", "list", "--quiet"]).stdout.split("\n").filter(Boolean);
  const taskLine = (id: string) => ctr(["task", "list"]).stdout.split("\n").find((l) => l.split(/\s+/)[0] === id) ?? "";
  const taskPid = (id: string) => Number(taskLine(id).split(/\s+/)[1]);
  const taskStatus = (id: string) => taskLine(id).split(/\s+/)[2];
  const removeContainer = (t: Test, id: string) => {
    ctr(["task", "delete", "--force", id]);
    const r = ctr(["container", "delete", id]);
    t.equal(r.code, 0, `container delete ${id}: ${r.stderr}`);
  };
  const traced = (name: string, fn: (t: Test) => Promise<void> | void) =>
    t.test(name, async (t) => {
      const mark = callLines(ws).length;
      await fn(t);
      if (!t.passing()) t.comment(`tsrun calls:\n${callLines(ws, mark).join("\n")}\ncontainerd log:\n${fs.readFileSync(ctd!.daemon.log, "utf8").split("\n").slice(-15).join("\n")}`);
    });

  const archive = buildImageArchive(ws);
  const load = ctr(["images", "import", archive]);
  t.equal(load.code, 0, `ctr images import: ${load.stderr}`);
  if (load.code !== 0) return;

  await traced("Kubernetes: a pod with runtimeClassName tsrun, through the CRI plugin", async (t) => {
    const dump = run("containerd", ["--config", ctd!.config, "config", "dump"]);
    const section = dump.stdout.split(/\n\s*\n/).find((b) => b.trim().startsWith('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.tsrun]')) ?? "";
    t.match(section, /runtime_type = "io\.containerd\.runc\.v2"/, "runtime class tsrun: the runc v2 shim");
    t.match(dump.stdout, new RegExp(`BinaryName = "${ws.wrapper}"`));
    t.match(ctr(["plugins", "list"]).stdout, /io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/, "cri plugin: ok");
    // The kubelet's images live in containerd's k8s.io namespace.
    t.equal(run("ctr", ["--address", ctd!.socket, "--namespace", "k8s.io", "images", "import", archive]).code, 0, "images for the kubelet");

    const cri = new CriClient(ctd!.socket);
    t.match(await cri.version(), /^containerd /);
    const logDir = path.join(ws.dir, "pod-logs");
    fs.mkdirSync(logDir);
    const podConfig = podSandboxConfig({
      name: "hello-tsrun", uid: `uid-${process.pid}`, namespace: "default", logDirectory: logDir,
      cgroupParent: `/${podCgroup}`, network: NamespaceMode.NODE, // host network: no CNI here
    });
    const mark = callLines(ws).length;
    let podId = "";
    try {
      podId = await cri.runPodSandbox(podConfig, "tsrun");
      t.match(podId, /^[0-9a-f]{64}$/, "RunPodSandbox");
      const cid = await cri.createContainer(podId, { name: "hello", image: IMAGE, command: ["sh", "-c", "echo hello from tsrun; exec sleep 1000"], logPath: "hello.log", memoryLimit: 64 << 20 }, podConfig);
      await cri.startContainer(cid);
      t.equal((await cri.containerStatus(cid)).state, "RUNNING", "the container runs");
      t.match(await cri.execSync(cid, ["sh", "-c", "echo exec-ok; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; exit 3"]), {
        stdout: `exec-ok\n${64 << 20}\n`,
        exitCode: 3,
      }, "ExecSync: output, memory limit, exit code");
      await sleep(300);
      t.match(fs.readFileSync(path.join(logDir, "hello.log"), "utf8"), /stdout F hello from tsrun\n/, "the container's log");
      const calls = callLines(ws, mark);
      t.ok(calls.some((l) => l.includes(`tsrun --root ${criRoot}/k8s.io `) && / create --bundle /.test(l) && l.endsWith(podId)), "the pod's sandbox (pause) container: created by tsrun under the class's Root");
      t.ok(calls.some((l) => / create --bundle /.test(l) && l.endsWith(cid)), "the pod's container: created by tsrun");
      await cri.stopContainer(cid, 0);
      t.match(await cri.containerStatus(cid), { state: "EXITED", exitCode: 137 }, "StopContainer");
      await cri.removeContainer(cid);
      // A container whose command is missing: kubelet shows the runtime's error.
      const bad = await cri.createContainer(podId, { name: "bad", image: IMAGE, command: ["/nonexistent"], logPath: "bad.log" }, podConfig);
      await t.rejects(cri.startContainer(bad), /exec: "\/nonexistent": stat \/nonexistent: no such file or directory/, "StartContainer fails with tsrun's error");
      await cri.removeContainer(bad);
    } finally {
      if (podId) {
        await cri.stopPodSandbox(podId);
        await cri.removePodSandbox(podId);
      }
    }
    t.same(stateEntries(criRoot), [], "no tsrun state left");
    t.same(topCgroups(podCgroup).filter((d) => path.basename(d) !== podCgroup), [], "no pod cgroups left");
    t.same(mountsOf(path.join(ctd!.state, "io.containerd.grpc.v1.cri"), []), [], "no sandbox mounts (shm) left");
  });

  await traced("run --rm echo", (t) => {
    t.match(ctrRun(["--rm", IMAGE, "c1", "echo", "hi"]), { code: 0, stdout: "hi\n" });
    const calls = callLines(ws);
    const prefix = `tsrun --root ${runcRoot}/${ns} --log ${ctd!.state}/io.containerd.runtime.v2.task/${ns}/c1/log.json --log-format json`;
    t.ok(calls.some((l) => l.includes(`${prefix} create --bundle `)), "create, with the shim's global flags");
    t.ok(calls.some((l) => l.endsWith(`${prefix} start c1`)), "start");
    t.ok(calls.some((l) => l.endsWith(`${prefix} delete c1`)), "delete");
  });

  await traced("exit codes, stdin, -t", (t) => {
    t.equal(ctrRun(["--rm", IMAGE, "c2", "sh", "-c", "exit 3"]).code, 3);
    t.match(ctrRun(["--rm", IMAGE, "c3", "sh", "-c", "read x; echo got $x"], { input: "line1\n" }), { code: 0, stdout: "got line1\n" });
    const r = runInTty(ctrArgv(runArgs(["--rm", "-t", IMAGE, "c4", "sh"])), "echo in-tty $((6*7)); tty\nexit 7\n");
    t.equal(r.code, 7, `exit status through the tty: ${r.stderr}`);
    t.match(r.stdout, /in-tty 42\r*\n\/dev\/pts\/0/);
  });

  await traced("a failing create leaves nothing behind; tsrun's error reaches ctr", (t) => {
    const cases: Array<[string, string[], RegExp]> = [
      ["missing command", [IMAGE, "f1", "/nonexistent"], /OCI runtime create failed: unable to start container process: exec: "\/nonexistent": stat \/nonexistent: no such file or directory/],
      ["missing in $PATH", [IMAGE, "f2", "no-such-command"], /exec: "no-such-command": executable file not found in \$PATH/],
      ["invalid config (checked by tsrun before anything runs)", ["--rootfs-propagation", "bogus", IMAGE, "f3", "true"], /OCI runtime create failed: config\.json: linux\.rootfsPropagation: must be one of/],
      ["bind mount of a missing source (fails in the helper)", ["--memory-limit", "67108864", "--mount", "type=bind,src=/nonexistent-src,dst=/x,options=rbind", IMAGE, "f4", "true"], /mount \/nonexistent-src on \/x: no such file or directory/],
    ];
    for (const [what, args, want] of cases) {
      const r = ctrRun(["--rm", ...args]);
      t.equal(r.code, 1, what);
      t.match(r.stderr, want, what);
    }
    t.same(listContainers(), [], "no containers");
    t.same(stateEntries(runcRoot), [], "no tsrun state");
    t.same(topCgroups(ns).filter((d) => /\/f[1-4]$/.test(d)), [], "no cgroups");
  });

  await traced("task exec (-t, --user, --cwd, -d), ps, pause/resume, metrics, kill, kill --all", async (t) => {
    const d = ctrRun(["-d", "--memory-limit", String(64 << 20), "--cpus", "0.5", IMAGE, "d1", "sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    t.equal(d.code, 0, d.stderr);
    const pid = taskPid("d1");
    t.ok(pid > 0, "task has a pid");
    t.equal(readTrim(`${cgroupDirOf(pid, "memory")}/memory.limit_in_bytes`) ?? readTrim(`${cgroupDirOf(pid, "memory")}/memory.max`), String(64 << 20), "memory limit");
    t.equal(readTrim(`${cgroupDirOf(pid, "cpu")}/cpu.cfs_quota_us`) ?? readTrim(`${cgroupDirOf(pid, "cpu")}/cpu.max`)?.split(" ")[0], "50000", "cpu quota");

    t.match(exec(["--exec-id", "e1", "d1", "sh", "-c", "echo exec-ok; exit 4"]), { code: 4, stdout: "exec-ok\n" });
    t.match(exec(["--exec-id", "e2", "--user", "65534", "--cwd", "/tmp", "d1", "sh", "-c", "id -u; pwd"]), { code: 0, stdout: "65534\n/tmp\n" });
    const tty = runInTty(ctrArgv(["task", "exec", "--fifo-dir", fifoDir, "-t", "--exec-id", "e3", "d1", "tty"]), "");
    t.match(tty, { code: 0, stdout: /\/dev\/pts\/\d+/ }, "exec -t");
    t.equal(exec(["-d", "--exec-id", "e4", "d1", "sleep", "500"]).code, 0, "exec -d");
    t.match(exec(["--exec-id", "e5", "d1", "no-such-command"]), { code: 1, stderr: /executable file not found in \$PATH/ });
    t.ok(callLines(ws).some((l) => / exec --process \S+ --console-socket \S+ --detach --pid-file \S+ d1$/.test(l)), "exec with a console socket");

    const ps = ctr(["task", "ps", "d1"]);
    t.equal(ps.code, 0, ps.stderr);
    t.ok(ps.stdout.trim().split("\n").length >= 5, `ps lists init, two sleeps and the exec: ${ps.stdout}`);
    t.match(ps.stdout, /ExecID:e4/);

    t.equal(ctr(["task", "pause", "d1"]).code, 0);
    t.equal(taskStatus("d1"), "PAUSED");
    t.equal(ctr(["task", "resume", "d1"]).code, 0);
    t.equal(taskStatus("d1"), "RUNNING");

    const m = ctr(["task", "metrics", "d1"]);
    t.equal(m.code, 0, m.stderr);
    t.match(m.stdout, /memory\.(limit_in_bytes|max)\s+67108864/);
    t.match(m.stdout, /pids\.current\s+[4-9]/);

    t.equal(ctr(["task", "kill", "--signal", "SIGTERM", "--exec-id", "e4", "d1"]).code, 0, "kill an exec'd process");
    t.equal(ctr(["task", "kill", "--all", "--signal", "SIGKILL", "d1"]).code, 0, "kill --all");
    t.ok(callLines(ws).some((l) => / kill --all d1 9$/.test(l)), "as kill --all ID 9");
    for (let i = 0; i < 50 && taskStatus("d1") !== "STOPPED"; i++) await sleep(100);
    t.equal(taskStatus("d1"), "STOPPED");
    t.same(processesMatching({ cgroupNames: [ns] }), [], "every process of the container is gone");
    removeContainer(t, "d1");
  });

  await traced("OOM kill is reported as a /tasks/oom event", async (t) => {
    const events = fs.openSync(path.join(ws.dir, "events.txt"), "w");
    const watcher = spawn("ctr", ["--address", ctd!.socket, "events"], { stdio: ["ignore", events, events] });
    try {
      await sleep(500);
      const r = ctrRun(["--rm", "--memory-limit", String(32 << 20), IMAGE, "oom1", "sh", "-c", "sleep 1; tail /dev/zero"]);
      t.equal(r.code, 137, `OOM-killed: ${r.stderr}`);
      await sleep(500);
    } finally {
      watcher.kill("SIGTERM");
      fs.closeSync(events);
    }
    t.match(fs.readFileSync(path.join(ws.dir, "events.txt"), "utf8"), new RegExp(`${ns} /tasks/oom \\{"container_id":"oom1"\\}`));
  });

  await traced("read-only, bind mounts, --no-pivot, --privileged, --seccomp, --uidmap", (t) => {
    const vol = path.join(ws.dir, "vol");
    fs.mkdirSync(vol);
    fs.writeFileSync(path.join(vol, "f"), "data\n");
    t.match(ctrRun(["--rm", "--read-only", IMAGE, "m1", "touch", "/x"]), { code: 1, stderr: /Read-only file system/ });
    t.match(ctrRun(["--rm", "--mount", `type=bind,src=${vol},dst=/data,options=rbind:rw`, IMAGE, "m2", "sh", "-c", "cat /data/f; echo w > /data/g"]), { code: 0, stdout: "data\n" });
    t.equal(fs.readFileSync(path.join(vol, "g"), "utf8"), "w\n");
    t.match(ctrRun(["--rm", "--mount", `type=bind,src=${vol},dst=/data,options=rbind:ro`, IMAGE, "m3", "sh", "-c", "echo w > /data/h"]), {
      code: 1,
      stderr: /Read-only file system/,
    });
    t.match(ctrRun(["--rm", "--no-pivot", IMAGE, "m4", "sh", "-c", "echo no-pivot; cat /proc/self/mountinfo"]), { code: 0, stdout: /^no-pivot\n/ });
    t.ok(callLines(ws).some((l) => l.includes(`tsrun --root ${defaultRuncRoot} `) && / create --bundle \S+ --pid-file \S+ --no-pivot m4$/.test(l)), "create --no-pivot");
    t.same(stateEntries(defaultRuncRoot), [], "no state left in the shim's default root");
    const priv = ctrRun(["--rm", "--privileged", IMAGE, "m5", "sh", "-c", "grep CapEff /proc/self/status; test -e /dev/fuse -o -e /dev/loop-control -o -e /dev/kmsg && echo host-devices"]);
    t.equal(priv.code, 0, priv.stderr);
    t.ok(hasCap(capMask(priv.stdout), CAP.SYS_ADMIN), "privileged: SYS_ADMIN");
    t.match(priv.stdout, /host-devices/, "privileged: the host's devices");
    t.match(ctrRun(["--rm", "--seccomp", IMAGE, "m6", "grep", "^Seccomp:", "/proc/self/status"]), { code: 0, stdout: /Seccomp:\s+2/ });
    t.match(ctrRun(["--rm", "--seccomp", "--seccomp-profile", denyMkdirProfile(ws), IMAGE, "m7", "mkdir", "/tmp/d"]), { code: 1, stderr: /Operation not permitted/ });
    t.match(ctrRun(["--rm", IMAGE, "m8", "sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/d"]), { code: 0, stdout: /Seccomp:\s+0/ }, "no --seccomp: no filter");
    t.match(ctrRun(["--rm", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", IMAGE, "m9", "sh", "-c", "cat /proc/self/uid_map; id -u"]), {
      code: 0,
      stdout: /^\s*0\s+100000\s+65536\n0\n$/,
    });
    t.same(listContainers(), [], "--rm removed them all");
  });

  await traced("the binary itself, without the logging wrapper", (t) => {
    t.match(ctr(["run", "--runc-binary", TSRUN, "--runc-root", runcRoot, "--fifo-dir", fifoDir, "--rm", IMAGE, "direct", "echo", "direct"]), { code: 0, stdout: "direct\n" });
  });

  await traced("containerd stops and nothing is left behind", async (t) => {
    t.same(listContainers(), [], "no containers");
    const ids = createdIds(ws);
    t.ok(ids.length > 15, `tsrun created the containers (${ids.length})`);
    t.same(stateEntries(runcRoot), [], "no tsrun state");
    t.ok(await ctd!.daemon.stop(), "containerd exits on SIGTERM");
    t.same(topCgroups(ns).filter((d) => path.basename(d) !== ns), [], "no container cgroups");
    t.same(mountsOf(ws.dir, []), [], "no mounts");
    t.same(processesMatching({ cmdline: [ws.dir, `-namespace ${ns} -id `, "-namespace k8s.io -id "], cgroupNames: [ns, podCgroup] }), [], "no processes (shims, containers)");
  });
});
