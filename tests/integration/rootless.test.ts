// Rootless containers (docs/rootless.md): tsrun run by an unprivileged user, created by
// tests/setup-rootless-user.sh, through the whole lifecycle, with exec, bind mounts of its own
// directories, multi-range mappings through newuidmap/newgidmap, cgroups delegated to it or
// not, and the errors such a user meets.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { leakCheck } from "../lib/leaks.ts";
import { TAG_ENV, TEST_TAG, containerId } from "../lib/tsrun.ts";
import {
  asUser, delegate, rootlessSkip, testUser, userBundle, userCanRunTsrun, userDir, userStateRoot, writeUserConfig, type TestUser,
} from "../lib/rootless.ts";

const skip = rootlessSkip();
let user: TestUser | undefined;
if (!skip) {
  user = testUser();
  if (!userCanRunTsrun(user)) throw new Error(`user ${user.name} cannot run build/tsrun: the checkout must be readable by it`);
}
const opts = { skip };

interface Status {
  status: string;
  pid: number;
}

function state(tt: Parameters<typeof asUser>[0], u: TestUser, id: string, root?: string): Status {
  const r = asUser(tt, u, ["state", id], { root });
  if (r.code !== 0) throw new Error(`state ${id}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

t.test("lifecycle as an unprivileged user: create, start, state, exec, kill, delete, with state under XDG_RUNTIME_DIR", opts, async (t) => {
  const u = user!;
  const root = userStateRoot(u);
  leakCheck(t, { root });
  const b = userBundle(t, u, { args: ["sleep", "600"] });
  const id = containerId();

  const c = asUser(t, u, ["create", "--bundle", b.dir, id]);
  t.equal(c.code, 0, `create: ${c.stderr}`);
  t.ok(fs.existsSync(path.join(root, id, "state.json")), "state is in $XDG_RUNTIME_DIR/tsrun");
  t.equal(fs.statSync(path.join(root, id)).uid, u.uid, "owned by the user");
  t.equal(fs.statSync(root).mode & 0o7777, 0o1700, "the XDG state root is 0700 with the sticky bit, as runc's");
  const created = state(t, u, id);
  t.equal(created.status, "created");
  t.equal(fs.statSync(`/proc/${created.pid}`).uid, u.uid, "the init runs as the user on the host");
  t.equal(fs.readFileSync(`/proc/${created.pid}/uid_map`, "utf8").trim().split(/\s+/).join(" "), `0 ${u.uid} 1`, "container root is the user");

  t.equal(asUser(t, u, ["start", id]).code, 0, "start");
  t.equal(state(t, u, id).status, "running");

  const e = asUser(t, u, ["exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
  t.equal(e.code, 0, `exec: ${e.stderr}`);
  t.match(e.stdout, /^0\n\s*0\s+1001|^0\n\s*0\s+\d+\s+1\s*$/m, "exec runs as root in the container's user namespace");

  const ps = asUser(t, u, ["ps", id]);
  t.equal(ps.code, 0, `ps: ${ps.stderr}`);
  t.match(ps.stdout, /sleep 600/, "ps finds the processes without a cgroup (its pid namespace)");

  const list = asUser(t, u, ["list", "--quiet"]);
  t.match(list.stdout, id, "list without --root reads the XDG root");

  t.equal(asUser(t, u, ["kill", id, "KILL"]).code, 0, "kill");
  for (let i = 0; i < 200 && state(t, u, id).status !== "stopped"; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(state(t, u, id).status, "stopped");
  t.equal(asUser(t, u, ["delete", id]).code, 0, "delete");
  t.notOk(fs.existsSync(path.join(root, id)), "state removed");
});

t.test("run in the foreground, and kill --all without a cgroup", opts, async (t) => {
  const u = user!;
  const root = userStateRoot(u);
  leakCheck(t, { root });
  const b = userBundle(t, u, { args: ["sh", "-c", "id -u; id -g; cat /proc/self/gid_map; cat /proc/self/setgroups; echo ok > /var/ran"] });
  const r = asUser(t, u, ["run", "--bundle", b.dir, containerId()]);
  t.equal(r.code, 0, `run: ${r.stderr}`);
  t.match(r.stdout, new RegExp(`^0\\n0\\n\\s*0\\s+${u.gid}\\s+1\\ndeny\\n`), "root in the container, its own gid mapped after setgroups deny");
  t.equal(fs.readFileSync(path.join(b.dir, "rootfs/var/ran"), "utf8"), "ok\n");
  t.equal(fs.statSync(path.join(b.dir, "rootfs/var/ran")).uid, u.uid, "a file the container's root made is the user's outside");
  t.same(fs.readdirSync(root).filter((x) => x.includes("rootless-")), [], "run deleted the container");

  const b2 = userBundle(t, u, { args: ["sh", "-c", "sleep 600 & sleep 600 & wait"] });
  const id = containerId();
  t.equal(asUser(t, u, ["run", "--detach", "--bundle", b2.dir, id]).code, 0, "run --detach");
  const k = asUser(t, u, ["kill", "--all", id, "TERM"]);
  t.equal(k.code, 0, `kill --all: ${k.stderr}`);
  for (let i = 0; i < 300 && state(t, u, id).status !== "stopped"; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(state(t, u, id).status, "stopped", "every process got the signal (the init's sh waits for its children)");
  t.equal(asUser(t, u, ["delete", id]).code, 0);
});

t.test("a bind mount of the user's own directory: files made inside are the user's outside", opts, async (t) => {
  const u = user!;
  leakCheck(t, { root: userStateRoot(u) });
  const data = userDir(t, u, "data");
  const b = userBundle(t, u, {
    args: ["sh", "-c", "echo hello > /data/made-inside && mkdir /data/sub && ls -ln /data"],
    config: (c) => c.mounts.push({ destination: "/data", type: "bind", source: data, options: ["rbind", "rw"] }),
  });
  const r = asUser(t, u, ["run", "--bundle", b.dir, containerId()]);
  t.equal(r.code, 0, `run: ${r.stderr}`);
  t.match(r.stdout, /^-rw-r--r--\s+1\s+0\s+0\s.*made-inside$/m, "owned by root inside");
  const st = fs.statSync(path.join(data, "made-inside"));
  t.equal(st.uid, u.uid, "owned by the user outside");
  t.equal(st.gid, u.gid);
  t.equal(fs.statSync(path.join(data, "sub")).uid, u.uid);
});

t.test("a multi-range mapping through newuidmap/newgidmap: subordinate ids own what they make", opts, async (t) => {
  const u = user!;
  leakCheck(t, { root: userStateRoot(u) });
  const data = userDir(t, u, "data");
  fs.chmodSync(data, 0o777);
  const script = [
    "cat /proc/self/uid_map /proc/self/gid_map",
    "touch /data/chowned && chown 1000:1000 /data/chowned",
  ].join("; ");
  const b = userBundle(t, u, {
    args: ["sh", "-c", script],
    config: (c) => {
      c.mounts.push({ destination: "/data", type: "bind", source: data, options: ["rbind", "rw"] });
      c.linux.uidMappings = [{ containerID: 0, hostID: u.uid, size: 1 }, { containerID: 1, hostID: u.subuid.start, size: u.subuid.count }];
      c.linux.gidMappings = [{ containerID: 0, hostID: u.gid, size: 1 }, { containerID: 1, hostID: u.subgid.start, size: u.subgid.count }];
    },
  });
  const r = asUser(t, u, ["run", "--bundle", b.dir, containerId()]);
  t.equal(r.code, 0, `run: ${r.stderr}`);
  const maps = r.stdout.split("\n").slice(0, 4).map((l) => l.trim().split(/\s+/).join(" "));
  t.same(maps, [`0 ${u.uid} 1`, `1 ${u.subuid.start} ${u.subuid.count}`, `0 ${u.gid} 1`, `1 ${u.subgid.start} ${u.subgid.count}`], "both ranges mapped");
  const st = fs.statSync(path.join(data, "chowned"));
  t.equal(st.uid, u.subuid.start + 999, "container uid 1000 is subordinate uid start+999 outside");
  t.equal(st.gid, u.subgid.start + 999);

  // The process itself as container uid 1000 (process.user), making a file.
  const b2 = userBundle(t, u, {
    args: ["sh", "-c", "id -u; echo x > /data/by-1000"],
    config: (c) => {
      c.mounts.push({ destination: "/data", type: "bind", source: data, options: ["rbind", "rw"] });
      c.process.user = { uid: 1000, gid: 1000, additionalGids: [2000] };
      c.linux.uidMappings = [{ containerID: 0, hostID: u.uid, size: 1 }, { containerID: 1, hostID: u.subuid.start, size: u.subuid.count }];
      c.linux.gidMappings = [{ containerID: 0, hostID: u.gid, size: 1 }, { containerID: 1, hostID: u.subgid.start, size: u.subgid.count }];
    },
  });
  const r2 = asUser(t, u, ["run", "--bundle", b2.dir, containerId()]);
  t.equal(r2.code, 0, `run as uid 1000: ${r2.stderr}`);
  t.equal(r2.stdout, "1000\n");
  t.equal(fs.statSync(path.join(data, "by-1000")).uid, u.subuid.start + 999);

  // Host ids outside the user's ranges: refused before anything runs, saying where to look.
  b2.config.linux.uidMappings = [{ containerID: 0, hostID: u.uid, size: 1 }, { containerID: 1, hostID: u.subuid.start + u.subuid.count, size: 2000 }];
  writeUserConfig(b2, u);
  const bad = asUser(t, u, ["run", "--bundle", b2.dir, containerId()]);
  t.not(bad.code, 0);
  t.match(bad.stderr, /linux\.uidMappings: host uids \d+-\d+ are neither your own uid \d+ nor in the ranges \/etc\/subuid gives user tsrun-rootless/);
  t.equal(bad.stderr.trim().split("\n").length, 1, "one error line");
});

t.test("no delegated cgroup: runs without one; a limit is an error saying why; device rules are ignored", opts, async (t) => {
  const u = user!;
  const root = userStateRoot(u);
  leakCheck(t, { root });
  const b = userBundle(t, u, {
    args: ["cat", "/proc/self/cgroup"],
    config: (c) => (c.linux.resources = { devices: [{ allow: false, access: "rwm" }] }),
  });
  const r = asUser(t, u, ["--debug", "run", "--bundle", b.dir, containerId()]);
  t.equal(r.code, 0, `run without a cgroup: ${r.stderr}`);
  t.match(r.stderr, /the container runs without a cgroup/);

  // A cgroup mount then shows the cgroups the container is in, its caller's, read-only (runc's
  // `spec --rootless` config has one, and runc binds them).
  b.config.mounts.push({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] });
  b.config.process.args = ["sh", "-c", "find /sys/fs/cgroup -maxdepth 2 -name cgroup.procs | wc -l; touch /sys/fs/cgroup/x 2>&1; for f in $(find /sys/fs/cgroup -maxdepth 2 -name cgroup.procs); do touch $f 2>&1; done | sort -u"];
  writeUserConfig(b, u);
  const shown = asUser(t, u, ["run", "--bundle", b.dir, containerId()]);
  t.equal(shown.code, 0, shown.stderr);
  const [count, ...rest] = shown.stdout.trim().split("\n");
  t.ok(Number(count) > 0, `the caller's cgroups are bound (${count} with a cgroup.procs)`);
  t.ok(rest.length > 0 && rest.every((l) => /Read-only file system|Permission denied/.test(l)), `read-only: ${rest.join("; ")}`);
  b.config.mounts.pop();
  b.config.process.args = ["cat", "/proc/self/cgroup"];

  b.config.linux.resources = { memory: { limit: 64 << 20 }, pids: { limit: 20 } };
  writeUserConfig(b, u);
  const limited = asUser(t, u, ["run", "--bundle", b.dir, containerId()]);
  t.not(limited.code, 0);
  t.match(limited.stderr, /rootless: linux\.resources\.memory\.limit: cannot be applied without a memory cgroup \(cannot create .*permission denied\)/);
  t.match(limited.stderr, /rootless: linux\.resources\.pids\.limit: cannot be applied without a pids cgroup/);
  t.same(fs.readdirSync(root).filter((x) => x.includes("rootless-")), [], "nothing left behind");

  b.config.linux.resources = {};
  b.config.linux.cgroupsPath = "/not-delegated-to-anyone/x";
  writeUserConfig(b, u);
  const explicit = asUser(t, u, ["run", "--bundle", b.dir, containerId()]);
  t.not(explicit.code, 0);
  t.match(explicit.stderr, /rootless: linux\.cgroupsPath: cannot create .*not-delegated-to-anyone.*permission denied: delegate it to uid \d+/);
  t.notOk(fs.existsSync("/sys/fs/cgroup/unified/not-delegated-to-anyone"), "no cgroup made");
  t.same(fs.readdirSync(root).filter((x) => x.includes("rootless-")), [], "nothing left behind");

  const id = containerId();
  delete b.config.linux.cgroupsPath;
  b.config.process.args = ["sleep", "600"];
  writeUserConfig(b, u);
  t.equal(asUser(t, u, ["run", "--detach", "--bundle", b.dir, id]).code, 0);
  const p = asUser(t, u, ["pause", id]);
  t.not(p.code, 0);
  t.match(p.stderr, /container has no cgroup to freeze \(a rootless container without a delegated cgroup cannot be paused/);
  const up = asUser(t, u, ["update", "--pids-limit", "10", id]);
  t.not(up.code, 0);
  t.match(up.stderr, /container has no cgroup to update/);
  t.equal(asUser(t, u, ["delete", "--force", id]).code, 0);
});

t.test("a cgroup delegated to the user: limits are applied there, and delete removes it", opts, async (t) => {
  const u = user!;
  leakCheck(t, { root: userStateRoot(u) });
  const d = delegate(t, u);
  const id = containerId();
  const b = userBundle(t, u, {
    args: ["sleep", "600"],
    config: (c) => {
      c.linux.cgroupsPath = `${d.path}/${id}`;
      c.linux.resources = { memory: { limit: 64 << 20 }, pids: { limit: 32 } };
    },
  });
  const inside = { uid: u.uid, gid: u.gid, ...(d.callerProcs ? { joinCgroup: d.callerProcs } : {}) };
  const c = asUser(t, u, ["create", "--bundle", b.dir, id], { user: inside });
  t.equal(c.code, 0, `create: ${c.stderr}`);
  const pid = state(t, u, id).pid;
  const own = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8");
  t.match(own, new RegExp(`(memory|pids)[^\\n]*:${d.path}/${id}\\n`), "the init is in the delegated cgroup");
  const memDir = d.dirs.find((x) => x.includes("/memory/")) ?? d.dirs.find((x) => fs.existsSync(path.join(x, "cgroup.controllers")))!;
  const pidsDir = d.dirs.find((x) => x.includes("/pids/")) ?? memDir;
  const memFile = fs.existsSync(path.join(memDir, id, "memory.limit_in_bytes")) ? "memory.limit_in_bytes" : "memory.max";
  t.equal(fs.readFileSync(path.join(memDir, id, memFile), "utf8").trim(), String(64 << 20), "memory limit applied");
  t.equal(fs.readFileSync(path.join(pidsDir, id, "pids.max"), "utf8").trim(), "32", "pids limit applied");
  t.equal(fs.statSync(path.join(memDir, id)).uid, u.uid, "the container's cgroup is the user's");

  t.equal(asUser(t, u, ["start", id], { user: inside }).code, 0, "start");
  // exec from outside the delegated cgroup2 subtree (tsrun runs in root's cgroup): the kernel
  // refuses the move there, which is skipped, as runc does; the v1 hierarchies are joined.
  const ex = asUser(t, u, ["exec", id, "cat", "/proc/self/cgroup"]);
  t.equal(ex.code, 0, `exec from outside the delegated subtree: ${ex.stderr}`);
  // Paths are as the container's cgroup namespace shows them: "/" is the container's own cgroup.
  if (d.dirs.some((x) => x.includes("/pids/"))) t.match(ex.stdout, /^\d+:pids:\/$/m, "joined the v1 cgroups");
  if (d.callerProcs) t.match(ex.stdout, /^0::\/\.\./m, "not moved into the cgroup2 dir");

  const up = asUser(t, u, ["update", "--pids-limit", "16", id], { user: inside });
  t.equal(up.code, 0, `update: ${up.stderr}`);
  t.equal(fs.readFileSync(path.join(pidsDir, id, "pids.max"), "utf8").trim(), "16", "update in the delegated cgroup");

  const del = asUser(t, u, ["delete", "--force", id], { user: inside });
  t.equal(del.code, 0, `delete: ${del.stderr}`);
  for (const dir of d.dirs) t.notOk(fs.existsSync(path.join(dir, id)), `${dir}/${id} removed`);
  d.remove();
});

t.test("errors an unprivileged user meets are one clear line, and nothing is left", opts, async (t) => {
  const u = user!;
  const root = userStateRoot(u);
  leakCheck(t, { root });

  // A config without a user namespace.
  const b = userBundle(t, u, {
    config: (c) => {
      c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "user");
      delete c.linux.uidMappings;
      delete c.linux.gidMappings;
    },
  });
  const noUserns = asUser(t, u, ["run", "--bundle", b.dir, containerId()]);
  t.not(noUserns.code, 0);
  t.match(noUserns.stderr, /^tsrun: config\.json: linux\.namespaces: a rootless container needs a user namespace .*tsrun spec --rootless/);
  t.equal(noUserns.stderr.trim().split("\n").length, 1);

  // A uid= mount option the user namespace does not map.
  const b1 = userBundle(t, u, { config: (c) => c.mounts.find((m: { destination: string }) => m.destination === "/dev/pts").options.push("gid=5") });
  const gid5 = asUser(t, u, ["run", "--bundle", b1.dir, containerId()]);
  t.not(gid5.code, 0);
  t.match(gid5.stderr, /mounts\[2\]\.options: gid=5: gid 5 is not mapped in the container's user namespace/);

  // A bundle the user cannot read.
  const hidden = fs.mkdtempSync("/tmp/tsrun-test-rootless-hidden-");
  t.teardown(() => fs.rmSync(hidden, { recursive: true, force: true }));
  fs.chmodSync(hidden, 0o700);
  const unreadable = asUser(t, u, ["run", "--bundle", hidden, containerId()]);
  t.not(unreadable.code, 0);
  t.match(unreadable.stderr, /(bundle|config\.json: cannot read) .*: permission denied \(tsrun runs as uid \d+ without privileges: .* copy the bundle into a directory you own\)/);
  t.equal(unreadable.stderr.trim().split("\n").length, 1);

  // No XDG_RUNTIME_DIR and no --root: /run/tsrun is root's.
  const b2 = userBundle(t, u);
  const noXdg = asUser(t, u, ["run", "--bundle", b2.dir, containerId()], { env: { XDG_RUNTIME_DIR: undefined } });
  t.not(noXdg.code, 0);
  t.match(noXdg.stderr, /cannot create state directory \/run\/tsrun\/.*: permission denied \(.*set XDG_RUNTIME_DIR to a directory you own, or pass --root DIR\)/);

  // --rootless=false: cgroups this user cannot make are errors, as runc.
  const strict = asUser(t, u, ["--rootless=false", "run", "--bundle", b2.dir, containerId()]);
  t.not(strict.code, 0);
  t.match(strict.stderr, /cgroup: mkdir .*: permission denied/);
  t.same(fs.readdirSync(root).filter((x) => x.includes("rootless-")), [], "nothing left behind");
});

t.test("spec --rootless, run as the user, writes a config that user can run", opts, async (t) => {
  const u = user!;
  leakCheck(t, { root: userStateRoot(u) });
  const b = userBundle(t, u);
  fs.rmSync(b.configPath);
  const s = asUser(t, u, ["spec", "--rootless"], { cwd: b.dir });
  t.equal(s.code, 0, `spec: ${s.stderr}`);
  const config = JSON.parse(fs.readFileSync(b.configPath, "utf8"));
  t.same(config.linux.uidMappings, [{ containerID: 0, hostID: u.uid, size: 1 }], "maps the caller's uid");
  t.same(config.linux.gidMappings, [{ containerID: 0, hostID: u.gid, size: 1 }]);
  t.notOk(config.linux.namespaces.some((n: { type: string }) => n.type === "network"), "no network namespace");
  t.notOk(config.linux.resources, "no cgroup settings");
  config.process.terminal = false;
  config.process.args = ["sh", "-c", "ls /dev/null /sys/kernel >/dev/null && echo works"];
  config.process.env.push(`${TAG_ENV}=${TEST_TAG}`);
  fs.writeFileSync(b.configPath, JSON.stringify(config));
  const r = asUser(t, u, ["run", "--bundle", b.dir, containerId()], { cwd: b.dir });
  t.equal(r.code, 0, `run: ${r.stderr}`);
  t.equal(r.stdout, "works\n");
});
