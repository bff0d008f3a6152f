// Drop-in for runc (issue 16): the differences from runc 1.1.5 that tsrun had, each through the
// built binary, as runc behaves on this machine kind (checked against runc itself while writing
// them): a `runc spec` bundle, HOME, mount sources in a user namespace and exec there, no or a
// joined mount namespace, exec --cgroup, v2-only resources on a v1 host, the cgroup namespace of
// `spec`, a read-only /dev, the terminal's owner and size, exit statuses, v1 device updates, a
// cgroup made beforehand, the log shape and --version, exec -p without user, device access
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

function execIn(cwd: string, file: string, args: string[]): void {
  const r = spawnSync(file, args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
}

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

const V2_ROOT = cgroupMounts().find((m) => fs.existsSync(path.join(m, "cgroup.controllers")));
const V2_CONTROLLERS = V2_ROOT ? fs.readFileSync(path.join(V2_ROOT, "cgroup.controllers"), "utf8").trim().split(/\s+/) : [];

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
