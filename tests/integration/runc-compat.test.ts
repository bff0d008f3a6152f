// Drop-in for runc (issue 16): the differences from runc 1.1.5 that tsrun had, each through the
// built binary, as runc behaves on this machine kind (checked against runc itself while writing
// them): a `runc spec` bundle, HOME, mount sources in a user namespace and exec there, no or a
// joined mount namespace, exec --cgroup, v2-only resources on a v1 host, the cgroup namespace of
// `spec`, a read-only /dev, the terminal's owner and size, exit statuses, v1 device updates, a
// cgroup made beforehand (kept, as the spec says), the log shape and --version, exec -p without user, device access
// strings, and `create <id> <bundle>`.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { makeBundle, type ConfigObject } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { realDir, removeAtTeardown, type TestLike } from "../lib/context.ts";
import { REPO, sharedRootfs } from "../lib/rootfs.ts";
import { expectCreateRefused } from "../lib/refused-create.ts";
import { Capture, containerId, state, TAG_ENV, TEST_TAG, testRoot, TSRUN, tsrun, waitForStatus, type TsrunResult } from "../lib/tsrun.ts";

if (process.geteuid?.() !== 0) {
  t.plan(0, "needs root");
  process.exit(0);
}

const RECEIVER = path.join(REPO, "tests/helper/console-receiver.py");
const RUNC = ["/usr/bin/runc", "/usr/sbin/runc", "/usr/local/bin/runc", "/usr/local/sbin/runc"].find((p) => fs.existsSync(p));

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function waitFor(cond: () => boolean, what: string): void {
  for (let i = 0; i < 1000 && !cond(); i++) sleepMs(10);
  if (!cond()) throw new Error(`gave up waiting for ${what}`);
}

function tempDir(t: TestLike, prefix: string): string {
  const dir = realDir(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  removeAtTeardown(t, dir, "temp dir");
  return dir;
}

/** Every cgroup hierarchy's mount point (v1 ones and the cgroup2 one). */
function cgroupMounts(): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-", 6);
    if (dash > 0 && (f[dash + 1] === "cgroup" || f[dash + 1] === "cgroup2") && !out.includes(f[4]!)) out.push(f[4]!);
  }
  return out;
}

/** A container that runs `sleep 1000`, detached, in its own state dir. */
function running(t: TestLike, config?: (c: ConfigObject) => void): { root: string; id: string; pid: number } {
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"], config });
  const id = containerId();
  const r = tsrun(["run", "-d", "--bundle", bundle.dir, id], { root });
  if (r.code !== 0) throw new Error(`run -d: ${r.stderr}`);
  return { root, id, pid: state(root, id).pid };
}

/** The console socket receiver (tests/helper/console-receiver.py); out() waits for it to finish. */
function receiver(t: TestLike, dir: string): { sock: string; out: () => Promise<string> } {
  const sock = path.join(dir, "console.sock");
  const out = path.join(dir, "console.out");
  const r = spawn("python3", [RECEIVER, sock, out], { stdio: "ignore" });
  t.teardown(() => r.kill("SIGKILL"));
  const exited = new Promise((resolve) => r.on("exit", resolve));
  waitFor(() => fs.existsSync(sock), "the console socket");
  return { sock, out: async () => (await exited, fs.readFileSync(out, "utf8")) };
}

