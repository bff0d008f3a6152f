/**
 * The cgroup v2 device program against the real kernel (root and a cgroup2 mount needed).
 * On a hybrid host (v1 devices controller) the v2 path is taken by giving the cgroup manager a
 * state with only a cgroup2 dir, under the cgroup2 mount: it then sees no v1 devices controller,
 * exactly as on a pure cgroup v2 host. A shell moved into the cgroup stands in for a container.
 */
import t, { type Test } from "tap";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { applyResources, attachDeviceProgram, createCgroup, destroyCgroup, type CgroupState, type Resources } from "../../src/linux/cgroups/index.ts";
import { findHierarchies, parseMountinfo } from "../../src/linux/cgroups/parse.ts";
import type { DeviceRule } from "../../src/linux/cgroups/resources.ts";

const HELPER = resolve("build/tsrun-helper");
const v2Mount = existsSync("/proc/self/mountinfo") ? findHierarchies(parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"))).v2?.mountPoint : undefined;

if (process.getuid?.() !== 0 || !v2Mount || !existsSync(HELPER)) {
  t.plan(0, "needs root, a cgroup2 mount and build/tsrun-helper");
  process.exit(0);
}
process.env.TSRUN_HELPER = HELPER;

let counter = 0;
/** A fresh cgroup2-only state; teardown removes the dir (and anything left in it) whatever happens. */
function v2State(tt: Test): CgroupState {
  const dir = join(v2Mount!, `tsrun-test-${process.pid}-${++counter}`);
  tt.teardown(() => removeTree(dir));
  return { version: "v2", v1: {}, v2: dir, created: [] };
}

function removeTree(dir: string): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) removeTree(join(dir, e.name));
  for (const pid of (readFileSync(join(dir, "cgroup.procs"), "utf8").match(/\d+/g) ?? []).map(Number)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      spawnSync("sleep", ["0.02"]);
    }
  }
}

function tmpDir(tt: Test): string {
  const d = mkdtempSync(join(tmpdir(), "tsrun-devtest-"));
  tt.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const CHECKS = `
echo $$ > "$CG/cgroup.procs" || exit 99
c() { name=$1; shift; if "$@" >"$T/out" 2>&1; then echo "$name ok"; else echo "$name denied"; fi; }
c null-read head -c1 /dev/null
c null-write sh -c 'echo x > /dev/null'
c zero-read head -c1 /dev/zero
c zero-write sh -c 'echo x > /dev/zero'
c full-read head -c1 /dev/full
c full-write sh -c 'echo x > /dev/full'
c mknod-null mknod "$T/null" c 1 3
c mknod-full mknod "$T/full" c 1 7
`;

/** Runs the checks in a shell that first moves itself into the cgroup; "name ok|denied" per check. */
async function checks(tt: Test, dir: string): Promise<Record<string, string>> {
  const T = tmpDir(tt);
  const child = spawn("sh", ["-c", CHECKS], { env: { ...process.env, CG: dir, T }, stdio: ["ignore", "pipe", "pipe"] });
  tt.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | string | null>((res) => child.once("exit", (c, s) => res(s ?? c)));
  if (code !== 0) throw new Error(`checks exited with ${code}: ${err}`);
  const result: Record<string, string> = {};
  for (const line of out.trim().split("\n")) {
    const [name, verdict] = line.split(" ");
    result[name!] = verdict!;
  }
  return result;
}

function attachedCount(dir: string): number {
  const r = spawnSync(HELPER, ["--device-filter-count", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`--device-filter-count: ${r.stderr}`);
  return Number(r.stdout.trim());
}

const DENY_ALL: DeviceRule = { allow: false, access: "rwm" };

t.test("create attaches the device program, update replaces it", async (t) => {
  const planned = v2State(t);
  const rules: DeviceRule[] = [DENY_ALL, { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 5, access: "r" }];
  const state = createCgroup(planned, { devices: rules } as Resources, () => {});
  t.same(state.created, [planned.v2], "the dir was made");
  t.equal(attachedCount(planned.v2!), 1, "one device program attached");

  const first = await checks(t, planned.v2!);
  t.same(first, {
    "null-read": "ok",
    "null-write": "ok",
    "zero-read": "ok",
    "zero-write": "denied",
    "full-read": "denied",
    "full-write": "denied",
    "mknod-null": "ok",
    "mknod-full": "denied",
  });

  // update: a more permissive program replaces the first.
  applyResources(state, { devices: [...rules, { allow: true, type: "c", major: 1, minor: 7, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 5, access: "w" }] } as Resources, () => {});
  t.equal(attachedCount(planned.v2!), 1, "still one device program: the old one was detached");
  const second = await checks(t, planned.v2!);
  t.same(second, {
    "null-read": "ok",
    "null-write": "ok",
    "zero-read": "ok",
    "zero-write": "ok",
    "full-read": "ok",
    "full-write": "denied", // /dev/full: the open is allowed, the write fails with ENOSPC
    "mknod-null": "ok",
    "mknod-full": "ok",
  });

  // And back to something stricter: a deny after the allows wins.
  applyResources(state, { devices: [...rules, { allow: false, type: "c", major: 1, minor: 3, access: "w" }] } as Resources, () => {});
  t.equal(attachedCount(planned.v2!), 1);
  const third = await checks(t, planned.v2!);
  t.equal(third["null-read"], "ok");
  t.equal(third["null-write"], "denied", "a later deny of w inside an earlier allow");

  destroyCgroup(state);
  t.notOk(existsSync(planned.v2!), "destroy removed the dir");
});

t.test("an update to allow-all replaces a restrictive program", async (t) => {
  const planned = v2State(t);
  const state = createCgroup(planned, { devices: [DENY_ALL] } as Resources, () => {});
  t.equal(attachedCount(planned.v2!), 1);
  t.equal((await checks(t, planned.v2!))["null-read"], "denied", "deny-all denies /dev/null");
  applyResources(state, { devices: [{ allow: true, access: "rwm" }] } as Resources, () => {});
  t.equal(attachedCount(planned.v2!), 1, "still one program: the new one");
  t.equal((await checks(t, planned.v2!))["null-read"], "ok", "allow-all allows /dev/null");
  destroyCgroup(state);
});

t.test("errors", async (t) => {
  const planned = v2State(t);
  const state = createCgroup(planned, undefined, () => {});
  // "exit" without setting r0: the verifier refuses it, and its log is in the message.
  const bad = Buffer.from([0x95, 0, 0, 0, 0, 0, 0, 0]);
  t.throws(() => attachDeviceProgram(planned.v2!, bad), /^cgroup: device filter: load the device program \(1 instructions\): verifier: .*R0 !read_ok.*: permission denied$/);
  t.equal(attachedCount(planned.v2!), 0, "nothing attached");
  t.throws(() => attachDeviceProgram(join(planned.v2!, "missing"), bad), /^cgroup: device filter: open .*missing: no such file or directory$/);
  destroyCgroup(state);

  // A failed attach during create removes the dirs it made.
  const other = v2State(t);
  process.env.TSRUN_HELPER = "/nonexistent/tsrun-helper";
  try {
    t.throws(() => createCgroup(other, { devices: [DENY_ALL] } as Resources, () => {}), /cannot run tsrun-helper/);
  } finally {
    process.env.TSRUN_HELPER = HELPER;
  }
  t.notOk(existsSync(other.v2!), "the dir was removed again");
});
