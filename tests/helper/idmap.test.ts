/**
 * Idmapped mounts driven through the plan (Mount.idmap): the helper's parent prepares a
 * detached id-mapped copy of the source, the init moves it into place. Needs root and
 * build/tsrun-helper. Run: node_modules/.bin/tap tests/helper/idmap.test.ts
 */
import t from "tap";
import * as fs from "node:fs";
import * as path from "node:path";
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { HELPER, MS, basePlan, cleanup, hostMountsUnder, makeRootfs, mnt, namespaces, runHelper, startFifo, tempDir, waitGone, type PlanOver } from "./harness.ts";
import type { Mount, MountIdmap } from "../../src/boundary/gen/helper.ts";

if (process.getuid?.() !== 0 || !fs.existsSync(HELPER)) {
  t.plan(0, "needs root and build/tsrun-helper (make build/tsrun-helper)");
  process.exit(0);
}

const dir = tempDir();
fs.chmodSync(dir, 0o755);
const rootfs = makeRootfs(dir);
t.teardown(async () => {
  await cleanup(dir);
});

let fifoN = 0;
async function run(args: string[], mounts: Mount[], over: PlanOver = {}, user?: { uid: number; gid: number }) {
  const f = path.join(dir, `exec.fifo.${fifoN++}`);
  const plan = basePlan(rootfs, args, { execFifo: f, ...over });
  plan.mounts.push(...mounts);
  return runHelper(plan, { onReady: () => startFifo(f), ...(user ? { user } : {}) });
}

/** The mapping with what a slave rootfs propagation gives the detached copy. */
type Maps = Omit<MountIdmap, "usernsPath" | "treePropagation"> & Partial<Pick<MountIdmap, "usernsPath" | "treePropagation">>;

function idmapped(source: string, destination: string, maps: Maps, flags: number = MS.BIND): Mount {
  return mnt(destination, "", source, flags, "", { idmap: { usernsPath: "", treePropagation: MS.SLAVE, ...maps } });
}

/** A host directory owned by uid:gid with one file in it. */
function ownedDir(name: string, uid: number, gid: number): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, "f"), "x");
  fs.chownSync(d, uid, gid);
  fs.chownSync(path.join(d, "f"), uid, gid);
  return d;
}

t.test("the mapping as given: an id containerID on disk shows as hostID, and back on writes", async (t) => {
  const src = ownedDir("src-a", 1000, 1001);
  const r = await run(["sh", "-c", "stat -c '%u %g' /mnt/a/f; touch /mnt/a/new; grep ' /mnt/a ' /proc/self/mountinfo"], [
    idmapped(src, "/mnt/a", {
      recursive: false,
      uidMappings: [{ containerId: 1000, hostId: 0, size: 1 }],
      gidMappings: [{ containerId: 1001, hostId: 0, size: 1 }],
    }),
  ]);
  t.equal(r.exit, 0, r.error ?? r.stderr);
  t.match(r.stdout, /^0 0\n.* \/mnt\/a rw,[^ ]*idmapped/, "owned by 1000:1001 on disk, 0:0 in the container; an idmapped mount");
  const st = fs.statSync(path.join(src, "new"));
  t.same([st.uid, st.gid], [1000, 1001], "a file root created inside is 1000:1001 on disk");
});

t.test("usernsPath: the mapping of an existing user namespace", async (t) => {
  const holder = spawn("unshare", ["--user", "sleep", "1000"], { stdio: "ignore" });
  t.teardown(() => {
    holder.kill("SIGKILL");
  });
  const ours = fs.readlinkSync("/proc/self/ns/user");
  const nsPath = `/proc/${holder.pid}/ns/user`;
  // wait until unshare has made its namespace (then it execs sleep)
  for (let i = 0; i < 500 && (!fs.existsSync(nsPath) || fs.readlinkSync(nsPath) === ours); i++) await new Promise((r) => setTimeout(r, 10));
  fs.writeFileSync(`/proc/${holder.pid}/uid_map`, "0 200000 65536\n");
  fs.writeFileSync(`/proc/${holder.pid}/gid_map`, "0 300000 65536\n");
  const src = ownedDir("src-b", 7, 8);
  const r = await run(["stat", "-c", "%u %g", "/mnt/b/f"], [idmapped(src, "/mnt/b", { recursive: false, uidMappings: [], gidMappings: [], usernsPath: nsPath })]);
  t.equal(r.exit, 0, r.error ?? r.stderr);
  t.equal(r.stdout, "200007 300008\n");
});

