// Host safety (issue 15): a container, or a hostile bundle, never changes the host's device
// nodes, files or cgroups. Anything that stands for a host path here is a copy: device nodes made
// with mknod in a test directory, bound over /dev or /dev/null only inside a private mount
// namespace (unshare -m), so that even a failing test cannot damage the real /dev.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { makeBundle, writeConfig, type ConfigObject } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { REPO } from "../lib/rootfs.ts";
import { Capture, TAG_ENV, TEST_TAG, TSRUN, containerId, state, testRoot, tsrun, waitForStatus, type TsrunResult } from "../lib/tsrun.ts";
import type { TestLike } from "../lib/context.ts";

const RECEIVER = path.join(REPO, "tests/helper/console-receiver.py");
const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** A guard against a hang, not a time limit on anything: about 20 s of polling. */
function waitFor(cond: () => boolean, what: string): void {
  for (let i = 0; i < 2000 && !cond(); i++) sleepMs(10);
  if (!cond()) throw new Error(`gave up waiting for ${what}`);
}

function mknod(p: string, mode: string, major: number, minor: number): void {
  const r = spawnSync("mknod", ["-m", mode, p, "c", String(major), String(minor)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`mknod ${p}: ${r.stderr}`);
}

/** A directory that looks like a host's /dev: real device nodes, the usual links and dirs. */
function fakeDev(parent: string): string {
  const dev = path.join(parent, "fakedev");
  fs.mkdirSync(dev);
  const nodes: [string, string, number, number][] = [
    ["null", "666", 1, 3], ["zero", "666", 1, 5], ["full", "666", 1, 7], ["random", "666", 1, 8], ["urandom", "666", 1, 9],
    ["tty", "666", 5, 0], ["ptmx", "600", 5, 2], ["console", "600", 5, 1],
  ];
  for (const [name, mode, major, minor] of nodes) mknod(path.join(dev, name), mode, major, minor);
  for (const d of ["pts", "shm", "mqueue"]) fs.mkdirSync(path.join(dev, d));
  fs.symlinkSync("/proc/self/fd", path.join(dev, "fd"));
  return dev;
}

/** Everything about each entry that a runtime could change: type, device numbers, inode, owner, mode, ctime, link target. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    const st = fs.lstatSync(p, { bigint: true });
    const link = st.isSymbolicLink() ? ` -> ${fs.readlinkSync(p)}` : "";
    out[name] = `mode=${st.mode.toString(8)} rdev=${st.rdev} ino=${st.ino} owner=${st.uid}:${st.gid} ctime=${st.ctimeNs}${link}`;
  }
  return out;
}

const HOST_NODES = ["null", "zero", "full", "random", "urandom", "tty", "ptmx"].map((n) => `/dev/${n}`);
function hostNodes(): string[] {
  return HOST_NODES.map((p) => {
    const st = fs.lstatSync(p, { bigint: true });
    return `${p} mode=${st.mode.toString(8)} rdev=${st.rdev} ino=${st.ino} owner=${st.uid}:${st.gid}`;
  });
}

/** The test's /dev binds are the fake dev's; everything else as in the base config. */
function bindDev(source: string): (c: ConfigObject) => void {
  return (c) => {
    c.mounts = c.mounts.map((m: ConfigObject) => (m.destination === "/dev" ? { destination: "/dev", type: "bind", source, options: ["rbind", "rw"] } : m));
  };
}

/**
 * Runs script with sh in a private mount namespace where `bind` (a node or a dir made by the
 * test) is mounted over `over`, with positional parameters $1.. = args, TSRUN in $T, and tsrun's
 * output in files. Returns the shell's status and that output.
 */
function inPrivateNs(bind: string, over: string, script: string, args: string[]): TsrunResult {
  const out = new Capture();
  const err = new Capture();
  const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", `mount --bind "$0" "${over}" || exit 99\n${script}`, bind, ...args], {
    env: { ...process.env, [TAG_ENV]: TEST_TAG, T: TSRUN },
    stdio: ["ignore", out.fd, err.fd],
  });
  return { code: r.status ?? 128, signal: r.signal, stdout: out.read(), stderr: err.read() };
}

