// OCI hooks through the built binary (runtime-spec 1.3.0 config.md "POSIX-platform Hooks" and
// runtime.md "Lifecycle"): each of the six at its moment, in its namespaces, with the state on
// stdin and exactly its argv and env; what a failing or timed-out hook of each kind does; and a
// createRuntime hook that gives a container its network.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { makeBundle, writeConfig, type Bundle, type ConfigObject } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { realDir, removeAtTeardown, type TestLike } from "../lib/context.ts";
import { containerId, state, TAG_ENV, TEST_TAG, testRoot, tsrun, waitForStatus } from "../lib/tsrun.ts";

type HookName = "prestart" | "createRuntime" | "createContainer" | "startContainer" | "poststart" | "poststop";
interface HookDef {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/**
 * The recording hook: `sh hook.sh NAME LOG [EXIT | sleep SECONDS]` appends to LOG what it got
 * (its argv and environment as the kernel handed them over, the state from stdin, its
 * namespaces, cwd and uid, and the command line of the state's pid as far as it can see it),
 * then exits with EXIT (0 by default) or becomes `sleep SECONDS`.
 * /proc/self is read through fds the shell opens itself, so it is the hook's own.
 */
const HOOK_SCRIPT = `#!/bin/sh
name=$1 log=$2
exec 3</proc/self/cmdline 4</proc/self/environ
state=$(cat)
{
  echo "BEGIN $name"
  echo "argv=$(tr '\\0' '|' <&3)"
  echo "env=$(tr '\\0' '|' <&4)"
  echo "state=$state"
  for ns in mnt pid net ipc uts cgroup user; do echo "ns.$ns=$(readlink /proc/self/ns/$ns)"; done
  echo "cwd=$(pwd)"
  echo "uid=$(id -u)"
  pid=$(echo "$state" | sed -n 's/.*"pid":\\([0-9][0-9]*\\).*/\\1/p')
  echo "target=$(tr '\\0' ' ' 2>/dev/null < /proc/$pid/cmdline)"
  echo "END $name"
} >> "$log"
case "$3" in
  "") exit 0 ;;
  sleep) exec sleep "$4" ;;
  *) echo "hook $name says no" >&2; exit "$3" ;;
esac
`;

const NAMESPACES = ["mnt", "pid", "net", "ipc", "uts", "cgroup", "user"] as const;
type Ns = Record<(typeof NAMESPACES)[number], string>;

interface Entry {
  name: string;
  argv: string[];
  env: string[];
  state: Record<string, unknown>;
  ns: Ns;
  cwd: string;
  uid: string;
  target: string;
}

/** Where hooks write: a host dir, bind-mounted at /home in the container for startContainer. */
interface HookDir {
  dir: string;
  script: string;
  log: string;
}
const IN_CONTAINER = "/home";

function hookDir(t: TestLike): HookDir {
  const dir = realDir(fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-hooks-")));
  removeAtTeardown(t, dir, "hook dir");
  fs.chmodSync(dir, 0o755);
  const script = path.join(dir, "hook.sh");
  fs.writeFileSync(script, HOOK_SCRIPT, { mode: 0o755 });
  const log = path.join(dir, "log");
  fs.writeFileSync(log, "", { mode: 0o666 });
  return { dir, script, log };
}

const HOOK_ENV = (name: string) => [`HOOK_NAME=${name}`, "WITH_SPACE=a b", `${TAG_ENV}=${TEST_TAG}`];

/** A recording hook run on the host (every kind but startContainer). */
function hostHook(h: HookDir, name: string, extra: string[] = [], timeout?: number): HookDef {
  return { path: "/bin/sh", args: [`argv0-${name}`, h.script, name, h.log, ...extra], env: HOOK_ENV(name), ...(timeout ? { timeout } : {}) };
}

/**
 * The recording hook as startContainer runs it: path and script resolved in the container,
 * whose busybox picks its applet by argv[0].
 */
function containerHook(name: string, extra: string[] = [], timeout?: number): HookDef {
  return {
    path: "/bin/sh",
    args: ["sh", `${IN_CONTAINER}/hook.sh`, name, `${IN_CONTAINER}/log`, ...extra],
    env: HOOK_ENV(name),
    ...(timeout ? { timeout } : {}),
  };
}

function withHooks(h: HookDir, hooks: Partial<Record<HookName, HookDef[]>>, args: string[]): (c: ConfigObject) => void {
  return (c) => {
    c.process.args = args;
    c.hooks = hooks;
    c.mounts.push({ destination: IN_CONTAINER, type: "bind", source: h.dir, options: ["rbind", "rw"] });
    c.annotations = { "org.example.hooks": "yes" };
  };
}

function readLog(h: HookDir): Entry[] {
  const entries: Entry[] = [];
  let cur: Partial<Omit<Entry, "ns">> & { ns?: Partial<Ns> } = {};
  for (const line of fs.readFileSync(h.log, "utf8").split("\n")) {
    if (line.startsWith("BEGIN ")) cur = { name: line.slice(6), ns: {} };
    else if (line.startsWith("END ")) entries.push(cur as unknown as Entry);
    else if (line === "USER process") entries.push({ name: "user" } as Entry);
    else {
      const eq = line.indexOf("=");
      if (eq < 0) continue;
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      if (key === "argv" || key === "env") cur[key] = value.split("|").slice(0, -1);
      else if (key === "state") cur.state = value ? JSON.parse(value) : {};
      else if (key.startsWith("ns.")) cur.ns![key.slice(3) as keyof Ns] = value;
      else if (key === "cwd" || key === "uid" || key === "target") cur[key] = value;
    }
  }
  return entries;
}

function nsOf(pid: number | "self"): Ns {
  const out = {} as Ns;
  for (const ns of NAMESPACES) out[ns] = fs.readlinkSync(`/proc/${pid}/ns/${ns}`);
  return out;
}

const USER_PROCESS = ["sh", "-c", `echo "USER process" >> ${IN_CONTAINER}/log; exec sleep 1000`];

t.test("tsrun features lists the six hooks", async (t) => {
  const r = tsrun(["features"]);
  t.equal(r.code, 0);
  t.same(JSON.parse(r.stdout).hooks, ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]);
});

t.test("every hook at its moment, in its namespaces, with its state, argv and env", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const h = hookDir(t);
  const hooks: Record<HookName, HookDef[]> = {
    prestart: [hostHook(h, "prestart-1"), hostHook(h, "prestart-2")],
    createRuntime: [hostHook(h, "createRuntime")],
    createContainer: [hostHook(h, "createContainer")],
    startContainer: [containerHook("startContainer")],
    poststart: [hostHook(h, "poststart")],
    poststop: [hostHook(h, "poststop-1"), hostHook(h, "poststop-2")],
  };
  const bundle = makeBundle(t, { config: withHooks(h, hooks, USER_PROCESS) });
  const id = containerId();
  const host = nsOf("self");
  const rootfs = fs.realpathSync(bundle.config.root.path);

  const created = tsrun(["create", "--bundle", bundle.dir, id], { root });
  t.equal(created.code, 0, `create: ${created.stderr}`);
  const pid = state(root, id).pid;
  const container = nsOf(pid);
  t.not(container.mnt, host.mnt, "the container has its own mount namespace");
  t.same(readLog(h).map((e) => e.name), ["prestart-1", "prestart-2", "createRuntime", "createContainer"], "create runs prestart, createRuntime, createContainer hooks in order");

  // The hooks are the container's: a config.json edited after create changes nothing.
  bundle.config.hooks = {};
  writeConfig(bundle);

  t.equal(tsrun(["start", id], { root }).code, 0, "start");
  t.equal(waitForStatus(root, id, "running"), "running");
  const afterStart = readLog(h).map((e) => e.name);
  t.same(afterStart.slice(0, 5), ["prestart-1", "prestart-2", "createRuntime", "createContainer", "startContainer"]);
  t.ok(afterStart.indexOf("startContainer") < afterStart.indexOf("user"), "startContainer runs before the user process");
  t.ok(afterStart.includes("poststart"), "start ran the poststart hook");
  for (let i = 0; i < 200 && !readLog(h).some((e) => e.name === "user"); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);

  t.equal(tsrun(["kill", id, "KILL"], { root }).code, 0);
  t.equal(waitForStatus(root, id, "stopped"), "stopped");
  const del = tsrun(["delete", id], { root });
  t.equal(del.code, 0, `delete: ${del.stderr}`);
  t.notOk(fs.existsSync(path.join(root, id)), "deleted");

  const log = readLog(h).filter((e) => e.name !== "user");
  t.same(log.map((e) => e.name), ["prestart-1", "prestart-2", "createRuntime", "createContainer", "startContainer", "poststart", "poststop-1", "poststop-2"]);
  const status: Record<string, string> = {
    "prestart-1": "created", "prestart-2": "created", createRuntime: "created", createContainer: "created",
    startContainer: "created", poststart: "running", "poststop-1": "stopped", "poststop-2": "stopped",
  };
  for (const e of log) {
    const inContainer = e.name === "startContainer";
    t.same(e.state, {
      ociVersion: "1.3.0", id, status: status[e.name], pid, bundle: bundle.dir, annotations: { "org.example.hooks": "yes" },
    }, `${e.name}: the state on stdin`);
    t.same(e.argv, [inContainer ? "sh" : `argv0-${e.name}`, inContainer ? `${IN_CONTAINER}/hook.sh` : h.script, e.name, inContainer ? `${IN_CONTAINER}/log` : h.log], `${e.name}: args are the whole argv`);
    t.same(e.env, HOOK_ENV(e.name), `${e.name}: exactly its env`);
    t.equal(e.uid, "0", `${e.name}: uid`);
    const want = e.name === "createContainer" || inContainer ? container : host;
    t.same(e.ns, want, `${e.name}: runs in the ${want === host ? "runtime" : "container"}'s namespaces`);
  }
  const by = (n: string) => log.find((e) => e.name === n)!;
  t.equal(by("prestart-1").cwd, bundle.dir, "prestart runs in the bundle, as runc");
  t.equal(by("createRuntime").cwd, bundle.dir, "createRuntime runs in the bundle");
  t.equal(by("createContainer").cwd, rootfs, "createContainer runs in the rootfs, before pivot_root");
  t.equal(by("startContainer").cwd, "/", "startContainer runs in the process's cwd inside the container");
  t.match(by("createContainer").target, /tsrun-helper/, "createContainer: the init is still the helper");
  t.match(by("poststart").target, /^(sh|sleep) /, "poststart runs once the user's process has been executed");
});

