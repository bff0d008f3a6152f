// dockerd 20.10 running containers through tsrun: tsrun named in daemon.json's "runtimes" (and
// a second name added with --add-runtime), `docker run --runtime tsrun`. dockerd runs in the
// background on a private containerd (both with root, state, sockets and config under a temp
// dir) and both are stopped by pid at the end.
// Networking: dockerd runs with --bridge none and no iptables, so containers get no network set
// up by docker on the host (nothing here may touch the host's network configuration).
import t, { type Test } from "tap";
import fs from "node:fs";
import path from "node:path";
import {
  CAP, CGROUP_READ, IMAGE, TSRUN, buildImageArchive, callLines, capMask, createdIds, denyMkdirProfile, forceCleanup,
  hasCap, makeWorkspace, mountsOf, processesMatching, removeEmptyCgroups, run, runInTty, skipReason, startContainerd,
  startDaemon, stateEntries, tail, topCgroups, which, type Containerd, type Daemon, type Result,
} from "./lib.ts";

const skip = skipReason("docker", ["dockerd", "docker", "containerd", "containerd-shim-runc-v2"]);

t.test("docker with tsrun", { skip }, async (t) => {
  const ws = makeWorkspace("docker");
  const cgroupParent = `tsrun-mgr-docker-${process.pid}`;
  const dir = path.join(ws.dir, "docker");
  fs.mkdirSync(dir);
  const socket = path.join(dir, "docker.sock");
  const execRoot = path.join(dir, "exec");
  const dataRoot = path.join(dir, "data");
  let ctd: Containerd | undefined;
  let dockerd: Daemon | undefined;
  t.teardown(async () => {
    if (dockerd?.alive()) {
      const left = docker(["ps", "-aq"]).stdout.split("\n").filter(Boolean);
      if (left.length) docker(["rm", "--force", ...left]);
      await dockerd.stop();
    }
    if (ctd?.daemon.alive()) await ctd.daemon.stop();
    for (const n of await forceCleanup(ws, [cgroupParent])) t.comment(`cleanup: ${n}`);
    removeEmptyCgroups(topCgroups(cgroupParent));
  });

  const docker = (args: string[], opts: Parameters<typeof run>[2] = {}): Result => run("docker", ["--host", `unix://${socket}`, ...args], opts);
  const dockerArgv = (args: string[]) => ["docker", "--host", `unix://${socket}`, ...args];
  const R = ["--runtime", "tsrun", "--network", "none"];
  const traced = (name: string, fn: (t: Test) => Promise<void> | void) =>
    t.test(name, async (t) => {
      const mark = callLines(ws).length;
      await fn(t);
      if (!t.passing()) t.comment(`tsrun calls:\n${callLines(ws, mark).join("\n")}\ndockerd log:\n${tail(dockerd!.log, 15)}`);
    });

  ctd = await startContainerd(ws);
  const daemonJson = path.join(dir, "daemon.json");
  fs.writeFileSync(daemonJson, JSON.stringify({ runtimes: { tsrun: { path: ws.wrapper } } }, null, 2));
  const storageDriver = run("stat", ["-f", "-c", "%T", ws.dir]).stdout.trim() === "overlayfs" ? "vfs" : "overlay2";
  dockerd = await startDaemon(
    "dockerd",
    which("dockerd")!,
    [
      "--config-file", daemonJson,
      "--add-runtime", `tsrun-direct=${TSRUN}`,
      "--host", `unix://${socket}`,
      "--data-root", dataRoot,
      "--exec-root", execRoot,
      "--pidfile", path.join(dir, "docker.pid"),
      "--containerd", ctd.socket,
      "--storage-driver", storageDriver,
      "--cgroup-parent", `/${cgroupParent}`,
      "--bridge", "none",
      "--iptables=false",
      "--ip-masq=false",
      "--userland-proxy=false",
    ],
    path.join(dir, "dockerd.log"),
    () => fs.existsSync(socket) && docker(["version"], { timeoutMs: 10_000 }).code === 0,
  );

  const load = docker(["load", "--input", buildImageArchive(ws)]);
  t.equal(load.code, 0, `docker load: ${load.stderr}`);
  if (load.code !== 0) return;

  await traced("run --rm echo, --runtime tsrun from daemon.json", (t) => {
    t.match(docker(["run", "--rm", ...R, IMAGE, "echo", "hi"]), { code: 0, stdout: "hi\n" });
    const calls = callLines(ws);
    t.ok(calls.some((l) => /^\S+ tsrun --root \S+ --log \S+\/log\.json --log-format json create --bundle /.test(l)), "create through the shim");
    t.match(docker(["run", "--rm", "--runtime", "tsrun-direct", "--network", "none", IMAGE, "echo", "direct"]), { code: 0, stdout: "direct\n" }, "--add-runtime, the binary itself");
    t.match(docker(["run", "--rm", "--runtime", "tsrun", IMAGE, "echo", "default-network"]), { code: 0, stdout: "default-network\n" }, "without --network none");
  });

  await traced("exit codes match runc's: status, missing and non-executable commands", (t) => {
    const cases: Array<[string, string[], number]> = [
      ["exit 42", ["sh", "-c", "exit 42"], 42],
      ["missing absolute path", ["/nonexistent"], 127],
      ["missing in $PATH", ["no-such-command"], 127],
      ["not executable", ["/etc/passwd"], 126],
      ["a directory", ["/tmp"], 126],
    ];
    for (const [what, cmd, want] of cases) {
      const r = docker(["run", "--rm", ...R, IMAGE, ...cmd]);
      t.equal(r.code, want, `${what}: ${r.stderr.trim()}`);
      t.equal(r.code, docker(["run", "--rm", "--network", "none", IMAGE, ...cmd]).code, `${what}: same as runc`);
    }
    t.match(docker(["run", "--rm", ...R, IMAGE, "no-such-command"]).stderr, /OCI runtime create failed: .*executable file not found in \$PATH/);
    t.same(docker(["ps", "-aq"]).stdout, "", "failed runs leave no container");
  });

  await traced("-i passes stdin; -t and -it give a terminal", (t) => {
    t.match(docker(["run", "--rm", "-i", ...R, IMAGE, "cat"], { input: "hello stdin\n" }), { code: 0, stdout: "hello stdin\n" });
    const r = runInTty(dockerArgv(["run", "--rm", "-it", ...R, IMAGE, "sh"]), "echo in-tty $((6*7)); tty\nexit 7\n");
    t.equal(r.code, 7, `exit status through the tty: ${r.stderr}`);
    t.match(r.stdout, /in-tty 42\r*\n\/dev\/pts\/0/);
  });

  await traced("-d, exec, top, logs, pause/unpause, kill, stop, restart, wait, stats, update, rm", (t) => {
    const script = 'trap "echo got-usr1" USR1; trap "exit 3" TERM; echo started; while true; do sleep 0.1; done';
    t.equal(docker(["run", "-d", "--name", "d1", ...R, IMAGE, "sh", "-c", script]).code, 0);
    const status = () => docker(["inspect", "-f", "{{.State.Status}}", "d1"]).stdout.trim();
    t.equal(status(), "running");
    t.match(docker(["exec", "d1", "sh", "-c", "echo exec-ok; exit 5"]), { code: 5, stdout: "exec-ok\n" });
    t.match(docker(["exec", "-i", "d1", "cat"], { input: "to exec\n" }), { code: 0, stdout: "to exec\n" });
    t.match(runInTty(dockerArgv(["exec", "-it", "d1", "tty"]), ""), { code: 0, stdout: /\/dev\/pts\/\d+/ }, "exec -it");
    t.match(docker(["exec", "--user", "65534:65534", "--workdir", "/tmp", "-e", "X=y", "d1", "sh", "-c", "id -u; id -g; pwd; echo $X"]), {
      code: 0,
      stdout: "65534\n65534\n/tmp\ny\n",
    });
    // docker exec maps every start failure of an exec to 126, with runc too.
    t.match(docker(["exec", "d1", "no-such-command"]), { code: 126, stdout: /executable file not found in \$PATH/ });
    t.equal(docker(["exec", "-d", "d1", "sleep", "300"]).code, 0, "exec -d");
    t.match(docker(["top", "d1"]), { code: 0, stdout: /sleep 300/ });

    t.equal(docker(["pause", "d1"]).code, 0);
    t.equal(status(), "paused");
    t.equal(docker(["unpause", "d1"]).code, 0);
    t.equal(status(), "running");

    const s = docker(["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "d1"]);
    t.match(s, { code: 0, stdout: /^d1 [1-9]/ }, `stats: ${s.stderr}`);
    const u = docker(["update", "--memory", "100m", "--memory-swap", "200m", "--cpus", "1.5", "--pids-limit", "77", "d1"]);
    t.equal(u.code, 0, u.stderr);
    t.ok(callLines(ws).some((l) => / update --resources - [0-9a-f]{64}$/.test(l)), "update --resources - ID (JSON on stdin)");
    t.match(docker(["exec", "d1", "sh", "-c", Object.values(CGROUP_READ).join("; ")]), { stdout: `${100 << 20}\n150000\n77\n` });

    t.equal(docker(["kill", "--signal", "USR1", "d1"]).code, 0);
    t.equal(docker(["stop", "--time", "10", "d1"]).code, 0);
    t.equal(docker(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "d1"]).stdout.trim(), "exited 3", "stop sends TERM");
    t.match(docker(["logs", "d1"]).stdout, /started\n(.*\n)*got-usr1\n/, "logs hold the output, USR1 was delivered");
    t.equal(docker(["start", "d1"]).code, 0, "start again");
    t.equal(docker(["restart", "--time", "10", "d1"]).code, 0, "restart");
    t.equal(status(), "running");
    t.equal(docker(["kill", "d1"]).code, 0);
    t.match(docker(["wait", "d1"]), { code: 0, stdout: "137\n" });
    t.equal(docker(["rm", "d1"]).code, 0);
  });

  await traced("resources: --memory, --cpus, --pids-limit, OOM kill reported", (t) => {
    const r = docker(["run", "--rm", ...R, "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50", IMAGE, "sh", "-c", Object.values(CGROUP_READ).join("; ")]);
    t.match(r, { code: 0, stdout: `${64 << 20}\n50000\n50\n` }, r.stderr);
    const o = docker(["run", "--name", "oom1", ...R, "--memory", "32m", "--memory-swap", "32m", IMAGE, "sh", "-c", "sleep 1; tail /dev/zero"]);
    t.equal(o.code, 137, o.stderr);
    t.equal(docker(["inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom1"]).stdout.trim(), "true 137", "OOMKilled");
    t.equal(docker(["rm", "oom1"]).code, 0);
  });

  await traced("capabilities, users, hostname/env/workdir, ulimits, sysctls, oom-score-adj, --privileged", (t) => {
    const caps = docker(["run", "--rm", ...R, "--cap-add", "SYS_ADMIN", "--cap-drop", "CHOWN", IMAGE, "grep", "Cap", "/proc/self/status"]);
    const eff = capMask(caps.stdout);
    t.ok(hasCap(eff, CAP.SYS_ADMIN) && !hasCap(eff, CAP.CHOWN) && hasCap(eff, CAP.NET_RAW), `--cap-add/--cap-drop: ${caps.stdout}`);
    const none = docker(["run", "--rm", ...R, "--cap-drop", "all", IMAGE, "sh", "-c", "grep CapEff /proc/self/status; chown 1 /tmp"]);
    t.equal(capMask(none.stdout), 0n, "--cap-drop all");
    t.match(none, { code: 1, stderr: /Operation not permitted/ });
    t.match(docker(["run", "--rm", ...R, "--user", "1000:1000", IMAGE, "id"]), { code: 0, stdout: /^uid=1000\b.* gid=1000\b/ });
    t.match(docker(["run", "--rm", ...R, "--user", "nobody", IMAGE, "id"]), { code: 0, stdout: /^uid=65534\(nobody\) gid=65534\(nogroup\)/ });
    t.match(docker(["run", "--rm", ...R, "--hostname", "myhost", "--env", "FOO=bar", "--workdir", "/tmp", IMAGE, "sh", "-c", "hostname; echo $FOO; pwd"]), {
      code: 0,
      stdout: "myhost\nbar\n/tmp\n",
    });
    t.match(docker(["run", "--rm", ...R, "--ulimit", "nofile=1000:2000", IMAGE, "sh", "-c", "ulimit -n; ulimit -Hn"]), { code: 0, stdout: "1000\n2000\n" });
    t.match(docker(["run", "--rm", ...R, "--sysctl", "net.ipv4.ip_forward=1", IMAGE, "cat", "/proc/sys/net/ipv4/ip_forward"]), { code: 0, stdout: "1\n" });
    t.match(docker(["run", "--rm", ...R, "--oom-score-adj", "500", IMAGE, "cat", "/proc/self/oom_score_adj"]), { code: 0, stdout: "500\n" });
    // --privileged asks for every capability docker knows; a host whose bounding set lacks one
    // (this one lacks CAP_SYS_RESOURCE) cannot run it with runc either.
    const withRunc = docker(["run", "--rm", "--network", "none", "--privileged", IMAGE, "grep", "CapEff", "/proc/self/status"]);
    const priv = docker(["run", "--rm", ...R, "--privileged", IMAGE, "grep", "CapEff", "/proc/self/status"]);
    if (withRunc.code === 0) {
      t.equal(priv.code, 0, `--privileged: ${priv.stderr}`);
      t.equal(capMask(priv.stdout), capMask(withRunc.stdout), "--privileged: the same capabilities as with runc");
    } else {
      t.not(priv.code, 0, "--privileged fails here with runc, and with tsrun");
      t.match(priv.stderr, /CAP_\w+ cannot be granted: this host's bounding set lacks it/, "tsrun names the capability");
    }
  });

  await traced("filesystems: -v and :ro, --read-only, --tmpfs, --device", (t) => {
    const vol = path.join(ws.dir, "vol");
    fs.mkdirSync(vol);
    fs.writeFileSync(path.join(vol, "f"), "data\n");
    t.match(docker(["run", "--rm", ...R, "-v", `${vol}:/data`, IMAGE, "sh", "-c", "cat /data/f; echo w > /data/g"]), { code: 0, stdout: "data\n" });
    t.equal(fs.readFileSync(path.join(vol, "g"), "utf8"), "w\n", "written through the volume");
    t.match(docker(["run", "--rm", ...R, "-v", `${vol}:/data:ro`, IMAGE, "sh", "-c", "cat /data/f; echo w > /data/h"]), {
      code: 1,
      stdout: "data\n",
      stderr: /Read-only file system/,
    });
    t.match(docker(["run", "--rm", ...R, "--read-only", IMAGE, "touch", "/x"]), { code: 1, stderr: /Read-only file system/ });
    t.match(docker(["run", "--rm", ...R, "--read-only", "--tmpfs", "/scratch:size=1m", IMAGE, "sh", "-c", "echo x > /scratch/y && cat /scratch/y; grep /scratch /proc/mounts"]), {
      code: 0,
      stdout: /^x\ntmpfs \/scratch tmpfs \S*size=1024k/,
    });
    t.match(docker(["run", "--rm", ...R, "--device", "/dev/zero:/dev/myzero", IMAGE, "sh", "-c", "head -c 5 /dev/myzero | wc -c"]), { code: 0, stdout: /^\s*5\n$/ });
  });

  await traced("seccomp: default profile, a custom one, unconfined", (t) => {
    // Docker's default profile refuses unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN.
    t.match(docker(["run", "--rm", ...R, IMAGE, "sh", "-c", "grep ^Seccomp: /proc/self/status; unshare -U true"]), {
      code: 1,
      stdout: /^Seccomp:\s+2$/m,
      stderr: /unshare.*Operation not permitted/,
    });
    t.match(docker(["run", "--rm", ...R, "--security-opt", `seccomp=${denyMkdirProfile(ws)}`, IMAGE, "mkdir", "/tmp/d"]), { code: 1, stderr: /Operation not permitted/ });
    t.match(docker(["run", "--rm", ...R, "--security-opt", "seccomp=unconfined", IMAGE, "sh", "-c", "grep ^Seccomp: /proc/self/status; unshare -U true && echo unshared"]), {
      code: 0,
      stdout: /^Seccomp:\s+0\nunshared\n$/,
    });
  });

  await traced("--init, --pid host", (t) => {
    t.match(docker(["run", "--rm", ...R, "--init", IMAGE, "cat", "/proc/1/comm"]), { code: 0, stdout: /init|tini/ });
    t.match(docker(["run", "--rm", ...R, "--pid", "host", IMAGE, "test", "-d", `/proc/${process.pid}`]), { code: 0 }, "the host's pids are visible");
  });

  await traced("dockerd and containerd stop, and nothing is left behind", async (t) => {
    t.equal(docker(["ps", "-aq"]).stdout, "", "no containers");
    const ids = createdIds(ws);
    t.ok(ids.length > 20, `tsrun created the containers (${ids.length})`);
    // The shim gives tsrun --root EXEC_ROOT/runtime-<name>/moby.
    const roots = fs.readdirSync(execRoot).filter((n) => n.startsWith("runtime-"));
    t.ok(roots.length > 0, `state roots: ${roots.join(", ")}`);
    t.same(roots.flatMap((r) => stateEntries(path.join(execRoot, r))), [], "no tsrun state");
    t.ok(await dockerd!.stop(), "dockerd exits on SIGTERM");
    t.ok(await ctd!.daemon.stop(), "containerd exits on SIGTERM");
    t.same(topCgroups(cgroupParent).filter((d) => path.basename(d) !== cgroupParent), [], "no container cgroups");
    // dockerd makes its data root a private bind mount of itself and leaves it: not a container's.
    t.same(mountsOf(ws.dir, ids).filter((m) => m !== dataRoot), [], "no mounts");
    t.same(processesMatching({ cmdline: [ws.dir, ...ids], cgroupNames: [cgroupParent] }), [], "no processes (shims, containers)");
  });
});
