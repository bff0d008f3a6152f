// config.md, Mounts: order, types, bind and rbind, the Linux mount options, and
// filesystem-specific data.
import t from "tap";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { observe, type Config } from "./lib/container.ts";
import { EROFS } from "./lib/linux.ts";
import { mountAt, parseMountinfo, type Mount } from "./lib/mounts.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);
const OPT = (option: string, detail?: string) => spec("config.md#linux-mount-options", `Runtimes MUST implement the ${option} option`, detail);

t.test("mounts are made in the listed order", async (t) => {
  const o = await observe(rt, {
    checker: ["mounts", "stat", "/tmp/outer/inner"],
    config: (c) =>
      c.mounts.push(
        { destination: "/mnt/c", type: "tmpfs", source: "tmpfs", options: ["size=300k"] },
        { destination: "/mnt/a", type: "tmpfs", source: "tmpfs", options: ["size=100k"] },
        { destination: "/mnt/b", type: "tmpfs", source: "tmpfs", options: ["size=200k"] },
        { destination: "/mnt/a", type: "tmpfs", source: "tmpfs", options: ["size=400k"] },
        { destination: "/tmp/outer", type: "tmpfs", source: "tmpfs", options: ["size=500k"] },
        { destination: "/tmp/outer/inner", type: "tmpfs", source: "tmpfs", options: ["size=600k", "mode=700"] },
      ),
  });
  const ms = parseMountinfo(o.out?.mounts);
  const sizes = ms.filter((m) => m.fsType === "tmpfs" && m.mountPoint.startsWith("/mnt/")).map((m) => `${m.mountPoint}:${m.superOptions.find((s) => s.startsWith("size="))}`);
  t.same(sizes, ["/mnt/c:size=300k", "/mnt/a:size=100k", "/mnt/b:size=200k", "/mnt/a:size=400k"], spec("config.md#mounts", "The runtime MUST mount entries in the listed order"));
  t.equal(o.out?.["stat /tmp/outer/inner"]?.mode, 0o700, spec("config.md#mounts", "The runtime MUST mount entries in the listed order", "a mount inside an earlier one"));
});

t.test("filesystem types", async (t) => {
  const o = await observe(rt, { checker: ["mounts"] });
  const ms = parseMountinfo(o.out?.mounts);
  for (const [dest, type] of [
    ["/proc", "proc"],
    ["/dev", "tmpfs"],
    ["/dev/pts", "devpts"],
    ["/dev/shm", "tmpfs"],
    ["/dev/mqueue", "mqueue"],
    ["/sys", "sysfs"],
  ] as const) {
    t.equal(mountAt(ms, dest)?.fsType, type, spec("config.md#posix-mounts", "type (string, OPTIONAL) The type of the filesystem to be mounted", `${type} at ${dest}`));
  }
  for (const [dest, type] of [
    ["/proc", "proc"],
    ["/sys", "sysfs"],
    ["/dev/pts", "devpts"],
    ["/dev/shm", "tmpfs"],
  ] as const) {
    t.equal(mountAt(ms, dest)?.fsType, type, spec("config-linux.md#default-filesystems", "The following filesystems SHOULD be made available in each container's filesystem", dest));
  }
});

/**
 * A tmpfs at /tmp/<name> per option set, each in a container of its own (one option a runtime
 * rejects must not hide the others); returns name -> mount as seen inside, and the checker's
 * output (`stat /tmp/<name>`, `create /tmp/<name>/probe`).
 */
async function optionMounts(sets: Record<string, string[]>): Promise<{ mounts: Record<string, Mount | undefined>; out: Record<string, unknown> }> {
  const mounts: Record<string, Mount | undefined> = {};
  const out: Record<string, unknown> = {};
  for (const [name, options] of Object.entries(sets)) {
    const dest = `/tmp/${name}`;
    const o = await observe(rt, {
      checker: ["mounts", "stat", dest, "create", `${dest}/probe`],
      config: (c) => c.mounts.push({ destination: dest, type: "tmpfs", source: "tmpfs", options }),
    });
    mounts[name] = mountAt(parseMountinfo(o.out?.mounts), dest);
    Object.assign(out, o.out ?? {});
  }
  return { mounts, out };
}