t.test("a bind-mounted /dev is left as it is (as runc): nothing made, replaced or removed there", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const host = hostNodes();

  t.test("a directory of device nodes bound on /dev", async (t) => {
    const bundle = makeBundle(t, { args: ["sh", "-c", "echo x > /dev/null && test -c /dev/zero && echo ran"] });
    const dev = fakeDev(bundle.dir);
    bindDev(dev)(bundle.config);
    bundle.config.linux.devices = [{ path: "/dev/tsrun-extra", type: "c", major: 1, minor: 3, fileMode: 0o666 }];
    writeConfig(bundle);
    const before = snapshot(dev);
    const r = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, "ran\n");
    t.same(snapshot(dev), before, "every node, link and directory is as it was (ptmx, fd, null, ... neither removed nor re-made)");
    t.match(r.stderr, /device \/dev\/tsrun-extra is not made: its directory is on a mount tsrun did not make/, "a device that cannot be made is named");
    t.match(r.stderr, /symlink \/dev\/stdin is not made/);

    // A device asked for where another one is: an error (runtime-spec), and the node is kept.
    bundle.config.linux.devices = [{ path: "/dev/zero", type: "c", major: 1, minor: 3, fileMode: 0o666 }];
    writeConfig(bundle);
    const clash = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
    t.equal(clash.code, 1);
    t.match(clash.stderr, /device \/dev\/zero: a character device 1:5 is there, not the device asked for, and it is not tsrun's to replace\n$/);
    t.same(snapshot(dev), before, "still as it was");
  });

  t.test("with a terminal: /dev/console is not replaced", async (t) => {
    const bundle = makeBundle(t, { args: ["sh", "-c", "test -t 0 && echo on-a-tty"], config: (c) => (c.process.terminal = true) });
    const dev = fakeDev(bundle.dir);
    bindDev(dev)(bundle.config);
    writeConfig(bundle);
    const sock = path.join(bundle.dir, "console.sock");
    const out = path.join(bundle.dir, "console.out");
    const receiver = spawn("python3", [RECEIVER, sock, out], { stdio: "ignore" });
    t.teardown(() => receiver.kill("SIGKILL"));
    waitFor(() => fs.existsSync(sock), "the console socket");
    const before = snapshot(dev);
    const id = containerId();
    const created = tsrun(["create", "--bundle", bundle.dir, "--console-socket", sock, id], { root });
    t.equal(created.code, 0, created.stderr);
    t.equal(tsrun(["start", id], { root }).code, 0);
    await new Promise((resolve) => receiver.on("exit", resolve));
    t.match(fs.readFileSync(out, "utf8"), /on-a-tty/);
    t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
    t.same(snapshot(dev), before, "console and the rest are as they were");
  });

  t.test("the path /dev itself, bound on /dev (inside a private mount namespace whose /dev is a copy)", async (t) => {
    const bundle = makeBundle(t, { args: ["sh", "-c", "echo x > /dev/null && echo ran"] });
    const dev = fakeDev(bundle.dir);
    bindDev("/dev")(bundle.config);
    writeConfig(bundle);
    const before = snapshot(dev);
    const r = inPrivateNs(dev, "/dev", `"$T" --root "$1" run --bundle "$2" "$3"`, [root, bundle.dir, containerId()]);
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, "ran\n");
    t.same(snapshot(dev), before, "the /dev of that namespace is as it was");
  });

  t.same(hostNodes(), host, "the host's own device nodes are untouched");
});