t.test("rbind: ridmap maps the submounts too, idmap only the top mount", async (t) => {
  const src = ownedDir("src-c", 1000, 1000);
  const sub = ownedDir("src-c-sub", 1000, 1000);
  fs.mkdirSync(path.join(src, "sub"));
  fs.chownSync(path.join(src, "sub"), 1000, 1000);
  const { execFileSync } = await import("node:child_process");
  execFileSync("mount", ["--bind", sub, path.join(src, "sub")]);
  try {
    const maps = { uidMappings: [{ containerId: 1000, hostId: 0, size: 1 }], gidMappings: [{ containerId: 1000, hostId: 0, size: 1 }] };
    const script = "stat -c '%u' /m/f /m/sub/f";
    const top = await run(["sh", "-c", script], [idmapped(src, "/m", { recursive: false, ...maps }, MS.BIND | MS.REC)]);
    t.equal(top.exit, 0, top.error ?? top.stderr);
    t.equal(top.stdout, "0\n1000\n", "idmap: the submount keeps its owners");
    const all = await run(["sh", "-c", script], [idmapped(src, "/m", { recursive: true, ...maps }, MS.BIND | MS.REC)]);
    t.equal(all.exit, 0, all.error ?? all.stderr);
    t.equal(all.stdout, "0\n0\n", "ridmap: the submount is mapped too");
  } finally {
    execFileSync("umount", [path.join(src, "sub")]);
  }
});

t.test("refusals name the mount and give errno text; nothing is left", async (t) => {
  const maps = { recursive: false, uidMappings: [{ containerId: 0, hostId: 100000, size: 1 }], gidMappings: [{ containerId: 0, hostId: 100000, size: 1 }] };
  let r = await run(["true"], [idmapped("/sys/kernel", "/mnt/s", maps)]);
  t.equal(r.code, 1);
  t.equal(r.error, "idmapped mount /sys/kernel on /mnt/s: set MOUNT_ATTR_IDMAP: invalid argument (the filesystem of the source does not support idmapped mounts)");
  t.equal(r.pid, undefined, "refused on the host side, before the container process exists");

  // An unprivileged helper (what a rootless tsrun would run): the kernel wants CAP_SYS_ADMIN in
  // the initial user namespace for open_tree(OPEN_TREE_CLONE) of a host directory.
  const src = ownedDir("src-d", 65534, 65534);
  r = await run(["true"], [idmapped(src, "/mnt/d", maps)], { execFifo: "", namespaces: namespaces(["user", "mount"]) }, { uid: 65534, gid: 65534 });
  t.equal(r.code, 1);
  t.equal(r.error, `idmapped mount ${src} on /mnt/d: open_tree ${src}: operation not permitted (idmapped mounts need CAP_SYS_ADMIN in the initial user namespace: run tsrun as root)`);

  r = await run(["true"], [idmapped(path.join(dir, "missing"), "/mnt/m", maps)]);
  t.match(r.error, /^idmapped mount \S+\/missing on \/mnt\/m: open_tree \S+\/missing: no such file or directory$/);

  // A mapping the kernel refuses (overlapping ranges) is reported at the uid_map write, and the
  // short-lived user namespace holder is reaped.
  r = await run(["true"], [idmapped(src, "/mnt/o", { recursive: false, uidMappings: [{ containerId: 0, hostId: 1, size: 5 }, { containerId: 2, hostId: 10, size: 5 }], gidMappings: maps.gidMappings })]);
  t.equal(r.error, `idmapped mount ${src} on /mnt/o: mapping user namespace: write uid_map: invalid argument`);
  t.same(hostMountsUnder(dir), []);
});

t.test("no mounts leaked on the host, no holder left", async (t) => {
  t.same(hostMountsUnder(dir), []);
  const r = await run(["true"], []);
  t.equal(r.exit, 0);
  if (r.pid) t.ok(await waitGone(r.pid));
});