t.test("a bundle made by `runc spec` runs: ambient capabilities that cannot be raised are warned about and skipped", { skip: RUNC ? false : "runc is not installed" }, async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t);
  fs.rmSync(bundle.configPath);
  execIn(bundle.dir, RUNC!, ["spec"]);
  const config = JSON.parse(fs.readFileSync(bundle.configPath, "utf8")) as ConfigObject;
  t.ok(config.process.capabilities.ambient.length > 0 && !config.process.capabilities.inheritable, "runc's spec: ambient capabilities, no inheritable ones");
  config.root.path = sharedRootfs();
  config.process.terminal = false;
  config.process.args = ["grep", "CapAmb", "/proc/self/status"];
  fs.writeFileSync(bundle.configPath, JSON.stringify(config));
  const r = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^CapAmb:\s+0+\n$/, "nothing raised");
  for (const cap of config.process.capabilities.ambient as string[]) {
    t.match(r.stderr, new RegExp(`can't raise ambient capability ${cap}: operation not permitted`), `warned about ${cap}`);
  }

  // One that is inheritable and permitted is raised (and kept by a user other than root).
  const caps = (c: ConfigObject) => {
    c.process.user = { uid: 1000, gid: 1000 };
    c.process.capabilities = { bounding: ["CAP_KILL", "CAP_CHOWN"], permitted: ["CAP_KILL"], inheritable: ["CAP_KILL"], effective: ["CAP_KILL"], ambient: ["CAP_KILL", "CAP_CHOWN"] };
  };
  const both = makeBundle(t, { args: ["grep", "CapAmb", "/proc/self/status"], config: caps });
  const r2 = tsrun(["run", "--bundle", both.dir, containerId()], { root });
  t.equal(r2.code, 0, r2.stderr);
  t.match(r2.stdout, /^CapAmb:\s+0+20\n$/, "CAP_KILL raised");
  t.match(r2.stderr, /can't raise ambient capability CAP_CHOWN/);
  t.notMatch(r2.stderr, /CAP_KILL/);
});

function execIn(cwd: string, file: string, args: string[]): void {
  const r = spawnSync(file, args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
}

t.test("HOME comes from the container's /etc/passwd when process.env has none (init and exec), as runc", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const home = (user: { uid: number; gid: number }, env?: (e: string[]) => string[]) => {
    const b = makeBundle(t, {
      args: ["sh", "-c", 'echo "$HOME"; env | grep -c ^HOME='],
      config: (c) => {
        c.process.user = user;
        if (env) c.process.env = env(c.process.env);
      },
    });
    const r = tsrun(["run", "--bundle", b.dir, containerId()], { root });
    t.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  t.equal(home({ uid: 0, gid: 0 }), "/root\n1\n", "root: /root");
  t.equal(home({ uid: 65534, gid: 65534 }), "/nonexistent\n1\n", "nobody: its passwd entry");
  t.equal(home({ uid: 4242, gid: 4242 }), "/\n1\n", "no entry: /");
  t.equal(home({ uid: 0, gid: 0 }, (e) => [...e, "HOME=/custom"]), "/custom\n1\n", "a HOME of its own is kept");
  t.equal(home({ uid: 0, gid: 0 }, (e) => ["HOME=", ...e]), "/root\n1\n", "an empty HOME is replaced, not added twice");

  const c = running(t);
  const ex = (args: string[]) => tsrun(["exec", ...args, c.id, "sh", "-c", 'echo "$HOME"'], { root: c.root });
  t.match(ex(["-u", "65534:65534"]), { code: 0, stdout: "/nonexistent\n" }, "exec: the user's home");
  t.match(ex([]), { code: 0, stdout: "/root\n" });
  t.match(ex(["-e", "HOME=/x"]), { code: 0, stdout: "/x\n" });
  t.equal(tsrun(["delete", "--force", c.id], { root: c.root }).code, 0);
});

t.test("user namespace: a bind mount source only host root can reach works, and so does exec", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const host = tempDir(t, "tsrun-locked-");
  const inner = path.join(host, "locked", "inner");
  fs.mkdirSync(inner, { recursive: true });
  fs.writeFileSync(path.join(inner, "file"), "behind a locked door\n");
  fs.chmodSync(path.join(host, "locked"), 0o000);
  t.teardown(() => fs.chmodSync(path.join(host, "locked"), 0o755));
  const userns = (c: ConfigObject) => {
    c.linux.namespaces.push({ type: "user" });
    c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  };
  // exec alone (it joined the container's session keyring, then failed to change its permissions)
  const plain = running(t, userns);
  t.match(tsrun(["exec", plain.id, "id", "-u"], { root: plain.root }), { code: 0, stdout: "0\n" }, "exec into a user-namespaced container");
  t.equal(tsrun(["delete", "--force", plain.id], { root: plain.root }).code, 0);

  const c = running(t, (cfg) => {
    userns(cfg);
    cfg.mounts.push({ destination: "/home", type: "bind", source: inner, options: ["rbind", "ro"] });
  });
  const r = tsrun(["exec", c.id, "sh", "-c", "cat /home/file; id -u; grep -c ' /home ' /proc/self/mountinfo"], { root: c.root });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, "behind a locked door\n0\n1\n", "the mount is there, and exec joins the container (its session keyring too)");
  const again = tsrun(["exec", "-u", "1000:1000", c.id, "id", "-u"], { root: c.root });
  t.match(again, { code: 0, stdout: "1000\n" }, "a second exec, as another user");
  t.equal(tsrun(["delete", "--force", c.id], { root: c.root }).code, 0);
});

