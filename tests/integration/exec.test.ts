// `tsrun exec` into real containers through the built binary: every flag, what the process sees
// from the inside (identity, cwd, env, namespaces, cgroup), exit codes and signals, a terminal
// through a console socket, concurrent execs, and the container states exec refuses.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { makeBundle, type ConfigObject } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { realDir, removeAtTeardown, type TestLike } from "../lib/context.ts";
import { REPO } from "../lib/rootfs.ts";
import { containerId, spawnTsrun, state, TAG_ENV, TEST_TAG, testRoot, TSRUN, tsrun, tsrunAsync } from "../lib/tsrun.ts";
import { apparmorEnabled, selinuxEnabled } from "../../src/linux/process-attrs.ts";

const CAP_SYS_ADMIN = 21;
const CAP_NET_ADMIN = 12;
const NAMESPACES = ["mnt", "pid", "net", "ipc", "uts", "cgroup"];

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function waitFor(what: () => boolean, ms = 5000): boolean {
  for (const end = Date.now() + ms; Date.now() < end; sleepMs(10)) if (what()) return true;
  return what();
}

function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** A running container (`sleep 1000`) in a fresh state dir; the test deletes it with `done()`. */
function running(t: TestLike, config?: (c: ConfigObject) => void): { root: string; id: string; pid: number; done: () => number } {
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"], config });
  const id = containerId();
  const r = tsrun(["run", "-d", "--bundle", bundle.dir, id], { root });
  if (r.code !== 0) throw new Error(`run -d: ${r.stderr}`);
  return { root, id, pid: state(root, id).pid, done: () => tsrun(["delete", "--force", id], { root }).code };
}

/** Bits of a /proc/PID/status capability mask ("CapEff:\t0000003fffffffff"). */
function capBits(status: string, field: string): bigint {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, "m").exec(status);
  if (!m) throw new Error(`no ${field} in ${status}`);
  return BigInt(`0x${m[1]}`);
}
const has = (mask: bigint, cap: number) => ((mask >> BigInt(cap)) & 1n) === 1n;