t.test("a hook without env gets the environment of who runs it, as with runc", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const h = hookDir(t);
  // Written where each kind of hook finds it: the host dir, also at /home in the container.
  // argv and environment as the kernel handed them over (NUL-separated), the state from stdin,
  // and the environment its parent started with (for host hooks, tsrun-main's)
  const bare = (name: string, dir: string) =>
    `#!/bin/sh\nexec 3</proc/self/cmdline 4</proc/self/environ\ncat <&3 > ${dir}/${name}.argv; cat <&4 > ${dir}/${name}.env; cat > ${dir}/${name}.state\ncat /proc/$PPID/environ > ${dir}/${name}.parent-env 2>/dev/null || true\n`;
  for (const name of ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]) {
    fs.writeFileSync(path.join(h.dir, `${name}.sh`), bare(name, h.dir), { mode: 0o755 });
  }
  fs.writeFileSync(path.join(h.dir, "startContainer.sh"), bare("startContainer", IN_CONTAINER), { mode: 0o755 });
  for (const f of ["argv", "env", "parent-env", "state"]) {
    fs.writeFileSync(path.join(h.dir, `startContainer.${f}`), "");
    fs.chmodSync(path.join(h.dir, `startContainer.${f}`), 0o666); // written by the container's user
  }
  const hooks: Partial<Record<HookName, HookDef[]>> = {};
  for (const name of ["prestart", "createRuntime", "createContainer", "poststart", "poststop"] as const) hooks[name] = [{ path: path.join(h.dir, `${name}.sh`) }];
  hooks.startContainer = [{ path: `${IN_CONTAINER}/startContainer.sh` }];
  const bundle = makeBundle(t, {
    config: (c) => {
      withHooks(h, hooks, ["sleep", "1000"])(c);
      c.process.user = { uid: 65534, gid: 65534 };
    },
  });
  const id = containerId();
  const mark = { TSRUN_HOOK_MARK: "from-the-caller", BUN_JSC_useJIT: undefined };
  t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root, env: mark }).code, 0);
  t.equal(tsrun(["start", id], { root, env: mark }).code, 0);
  t.equal(tsrun(["delete", "--force", id], { root, env: mark }).code, 0);
  const read = (name: string) => {
    const file = (f: string) => fs.readFileSync(path.join(h.dir, `${name}.${f}`), "utf8");
    return { argv: file("argv").split("\0").slice(0, -1), env: file("env").split("\0").slice(0, -1), state: JSON.parse(file("state")) as Record<string, unknown> };
  };
  // The kernel runs a #! script as `/bin/sh PATH`: argv[0] of the exec was the path.
  t.same(read("createRuntime").argv, ["/bin/sh", path.join(h.dir, "createRuntime.sh")], "argv is [path]");
  for (const name of ["prestart", "createRuntime", "poststart", "poststop"]) {
    t.ok(read(name).env.includes("TSRUN_HOOK_MARK=from-the-caller"), `${name}: tsrun's own environment`);
    // The front end starts tsrun-main with the JIT off (frontend/tsrun.c); the hook, a child
    // of tsrun-main, gets the caller's environment without it.
    t.notOk(read(name).env.some((e) => e.startsWith("BUN_JSC_") || e.startsWith("_TSRUN_")), `${name}: nothing the front end added`);
  }
  const tsrunMainEnv = fs.readFileSync(path.join(h.dir, "createRuntime.parent-env"), "utf8").split("\0");
  t.ok(tsrunMainEnv.includes("BUN_JSC_useJIT=0"), "tsrun-main itself ran with BUN_JSC_useJIT=0");
  const processEnv = bundle.config.process.env as string[];
  t.same(read("createContainer").env, processEnv, "createContainer: the process's environment, as runc's init has it then");
  t.same(read("startContainer").env, [...processEnv, "HOME=/nonexistent"], "startContainer: the process's environment, HOME from /etc/passwd included");
  const status = Object.fromEntries(["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"].map((n) => [n, read(n).state.status]));
  t.same(status, { prestart: "created", createRuntime: "created", createContainer: "created", startContainer: "created", poststart: "running", poststop: "stopped" });
});