t.test("a stdio fd that is a null device from outside is replaced by the container's own /dev/null", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  // The container's root chmods what its stdio fds point at, through /proc/PID/fd, and records
  // the result: "0 600" means the chmod worked (on its own /dev/null).
  const chmodAll = (label: string) =>
    `chmod 600 /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2 2>/home/${label}.err; echo "$? $(stat -L -c %a /proc/$$/fd/0)" > /home/${label}.tmp && mv /home/${label}.tmp /home/${label}`;
  const bundleFor = (t: TestLike, script: string) =>
    makeBundle(t, {
      args: ["sh", "-c", script],
      config: (c) => c.mounts.push({ destination: "/home", type: "bind", source: outDir, options: ["rbind", "rw"] }),
    });
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-out-"));
  t.teardown(() => fs.rmSync(outDir, { recursive: true, force: true }));
  const nodes = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-null-"));
  t.teardown(() => fs.rmSync(nodes, { recursive: true, force: true }));
  const hostNull = fs.statSync("/dev/null", { bigint: true });

  /** A null device of the test's own, bound over /dev/null in the namespace the commands run in. */
  const nullNode = (label: string) => {
    const p = path.join(nodes, label);
    mknod(p, "666", 1, 3);
    return p;
  };
  const result = (label: string) => fs.readFileSync(path.join(outDir, label), "utf8");
  const modeOf = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

  t.test("create + start", async (t) => {
    const node = nullNode("create");
    const b = bundleFor(t, chmodAll("create"));
    const id = containerId();
    const r = inPrivateNs(node, "/dev/null", `"$T" --root "$1" create --bundle "$2" "$3" </dev/null >/dev/null 2>/dev/null && "$T" --root "$1" start "$3" </dev/null`, [root, b.dir, id]);
    t.equal(r.code, 0, r.stderr);
    t.equal(waitForStatus(root, id, "stopped"), "stopped");
    t.equal(result("create"), "0 600\n", "the container's root chmodded its own /dev/null");
    t.equal(modeOf(node), "666", "the null device it was given is unchanged");
    t.equal(tsrun(["delete", id], { root }).code, 0);
  });

  t.test("run", async (t) => {
    const node = nullNode("run");
    const b = bundleFor(t, chmodAll("run"));
    const r = inPrivateNs(node, "/dev/null", `"$T" --root "$1" run --bundle "$2" "$3" </dev/null >/dev/null 2>/dev/null`, [root, b.dir, containerId()]);
    t.equal(r.code, 0, r.stderr);
    t.equal(result("run"), "0 600\n");
    t.equal(modeOf(node), "666");
  });

  t.test("run with stdin closed (tsrun opens /dev/null for it)", async (t) => {
    const node = nullNode("closed");
    const b = bundleFor(t, chmodAll("closed"));
    const r = inPrivateNs(node, "/dev/null", `"$T" --root "$1" run --bundle "$2" "$3" <&- >/dev/null 2>/dev/null`, [root, b.dir, containerId()]);
    t.equal(r.code, 0, r.stderr);
    t.equal(result("closed"), "0 600\n");
    t.equal(modeOf(node), "666");
  });

  t.test("run -d, then exec -d", async (t) => {
    const node = nullNode("detached");
    const b = bundleFor(t, `${chmodAll("run-d")}; exec sleep 1000`);
    const id = containerId();
    const r = inPrivateNs(
      node,
      "/dev/null",
      `"$T" --root "$1" run -d --bundle "$2" "$3" </dev/null >/dev/null 2>/dev/null && "$T" --root "$1" exec -d "$3" sh -c "$4" </dev/null >/dev/null 2>/dev/null`,
      [root, b.dir, id, chmodAll("exec-d")],
    );
    t.equal(r.code, 0, r.stderr);
    waitFor(() => fs.existsSync(path.join(outDir, "run-d")) && fs.existsSync(path.join(outDir, "exec-d")), "both processes' results");
    t.equal(result("run-d"), "0 600\n", "run -d");
    t.equal(result("exec-d"), "0 600\n", "exec -d");
    t.equal(modeOf(node), "666");
    t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
  });

  const after = fs.statSync("/dev/null", { bigint: true });
  t.same([after.mode, after.ino, after.uid, after.gid], [hostNull.mode, hostNull.ino, hostNull.uid, hostNull.gid], "the host's /dev/null is untouched");
});