t.test("per-mount flags", async (t) => {
  const { mounts: m, out } = await optionMounts({
    ro: ["ro"],
    rw: ["rw"],
    "ro-then-rw": ["ro", "rw"],
    nosuid: ["nosuid"],
    "nosuid-then-suid": ["nosuid", "suid"],
    nodev: ["nodev"],
    "nodev-then-dev": ["nodev", "dev"],
    noexec: ["noexec"],
    "noexec-then-exec": ["noexec", "exec"],
    noatime: ["noatime"],
    "noatime-then-atime": ["noatime", "atime"],
    nodiratime: ["nodiratime"],
    relatime: ["relatime"],
    strictatime: ["strictatime"],
    nosymfollow: ["nosymfollow"],
    defaults: ["defaults"],
  });
  const has = (name: string, flag: string) => m[name]?.mountOptions.includes(flag) ?? false;
  const exists = (name: string) => m[name] !== undefined;
  t.ok(has("ro", "ro"), OPT("ro"));
  t.equal((out["create /tmp/ro/probe"] as { errno?: number } | undefined)?.errno, EROFS, OPT("ro", "writes fail"));
  t.ok(has("rw", "rw"), OPT("rw"));
  t.ok(has("ro-then-rw", "rw"), OPT("rw", "after ro"));
  t.ok(has("nosuid", "nosuid"), OPT("nosuid"));
  t.ok(exists("nosuid-then-suid") && !has("nosuid-then-suid", "nosuid"), OPT("suid", "after nosuid"));
  t.ok(has("nodev", "nodev"), OPT("nodev"));
  t.ok(exists("nodev-then-dev") && !has("nodev-then-dev", "nodev"), OPT("dev", "after nodev"));
  t.ok(has("noexec", "noexec"), OPT("noexec"));
  t.ok(exists("noexec-then-exec") && !has("noexec-then-exec", "noexec"), OPT("exec", "after noexec"));
  t.ok(has("noatime", "noatime"), OPT("noatime"));
  t.ok(exists("noatime-then-atime") && !has("noatime-then-atime", "noatime"), OPT("atime", "after noatime"));
  t.ok(has("nodiratime", "nodiratime"), OPT("nodiratime"));
  t.ok(has("relatime", "relatime"), OPT("relatime"));
  t.ok(exists("strictatime") && !has("strictatime", "relatime") && !has("strictatime", "noatime"), OPT("strictatime"));
  t.ok(has("nosymfollow", "nosymfollow"), spec("config.md#linux-mount-options", "Runtimes SHOULD implement the nosymfollow option"));
  t.ok(has("defaults", "rw") && !has("defaults", "nosuid"), OPT("defaults"));
});

t.test("superblock flags and filesystem-specific options", async (t) => {
  const { mounts: m, out } = await optionMounts({
    sync: ["sync"],
    dirsync: ["dirsync"],
    lazytime: ["lazytime"],
    data: ["size=128k", "mode=711", "nr_inodes=1000"],
  });
  const sup = (name: string, o: string) => m[name]?.superOptions.includes(o) ?? false;
  t.ok(sup("sync", "sync"), OPT("sync"));
  t.ok(sup("dirsync", "dirsync"), OPT("dirsync"));
  t.ok(sup("lazytime", "lazytime"), OPT("lazytime"));
  t.ok(
    sup("data", "size=128k") && sup("data", "nr_inodes=1000"),
    spec("config.md#linux-mount-options", "Runtimes SHOULD treat unknown options as filesystem-specific ones and pass those as a comma-separated string to the fifth argument of mount(2)"),
    { superOptions: m.data?.superOptions },
  );
  t.equal((out["stat /tmp/data"] as { mode?: number } | undefined)?.mode, 0o711, spec("config.md#linux-mount-options", "Runtimes SHOULD treat unknown options as filesystem-specific ones", "mode=711 applied"));
});

