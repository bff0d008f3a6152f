// runtime-spec 1.3.0's additions that the helper carries out: linux.memoryPolicy
// (set_mempolicy), linux.netDevices (host devices moved into the container's network
// namespace), and runc's --pidfd-socket (create, run, exec). Real containers; veth pairs made by
// the test (this kernel has no dummy interfaces); this host has one NUMA node, node 0.
import t, { type Test } from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { makeBundle } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { realDir, removeAtTeardown, type TestLike } from "../lib/context.ts";
import { containerId, state, testRoot, tsrun } from "../lib/tsrun.ts";

const ip = (...args: string[]) => spawnSync("ip", args, { encoding: "utf8" });
if (process.getuid?.() !== 0 || ip("-V").status !== 0) {
  t.plan(0, "needs root and iproute2");
  process.exit(0);
}

// ---------- linux.memoryPolicy ----------

t.test("memoryPolicy: set_mempolicy in the container, each mode shown in numa_maps", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ mode: "MPOL_BIND", nodes: "0" }, /^[0-9a-f]+ bind:0 /m],
    [{ mode: "MPOL_PREFERRED", nodes: "0" }, /^[0-9a-f]+ prefer:0 /m],
    [{ mode: "MPOL_INTERLEAVE", nodes: "0", flags: ["MPOL_F_STATIC_NODES"] }, /^[0-9a-f]+ interleave=static:0 /m],
    [{ mode: "MPOL_LOCAL" }, /^[0-9a-f]+ local /m],
  ];
  for (const [policy, want] of cases) {
    const b = makeBundle(t, {
      args: ["sh", "-c", "cat /proc/self/numa_maps; grep Mems_allowed_list /proc/self/status"],
      config: (c) => ((c.linux as Record<string, unknown>).memoryPolicy = policy),
    });
    const r = tsrun(["run", "--bundle", b.dir, containerId()], { root });
    t.equal(r.code, 0, `${policy.mode}: ${r.stderr}`);
    t.match(r.stdout, want, `${policy.mode} applied`);
    t.match(r.stdout, /Mems_allowed_list:\t0\n/);
  }
});

t.test("memoryPolicy: exec'd processes get it too; a node the host lacks is refused, nothing left", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const b = makeBundle(t, { args: ["sleep", "1000"], config: (c) => ((c.linux as Record<string, unknown>).memoryPolicy = { mode: "MPOL_BIND", nodes: "0" }) });
  const id = containerId();
  t.equal(tsrun(["run", "-d", "--bundle", b.dir, id], { root }).code, 0);
  const e = tsrun(["exec", id, "sh", "-c", "grep -c bind:0 /proc/self/numa_maps"], { root });
  t.equal(e.code, 0, e.stderr);
  t.ok(Number(e.stdout.trim()) > 0, "the exec'd process is bound too");
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);

  const bad = makeBundle(t, { config: (c) => ((c.linux as Record<string, unknown>).memoryPolicy = { mode: "MPOL_BIND", nodes: "0,7" }) });
  const r = tsrun(["create", "--bundle", bad.dir, containerId()], { root });
  t.not(r.code, 0);
  t.equal(r.stderr, "tsrun: config.json: linux.memoryPolicy.nodes: NUMA node 7 does not exist on this host (it has 0)\n");
});

// ---------- linux.netDevices ----------

let veths = 0;
/** A veth pair (host end with an address), removed at teardown whatever became of it. */
function vethPair(t: Test, address?: string): { host: string; peer: string } {
  const n = `${process.pid % 100000}${veths++}`;
  const pair = { host: `tnd${n}a`, peer: `tnd${n}b` };
  t.equal(ip("link", "add", pair.host, "type", "veth", "peer", "name", pair.peer).status, 0, "veth pair made");
  t.teardown(() => {
    ip("link", "del", pair.host);
    ip("link", "del", pair.peer);
  });
  if (address) {
    ip("addr", "add", address, "dev", pair.host);
    ip("link", "set", pair.host, "up");
  }
  return pair;
}

const onHost = (dev: string) => ip("link", "show", dev).status === 0;

t.test("netDevices: a host device moves into the container's new network namespace, renamed, with its address", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const v = vethPair(t, "10.213.7.1/24");
  const b = makeBundle(t, {
    args: ["sh", "-c", "ip -o addr show dev ctr7; ip -o link show dev ctr7"],
    config: (c) => ((c.linux as Record<string, unknown>).netDevices = { [v.host]: { name: "ctr7" } }),
  });
  const r = tsrun(["run", "--bundle", b.dir, containerId()], { root });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /ctr7 +inet 10\.213\.7\.1\/24 /, "renamed, and its permanent address added again");
  t.match(r.stdout, /: ctr7@\S+: <[^>]*\bUP\b[^>]*>/, "up, as it was on the host");
  t.notOk(onHost(v.host), "no longer on the host");
  // The container's namespace is gone, and with it (the kernel cleans namespaces up a moment
  // later) the virtual device and its peer.
  for (let i = 0; i < 500 && onHost(v.peer); i++) await new Promise((res) => setTimeout(res, 10));
  t.notOk(onHost(v.peer), "a veth pair ends with the namespace");
});