function tempDir(t: TestLike): string {
  const dir = realDir(fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-exec-")));
  removeAtTeardown(t, dir, "temp dir");
  return dir;
}

t.test("exec runs a command in the container: identity, cwd, env, namespaces and cgroup of the init", async (t) => {
  leakCheck(t);
  const c = running(t);
  const script = [
    `id -u; id -g; pwd; echo "tag=$${TAG_ENV}"`,
    `for n in ${NAMESPACES.join(" ")}; do readlink /proc/self/ns/$n; done`,
    "cat /proc/self/cgroup",
    "cat /proc/1/cgroup",
  ].join("; echo ===; ");
  const r = tsrun(["exec", c.id, "sh", "-c", script], { root: c.root });
  t.equal(r.code, 0, r.stderr);
  const [who, ns, mine, init] = r.stdout.split("===\n").map((part) => part.trim().split("\n"));
  t.same(who, ["0", "0", "/", `tag=${TEST_TAG}`], "the container's user, cwd and env");
  t.same(ns, NAMESPACES.map((n) => fs.readlinkSync(`/proc/${c.pid}/ns/${n}`)), "the init's namespaces");
  t.ok(mine!.length > 1, "cgroups listed");
  t.same(mine, init, "the init's cgroups");
  t.equal(c.done(), 0);
});

t.test("--env, --cwd, --user and --additional-gids", async (t) => {
  leakCheck(t);
  const c = running(t);
  const env = tsrun(["exec", "--env", "TERM=dumb", "-e", "NEW=one two", c.id, "env"], { root: c.root });
  t.equal(env.code, 0, env.stderr);
  t.same(
    env.stdout.trim().split("\n"),
    ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=dumb", `${TAG_ENV}=${TEST_TAG}`, "NEW=one two", "HOME=/root"],
    "the container's env, overridden in place and extended (HOME from /etc/passwd, as runc)",
  );
  const cwd = tsrun(["exec", "--cwd", "/tmp", c.id, "pwd"], { root: c.root });
  t.equal(cwd.stdout, "/tmp\n", "--cwd");
  const user = tsrun(["exec", "--user", "1000:1001", "--additional-gids", "10", "-g", "20", c.id, "sh", "-c", "id -u; id -g; id -G"], { root: c.root });
  t.equal(user.code, 0, user.stderr);
  t.equal(user.stdout, "1000\n1001\n1001 10 20\n", "--user UID:GID and --additional-gids");
  const uidOnly = tsrun(["exec", "--user", "7", c.id, "sh", "-c", "id -u; id -g"], { root: c.root });
  t.equal(uidOnly.stdout, "7\n0\n", "--user UID keeps the container's gid");
  t.equal(c.done(), 0);
});

t.test("--cap adds a capability to the bounding, effective and permitted sets", async (t) => {
  leakCheck(t);
  const c = running(t);
  const plain = tsrun(["exec", c.id, "cat", "/proc/self/status"], { root: c.root });
  const withCap = tsrun(["exec", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_ADMIN", c.id, "cat", "/proc/self/status"], { root: c.root });
  t.equal(plain.code, 0, plain.stderr);
  t.equal(withCap.code, 0, withCap.stderr);
  for (const field of ["CapBnd", "CapEff", "CapPrm"]) {
    t.notOk(has(capBits(plain.stdout, field), CAP_SYS_ADMIN), `${field}: no CAP_SYS_ADMIN by default`);
    t.ok(has(capBits(withCap.stdout, field), CAP_SYS_ADMIN), `${field}: CAP_SYS_ADMIN with --cap`);
    t.ok(has(capBits(withCap.stdout, field), CAP_NET_ADMIN), `${field}: CAP_NET_ADMIN with --cap`);
  }
  t.equal(capBits(withCap.stdout, "CapEff") & ~((1n << BigInt(CAP_SYS_ADMIN)) | (1n << BigInt(CAP_NET_ADMIN))), capBits(plain.stdout, "CapEff"), "nothing else added");
  t.equal(c.done(), 0);
});

t.test("--no-new-privs", async (t) => {
  leakCheck(t);
  const c = running(t, (cfg) => (cfg.process.noNewPrivileges = false));
  const read = (args: string[]) => /^NoNewPrivs:\s*(\d)$/m.exec(tsrun(["exec", ...args, c.id, "cat", "/proc/self/status"], { root: c.root }).stdout)?.[1];
  t.equal(read([]), "0", "the container's setting by default");
  t.equal(read(["--no-new-privs"]), "1", "set with --no-new-privs");
  t.equal(c.done(), 0);
});

t.test("--process FILE gives the whole process", async (t) => {
  leakCheck(t);
  const c = running(t);
  const dir = tempDir(t);
  const file = path.join(dir, "process.json");
  fs.writeFileSync(
    file,
    JSON.stringify({
      terminal: false,
      user: { uid: 5, gid: 6, additionalGids: [7] },
      args: ["sh", "-c", "echo $X; pwd; id -u; id -G"],
      env: ["PATH=/bin:/usr/bin", "X=from-file"],
      cwd: "/tmp",
      noNewPrivileges: true,
    }),
  );
  const r = tsrun(["exec", "--process", file, c.id], { root: c.root });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, "from-file\n/tmp\n5\n6 7\n");
  fs.writeFileSync(file, JSON.stringify({ cwd: "/", user: { uid: 0, gid: 0 } }));
  t.match(tsrun(["exec", "--process", file, c.id], { root: c.root }), { code: 255, stderr: /process\.json/ }, "an invalid process is refused");
  t.equal(c.done(), 0);
});

t.test("--detach with --pid-file: the process runs on in the container", async (t) => {
  leakCheck(t);
  const c = running(t);
  const dir = tempDir(t);
  const pidFile = path.join(dir, "exec.pid");
  const r = tsrun(["exec", "--detach", "--pid-file", pidFile, c.id, "sleep", "1000"], { root: c.root });
  t.equal(r.code, 0, r.stderr);
  const pid = Number(fs.readFileSync(pidFile, "utf8"));
  t.ok(pid > 0 && alive(pid), "the pid file names a live process");
  t.match(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8"), /^sleep\0/, "it is the exec'd command");
  for (const n of NAMESPACES) t.equal(fs.readlinkSync(`/proc/${pid}/ns/${n}`), fs.readlinkSync(`/proc/${c.pid}/ns/${n}`), `${n} namespace`);
  t.equal(fs.readFileSync(`/proc/${pid}/cgroup`, "utf8"), fs.readFileSync(`/proc/${c.pid}/cgroup`, "utf8"), "the init's cgroups");
  t.equal(c.done(), 0);
  t.ok(waitFor(() => !alive(pid)), "delete --force ends it with the container");
});

t.test("--preserve-fds passes the caller's extra fds, and only those", async (t) => {
  leakCheck(t);
  const c = running(t);
  const dir = tempDir(t);
  const out = path.join(dir, "fd3.out");
  const run = (args: string[]) => {
    const fd = fs.openSync(out, "w");
    try {
      return spawnSync(TSRUN, ["--root", c.root, "exec", ...args], {
        env: { ...process.env, [TAG_ENV]: TEST_TAG },
        stdio: ["ignore", "pipe", "pipe", fd],
        encoding: "utf8",
        timeout: 60_000,
      });
    } finally {
      fs.closeSync(fd);
    }
  };
  const ok = run(["--preserve-fds", "1", c.id, "sh", "-c", "echo via-fd3 >&3"]);
  t.equal(ok.status, 0, ok.stderr);
  t.equal(fs.readFileSync(out, "utf8"), "via-fd3\n", "fd 3 reached the process");
  const closed = run([c.id, "sh", "-c", "echo via-fd3 >&3"]);
  t.not(closed.status, 0, "without --preserve-fds fd 3 is closed in the container");
  t.equal(fs.readFileSync(out, "utf8"), "", "nothing written");
  t.equal(c.done(), 0);
});

t.test("exit codes: the process's own, and 128+signal when it is killed", async (t) => {
  leakCheck(t);
  const c = running(t);
  t.equal(tsrun(["exec", c.id, "sh", "-c", "exit 3"], { root: c.root }).code, 3);
  t.equal(tsrun(["exec", c.id, "true"], { root: c.root }).code, 0);
  t.equal(tsrun(["exec", c.id, "sh", "-c", "kill -9 $$"], { root: c.root }).code, 137, "SIGKILL: 137");
  t.equal(tsrun(["exec", c.id, "sh", "-c", "kill -TERM $$"], { root: c.root }).code, 143, "SIGTERM: 143");
  t.match(tsrun(["exec", c.id, "no-such-cmd"], { root: c.root }), { code: 255, stderr: /executable file not found in \$PATH/ });
  t.equal(c.done(), 0);
});

t.test("a signal to a foreground tsrun exec reaches the process", async (t) => {
  leakCheck(t);
  const c = running(t);
  const { child, done } = spawnTsrun(
    ["exec", c.id, "sh", "-c", "trap 'echo got-TERM; exit 42' TERM; echo ready; while :; do sleep 0.1; done"],
    { root: c.root },
  );
  await new Promise<void>((resolve) => {
    let seen = "";
    child.stdout!.on("data", (d: Buffer) => {
      seen += d.toString();
      if (seen.includes("ready")) resolve();
    });
  });
  child.kill("SIGTERM");
  const r = await done;
  t.equal(r.code, 42, "tsrun exits with the process's status");
  t.match(r.stdout, /got-TERM/, "the process got SIGTERM");
  t.equal(c.done(), 0);
});

t.test("--tty with --console-socket: the pty master goes to the socket", async (t) => {
  leakCheck(t);
  const c = running(t);
  const dir = tempDir(t);
  const sock = path.join(dir, "console.sock");
  const out = path.join(dir, "console.out");
  const py = spawn("python3", [path.join(REPO, "tests/helper/console-receiver.py"), sock, out], { stdio: ["ignore", "pipe", "inherit"] });
  t.teardown(() => {
    py.kill("SIGKILL");
  });
  await new Promise<void>((resolve) => py.stdout!.once("data", () => resolve()));
  const exited = new Promise<number | null>((resolve) => py.on("exit", (code) => resolve(code)));
  const r = tsrun(["exec", "--tty", "--console-socket", sock, "--detach", c.id, "sh", "-c", "tty; [ -t 0 ] && echo stdin-is-a-tty; echo hello-$((6*7))"], { root: c.root });
  t.equal(r.code, 0, r.stderr);
  t.equal(await exited, 0, "the receiver got the master and read to its end");
  const text = fs.readFileSync(out, "utf8");
  t.match(text, /^payload=/, "one message with the master");
  t.match(text, /\/dev\/pts\/\d+\r\nstdin-is-a-tty\r\nhello-42\r\n/, "the process's output through the pty");
  t.match(tsrun(["exec", "--tty", "--detach", c.id, "true"], { root: c.root }), { code: 255, stderr: /cannot allocate tty if tsrun will detach without setting console socket/ });
  t.equal(c.done(), 0);
});

t.test("ten execs at once", async (t) => {
  leakCheck(t);
  const c = running(t);
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) => tsrunAsync(["exec", c.id, "sh", "-c", `echo n=$((${i} * ${i}))`], { root: c.root })),
  );
  results.forEach((r, i) => {
    t.equal(r.code, 0, `exec ${i}: ${r.stderr}`);
    t.equal(r.stdout, `n=${i * i}\n`, `exec ${i}: its own output`);
  });
  t.equal(c.done(), 0);
});