t.test("a caller's own BUN_JSC_useJIT reaches tsrun-main and its hooks as the caller set it", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const h = hookDir(t);
  const out = path.join(h.dir, "env");
  const script = path.join(h.dir, "env.sh");
  fs.writeFileSync(script, `#!/bin/sh\ncat /proc/self/environ > ${out}; cat /proc/$PPID/environ > ${out}.parent\n`, { mode: 0o755 });
  const bundle = makeBundle(t, { config: withHooks(h, { createRuntime: [{ path: script }] }, ["true"]) });
  const id = containerId();
  t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root, env: { BUN_JSC_useJIT: "1" } }).code, 0);
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
  const hookEnv = fs.readFileSync(out, "utf8").split("\0");
  t.ok(hookEnv.includes("BUN_JSC_useJIT=1"), "the hook has the caller's value");
  t.notOk(hookEnv.some((e) => e.startsWith("_TSRUN_")), "and nothing the front end added");
  t.ok(fs.readFileSync(`${out}.parent`, "utf8").split("\0").includes("BUN_JSC_useJIT=1"), "tsrun-main ran with the caller's value");
});

t.test("a failing or timed-out create hook fails create, leaves nothing behind, and runs poststop", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const kind of ["prestart", "createRuntime", "createContainer"] as const) {
    for (const how of ["exit", "timeout"] as const) {
      const h = hookDir(t);
      const failing = hostHook(h, kind, how === "exit" ? ["1"] : ["sleep", "60"], how === "timeout" ? 1 : undefined);
      const hooks: Partial<Record<HookName, HookDef[]>> = {
        [kind]: [failing, hostHook(h, `${kind}-after`)],
        poststop: [hostHook(h, "poststop")],
      };
      if (kind !== "createContainer") hooks.createContainer = [hostHook(h, "createContainer")];
      const bundle = makeBundle(t, { config: withHooks(h, hooks, USER_PROCESS) });
      const id = containerId();
      const r = tsrun(["create", "--bundle", bundle.dir, id], { root });
      const what = `${kind} ${how}`;
      t.equal(r.code, 1, `${what}: create fails`);
      t.match(
        r.stderr,
        how === "exit"
          ? new RegExp(`unable to start container process: error running ${kind} hook #0: exit status 1, stdout: , stderr: hook ${kind} says no`)
          : new RegExp(`error running ${kind} hook #0: hook ran past specified timeout of 1\\.0s`),
        `${what}: the error names the hook`,
      );
      t.notOk(fs.existsSync(path.join(root, id)), `${what}: no state dir`);
      const names = readLog(h).map((e) => e.name);
      t.same(names, [kind, "poststop"], `${what}: nothing runs after the failing hook but poststop`);
      t.match(readLog(h).find((e) => e.name === "poststop")?.state, { id, status: "stopped" }, `${what}: poststop state`);
    }
  }
});

