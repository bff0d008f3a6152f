// Rootless tests: the unprivileged test user, directories it owns, bundles it can read, and
// tsrun run as that user.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { onTeardown, realDir, removeAtTeardown, type TestLike } from "./context.ts";
import { baseConfig, type Bundle, type ConfigObject } from "./bundle.ts";
import { REPO, copyRootfs } from "./rootfs.ts";
import { TEST_TAG, TSRUN, listDir, tsrun, type TsrunOptions, type TsrunResult } from "./tsrun.ts";

export const SETUP_USER = path.join(REPO, "tests/setup-rootless-user.sh");

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  subuid: { start: number; count: number };
  subgid: { start: number; count: number };
  /** Its XDG_RUNTIME_DIR (/run/user/UID), and so its default state root is XDG/tsrun. */
  xdg: string;
}

/** Why rootless tests cannot run here, or undefined when they can. */
export function rootlessSkip(): string | false {
  if (process.geteuid?.() !== 0) return "needs root to create the unprivileged test user";
  for (const tool of ["setpriv", "newuidmap", "newgidmap", "useradd"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) return `${tool} is not installed (apt-get install uidmap util-linux passwd)`;
  }
  return false;
}

let cached: TestUser | undefined;
/** The test user (tests/setup-rootless-user.sh makes it, idempotently). */
export function testUser(): TestUser {
  if (cached) return cached;
  const out = execFileSync(SETUP_USER, [], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim().split("\n").pop()!;
  const [name, uid, gid, us, uc, gs, gc] = out.split(" ");
  const n = (s: string | undefined) => Number(s);
  cached = { name: name!, uid: n(uid), gid: n(gid), subuid: { start: n(us), count: n(uc) }, subgid: { start: n(gs), count: n(gc) }, xdg: `/run/user/${n(uid)}` };
  return cached;
}

/** The user's default state root, $XDG_RUNTIME_DIR/tsrun. */
export function userStateRoot(u: TestUser): string {
  return path.join(u.xdg, "tsrun");
}

/**
 * tsrun as the test user, with its XDG_RUNTIME_DIR (so without --root its state is in
 * /run/user/UID/tsrun). Containers of this test process left in that root are force-deleted,
 * as the user, when t ends.
 */
export function asUser(t: TestLike, u: TestUser, args: string[], opts: TsrunOptions = {}): TsrunResult {
  watchUserRoot(t, u);
  return tsrun(args, { ...opts, user: { uid: u.uid, gid: u.gid, ...opts.user }, env: { XDG_RUNTIME_DIR: u.xdg, HOME: "/nonexistent", USER: u.name, ...opts.env } });
}

const watched = new WeakSet<TestLike>();
function watchUserRoot(t: TestLike, u: TestUser): void {
  if (watched.has(t)) return;
  watched.add(t);
  onTeardown(t, "containers", () => {
    const root = userStateRoot(u);
    for (const id of listDir(root).filter((i) => i.startsWith(TEST_TAG))) {
      tsrun(["delete", "--force", id], { user: { uid: u.uid, gid: u.gid }, env: { XDG_RUNTIME_DIR: u.xdg } });
      fs.rmSync(path.join(root, id), { recursive: true, force: true });
    }
  });
}

/** Whether the user can run build/tsrun where it is (a checkout in a private home may not be). */
export function userCanRunTsrun(u: TestUser): boolean {
  const r = spawnSync("setpriv", [`--reuid=${u.uid}`, `--regid=${u.gid}`, "--init-groups", TSRUN, "--version"], { stdio: "ignore" });
  return r.status === 0;
}

/** A fresh directory owned by the user (mode 0700), removed when t ends. */
export function userDir(t: TestLike, u: TestUser, label = "dir"): string {
  const dir = realDir(fs.mkdtempSync(path.join(os.tmpdir(), `tsrun-test-rootless-${label}-`)));
  removeAtTeardown(t, dir, label);
  fs.chownSync(dir, u.uid, u.gid);
  fs.chmodSync(dir, 0o700);
  return dir;
}

/**
 * baseConfig made rootless the way `tsrun spec --rootless` makes it: a user namespace mapping
 * container root to the user, no network namespace, /sys bound from the host, devpts without
 * gid=5, no device rules.
 */
export function rootlessConfig(u: TestUser, args: string[]): ConfigObject {
  const c = baseConfig(args);
  c.linux.namespaces = [...c.linux.namespaces.filter((n: { type: string }) => n.type !== "network"), { type: "user" }];
  c.linux.uidMappings = [{ containerID: 0, hostID: u.uid, size: 1 }];
  c.linux.gidMappings = [{ containerID: 0, hostID: u.gid, size: 1 }];
  delete c.linux.resources;
  for (const m of c.mounts) {
    if (m.destination === "/sys") Object.assign(m, { type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"] });
    if (m.options) m.options = m.options.filter((o: string) => !/^(gid|uid)=/.test(o));
  }
  return c;
}

/**
 * A bundle in a directory the user owns: a private copy of the rootfs owned by the user (so the
 * container's root owns its files), config.json from rootlessConfig after opts.config.
 */
export function userBundle(t: TestLike, u: TestUser, opts: { args?: string[]; config?: (c: ConfigObject) => void } = {}): Bundle {
  const dir = userDir(t, u, "bundle");
  copyRootfs(path.join(dir, "rootfs"));
  execFileSync("chown", ["-R", `${u.uid}:${u.gid}`, path.join(dir, "rootfs")]);
  const config = rootlessConfig(u, opts.args ?? ["/bin/true"]);
  config.root = { path: "rootfs", readonly: false };
  opts.config?.(config);
  const bundle = { dir, configPath: path.join(dir, "config.json"), config };
  writeUserConfig(bundle, u);
  return bundle;
}

export function writeUserConfig(b: Bundle, u: TestUser): void {
  fs.writeFileSync(b.configPath, JSON.stringify(b.config, null, 2) + "\n");
  fs.chownSync(b.configPath, u.uid, u.gid);
}

/** cgroup mount points of this host (v1 hierarchies once each, and cgroup2). */
export function cgroupMounts(): { mountPoint: string; v2: boolean }[] {
  const out: { mountPoint: string; v2: boolean }[] = [];
  const seen = new Set<string>();
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-", 6);
    if (sep < 0) continue;
    const type = f[sep + 1];
    if ((type !== "cgroup" && type !== "cgroup2") || f[3] !== "/") continue;
    const key = type === "cgroup2" ? "cgroup2" : (f[sep + 3] ?? "").split(",").filter((o) => o !== "rw" && o !== "ro").sort().join(",");
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ mountPoint: f[4]!, v2: type === "cgroup2" });
  }
  return out;
}