t.test("exec into a paused container needs --ignore-paused, and runs once resumed", async (t) => {
  leakCheck(t);
  const c = running(t);
  t.equal(tsrun(["pause", c.id], { root: c.root }).code, 0);
  t.match(tsrun(["exec", c.id, "true"], { root: c.root }), { code: 255, stderr: /cannot exec in a paused container/ });
  const pending = tsrunAsync(["exec", "--ignore-paused", c.id, "sh", "-c", "echo ran"], { root: c.root });
  sleepMs(300);
  t.equal(tsrun(["resume", c.id], { root: c.root }).code, 0);
  const r = await pending;
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, "ran\n");
  t.equal(c.done(), 0);
});

t.test("exec into a stopped or missing container", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["true"] });
  const id = containerId();
  t.equal(tsrun(["run", "--keep", "--bundle", bundle.dir, id], { root }).code, 0);
  t.equal(state(root, id).status, "stopped");
  t.match(tsrun(["exec", id, "true"], { root }), { code: 255, stderr: /cannot exec in a stopped container/ });
  t.match(tsrun(["exec", containerId(), "true"], { root }), { code: 255, stderr: /container does not exist/ });
  t.equal(tsrun(["delete", id], { root }).code, 0);
});

t.test("--apparmor and --process-label are refused where the host has no AppArmor or SELinux", { skip: apparmorEnabled() || selinuxEnabled() ? "this host has AppArmor or SELinux enabled" : false }, async (t) => {
  leakCheck(t);
  const c = running(t);
  const marker = `/proc/${c.pid}/root/exec-ran`;
  const aa = tsrun(["exec", "--apparmor", "tsrun-test-profile", c.id, "touch", "/exec-ran"], { root: c.root });
  t.same({ code: aa.code, stderr: aa.stderr }, { code: 255, stderr: "tsrun: exec --apparmor: apparmor: config provided but apparmor not supported\n" }, "runc's words for a profile AppArmor cannot apply");
  const label = tsrun(["exec", "--process-label", "system_u:system_r:container_t:s0", c.id, "true"], { root: c.root });
  t.same({ code: label.code, stderr: label.stderr }, { code: 255, stderr: "tsrun: exec --process-label: selinux label is specified in config, but selinux is disabled or not supported\n" });
  const file = path.join(tempDir(t), "process.json");
  fs.writeFileSync(file, JSON.stringify({ args: ["true"], cwd: "/", user: { uid: 0, gid: 0 } }));
  t.match(tsrun(["exec", "--process", file, "--apparmor", "p", c.id], { root: c.root }), { code: 255, stderr: /^tsrun: exec --apparmor: apparmor: config provided/ }, "also over --process");
  t.notOk(fs.existsSync(marker), "nothing ran");
  t.same(tsrun(["ps", "--format", "json", c.id], { root: c.root }).stdout.trim(), JSON.stringify([c.pid]), "only the init is in the container");
  t.equal(c.done(), 0);
});