/** The container config without a mount namespace: what needs one left out. */
function withoutMountNs(c: ConfigObject): void {
  c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "mount" && n.type !== "cgroup");
  delete c.linux.maskedPaths;
  delete c.linux.readonlyPaths;
}

/** A private mount namespace, held by a sleeping process, in which tsrunIn runs tsrun. */
function mountNsHolder(t: TestLike): number {
  const holder = spawn("unshare", ["-m", "--propagation", "private", "sleep", "1000"], { stdio: "ignore" });
  t.teardown(() => holder.kill("SIGKILL"));
  waitFor(() => {
    try {
      return fs.readlinkSync(`/proc/${holder.pid}/ns/mnt`) !== fs.readlinkSync("/proc/self/ns/mnt");
    } catch {
      return false;
    }
  }, "the namespace holder");
  return holder.pid!;
}

/** tsrun run in the mount namespace of holder (nsenter), so that what it mounts there stays there. */
function tsrunIn(holder: number, root: string, args: string[]): TsrunResult {
  const out = new Capture();
  const err = new Capture();
  const r = spawnSync("nsenter", [`--mount=/proc/${holder}/ns/mnt`, TSRUN, "--root", root, ...args], {
    stdio: ["ignore", out.fd, err.fd],
    env: { ...process.env, [TAG_ENV]: TEST_TAG },
    timeout: 120_000,
  });
  return { code: r.status ?? 128, signal: r.signal, stdout: out.read(), stderr: err.read() };
}