t.test("a failing or timed-out startContainer hook fails start; the process never runs", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const how of ["exit", "timeout"] as const) {
    const h = hookDir(t);
    const hooks = {
      startContainer: [containerHook("startContainer", how === "exit" ? ["3"] : ["sleep", "60"], how === "timeout" ? 1 : undefined)],
      poststart: [hostHook(h, "poststart")],
      poststop: [hostHook(h, "poststop")],
    };
    const bundle = makeBundle(t, { config: withHooks(h, hooks, USER_PROCESS) });
    const id = containerId();
    t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root }).code, 0, `${how}: create`);
    const r = tsrun(["start", id], { root });
    t.equal(r.code, 1, `${how}: start fails`);
    t.match(
      r.stderr,
      how === "exit"
        ? /error running startContainer hook #0: exit status 3, stdout: , stderr: hook startContainer says no/
        : /error running startContainer hook #0: hook ran past specified timeout of 1\.0s/,
      `${how}: the error names the hook`,
    );
    t.equal(waitForStatus(root, id, "stopped"), "stopped", `${how}: the container is stopped`);
    t.same(readLog(h).map((e) => e.name), ["startContainer"], `${how}: neither the process nor poststart ran`);
    const del = tsrun(["delete", id], { root });
    t.equal(del.code, 0, `${how}: delete`);
    t.same(readLog(h).map((e) => e.name), ["startContainer", "poststop"], `${how}: delete runs poststop`);
  }
});