t.test("--pid-file: a symlink planted at the temporary name or at the pid file is never followed", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const victim = path.join(bundle.dir, "victim");
  // A directory anyone may write, as the pid file's directory of a careless caller.
  const dir = path.join(bundle.dir, "pids");
  fs.mkdirSync(dir, { mode: 0o1777 });
  const precious = "precious host file\n";

  /**
   * Runs tsrun ARGS with a symlink to the victim planted where tsrun used to put its temporary
   * file (".NAME.PID", PID being tsrun's own: the shell's, which exec keeps).
   */
  const planted = (name: string, args: string[]) => {
    fs.writeFileSync(victim, precious);
    const out = new Capture();
    const err = new Capture();
    const script = `d=$1 t=$2 r=$3; shift 3; ln -s "$0" "$d/.${name}.$$" && exec "$t" --root "$r" "$@"`;
    const r = spawnSync("sh", ["-c", script, victim, dir, TSRUN, root, ...args], {
      env: { ...process.env, [TAG_ENV]: TEST_TAG },
      stdio: ["ignore", out.fd, err.fd],
    });
    return { code: r.status, stderr: err.read(), stdout: out.read() };
  };
  const pidIn = (name: string) => {
    const p = path.join(dir, name);
    t.ok(fs.lstatSync(p).isFile(), `${name} is a regular file`);
    return Number(fs.readFileSync(p, "utf8"));
  };

  const id = containerId();
  const c = planted("create.pid", ["create", "--bundle", bundle.dir, "--pid-file", path.join(dir, "create.pid"), id]);
  t.equal(c.code, 0, c.stderr);
  t.equal(fs.readFileSync(victim, "utf8"), precious, "create: the victim is untouched");
  t.equal(pidIn("create.pid"), state(root, id).pid);

  const e = planted("exec.pid", ["exec", "-d", "--pid-file", path.join(dir, "exec.pid"), id, "sleep", "1000"]);
  t.equal(e.code, 0, e.stderr);
  t.equal(fs.readFileSync(victim, "utf8"), precious, "exec -d: the victim is untouched");
  t.ok(pidIn("exec.pid") > 0);
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);

  const runId = containerId();
  const r = planted("run.pid", ["run", "-d", "--bundle", bundle.dir, "--pid-file", path.join(dir, "run.pid"), runId]);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(victim, "utf8"), precious, "run -d: the victim is untouched");
  t.equal(pidIn("run.pid"), state(root, runId).pid);
  t.equal(tsrun(["delete", "--force", runId], { root }).code, 0);

  // The pid file's own path a symlink: it is replaced, not followed.
  fs.writeFileSync(victim, precious);
  fs.symlinkSync(victim, path.join(dir, "link.pid"));
  const linkId = containerId();
  const l = tsrun(["create", "--bundle", bundle.dir, "--pid-file", path.join(dir, "link.pid"), linkId], { root });
  t.equal(l.code, 0, l.stderr);
  t.equal(fs.readFileSync(victim, "utf8"), precious, "a symlink at the pid file's path: the victim is untouched");
  t.equal(pidIn("link.pid"), state(root, linkId).pid);
  t.equal(tsrun(["delete", "--force", linkId], { root }).code, 0);
  t.same(fs.readdirSync(dir).filter((n) => !n.endsWith(".pid") && !/^\.[a-z]+\.pid\.\d+$/.test(n)), [], "no temporary file is left");
});

t.test("--preserve-fds N passes exactly the caller's fds 3..3+N-1, and refuses when one is missing", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sh", "-c", "ls -l /proc/self/fd/ 2>/dev/null | sed -n 's/.* \\([0-9]*\\) -> \\(.*\\)$/\\1 \\2/p'"] });
  const log = path.join(bundle.dir, "tsrun.log");
  const file = (name: string) => {
    const p = path.join(bundle.dir, name);
    fs.writeFileSync(p, name);
    return { path: p, fd: fs.openSync(p, "r") };
  };
  const files = [file("three"), file("four"), file("five")];
  const call = (args: string[], extra: number[]) => {
    const out = new Capture();
    const err = new Capture();
    const r = spawnSync(TSRUN, ["--root", root, "--log", log, ...args], {
      env: { ...process.env, [TAG_ENV]: TEST_TAG },
      stdio: ["ignore", out.fd, err.fd, ...extra],
    });
    return { code: r.status, stdout: out.read(), stderr: err.read() };
  };

  const missing = call(["run", "--preserve-fds", "3", "--bundle", bundle.dir, containerId()], [files[0]!.fd]);
  t.equal(missing.code, 1);
  t.equal(missing.stderr, "tsrun: --preserve-fds 3: fd 4 was not passed to tsrun (it is closed or close-on-exec)\n");
  t.same(fs.readdirSync(root), [], "nothing is left behind");

  const all = call(["run", "--preserve-fds", "3", "--bundle", bundle.dir, containerId()], files.map((f) => f.fd));
  t.equal(all.code, 0, all.stderr);
  const seen = all.stdout.trim().split("\n").map((l) => l.split(" "));
  t.same(seen.map(([fd]) => fd), ["0", "1", "2", "3", "4", "5"], `exactly stdio and the three fds (ls's own excluded): ${all.stdout}`);
  t.same(seen.slice(3).map(([, target]) => target), files.map((f) => f.path), "fds 3, 4, 5 are the caller's files");
  t.notMatch(all.stdout, /anon_inode|cgroup|tsrun\.log/, "nothing of tsrun's");

  // exec, the same way
  const id = containerId();
  t.equal(call(["run", "-d", "--bundle", bundle.dir, id], []).code, 0);
  const execMissing = call(["exec", "--preserve-fds", "2", id, "true"], [files[0]!.fd]);
  t.equal(execMissing.code, 255, "exec's own errors exit 255, as runc's");
  t.match(execMissing.stderr, /--preserve-fds 2: fd 4 was not passed to tsrun/);
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
  for (const f of files) fs.closeSync(f.fd);
});