t.test("no mount namespace: the mounts are made in tsrun's own, the process is chrooted, exec too (as runc)", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  // A private mount namespace stands in for the host's: the container's mounts land there.
  const holder = mountNsHolder(t);
  const ns = fs.readlinkSync(`/proc/${holder}/ns/mnt`);
  const b = makeBundle(t, { copyRootfs: true, args: ["sleep", "1000"], config: withoutMountNs });
  const rootfs = path.join(b.dir, "rootfs");
  const id = containerId();
  const mountsUnder = () => fs.readFileSync(`/proc/${holder}/mountinfo`, "utf8").split("\n").filter((l) => l.split(" ")[4]?.startsWith(rootfs + "/")).length;
  const r = tsrunIn(holder, root, ["run", "-d", "--bundle", b.dir, id]);
  t.equal(r.code, 0, r.stderr);
  const pid = state(root, id).pid;
  t.equal(fs.readlinkSync(`/proc/${pid}/ns/mnt`), ns, "the init is in tsrun's mount namespace");
  t.equal(fs.readlinkSync(`/proc/${pid}/root`), rootfs, "chrooted to the rootfs");
  t.ok(mountsUnder() >= 4, "proc, the /dev tmpfs and the others are mounted under the rootfs");
  const e = tsrunIn(holder, root, ["exec", id, "sh", "-c", "test -f /etc/.tsrun-rootfs-stamp && readlink /proc/self/ns/mnt; echo $HOME"]);
  t.equal(e.code, 0, e.stderr);
  t.equal(e.stdout, `${ns}\n/root\n`, "exec gets the init's root (runc would leave it the host's)");
  t.equal(tsrunIn(holder, root, ["delete", "--force", id]).code, 0);
  t.ok(mountsUnder() > 0, "as with runc, the mounts stay after delete (in that namespace, gone with it)");

  // A create that fails after some of its mounts leaves none behind.
  const holder2 = mountNsHolder(t);
  const failing = makeBundle(t, {
    copyRootfs: true,
    config: (c) => {
      withoutMountNs(c);
      c.mounts.push({ destination: "/mnt", type: "bind", source: "/nonexistent-source", options: ["rbind"] });
    },
  });
  const rootfs2 = path.join(failing.dir, "rootfs");
  const f = tsrunIn(holder2, root, ["create", "--bundle", failing.dir, containerId()]);
  t.equal(f.code, 1);
  t.match(f.stderr, /nonexistent-source/);
  const left = fs.readFileSync(`/proc/${holder2}/mountinfo`, "utf8").split("\n").filter((l) => l.split(" ")[4]?.startsWith(rootfs2 + "/"));
  t.same(left, [], "the mounts made before the failure are undone");

  expectCreateRefused(t, root, "a read-only root", (c) => withoutMountNs(c), /config\.json: root\.readonly: needs a mount namespace/);
  expectCreateRefused(t, root, "rootfsPropagation", (c) => {
    withoutMountNs(c);
    c.root.readonly = false;
    c.linux.rootfsPropagation = "rslave";
  }, /config\.json: linux\.rootfsPropagation: needs a mount namespace/);
  expectCreateRefused(t, root, "the host's own mount namespace", (c) => {
    c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === "mount" ? { type: "mount", path: "/proc/self/ns/mnt" } : n));
  }, /linux\.namespaces\[\d\]\.path: the mount namespace \/proc\/self\/ns\/mnt is the host's own/);
});

t.test("a joined mount namespace is set up as the container's own (as runc)", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const holder = mountNsHolder(t);
  const ns = fs.readlinkSync(`/proc/${holder}/ns/mnt`);
  const b = makeBundle(t, {
    args: ["sh", "-c", "readlink /proc/self/ns/mnt; test -f /etc/.tsrun-rootfs-stamp && echo in-rootfs"],
    config: (c) => (c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === "mount" ? { type: "mount", path: `/proc/${holder}/ns/mnt` } : n))),
  });
  const r = tsrun(["run", "--bundle", b.dir, containerId()], { root });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `${ns}\nin-rootfs\n`);
  t.ok(fs.existsSync(`/proc/${holder}/root/etc/.tsrun-rootfs-stamp`), "as with runc, the namespace's root is now the container's");
});

