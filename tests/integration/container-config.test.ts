// Each config.json field the lifecycle handles, checked from inside a real container.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { makeBundle, type ConfigObject } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import type { TestLike } from "../lib/context.ts";
import { containerId, testRoot, tsrun } from "../lib/tsrun.ts";
import { sharedRootfs } from "../lib/rootfs.ts";
import { spawnSync } from "node:child_process";

/** Runs `sh -c script` in a container made from the base config after mutate; returns its output. */
function inside(t: TestLike, root: string, script: string, mutate: (c: ConfigObject) => void = () => {}): { code: number; out: string; err: string } {
  const bundle = makeBundle(t, { args: ["sh", "-c", script], config: mutate });
  const r = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

t.test("from inside the container", async (t) => {
  leakCheck(t);
  const root = testRoot(t);

  t.test("hostname and domainname", async (t) => {
    const r = inside(t, root, "hostname; cat /proc/sys/kernel/domainname", (c) => {
      c.hostname = "box1";
      c.domainname = "example.org";
    });
    t.equal(r.out, "box1\nexample.org\n", r.err);
  });

  t.test("args, env, cwd", async (t) => {
    const r = inside(t, root, 'echo "$FOO|$PWD|$0"', (c) => {
      c.process.env.push("FOO=bar baz");
      c.process.cwd = "/tmp";
    });
    t.equal(r.out, "bar baz|/tmp|sh\n", r.err);
  });

  t.test("a missing cwd is created", async (t) => {
    const r = inside(t, root, "pwd", (c) => (c.process.cwd = "/tmp/new/dir"));
    t.equal(r.out, "/tmp/new/dir\n", r.err);
  });

  t.test("user, groups and umask", async (t) => {
    const r = inside(t, root, "id -u; id -g; id -G; umask", (c) => {
      c.process.user = { uid: 1000, gid: 1001, additionalGids: [5, 1002], umask: 0o027 };
    });
    t.equal(r.out, "1000\n1001\n1001 5 1002\n0027\n", r.err);
  });

  t.test("rlimits", async (t) => {
    const r = inside(t, root, "ulimit -n; ulimit -Hn; ulimit -c", (c) => {
      c.process.rlimits = [
        { type: "RLIMIT_NOFILE", soft: 512, hard: 1000 },
        { type: "RLIMIT_CORE", soft: 0, hard: 0 },
      ];
    });
    t.equal(r.out, "512\n1000\n0\n", r.err);
  });

  t.test("oomScoreAdj", async (t) => {
    const r = inside(t, root, "cat /proc/self/oom_score_adj", (c) => (c.process.oomScoreAdj = 123));
    t.equal(r.out, "123\n", r.err);
  });

  t.test("namespaces: new pid, uts, ipc, net, mount, cgroup", async (t) => {
    const r = inside(t, root, "echo $$; for n in pid uts ipc net mnt cgroup; do readlink /proc/self/ns/$n; done; ls /sys/class/net");
    const lines = r.out.trim().split("\n");
    t.equal(lines[0], "1", "the process is pid 1");
    for (const [i, n] of ["pid", "uts", "ipc", "net", "mnt", "cgroup"].entries()) {
      t.not(lines[i + 1], fs.readlinkSync(`/proc/self/ns/${n}`), `${n} namespace is new`);
    }
    t.same(lines.slice(7), ["lo"], "a new network namespace has only lo");
  });

  t.test("joining a namespace by path", async (t) => {
    const name = `tsrun-test-${process.pid}`;
    t.equal(spawnSync("ip", ["netns", "add", name]).status, 0, "ip netns add");
    t.teardown(() => spawnSync("ip", ["netns", "del", name]));
    const r = inside(t, root, "readlink /proc/self/ns/net", (c) => {
      c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === "network" ? { type: "network", path: `/run/netns/${name}` } : n));
    });
    const want = `net:[${fs.statSync(`/run/netns/${name}`).ino}]`;
    t.equal(r.out.trim(), want, r.err);
  });

  t.test("user namespace with mappings", async (t) => {
    const r = inside(t, root, "cat /proc/self/uid_map /proc/self/gid_map; id -u", (c) => {
      c.linux.namespaces.push({ type: "user" });
      c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    });
    t.match(r.out, /^\s*0\s+100000\s+65536\n\s*0\s+100000\s+65536\n0\n$/, r.err);
  });

  t.test("time namespace offsets", async (t) => {
    const r = inside(t, root, "cat /proc/uptime /proc/self/timens_offsets", (c) => {
      c.linux.namespaces.push({ type: "time" });
      c.linux.timeOffsets = { boottime: { secs: 86400 * 365, nanosecs: 0 }, monotonic: { secs: 7, nanosecs: 250000000 } };
    });
    t.ok(Number(r.out.split(" ")[0]) > 86400 * 365, `uptime is offset: ${r.out} ${r.err}`);
    t.match(r.out, /^monotonic\s+7\s+250000000$/m, "secs and nanosecs of each clock");
  });

  t.test("mounts: tmpfs with options, bind ro, bind of a file", async (t) => {
    const host = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-bind-"));
    t.teardown(() => fs.rmSync(host, { recursive: true, force: true }));
    fs.writeFileSync(path.join(host, "hello"), "from host\n");
    const r = inside(t, root, "cat /data/hello; touch /data/x 2>&1 | grep -c Read-only; cat /one; grep ' /scratch ' /proc/self/mountinfo", (c) => {
      c.mounts.push({ destination: "/data", type: "bind", source: host, options: ["rbind", "ro"] });
      c.mounts.push({ destination: "/one", type: "bind", source: path.join(host, "hello"), options: ["bind"] });
      c.mounts.push({ destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "size=1m", "mode=700"] });
    });
    const lines = r.out.split("\n");
    t.equal(lines[0], "from host", r.err);
    t.equal(lines[1], "1", "ro bind is read-only");
    t.equal(lines[2], "from host", "file bind");
    t.match(lines[3], / \/scratch rw,nosuid,nodev.* tmpfs tmpfs rw,size=1024k,mode=700/);
  });

  t.test("root.readonly", async (t) => {
    const r = inside(t, root, "touch /x 2>&1; echo ok > /tmp/y && cat /tmp/y");
    t.match(r.out, /Read-only file system\nok\n/, r.err);
  });

  t.test("devices: defaults, symlinks, and linux.devices", async (t) => {
    const r = inside(t, root, "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/mydev | awk '{print $1, $5, $6, $NF}'; for l in fd stdin ptmx; do readlink /dev/$l; done", (c) => {
      c.linux.devices = [{ path: "/dev/mydev", type: "c", major: 1, minor: 3, fileMode: 0o640, uid: 7, gid: 8 }];
    });
    t.equal(r.out, [
      "crw-rw-rw- 1, 3 /dev/full".replace("3 /dev/full", "7 /dev/full"),
      "crw-r----- 1, 3 /dev/mydev",
      "crw-rw-rw- 1, 3 /dev/null",
      "crw-rw-rw- 1, 8 /dev/random",
      "crw-rw-rw- 5, 0 /dev/tty",
      "crw-rw-rw- 1, 9 /dev/urandom",
      "crw-rw-rw- 1, 5 /dev/zero",
      "/proc/self/fd", "/proc/self/fd/0", "pts/ptmx", "",
    ].join("\n"), r.err);
  });

  t.test("maskedPaths and readonlyPaths", async (t) => {
    const r = inside(t, root, "cat /proc/keys 2>&1 | wc -c; ls /sys/firmware | wc -l; (echo 1 > /proc/sys/kernel/domainname) 2>&1 | grep -c Read-only");
    t.equal(r.out, "0\n0\n1\n", r.err);
    const repeated = inside(t, root, "grep -c ' /proc/sys ' /proc/self/mountinfo; grep -c ' /proc/keys ' /proc/self/mountinfo", (c) => {
      c.linux.readonlyPaths = ["/proc/sys", "/proc/sys", "/proc/sys"];
      c.linux.maskedPaths = ["/proc/keys", "/proc/keys"];
    });
    t.equal(repeated.out, "1\n1\n", `a path listed more than once is mounted once: ${repeated.err}`);
  });

  t.test("sysctl", async (t) => {
    const r = inside(t, root, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax", (c) => {
      c.linux.sysctl = { "net.ipv4.ip_forward": "1", "kernel.msgmax": "12345" };
    });
    t.equal(r.out, "1\n12345\n", r.err);
  });

  t.test("capabilities are exactly the configured ones, and no_new_privs", async (t) => {
    const status = "grep -E '^(CapBnd|CapEff|CapPrm|CapInh|CapAmb|NoNewPrivs)' /proc/self/status";
    // As uid 0, execve gives root its whole bounding set (as with runc): the bounding set is what counts.
    const asRoot = inside(t, root, status, (c) => {
      c.process.capabilities = { bounding: ["CAP_KILL", "CAP_CHOWN"], effective: ["CAP_KILL"], permitted: ["CAP_KILL", "CAP_CHOWN"], inheritable: [], ambient: [] };
    });
    t.match(asRoot.out, /CapInh:\s+0000000000000000\nCapPrm:\s+0000000000000021\nCapEff:\s+0000000000000021\nCapBnd:\s+0000000000000021\nCapAmb:\s+0000000000000000\nNoNewPrivs:\s+1/, asRoot.err);
    // Another uid keeps exactly its ambient capabilities through execve.
    const asUser = inside(t, root, status, (c) => {
      c.process.user = { uid: 1000, gid: 1000 };
      c.process.noNewPrivileges = false;
      const kill = ["CAP_KILL"];
      c.process.capabilities = { bounding: ["CAP_KILL", "CAP_CHOWN"], effective: kill, permitted: kill, inheritable: kill, ambient: kill };
    });
    t.match(asUser.out, /CapInh:\s+0000000000000020\nCapPrm:\s+0000000000000020\nCapEff:\s+0000000000000020\nCapBnd:\s+0000000000000021\nCapAmb:\s+0000000000000020\nNoNewPrivs:\s+0/, asUser.err);
  });

  t.test("pivot_root hides the host; --no-pivot works too", async (t) => {
    const r = inside(t, root, "ls -a / | tr '\\n' ' '");
    const rootfs = fs.readdirSync(sharedRootfs());
    t.equal(r.out, [".", "..", ...rootfs].sort().join(" ") + " ", `/ is the rootfs: ${r.err}`);
    const bundle = makeBundle(t, { args: ["sh", "-c", "ls /etc/passwd"] });
    const np = tsrun(["run", "--no-pivot", "--bundle", bundle.dir, containerId()], { root });
    t.equal(np.stdout, "/etc/passwd\n", np.stderr);
  });

  t.test("its own session keyring, or the caller's with --no-new-keyring", async (t) => {
    const bundle = makeBundle(t, {
      args: ["sh", "-c", "grep -o '_ses[^ ]*' /proc/keys || echo none"],
      config: (c) => (c.linux.maskedPaths = c.linux.maskedPaths.filter((p: string) => p !== "/proc/keys")),
    });
    const escape = (id: string) => id.replace(/[.+]/g, "\\$&");
    const id = containerId();
    const own = tsrun(["run", "--bundle", bundle.dir, id], { root });
    t.match(own.stdout, new RegExp(`^_ses\\.${escape(id)}:$`, "m"), own.stderr);
    const other = containerId();
    const shared = tsrun(["run", "--no-new-keyring", "--bundle", bundle.dir, other], { root });
    t.notMatch(shared.stdout, new RegExp(`_ses\\.${escape(other)}:`), `no keyring of its own: ${shared.stdout}`);
  });

  t.test("inherited fds are closed, --preserve-fds keeps N", async (t) => {
    const r = inside(t, root, "ls /proc/self/fd | tr '\\n' ' '");
    t.equal(r.out, "0 1 2 3 ", `only stdio and ls's own dir fd: ${r.err}`);
  });
});
