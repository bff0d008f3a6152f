// podman 4.3 (with conmon) running containers through tsrun, configured as a user would:
// tsrun named in containers.conf ([engine.runtimes], runtime_supports_json so that podman
// passes --log-format=json), and `podman --runtime /path/to/tsrun`.
// Private storage (--root/--runroot under a temp dir) and a private containers.conf
// (CONTAINERS_CONF). tsrun keeps its state in its default /run/tsrun, as podman gives it no
// --root; the suite checks that every container it made is gone from there.
import t, { type Test } from "tap";
import fs from "node:fs";
import path from "node:path";
import {
  CAP, CGROUP_READ, IMAGE, TSRUN, buildImageArchive, callLines, capMask, cgroupsNamed, createdIds, denyMkdirProfile,
  forceCleanup, hardLimit, hasCap, makeWorkspace, mountsOf, processesMatching, removeEmptyCgroups, run, runInTty,
  skipReason, stateEntries, topCgroups, which, type Result,
} from "./lib.ts";

const skip = skipReason("podman", ["podman", "conmon"]);

t.test("podman with tsrun", { skip }, async (t) => {
  const ws = makeWorkspace("podman");
  const cgroupParentsBefore = new Set(topCgroups("libpod_parent"));
  let finished = false;
  t.teardown(async () => {
    if (!finished) {
      // A failure half-way: remove what is left through podman first, then by force.
      podman(["rm", "--all", "--force", "--time", "0"]);
    }
    const ids = createdIds(ws);
    for (const n of await forceCleanup(ws, ids.map((id) => `libpod-${id}`), ids)) t.comment(`cleanup: ${n}`);
    removeEmptyCgroups(topCgroups("libpod_parent").filter((d) => !cgroupParentsBefore.has(d)));
  });

  const storageDriver = run("stat", ["-f", "-c", "%T", ws.dir]).stdout.trim() === "overlayfs" ? "vfs" : "overlay";
  const nofile = Math.min(hardLimit("Max open files") ?? 1024, 1048576);
  const conf = path.join(ws.dir, "containers.conf");
  fs.writeFileSync(
    conf,
    `# Written by tests/managers/podman.test.ts; docs/managers.md explains each setting.
[containers]
# No network set-up on the host (netavark/CNI would change the host's firewall).
netns = "none"
log_driver = "k8s-file"
# podman asks for rlimits above the hard limits this host's root may raise without
# CAP_SYS_RESOURCE (not in this machine's bounding set): runc fails the same way.
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]

[engine]
runtime = "tsrun"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${ws.dir}/events.log"
tmp_dir = "${ws.dir}/tmp"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "tsrun"]

[engine.runtimes]
tsrun = ["${ws.wrapper}"]
`,
  );
  const env = { CONTAINERS_CONF: conf };
  const base = ["--root", path.join(ws.dir, "root"), "--runroot", path.join(ws.dir, "runroot"), "--storage-driver", storageDriver];
  function podman(args: string[], opts: Parameters<typeof run>[2] = {}): Result {
    return run("podman", [...base, ...args], { ...opts, env: { ...env, ...opts.env } });
  }
  const podmanArgv = (args: string[]) => ["podman", ...base, ...args];
  /** Show the tsrun calls of a failed subtest, for reproducing by hand. */
  const traced = (name: string, fn: (t: Test) => Promise<void> | void, opts: { todo?: string } = {}) =>
    t.test(name, opts, async (t) => {
      const mark = callLines(ws).length;
      await fn(t);
      if (!t.passing()) t.comment(`tsrun calls:\n${callLines(ws, mark).join("\n")}`);
    });

  const archive = buildImageArchive(ws);
  const load = podman(["load", "-i", archive]);
  t.equal(load.code, 0, `podman load: ${load.stderr}`);
  if (load.code !== 0) return;

  await traced("run --rm echo, through containers.conf", (t) => {
    const r = podman(["run", "--rm", IMAGE, "echo", "hi"]);
    t.match(r, { code: 0, stdout: "hi\n" }, r.stderr);
    const calls = callLines(ws);
    t.ok(calls.some((l) => / --log-format=json .* create --bundle /.test(l)), "create with --log-format=json");
    t.ok(calls.some((l) => / start [0-9a-f]{64}$/.test(l)), "start");
    t.ok(calls.some((l) => / delete --force [0-9a-f]{64}$/.test(l)), "delete --force");
  });

  await traced("--runtime /path/to/tsrun (the binary itself, no wrapper)", (t) => {
    const r = podman(["--runtime", TSRUN, "run", "--rm", IMAGE, "sh", "-c", "echo direct"]);
    t.match(r, { code: 0, stdout: "direct\n" }, r.stderr);
  });

  await traced("exit codes match runc's: status, missing and non-executable commands", (t) => {
    const cases: Array<[string, string[], number]> = [
      ["exit 42", ["sh", "-c", "exit 42"], 42],
      ["missing absolute path", ["/nonexistent"], 127],
      ["missing in $PATH", ["no-such-command"], 127],
      ["not executable", ["/etc/passwd"], 126],
      ["a directory", ["/tmp"], 126],
    ];
    const runc = which("runc");
    for (const [what, cmd, want] of cases) {
      const r = podman(["run", "--rm", IMAGE, ...cmd]);
      t.equal(r.code, want, `${what}: ${r.stderr.trim()}`);
      if (runc) t.equal(r.code, podman(["--runtime", runc, "run", "--rm", IMAGE, ...cmd]).code, `${what}: same as runc`);
    }
    const missing = podman(["run", "--rm", IMAGE, "no-such-command"]);
    t.match(missing.stderr, /executable file not found in \$PATH/);
    // podman then runs `delete --force ID` for a container that never came to be: that must
    // succeed quietly, as with runc, not add "container does not exist" to the user's error.
    t.notMatch(missing.stderr, /does not exist|after creation failed/, "no second error from delete --force");
    t.same(podman(["ps", "-aq"]).stdout, "", "failed creates leave no container");
  });

  await traced("-i passes stdin; -t and -it give a terminal", (t) => {
    t.match(podman(["run", "--rm", "-i", IMAGE, "cat"], { input: "hello stdin\n" }), { code: 0, stdout: "hello stdin\n" });
    t.match(podman(["run", "--rm", "-t", IMAGE, "tty"]), { code: 0, stdout: /^\/dev\/pts\/0\r?\n$/ });
    const r = runInTty(podmanArgv(["run", "--rm", "-it", IMAGE, "sh"]), "echo in-tty $((6*7))\nexit 7\n", { env });
    t.equal(r.code, 7, `exit status through the tty: ${r.stderr}`);
    t.match(r.stdout, /in-tty 42/);
  });

  await traced("-d, exec, top, logs, pause/unpause, kill, stop, restart, wait, rm", (t) => {
    // TERM makes it exit 3, USR1 is logged: that shows which signal arrived.
    const script = 'trap "echo got-usr1" USR1; trap "exit 3" TERM; echo started; while true; do sleep 0.1; done';
    const d = podman(["run", "-d", "--name", "d1", IMAGE, "sh", "-c", script]);
    t.equal(d.code, 0, d.stderr);
    const status = () => podman(["inspect", "-f", "{{.State.Status}}", "d1"]).stdout.trim();
    t.equal(status(), "running");
    t.match(podman(["exec", "d1", "sh", "-c", "echo exec-ok; exit 5"]), { code: 5, stdout: "exec-ok\n" });
    t.match(podman(["exec", "-i", "d1", "cat"], { input: "to exec\n" }), { code: 0, stdout: "to exec\n" });
    t.match(podman(["exec", "-t", "d1", "tty"]), { code: 0, stdout: /^\/dev\/pts\/\d+/ });
    t.match(podman(["exec", "--user", "65534:65534", "--workdir", "/tmp", "-e", "X=y", "d1", "sh", "-c", "id -u; id -g; pwd; echo $X"]), {
      code: 0,
      stdout: "65534\n65534\n/tmp\ny\n",
    });
    t.equal(podman(["exec", "d1", "no-such-command"]).code, 127, "exec of a missing command: 127");
    t.equal(podman(["exec", "d1", "/etc/passwd"]).code, 126, "exec of a non-executable file: 126");
    t.equal(podman(["exec", "-d", "d1", "sleep", "300"]).code, 0, "exec -d");
    const top = podman(["top", "d1"]);
    t.equal(top.code, 0, top.stderr);
    t.match(top.stdout, /sleep 300/);

    t.equal(podman(["pause", "d1"]).code, 0);
    t.equal(status(), "paused");
    t.equal(podman(["unpause", "d1"]).code, 0);
    t.equal(status(), "running");

    t.equal(podman(["kill", "--signal", "USR1", "d1"]).code, 0);
    t.equal(status(), "running", "USR1 is trapped");
    t.equal(podman(["stop", "--time", "10", "d1"]).code, 0);
    t.equal(podman(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "d1"]).stdout.trim(), "exited 3", "stop sends TERM");
    const logs = podman(["logs", "d1"]);
    t.match(logs.stdout, /started\n(.*\n)*got-usr1\n/, "logs hold the output, USR1 was delivered");

    t.equal(podman(["start", "d1"]).code, 0, "start again");
    t.equal(podman(["restart", "--time", "10", "d1"]).code, 0, "restart");
    t.equal(status(), "running");
    const stats = podman(["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "d1"]);
    t.match(stats, { code: 0, stdout: /^d1 \d+/ }, `stats: ${stats.stderr}`);
    t.equal(podman(["kill", "d1"]).code, 0);
    t.match(podman(["wait", "d1"]), { code: 0, stdout: "137\n" }, "wait: killed by SIGKILL");
    t.equal(podman(["rm", "d1"]).code, 0);
  });

  await traced("resources: --memory, --cpus, --pids-limit, update, OOM kill", (t) => {
    const r = podman(["run", "--rm", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50", IMAGE, "sh", "-c", Object.values(CGROUP_READ).join("; ")]);
    t.match(r, { code: 0, stdout: `${64 << 20}\n50000\n50\n` }, r.stderr);

    t.equal(podman(["run", "-d", "--name", "u1", IMAGE, "sleep", "1000"]).code, 0);
    const u = podman(["update", "--memory", "100m", "--cpus", "1.5", "u1"]);
    t.equal(u.code, 0, u.stderr);
    t.ok(callLines(ws).some((l) => / update --resources=\S+ [0-9a-f]{64}$/.test(l)), "update --resources=FILE ID");
    t.match(podman(["exec", "u1", "sh", "-c", `${CGROUP_READ.memoryLimit}; ${CGROUP_READ.cpuQuota}`]), { stdout: `${100 << 20}\n150000\n` });
    t.equal(podman(["rm", "--force", "--time", "0", "u1"]).code, 0);

    // conmon watches the container's memory cgroup (made by tsrun) for OOM events. podman 4.3 with
    // Debian's conmon 2.1.6 then writes its "oom" marker into conmon's working directory (the
    // directory podman was started from) instead of the bundle, so `inspect` shows
    // OOMKilled=false with runc as well: the marker file is what shows the event arrived.
    const cwd = fs.mkdtempSync(path.join(ws.dir, "oom-"));
    const o = podman(["run", "--name", "oom1", "--memory", "32m", "--memory-swap", "32m", IMAGE, "sh", "-c", "sleep 1; tail /dev/zero"], { cwd });
    t.equal(o.code, 137, `OOM-killed: ${o.stderr}`);
    t.ok(fs.existsSync(path.join(cwd, "oom")), "conmon saw the OOM event of tsrun's cgroup");
    t.equal(podman(["rm", "oom1"]).code, 0);
  });

  await traced("capabilities, users, hostname/env/workdir, ulimits, sysctls, oom-score-adj", (t) => {
    const caps = podman(["run", "--rm", "--cap-add", "SYS_ADMIN", "--cap-drop", "CHOWN", IMAGE, "grep", "Cap", "/proc/self/status"]);
    const eff = capMask(caps.stdout);
    t.ok(hasCap(eff, CAP.SYS_ADMIN) && !hasCap(eff, CAP.CHOWN) && hasCap(eff, CAP.NET_RAW), `--cap-add/--cap-drop: ${caps.stdout}`);
    t.equal(capMask(caps.stdout, "CapBnd"), eff, "bounding set = effective set");
    const none = podman(["run", "--rm", "--cap-drop", "all", IMAGE, "sh", "-c", "grep CapEff /proc/self/status; chown 1 /tmp"]);
    t.equal(capMask(none.stdout), 0n, "--cap-drop all");
    t.match(none, { code: 1, stderr: /Operation not permitted/ });

    t.match(podman(["run", "--rm", "--user", "1000:1000", IMAGE, "id"]), { code: 0, stdout: /^uid=1000\b.* gid=1000\b/ });
    t.match(podman(["run", "--rm", "--user", "nobody", IMAGE, "id"]), { code: 0, stdout: /^uid=65534\(nobody\) gid=65534\(nogroup\)/ });
    t.match(podman(["run", "--rm", "--hostname", "myhost", "--env", "FOO=bar", "--workdir", "/tmp", IMAGE, "sh", "-c", "hostname; echo $FOO; pwd"]), {
      code: 0,
      stdout: "myhost\nbar\n/tmp\n",
    });
    // Given --ulimit, podman drops containers.conf's default_ulimits: nproc is set again here.
    t.match(podman(["run", "--rm", "--ulimit", "nofile=1000:2000", "--ulimit", "nproc=500:600", IMAGE, "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u"]), {
      code: 0,
      stdout: "1000\n2000\n500\n",
    });
    t.match(podman(["run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", IMAGE, "cat", "/proc/sys/net/ipv4/ip_forward"]), { code: 0, stdout: "1\n" });
    t.match(podman(["run", "--rm", "--oom-score-adj", "500", IMAGE, "cat", "/proc/self/oom_score_adj"]), { code: 0, stdout: "500\n" });
  });

  await traced("filesystems: -v and :ro, --read-only, --tmpfs, --device", (t) => {
    const vol = path.join(ws.dir, "vol");
    fs.mkdirSync(vol);
    fs.writeFileSync(path.join(vol, "f"), "data\n");
    t.match(podman(["run", "--rm", "-v", `${vol}:/data`, IMAGE, "sh", "-c", "cat /data/f; echo w > /data/g"]), { code: 0, stdout: "data\n" });
    t.equal(fs.readFileSync(path.join(vol, "g"), "utf8"), "w\n", "written through the volume");
    t.match(podman(["run", "--rm", "-v", `${vol}:/data:ro`, IMAGE, "sh", "-c", "cat /data/f; echo w > /data/h"]), {
      code: 1,
      stdout: "data\n",
      stderr: /Read-only file system/,
    });
    t.match(podman(["run", "--rm", "--read-only", "--read-only-tmpfs=false", IMAGE, "touch", "/x"]), { code: 1, stderr: /Read-only file system/ });
    t.match(podman(["run", "--rm", "--device", "/dev/zero:/dev/myzero", IMAGE, "sh", "-c", "head -c 5 /dev/myzero | wc -c"]), { code: 0, stdout: /^\s*5\n$/ });
  });

  // podman gives its tmpfs mounts (/tmp, /run, /var/tmp with --read-only, and every --tmpfs)
  // the "tmpcopyup" option: copy the image's directory into the new tmpfs.
  await traced("--read-only with podman's writable tmpfs, --tmpfs (tmpcopyup)", (t) => {
    const ro = podman(["run", "--rm", "--read-only", IMAGE, "sh", "-c", "touch /tmp/x && echo tmp-ok; touch /x"]);
    t.match(ro, { code: 1, stdout: "tmp-ok\n", stderr: /Read-only file system/ }, `--read-only: ${ro.stderr.trim()}`);
    const tmpfs = podman(["run", "--rm", "--tmpfs", "/scratch:size=1m", IMAGE, "sh", "-c", "echo x > /scratch/y && cat /scratch/y"]);
    t.match(tmpfs, { code: 0, stdout: "x\n" }, `--tmpfs: ${tmpfs.stderr.trim()}`);
  });

  await traced("seccomp: default profile, a custom one, unconfined", (t) => {
    t.match(podman(["run", "--rm", IMAGE, "grep", "^Seccomp:", "/proc/self/status"]), { code: 0, stdout: /^Seccomp:\s+2$/m }, "default profile: filter mode");
    const profile = denyMkdirProfile(ws);
    t.match(podman(["run", "--rm", "--security-opt", `seccomp=${profile}`, IMAGE, "mkdir", "/tmp/d"]), { code: 1, stderr: /Operation not permitted/ });
    t.match(podman(["run", "--rm", "--security-opt", "seccomp=unconfined", IMAGE, "sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/d"]), {
      code: 0,
      stdout: /^Seccomp:\s+0$/m,
    });
  });

  await traced("--init, --pid host, --uidmap, --preserve-fds", (t) => {
    const init = podman(["run", "--rm", "--init", IMAGE, "cat", "/proc/1/comm"]);
    if (init.code === 0 || !/init binary/.test(init.stderr)) t.match(init, { code: 0, stdout: /init|catatonit|tini/ }, init.stderr);
    else t.comment(`--init: no init binary installed (catatonit or tini): ${init.stderr.trim()}`);
    t.match(podman(["run", "--rm", "--pid", "host", IMAGE, "test", "-d", `/proc/${process.pid}`]), { code: 0 }, "the host's pids are visible");
    t.match(podman(["run", "--rm", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", IMAGE, "sh", "-c", "cat /proc/self/uid_map; id -u"]), {
      code: 0,
      stdout: /^\s*0\s+100000\s+65536\n0\n$/,
    });
    const file = path.join(ws.dir, "preserved");
    fs.writeFileSync(file, "through fd 3\n");
    const fd = fs.openSync(file, "r");
    try {
      t.match(podman(["run", "--rm", "--preserve-fds", "1", IMAGE, "sh", "-c", "cat <&3"], { extraFds: [fd] }), { code: 0, stdout: "through fd 3\n" });
    } finally {
      fs.closeSync(fd);
    }
  });

  await traced("OCI hooks from podman's hooks.d (--hooks-dir)", (t) => {
    const hooksDir = path.join(ws.dir, "hooks.d");
    const out = path.join(ws.dir, "hooks-out");
    fs.mkdirSync(hooksDir);
    fs.mkdirSync(out);
    const stages = ["prestart", "createRuntime", "createContainer", "poststart", "poststop"];
    for (const stage of stages) {
      // Each hook saves the state it gets on stdin.
      const hook = { path: "/bin/sh", args: ["sh", "-c", `cat > ${out}/${stage}.json`] };
      fs.writeFileSync(path.join(hooksDir, `${stage}.json`), JSON.stringify({ version: "1.0.0", hook, when: { always: true }, stages: [stage] }));
    }
    // startContainer runs in the container, before the user's process.
    const inside = { path: "/bin/sh", args: ["sh", "-c", "echo from-startContainer > /tmp/hooked"] };
    fs.writeFileSync(path.join(hooksDir, "startContainer.json"), JSON.stringify({ version: "1.0.0", hook: inside, when: { always: true }, stages: ["startContainer"] }));
    const r = podman(["--hooks-dir", hooksDir, "run", "--rm", IMAGE, "cat", "/tmp/hooked"]);
    t.match(r, { code: 0, stdout: "from-startContainer\n" }, r.stderr);
    const id = createdIds(ws).at(-1);
    for (const stage of stages) {
      const file = path.join(out, `${stage}.json`);
      let state: { id?: string; status?: string } = {};
      try {
        state = JSON.parse(fs.readFileSync(file, "utf8"));
      } catch (e) {
        t.fail(`${stage}: no state on stdin: ${(e as Error).message}`);
        continue;
      }
      t.equal(state.id, id, `${stage}: the container's state`);
    }
  });

  await traced("nothing is left behind", (t) => {
    t.equal(podman(["ps", "-aq"]).stdout, "", "no podman containers");
    const ids = createdIds(ws);
    t.ok(ids.length > 20, `tsrun created the containers (${ids.length})`);
    t.same(stateEntries("/run/tsrun", ids), [], "no tsrun state");
    t.same(cgroupsNamed(ids.map((id) => `libpod-${id}`)), [], "no container cgroups");
    t.same(mountsOf(ws.dir, ids), [], "no mounts");
    t.same(processesMatching({ cmdline: [ws.dir, ...ids], cgroupNames: ids.map((id) => `libpod-${id}`) }), [], "no processes (conmon, containers)");
  });
  finished = true;
});