t.test("exec --cgroup: a sub-cgroup of the container's, [controller:]path, never outside it", async (t) => {
  leakCheck(t);
  const cgPath = `/${TEST_TAG}-cg`;
  const c = running(t, (cfg) => (cfg.linux.cgroupsPath = cgPath));
  const dirs = cgroupMounts().map((m) => path.join(m, cgPath)).filter((d) => fs.existsSync(d));
  t.ok(dirs.length > 1, "the container has cgroups");
  for (const d of dirs) {
    fs.mkdirSync(path.join(d, "sub"));
    // A new v1 cpuset starts without CPUs and memory nodes: no task may join it so.
    for (const f of ["cpuset.cpus", "cpuset.mems"]) if (fs.existsSync(path.join(d, f))) fs.writeFileSync(path.join(d, "sub", f), fs.readFileSync(path.join(d, f)));
  }
  const cgroups = (args: string[]) => tsrun(["exec", ...args, c.id, "cat", "/proc/self/cgroup"], { root: c.root });
  const all = cgroups(["--cgroup", "sub"]);
  t.equal(all.code, 0, all.stderr);
  const lines = all.stdout.trim().split("\n");
  t.ok(lines.length > 1 && lines.every((l) => l.endsWith(":/sub")), `every hierarchy: ${all.stdout}`);
  const mem = cgroups(["--cgroup", "memory:sub", "--cgroup", "pids:/sub"]);
  t.equal(mem.code, 0, mem.stderr);
  const at = (text: string, ctrl: string) => text.split("\n").find((l) => l.split(":")[1]?.split(",").includes(ctrl))?.split(":")[2];
  t.equal(at(mem.stdout, "memory"), "/sub", "memory: the sub-cgroup");
  t.equal(at(mem.stdout, "pids"), "/sub", "pids: a leading / stays below the container's cgroup");
  t.equal(at(mem.stdout, "cpu"), "/", "cpu: the container's cgroup");
  for (const [arg, want] of [
    ["../..", /invalid --cgroup argument: \.\.\/\.\. \(it leaves the container's cgroup\)/],
    ["sub/../../x", /it leaves the container's cgroup/],
    ["nosuch", /--cgroup: .*nosuch: no such file or directory/],
    ["frob:sub", /unknown controller frob in --cgroup/],
  ] as const) {
    const r = cgroups(["--cgroup", arg]);
    t.equal(r.code, 255, `${arg}: exec's own error exits 255`);
    t.match(r.stderr, want, arg);
  }
  t.match(cgroups(["--cgroup", "sub", "--cgroup", "memory:sub"]), { code: 255, stderr: /missing <controller>: prefix/ });
  t.equal(tsrun(["delete", "--force", c.id], { root: c.root }).code, 0);
  t.same(dirs.filter((d) => fs.existsSync(d)), [], "delete removes the sub-cgroups with the container's");
});

const V2_ROOT = cgroupMounts().find((m) => fs.existsSync(path.join(m, "cgroup.controllers")));
const V2_CONTROLLERS = V2_ROOT ? fs.readFileSync(path.join(V2_ROOT, "cgroup.controllers"), "utf8").trim().split(/\s+/) : [];

t.test("a v2-only resource on a host whose controller is in cgroup v1 is refused up front, by JSON path", { skip: V2_CONTROLLERS.includes("memory") ? "memory is a cgroup v2 controller on this host" : false }, async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const r = expectCreateRefused(t, root, "unified memory.min", (c) => (c.linux.resources.unified = { "memory.min": "0" }), /^tsrun: config\.json: linux\.resources\.unified\["memory\.min"\]: /m);
  t.notMatch(r.stderr, /write|mkdir/, "nothing was written");
});

t.test("tsrun spec adds a cgroup namespace only where /sys/fs/cgroup is cgroup v2, as runc", async (t) => {
  const dir = tempDir(t, "tsrun-spec-");
  t.equal(tsrun(["spec", "--bundle", dir]).code, 0);
  const ns = (JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as ConfigObject).linux.namespaces.map((n: { type: string }) => n.type);
  const v2 = spawnSync("stat", ["-f", "-c", "%T", "/sys/fs/cgroup"], { encoding: "utf8" }).stdout.trim() === "cgroup2fs";
  t.equal(ns.includes("cgroup"), v2, `cgroup namespace ${v2 ? "on" : "off"} this ${v2 ? "cgroup v2" : "cgroup v1/hybrid"} host`);
  if (RUNC) {
    const theirs = tempDir(t, "tsrun-runc-spec-");
    execIn(theirs, RUNC, ["spec"]);
    const runcNs = (JSON.parse(fs.readFileSync(path.join(theirs, "config.json"), "utf8")) as ConfigObject).linux.namespaces.map((n: { type: string }) => n.type);
    t.equal(ns.includes("cgroup"), runcNs.includes("cgroup"), "as runc spec here");
  }
});

t.test("a read-only /dev (and a read-only tmpfs with tmpcopyup) works: filled first, read-only after", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const b = makeBundle(t, {
    copyRootfs: true,
    args: ["sh", "-c", "ls /dev/null /dev/pts/ptmx /dev/shm >/dev/null && echo filled; touch /dev/x 2>&1; cat /etc/hostname >/dev/null; ls /etc/passwd; touch /etc/y 2>&1; true"],
    config: (c) => {
      c.mounts.find((m: { destination: string }) => m.destination === "/dev").options.push("ro");
      c.mounts.push({ destination: "/etc", type: "tmpfs", source: "tmpfs", options: ["ro", "tmpcopyup", "nosuid"] });
    },
  });
  const r = tsrun(["run", "--bundle", b.dir, containerId()], { root });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^filled\ntouch: \/dev\/x: Read-only file system\n\/etc\/passwd\ntouch: \/etc\/y: Read-only file system\n$/);
});