t.test("--no-pivot: a user namespace in the container cannot mount a fresh procfs (the host's stays hidden)", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, {
    args: ["sh", "-c", "unshare -mrpf sh -c 'mount -t tmpfs none /tmp && echo userns-works; mount -t proc none /proc && echo PROC-MOUNTED'; true"],
    config: (c) => {
      // As runc's test: CAP_SETFCAP lets unshare -r map root.
      for (const set of ["bounding", "effective", "permitted"]) c.process.capabilities[set].push("CAP_SETFCAP");
    },
  });
  for (const flags of [["--no-pivot"], []]) {
    const r = tsrun(["run", ...flags, "--bundle", bundle.dir, containerId()], { root });
    const what = flags.length ? "--no-pivot" : "pivot_root";
    t.equal(r.code, 0, `${what}: ${r.stderr}`);
    t.match(r.stdout, /^userns-works\n/, `${what}: the user namespace works`);
    t.notMatch(r.stdout, /PROC-MOUNTED/, `${what}: mounting procfs is refused`);
    t.match(r.stderr, /mount: permission denied/, what);
  }
});

t.test("a rootfs whose /proc or /sys is a symlink is refused (as runc), and nothing is left", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const [dest, fstype] of [["proc", "proc"], ["sys", "sysfs"]] as const) {
    const bundle = makeBundle(t, { copyRootfs: true });
    const rootfs = path.join(bundle.dir, "rootfs");
    fs.rmSync(path.join(rootfs, dest), { recursive: true });
    fs.mkdirSync(path.join(rootfs, "elsewhere"));
    fs.symlinkSync("elsewhere", path.join(rootfs, dest));
    const r = tsrun(["create", "--bundle", bundle.dir, containerId()], { root });
    t.equal(r.code, 1, dest);
    t.equal(r.stderr, `tsrun: unable to start container process: error mounting "${fstype === "proc" ? "proc" : "sysfs"}" to rootfs at "/${dest}": filesystem "${fstype}" must be mounted on ordinary directory\n`);
    t.same(fs.readdirSync(root), [], `${dest}: no state left`);
    t.same(fs.readdirSync(path.join(rootfs, "elsewhere")), [], `${dest}: nothing made where the symlink points`);
  }
});

t.test("a container's cgroup that is already frozen is refused at once, and nothing is left", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const hierarchies = [
    { dir: "/sys/fs/cgroup/freezer", file: "freezer.state", frozen: "FROZEN", thawed: "THAWED" },
    { dir: "/sys/fs/cgroup/unified", file: "cgroup.freeze", frozen: "1", thawed: "0" },
    { dir: "/sys/fs/cgroup", file: "cgroup.freeze", frozen: "1", thawed: "0" },
  ];
  let tried = 0;
  for (const h of hierarchies) {
    const parent = path.join(h.dir, `${TEST_TAG}-frozen`);
    if (!fs.existsSync(path.join(h.dir, "cgroup.procs"))) continue;
    fs.mkdirSync(parent);
    try {
      if (!fs.existsSync(path.join(parent, h.file))) continue;
      fs.writeFileSync(path.join(parent, h.file), h.frozen);
      tried++;
      // The pre-made cgroup itself, and a new one below it (frozen by inheritance).
      for (const cgroupsPath of [`/${TEST_TAG}-frozen`, `/${TEST_TAG}-frozen/ctr`]) {
        const bundle = makeBundle(t, { config: (c) => (c.linux.cgroupsPath = cgroupsPath) });
        const r = tsrun(["create", "--bundle", bundle.dir, containerId()], { root });
        t.equal(r.code, 1, `${h.dir} ${cgroupsPath}`);
        t.match(r.stderr, /^tsrun: container's cgroup unexpectedly frozen \(/, `${h.dir} ${cgroupsPath}: ${r.stderr}`);
        t.same(fs.readdirSync(root), [], "no state left");
        t.notOk(fs.existsSync(path.join(parent, "ctr")), "the cgroup create made is removed");
        t.equal(fs.readFileSync(path.join(parent, h.file), "utf8").trim(), h.frozen, "the pre-made cgroup is left frozen, as it was");
      }
    } finally {
      fs.writeFileSync(path.join(parent, h.file), h.thawed);
      // Other hierarchies got the pre-made path as a new cgroup: all of them go.
      for (const other of hierarchies) {
        for (const d of [path.join(other.dir, `${TEST_TAG}-frozen`, "ctr"), path.join(other.dir, `${TEST_TAG}-frozen`)]) {
          try {
            fs.rmdirSync(d);
          } catch {
            // not there
          }
        }
      }
    }
  }
  t.ok(tried > 0, "a freezer (v1 or cgroup2) was there to try");
});