t.test("netDevices: into a namespace joined by path, where it stays after delete", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const netns = `tsrun-nd-${process.pid}`;
  t.equal(ip("netns", "add", netns).status, 0);
  t.teardown(() => ip("netns", "del", netns));
  const v = vethPair(t);
  const b = makeBundle(t, {
    args: ["sh", "-c", `ip -o link show dev ${v.host}`],
    config: (c) => {
      const linux = c.linux as { namespaces: { type: string; path?: string }[]; netDevices?: unknown };
      linux.namespaces = linux.namespaces.map((n) => (n.type === "network" ? { type: "network", path: `/run/netns/${netns}` } : n));
      linux.netDevices = { [v.host]: {} };
    },
  });
  const r = tsrun(["run", "--bundle", b.dir, containerId()], { root });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`: ${v.host}@`), "its own name when none is given");
  t.equal(ip("-n", netns, "link", "show", v.host).status, 0, "still in that namespace after the container is gone");
  t.notOk(onHost(v.host));
});

t.test("netDevices: a device that is not there, a name taken, no network namespace: one clear line, host unchanged", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const refuse = (netDevices: unknown, want: string, mutate?: (linux: Record<string, unknown>) => void) => {
    const b = makeBundle(t, {
      config: (c) => {
        const linux = c.linux as Record<string, unknown>;
        linux.netDevices = netDevices;
        mutate?.(linux);
      },
    });
    const r = tsrun(["create", "--bundle", b.dir, containerId()], { root });
    t.not(r.code, 0);
    t.equal(r.stderr, want);
  };
  refuse({ tndnosuch0: {} }, 'tsrun: unable to start container process: linux.netDevices["tndnosuch0"]: there is no network device tndnosuch0 on the host\n');
  const v = vethPair(t, "10.213.8.1/24");
  refuse({ [v.host]: { name: "lo" } }, `tsrun: unable to start container process: linux.netDevices["${v.host}"]: the container's network namespace has a device named lo already\n`);
  t.ok(onHost(v.host), "the device is still on the host");
  t.match(ip("-o", "addr", "show", "dev", v.host).stdout, /10\.213\.8\.1\/24/, "with its address");
  t.match(ip("-o", "link", "show", "dev", v.host).stdout, /[<,]UP[,>]/, "and up again");
  refuse({ [v.host]: {} }, "tsrun: config.json: linux.netDevices: requires a network namespace (no \"network\" in linux.namespaces)\n", (linux) => {
    linux.namespaces = (linux.namespaces as { type: string }[]).filter((n) => n.type !== "network");
  });
});

// ---------- --pidfd-socket ----------

const RECEIVER = path.join(path.dirname(new URL(import.meta.url).pathname), "../helper/pidfd-receiver.py");

async function receiver(t: TestLike, signal = 0): Promise<{ sock: string; said: () => Promise<string> }> {
  const dir = realDir(fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-pidfd-")));
  removeAtTeardown(t, dir, "pidfd socket dir");
  const sock = path.join(dir, "s");
  const out = path.join(dir, "out");
  const py = spawn("python3", [RECEIVER, sock, out, String(signal)], { stdio: ["ignore", "pipe", "inherit"] });
  t.teardown(() => py.kill("SIGKILL"));
  await new Promise<void>((res) => py.stdout!.once("data", () => res()));
  const exited = new Promise<void>((res) => py.on("exit", () => res()));
  return { sock, said: async () => (await exited, fs.readFileSync(out, "utf8")) };
}

t.test("--pidfd-socket: create and exec send a pidfd of their process; the receiver signals through it", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const b = makeBundle(t, { args: ["sleep", "1000"] });
  const id = containerId();
  const rc = await receiver(t);
  t.equal(tsrun(["create", "--pidfd-socket", rc.sock, "--bundle", b.dir, id], { root }).code, 0);
  t.equal(await rc.said(), `payload=pidfd pid=${state(root, id).pid}\n`, "a pidfd of the init");
  t.equal(tsrun(["start", id], { root }).code, 0);

  const re = await receiver(t, 9);
  const pidFile = path.join(path.dirname(re.sock), "exec.pid");
  t.equal(tsrun(["exec", "-d", "--pid-file", pidFile, "--pidfd-socket", re.sock, id, "sleep", "999"], { root }).code, 0);
  t.equal(await re.said(), `payload=pidfd pid=${fs.readFileSync(pidFile, "utf8").trim()}\n`, "a pidfd of the exec'd process");

  const execPid = Number(fs.readFileSync(pidFile, "utf8"));
  for (let i = 0; i < 500 && fs.existsSync(`/proc/${execPid}`); i++) await new Promise((res) => setTimeout(res, 10));
  t.notOk(fs.existsSync(`/proc/${execPid}`), "SIGKILL through the pidfd ended the exec'd process");

  // run -d: the init's, once it is set up (a receiver that kills at once would race start).
  const rr = await receiver(t);
  const id2 = containerId();
  t.equal(tsrun(["run", "-d", "--pidfd-socket", rr.sock, "--bundle", b.dir, id2], { root }).code, 0);
  t.equal(await rr.said(), `payload=pidfd pid=${state(root, id2).pid}\n`);
  for (const c of [id, id2]) t.equal(tsrun(["delete", "--force", c], { root }).code, 0);
});

t.test("--pidfd-socket that nobody listens on: create fails in one line, nothing left", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const b = makeBundle(t, { args: ["sleep", "1000"] });
  const r = tsrun(["create", "--pidfd-socket", "/tmp/tsrun-test-no-such-socket", "--bundle", b.dir, containerId()], { root });
  t.not(r.code, 0);
  t.equal(r.stderr, "tsrun: unable to start container process: connect to pidfd socket /tmp/tsrun-test-no-such-socket: no such file or directory\n");
});