export interface Delegation {
  /** The delegated cgroup's path inside every hierarchy ("/tsrun-test-rootless-<tag>"). */
  path: string;
  /** Directories made, one per hierarchy. */
  dirs: string[];
  /** cgroup2: the leaf tsrun is moved into (tsrun must run inside the delegated subtree). */
  callerProcs?: string;
  /** Remove what delegate() made (containers must be gone). */
  remove(): void;
}

/**
 * Delegates a cgroup to the user in every hierarchy, as an administrator would: the directory
 * and its files owned by the user; on cgroup2 a leaf for the user's own processes, and the
 * controllers the parent has enabled for the container's cgroups below it.
 */
export function delegate(t: TestLike, u: TestUser): Delegation {
  const name = `tsrun-test-rootless-${TEST_TAG}`;
  const dirs: string[] = [];
  let callerProcs: string | undefined;
  const remove = () => {
    for (const d of [...dirs].reverse()) {
      for (const sub of listDir(d)) {
        const p = path.join(d, sub);
        if (fs.statSync(p, { throwIfNoEntry: false })?.isDirectory()) fs.rmdirSync(p);
      }
      if (fs.existsSync(d)) fs.rmdirSync(d);
    }
    dirs.length = 0;
  };
  onTeardown(t, "containers", () => {
    try {
      remove();
    } catch (e) {
      t.comment?.(`removing delegated cgroups: ${(e as Error).message}`);
    }
  });
  for (const m of cgroupMounts()) {
    const dir = path.join(m.mountPoint, name);
    fs.mkdirSync(dir);
    dirs.push(dir);
    for (const f of ["cpuset.cpus", "cpuset.mems"]) {
      const parent = path.join(m.mountPoint, f);
      if (fs.existsSync(parent)) fs.writeFileSync(path.join(dir, f), fs.readFileSync(parent, "utf8").trim() || "\n");
    }
    if (m.v2) {
      const controllers = fs.readFileSync(path.join(dir, "cgroup.controllers"), "utf8").trim().split(/\s+/).filter(Boolean);
      for (const c of controllers) {
        try {
          fs.writeFileSync(path.join(dir, "cgroup.subtree_control"), `+${c}`);
        } catch {
          // not every controller can be enabled everywhere (threaded ones, say)
        }
      }
      const leaf = path.join(dir, "caller");
      fs.mkdirSync(leaf);
      callerProcs = path.join(leaf, "cgroup.procs");
    }
    execFileSync("chown", ["-R", `${u.uid}:${u.gid}`, dir]);
  }
  return { path: `/${name}`, dirs, ...(callerProcs ? { callerProcs } : {}), remove };
}