t.test("terminal: the pty is the process user's (group and mode as devpts made them); exec -t gets the console size", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const b = makeBundle(t, {
    args: ["sh", "-c", "ls -ln $(tty) | cut -c1-10; stat -c '%u %g' $(tty)"],
    config: (c) => {
      c.process.terminal = true;
      c.process.user = { uid: 1000, gid: 1000 };
    },
  });
  const rc = receiver(t, tempDir(t, "tsrun-tty-"));
  const id = containerId();
  t.equal(tsrun(["create", "--bundle", b.dir, "--console-socket", rc.sock, id], { root }).code, 0);
  t.equal(tsrun(["start", id], { root }).code, 0);
  t.match(await rc.out(), /\ncrw--w----\r\n1000 5\r\n/, "uid 1000, gid 5 (tty, from gid=5), mode 0620 (mode=0620)");
  waitForStatus(root, id, "stopped");
  t.equal(tsrun(["delete", id], { root }).code, 0);

  // exec -t: the container's process.consoleSize (runc's exec has no flag for it), its owner too.
  const c = running(t, (cfg) => (cfg.process.consoleSize = { height: 33, width: 111 }));
  const rx = receiver(t, tempDir(t, "tsrun-tty-"));
  const e = tsrun(["exec", "-d", "-t", "-u", "1000:1000", "--console-socket", rx.sock, c.id, "sh", "-c", "stty size; stat -c '%u %g' $(tty)"], { root: c.root });
  t.equal(e.code, 0, e.stderr);
  t.match(await rx.out(), /\n33 111\r\n1000 5\r\n/);
  t.equal(tsrun(["delete", "--force", c.id], { root: c.root }).code, 0);
});

t.test("exit statuses: exec's own failures exit 255; kill --all of a stopped container succeeds (as runc)", async (t) => {
  leakCheck(t);
  const c = running(t);
  const ex = (args: string[]) => tsrun(["exec", ...args], { root: c.root });
  t.match(ex([c.id, "sh", "-c", "exit 7"]), { code: 7 }, "the process's own status");
  t.match(ex([c.id, "/nonexistent"]), { code: 255, stderr: /no such file or directory/ });
  t.match(ex(["--cwd", "/nonexistent", c.id, "true"]), { code: 255 });
  t.match(ex(["nosuch", "true"]), { code: 255, stderr: /container does not exist/ });
  t.match(ex([]), { code: 1 }, "a usage error is not exec's: 1");
  t.equal(tsrun(["kill", c.id, "KILL"], { root: c.root }).code, 0);
  t.equal(waitForStatus(c.root, c.id, "stopped"), "stopped");
  t.match(tsrun(["kill", "--all", c.id, "KILL"], { root: c.root }), { code: 0 }, "kill --all of a stopped container");
  t.match(tsrun(["kill", c.id, "KILL"], { root: c.root }), { code: 1, stderr: /container not running/ }, "kill of its init: not running");
  t.match(tsrun(["kill", "--all", "nosuch", "KILL"], { root: c.root }), { code: 1, stderr: /container does not exist/ });
  t.equal(tsrun(["delete", c.id], { root: c.root }).code, 0);
});