/** A host directory tree with a file, a subdirectory and a tmpfs mounted on it (released by the returned function). */
function hostTree(name: string): { dir: string; release: () => void } {
  const dir = path.join(rt.scratch, name);
  fs.mkdirSync(path.join(dir, "sub"), { recursive: true });
  fs.writeFileSync(path.join(dir, "file"), "from the host\n");
  fs.writeFileSync(path.join(dir, "sub", "under-the-mount"), "hidden by the submount\n");
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "conformance", path.join(dir, "sub")]);
  fs.writeFileSync(path.join(dir, "sub", "on-submount"), "on the submount\n");
  return {
    dir,
    release: () => {
      try {
        execFileSync("umount", [path.join(dir, "sub")], { stdio: "ignore" });
      } catch {
        // gone
      }
    },
  };
}

t.test("bind and rbind", async (t) => {
  const tree = hostTree("tree");
  try {
    const file = path.join(rt.scratch, "single-file");
    fs.writeFileSync(file, "just a file\n");
    const o = await observe(rt, {
      checker: [
        "read", "/mnt/a/file",
        "stat", "/mnt/a/sub/on-submount",
        "stat", "/mnt/a/sub/under-the-mount",
        "stat", "/mnt/b/sub/on-submount",
        "read", "/mnt/c/the-file",
        "create", "/mnt/ro/probe",
        "create", "/mnt/rw/probe",
        "mounts",
      ],
      config: (c: Config) =>
        c.mounts.push(
          { destination: "/mnt/a", type: "none", source: tree.dir, options: ["bind"] },
          { destination: "/mnt/b", type: "none", source: tree.dir, options: ["rbind"] },
          { destination: "/mnt/c", type: "tmpfs", source: "tmpfs" },
          { destination: "/mnt/c/the-file", type: "none", source: file, options: ["bind"] },
          { destination: "/mnt/ro", type: "none", source: tree.dir, options: ["bind", "ro"] },
          { destination: "/mnt/rw", type: "none", source: tree.dir, options: ["bind", "rw"] },
        ),
    });
    const out = o.out ?? {};
    t.equal(out["read /mnt/a/file"]?.data, "from the host\n", OPT("bind", "directory"));
    t.ok(
      out["stat /mnt/a/sub/on-submount"]?.exists === false && out["stat /mnt/a/sub/under-the-mount"]?.exists === true,
      OPT("bind", "not recursive: the submount is not carried"),
    );
    t.equal(out["stat /mnt/b/sub/on-submount"]?.exists, true, OPT("rbind", "submounts are carried"));
    t.equal(out["read /mnt/c/the-file"]?.data, "just a file\n", OPT("bind", "file"));
    t.equal(out["create /mnt/ro/probe"]?.errno, EROFS, OPT("ro", "bind mount"));
    t.equal(out["create /mnt/rw/probe"]?.ok, true, OPT("rw", "bind mount"));
    fs.rmSync(path.join(tree.dir, "probe"), { force: true });
    t.equal(fs.readFileSync(path.join(tree.dir, "file"), "utf8"), "from the host\n", "(setup) the host tree is unchanged");
  } finally {
    tree.release();
  }
});

t.test("recursive mount attributes", async (t) => {
  const tree = hostTree("rtree");
  try {
    const o = await observe(rt, {
      checker: ["create", "/mnt/a/probe", "create", "/mnt/a/sub/probe", "mounts"],
      config: (c: Config) => c.mounts.push({ destination: "/mnt/a", type: "none", source: tree.dir, options: ["rbind", "rro", "rnosuid", "rnodev", "rnoexec"] }),
    });
    const ms = parseMountinfo(o.out?.mounts);
    const sub = mountAt(ms, "/mnt/a/sub");
    t.equal(o.out?.["create /mnt/a/sub/probe"]?.errno, EROFS, spec("config.md#linux-mount-options", "Runtimes SHOULD implement the rro option (recursive ro)"));
    t.ok(sub?.mountOptions.includes("nosuid"), spec("config.md#linux-mount-options", "Runtimes SHOULD implement the rnosuid option (recursive nosuid)"), { sub });
    t.ok(sub?.mountOptions.includes("nodev"), spec("config.md#linux-mount-options", "Runtimes SHOULD implement the rnodev option (recursive nodev)"));
    t.ok(sub?.mountOptions.includes("noexec"), spec("config.md#linux-mount-options", "Runtimes SHOULD implement the rnoexec option (recursive noexec)"));
  } finally {
    tree.release();
  }
});