t.test("a failing or timed-out poststart hook fails start and stops the container", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const how of ["exit", "timeout"] as const) {
    const h = hookDir(t);
    const hooks = {
      poststart: [hostHook(h, "poststart", how === "exit" ? ["1"] : ["sleep", "60"], how === "timeout" ? 1 : undefined)],
      poststop: [hostHook(h, "poststop")],
    };
    const bundle = makeBundle(t, { config: withHooks(h, hooks, USER_PROCESS) });
    const id = containerId();
    t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root }).code, 0, `${how}: create`);
    const r = tsrun(["start", id], { root });
    t.equal(r.code, 1, `${how}: start fails`);
    t.match(r.stderr, how === "exit" ? /error running poststart hook #0: exit status 1/ : /error running poststart hook #0: hook ran past specified timeout of 1\.0s/);
    t.equal(state(root, id).status, "stopped", `${how}: the container was stopped`);
    t.equal(tsrun(["delete", id], { root }).code, 0, `${how}: delete`);
    t.same(readLog(h).filter((e) => e.name !== "user").map((e) => e.name), ["poststart", "poststop"]);
  }
});

t.test("a failing or timed-out poststop hook is a warning: delete goes on", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const h = hookDir(t);
  const hooks = {
    poststop: [hostHook(h, "poststop-fails", ["1"]), hostHook(h, "poststop-hangs", ["sleep", "60"], 1), hostHook(h, "poststop-last")],
  };
  const bundle = makeBundle(t, { config: withHooks(h, hooks, ["true"]) });
  const id = containerId();
  t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root }).code, 0);
  const r = tsrun(["delete", id], { root });
  t.equal(r.code, 0, "delete succeeds");
  t.match(r.stderr, /warning: error running poststop hook #0: exit status 1, stdout: , stderr: hook poststop-fails says no/);
  t.match(r.stderr, /warning: error running poststop hook #1: hook ran past specified timeout of 1\.0s/);
  t.notOk(fs.existsSync(path.join(root, id)), "the container is gone");
  t.same(readLog(h).map((e) => e.name), ["poststop-fails", "poststop-hangs", "poststop-last"], "the remaining hooks still run");
});