t.test("v1 devices update: the default devices stay, and no device kept is denied on the way", { skip: cgroupMounts().some((m) => fs.existsSync(path.join(m, "devices.list"))) ? false : "no cgroup v1 devices controller" }, async (t) => {
  leakCheck(t);
  const cgPath = `/${TEST_TAG}-dev`;
  const rules = [{ allow: false, access: "rwm" }, { allow: true, type: "b", major: 7, minor: 99, access: "rw" }];
  const c = running(t, (cfg) => {
    cfg.linux.cgroupsPath = cgPath;
    cfg.linux.resources.devices = rules;
  });
  const list = () => fs.readFileSync(path.join(cgroupMounts().find((m) => fs.existsSync(path.join(m, "devices.list")))!, cgPath, "devices.list"), "utf8");
  const before = list();
  t.match(before, /^b 7:99 rw$/m);
  const trace = path.join(tempDir(t, "tsrun-strace-"), "trace");
  const update = (resources: unknown, traced: boolean) => {
    const args = ["--root", c.root, "update", "--resources", "-", c.id];
    if (!traced) return tsrun(args.slice(2), { root: c.root, input: JSON.stringify(resources) });
    const r = spawnSync("strace", ["-f", "-y", "-s", "64", "-e", "trace=write", "-o", trace, TSRUN, ...args], {
      input: JSON.stringify(resources),
      encoding: "utf8",
      env: { ...process.env, [TAG_ENV]: TEST_TAG },
    });
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  };
  // The same rules plus one, as containerd sends the whole resources on an update.
  const more = [...rules, { allow: true, type: "b", major: 7, minor: 98, access: "r" }];
  const strace = spawnSync("strace", ["-V"]).status === 0;
  const r = update({ devices: more }, strace);
  t.equal(r.code, 0, r.stderr);
  const after = list();
  t.match(after, /^b 7:98 r$/m, "the new rule");
  t.same(after.split("\n").filter((l) => l !== "b 7:98 r"), before.split("\n"), "everything else as it was: the default devices stay");
  if (strace) {
    const writes = fs.readFileSync(trace, "utf8").split("\n").filter((l) => /devices\.(allow|deny)>/.test(l));
    t.same(writes.map((l) => /devices\.(allow|deny)>, "([^"]*)"/.exec(l)?.slice(1).join(" ")), ["allow b 7:98 r"], "one write: nothing denied first");
  } else t.comment("strace is not installed: the write sequence is not checked");
  const dropped = update({ devices: [{ allow: false, access: "rwm" }] }, false);
  t.equal(dropped.code, 0, dropped.stderr);
  t.notMatch(list(), /b 7:9/, "rules dropped");
  t.match(list(), /^c 1:3 rwm$/m, "the default devices stay allowed");
  t.match(tsrun(["exec", c.id, "sh", "-c", "echo x > /dev/null && echo ok"], { root: c.root }), { code: 0, stdout: "ok\n" });
  t.equal(tsrun(["delete", "--force", c.id], { root: c.root }).code, 0);
});

t.test("delete leaves a cgroup dir the caller made beforehand (the spec's rule; runc removes it)", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const cgPath = `/${TEST_TAG}-premade`;
  const dirs = cgroupMounts().map((m) => path.join(m, cgPath));
  for (const d of dirs) fs.mkdirSync(d);
  t.teardown(() => {
    for (const d of dirs) {
      try {
        fs.rmdirSync(d);
      } catch {
        // removed by the test already
      }
    }
  });
  const b = makeBundle(t, { args: ["sleep", "1000"], config: (c) => (c.linux.cgroupsPath = cgPath) });
  const id = containerId();
  t.equal(tsrun(["run", "-d", "--bundle", b.dir, id], { root }).code, 0);
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
  t.same(dirs.filter((d) => !fs.existsSync(d)), [], "every hierarchy's dir is still there (runtime.md: not created by this container)");
  for (const d of dirs) fs.rmdirSync(d); // the caller's, before the leak check looks
});