t.test("bind mount propagation options", async (t) => {
  const src = path.join(rt.scratch, "prop-src");
  fs.mkdirSync(src, { recursive: true });
  const o = await observe(rt, {
    checker: ["mounts"],
    config: (c: Config) =>
      c.mounts.push(
        { destination: "/mnt/a", type: "none", source: src, options: ["rbind", "rshared"] },
        { destination: "/mnt/b", type: "none", source: src, options: ["rbind", "runbindable"] },
        { destination: "/mnt/c", type: "none", source: src, options: ["rbind", "rprivate"] },
      ),
  });
  const ms = parseMountinfo(o.out?.mounts);
  const opt = (mp: string) => mountAt(ms, mp)?.optional ?? [];
  t.ok(opt("/mnt/a").some((f) => f.startsWith("shared:")), OPT("rshared"), { optional: opt("/mnt/a") });
  t.ok(opt("/mnt/b").includes("unbindable"), OPT("runbindable"), { optional: opt("/mnt/b") });
  t.ok(mountAt(ms, "/mnt/c") !== undefined && opt("/mnt/c").length === 0, OPT("rprivate"), { optional: opt("/mnt/c") });
});

t.test("sources and destinations", async (t) => {
  const o = await observe(rt, {
    checker: ["read", "/mnt/a/in-bundle", "mounts"],
    config: (c: Config) =>
      c.mounts.push(
        { destination: "/mnt/a", type: "none", source: "volume", options: ["bind"] },
        { destination: "mnt/b", type: "tmpfs", source: "tmpfs", options: ["size=80k"] },
      ),
    bundleSetup: (dir: string) => {
      fs.mkdirSync(path.join(dir, "volume"));
      fs.writeFileSync(path.join(dir, "volume", "in-bundle"), "relative source\n");
    },
  });
  t.equal(o.out?.["read /mnt/a/in-bundle"]?.data, "relative source\n", spec("config.md#mounts", "Path values for bind mounts are either absolute or relative to the bundle", "relative"));
  const b = mountAt(parseMountinfo(o.out?.mounts), "/mnt/b");
  t.ok(b?.superOptions.includes("size=80k"), spec("config.md#mounts", "destination MAY be a relative path, in which case it MUST be interpreted as relative to /"), { b });
});

t.test("idmap", async (t) => {
  const src = path.join(rt.scratch, "idmap-src");
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, "owned"), "x");
  fs.chownSync(path.join(src, "owned"), 1000, 1000);
  const noMapping = await observe(rt, {
    checker: ["stat", "/mnt/a/owned"],
    config: (c: Config) => c.mounts.push({ destination: "/mnt/a", type: "none", source: src, options: ["bind", "idmap"] }),
  });
  t.not(noMapping.create.code, 0, spec("config.md#linux-mount-options", "idmap: If there are no uidMappings and gidMappings specified and the container isn't using user namespaces, an error MUST be returned"), {
    out: noMapping.out,
  });
  // The mapping has the format of the user namespace mappings and is written as one (runc 1.2,
  // crun since 1.8.2): an id containerID on the source filesystem shows as hostID.
  const mapped = await observe(rt, {
    checker: ["stat", "/mnt/a/owned"],
    config: (c: Config) =>
      c.mounts.push({
        destination: "/mnt/a",
        type: "none",
        source: src,
        options: ["bind", "idmap"],
        uidMappings: [{ containerID: 1000, hostID: 0, size: 1 }],
        gidMappings: [{ containerID: 1000, hostID: 0, size: 1 }],
      }),
  });
  const st = mapped.out?.["stat /mnt/a/owned"];
  t.same([st?.uid, st?.gid], [0, 0], spec("config.md#linux-mount-options", "idmap: If uidMappings or gidMappings are specified for the mount, the runtime MUST use those values for the mount's mapping"), {
    create: mapped.create,
    stderr: mapped.stderr,
  });
});

leavesNothingBehind(t, rt);