t.test("poststop hooks run when the container ended on its own, and after a foreground run", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const h = hookDir(t);
  const bundle = makeBundle(t, { config: withHooks(h, { poststop: [hostHook(h, "poststop")] }, ["true"]) });
  const id = containerId();
  t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root }).code, 0);
  const pid = state(root, id).pid;
  t.equal(tsrun(["start", id], { root }).code, 0);
  t.equal(waitForStatus(root, id, "stopped"), "stopped");
  t.same(readLog(h), [], "nothing yet: the container only stopped");
  t.equal(tsrun(["delete", id], { root }).code, 0);
  t.match(readLog(h), [{ name: "poststop", state: { id, status: "stopped", pid } }]);

  const id2 = containerId();
  const r = tsrun(["run", "--bundle", bundle.dir, id2], { root });
  t.equal(r.code, 0, `run: ${r.stderr}`);
  t.match(readLog(h)[1], { name: "poststop", state: { id: id2, status: "stopped" } }, "run deleted the container and ran poststop");
});

t.test("a createRuntime hook gives the container a network (veth pair)", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const h = hookDir(t);
  const n = 1 + (process.pid % 250);
  const net = `10.213.${n}`;
  const hostIf = `tsh${process.pid % 1000000}`;
  const peerIf = `tsc${process.pid % 1000000}`;
  const linkExists = () => spawnSync("ip", ["link", "show", hostIf], { stdio: "ignore" }).status === 0;
  t.teardown(() => {
    if (linkExists()) spawnSync("ip", ["link", "del", hostIf], { stdio: "ignore" });
  });
  const script = path.join(h.dir, "net.sh");
  fs.writeFileSync(
    script,
    `#!/bin/sh
set -e
host=$1 peer=$2 net=$3
pid=$(sed -n 's/.*"pid":\\([0-9][0-9]*\\).*/\\1/p')
ip link add "$host" type veth peer name "$peer"
ip link set "$peer" netns "$pid"
ip addr add "$net.1/30" dev "$host"
ip link set "$host" up
nsenter --net=/proc/$pid/ns/net ip addr add "$net.2/30" dev "$peer"
nsenter --net=/proc/$pid/ns/net ip link set "$peer" up
nsenter --net=/proc/$pid/ns/net ip link set lo up
`,
    { mode: 0o755 },
  );
  const env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", `${TAG_ENV}=${TEST_TAG}`];
  const bundle = makeBundle(t, {
    args: ["ping", "-c1", "-W2", `${net}.1`],
    config: (c) => {
      c.hooks = {
        createRuntime: [{ path: script, args: ["net.sh", hostIf, peerIf, net], env, timeout: 10 }],
        poststop: [{ path: "/bin/sh", args: ["sh", "-c", `ip link del ${hostIf} 2>/dev/null || true`], env }],
      };
    },
  });
  const r = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
  t.equal(r.code, 0, `the container pings the host end: ${r.stdout}${r.stderr}`);
  t.match(r.stdout, /1 packets received/);
  t.notOk(linkExists(), "the veth pair is gone with the container");
});