t.test("logs in runc's logrus shape; --version in runc's lines", async (t) => {
  const logrusTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
  const text = tsrun(["--debug", "--root", "/nonexistent-root", "list", "-q"]);
  t.equal(text.code, 0);
  const lines = text.stderr.trim().split("\n");
  t.ok(lines.length > 0 && lines.every((l) => /^time="[^"]+" level=debug msg=".*"$/.test(l)), `--debug lines: ${text.stderr}`);
  t.match(/^time="([^"]+)"/.exec(lines[0]!)![1], logrusTime, "RFC 3339 time, whole seconds");

  const json = tsrun(["--debug", "--log-format", "json", "--root", "/nonexistent-root", "state", "nope"]);
  t.equal(json.code, 1);
  const entries = json.stderr.trim().split("\n").map((l) => JSON.parse(l) as Record<string, string>);
  t.ok(entries.every((e) => Object.keys(e).join() === "level,msg,time" && logrusTime.test(e.time!)), "{level,msg,time} on stderr without --log");
  t.same(entries.filter((e) => e.level === "error").map((e) => e.msg), ["container does not exist"], "the error among them");

  const dir = tempDir(t, "tsrun-log-");
  tsrun(["--debug", "--log", path.join(dir, "log"), "--root", "/nonexistent-root", "state", "nope"]);
  const file = fs.readFileSync(path.join(dir, "log"), "utf8").trim().split("\n");
  t.ok(file.every((l) => /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=(debug|error) msg=/.test(l)), "the --log file too");
  t.ok(file.some((l) => / level=error msg="container does not exist"$/.test(l)), "the error among them");

  const v = tsrun(["--version"]);
  t.equal(v.code, 0);
  t.match(v.stdout, /^tsrun version \d+\.\d+\.\d+\ncommit: \S+\nspec: 1\.3\.0\nlibseccomp: \d+\.\d+\.\d+\n$/);
});

t.test("exec -p without user runs as 0:0; device access strings runc accepts are accepted", async (t) => {
  leakCheck(t);
  const cgPath = `/${TEST_TAG}-acc`;
  const c = running(t, (cfg) => {
    cfg.process.user = { uid: 1000, gid: 1000 };
    cfg.linux.cgroupsPath = cgPath;
    cfg.linux.resources.devices = [
      { allow: false, access: "rwm" },
      { allow: true, type: "b", major: 7, minor: 99, access: "mrwmrw" },
      { allow: true, type: "b", major: 7, minor: 98, access: "wrx" },
    ];
  });
  const proc = path.join(tempDir(t, "tsrun-proc-"), "process.json");
  fs.writeFileSync(proc, JSON.stringify({ args: ["id"], cwd: "/" }));
  t.match(tsrun(["exec", "-p", proc, c.id], { root: c.root }), { code: 0, stdout: /^uid=0\(root\) gid=0\(root\)/ });
  const devices = cgroupMounts().map((m) => path.join(m, cgPath, "devices.list")).find((f) => fs.existsSync(f));
  if (devices) t.match(fs.readFileSync(devices, "utf8"), /^b 7:99 rwm\nb 7:98 rw$/m, "any order, repeats; other characters ignored");
  t.equal(tsrun(["delete", "--force", c.id], { root: c.root }).code, 0);
  const check = makeBundle(t, { config: (cfg) => cfg.linux.resources.devices.push({ allow: true, type: "b", major: 7, minor: 98, access: "wrx" }) });
  t.match(tsrun(["check", "--bundle", check.dir]), { code: 0, stdout: /warning: config\.json: linux\.resources\.devices\[1\]\.access: characters other than r, w and m are ignored/ });
});

t.test("create and run take the bundle as an operand beside --bundle", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const b = makeBundle(t, { args: ["echo", "from-the-operand"] });
  const id = containerId();
  t.equal(tsrun(["create", id, b.dir], { root }).code, 0);
  t.equal(state(root, id).bundle, b.dir);
  t.equal(tsrun(["delete", id], { root }).code, 0);
  t.match(tsrun(["run", containerId(), b.dir], { root }), { code: 0, stdout: "from-the-operand\n" });
  t.match(tsrun(["run", "--bundle", b.dir, containerId(), `${b.dir}/.`], { root }), { code: 0 }, "both, naming one directory");
  const other = makeBundle(t);
  const both = tsrun(["create", "--bundle", other.dir, containerId(), b.dir], { root });
  t.equal(both.code, 1);
  t.match(both.stderr, /^tsrun: create: the bundle is given twice and differs: --bundle .* and the operand /);
  t.same(fs.readdirSync(root), [], "nothing created");
});
