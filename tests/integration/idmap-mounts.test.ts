// Idmapped mounts (runtime-spec 1.2+: mounts[].uidMappings/gidMappings, the "idmap" and "ridmap"
// options): owners as the container sees them, where its writes land on the host, ridmap against
// idmap on a tree with a submount, and the refusals (config errors, kernel errors).
//
// The direction of a mount's mapping (as runc 1.2 and crun write it, and the spec's "same format
// as user namespace mappings"): an id `containerID` on the source filesystem shows as `hostID`
// outside any user namespace, which the container's user namespace then maps as usual.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { makeBundle, type ConfigObject } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { containerId, testRoot, tsrun } from "../lib/tsrun.ts";
import type { TestLike } from "../lib/context.ts";
import { expectCreateRefused } from "../lib/refused-create.ts";

if (process.geteuid?.() !== 0) {
  t.plan(0, "needs root");
  process.exit(0);
}

type Mapping = { containerID: number; hostID: number; size: number };
const map = (containerID: number, hostID: number, size = 1): Mapping[] => [{ containerID, hostID, size }];

/** The container's user namespace: container root is host uid/gid 100000. */
function userns(c: ConfigObject): void {
  c.linux.namespaces.push({ type: "user" });
  c.linux.uidMappings = map(0, 100000, 65536);
  c.linux.gidMappings = map(0, 100000, 65536);
}

function run(t: TestLike, root: string, script: string, mutate: (c: ConfigObject) => void): { code: number; out: string; err: string } {
  const bundle = makeBundle(t, { args: ["sh", "-c", script], config: mutate });
  const r = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** A host directory (traversable by the container's users) owned by uid:gid, with a file f. */
function ownedDir(t: TestLike, uid: number, gid: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-idmap-"));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, "f"), "x");
  for (const p of [dir, path.join(dir, "f")]) fs.chownSync(p, uid, gid);
  return dir;
}

const owner = (p: string): string => {
  const st = fs.statSync(p);
  return `${st.uid}:${st.gid}`;
};

t.test("idmapped mounts", async (t) => {
  leakCheck(t);
  const root = testRoot(t);

  t.test("a host directory owned by 1000 is root's in a user-namespaced container; its writes land as 1000", async (t) => {
    const src = ownedDir(t, 1000, 1000);
    // On disk 1000 -> 100000 outside any user namespace -> 0 in the container's (0 -> 100000).
    const r = run(t, root, "stat -c '%u:%g' /tmp/a /tmp/a/f /tmp/plain/f; touch /tmp/a/new && mkdir /tmp/a/sub && stat -c '%u:%g' /tmp/a/new /tmp/a/sub", (c) => {
      userns(c);
      c.mounts.push({ destination: "/tmp/a", type: "bind", source: src, options: ["bind", "idmap"], uidMappings: map(1000, 100000), gidMappings: map(1000, 100000) });
      c.mounts.push({ destination: "/tmp/plain", type: "bind", source: src, options: ["bind"] });
    });
    t.equal(r.code, 0, r.err);
    t.equal(r.out, "0:0\n0:0\n65534:65534\n0:0\n0:0\n", "root's inside; the same directory bound without a mapping shows as unmapped");
    t.equal(owner(path.join(src, "new")), "1000:1000", "a file created inside is 1000's on the host");
    t.equal(owner(path.join(src, "sub")), "1000:1000", "and so is a directory");
  });

  t.test('"idmap" without mappings of its own takes the container\'s user namespace mapping', async (t) => {
    const src = ownedDir(t, 0, 0);
    const r = run(t, root, "stat -c '%u:%g' /tmp/a/f; touch /tmp/a/new", (c) => {
      userns(c);
      c.mounts.push({ destination: "/tmp/a", type: "bind", source: src, options: ["rbind", "idmap"] });
    });
    t.equal(r.code, 0, r.err);
    t.equal(r.out, "0:0\n", "the host's root files are the container root's");
    t.equal(owner(path.join(src, "new")), "0:0", "and what the container's root writes is the host root's");
  });

  t.test("without a user namespace of its own the container sees hostID; a relative source is the bundle's", async (t) => {
    const r = run(t, root, "stat -c '%u:%g' /tmp/a/f", (c) => {
      c.mounts.push({ destination: "/tmp/a", type: "bind", source: "vol", options: ["bind", "idmap"], uidMappings: map(0, 4000, 10), gidMappings: map(0, 5000, 10) });
    });
    t.equal(r.code, 1);
    t.match(r.err, /^tsrun: unable to start container process: idmapped mount \/\S+\/vol on \/tmp\/a: open_tree \S+\/vol: no such file or directory\n$/, "a missing source, named");
    const bundle = makeBundle(t, {
      args: ["stat", "-c", "%u:%g", "/tmp/a/f"],
      config: (c) => c.mounts.push({ destination: "/tmp/a", type: "bind", source: "vol", options: ["bind", "idmap"], uidMappings: map(0, 4000, 10), gidMappings: map(0, 5000, 10) }),
    });
    fs.mkdirSync(path.join(bundle.dir, "vol"));
    fs.writeFileSync(path.join(bundle.dir, "vol", "f"), "x");
    fs.chownSync(path.join(bundle.dir, "vol", "f"), 3, 4);
    const ok = tsrun(["run", "--bundle", bundle.dir, containerId()], { root });
    t.equal(ok.code, 0, ok.stderr);
    t.equal(ok.stdout, "4003:5004\n");
  });

  t.test("rbind of a directory with a submount: ridmap maps the submount too, idmap only the top", async (t) => {
    const src = ownedDir(t, 1000, 1000);
    const subsrc = ownedDir(t, 1000, 1000);
    fs.mkdirSync(path.join(src, "sub"));
    t.equal(spawnSync("mount", ["--bind", subsrc, path.join(src, "sub")]).status, 0);
    t.teardown(() => spawnSync("umount", ["-l", path.join(src, "sub")]));
    const script = "stat -c '%u' /tmp/a/f /tmp/a/sub/f; grep -c ' /tmp/a[/ ].*idmapped' /proc/self/mountinfo";
    const mount = (option: string) => (c: ConfigObject) => {
      userns(c);
      c.mounts.push({ destination: "/tmp/a", type: "bind", source: src, options: ["rbind", option], uidMappings: map(1000, 100000), gidMappings: map(1000, 100000) });
    };
    const top = run(t, root, script, mount("idmap"));
    t.equal(top.code, 0, top.err);
    t.equal(top.out, "0\n65534\n1\n", "idmap: the submount keeps the host's owner (unmapped in the container)");
    const all = run(t, root, script, mount("ridmap"));
    t.equal(all.code, 0, all.err);
    t.equal(all.out, "0\n0\n2\n", "ridmap: the submount is id-mapped too");
    t.equal(spawnSync("umount", [path.join(src, "sub")]).status, 0, "the host's submount is still there, and only once");
  });

  t.test("a filesystem without idmapped mounts: the kernel's refusal names the mount, nothing is left", async (t) => {
    const bundle = makeBundle(t, {
      config: (c) => c.mounts.push({ destination: "/mnt/k", type: "bind", source: "/sys/kernel", options: ["rbind", "ridmap"], uidMappings: map(0, 100000, 10), gidMappings: map(0, 100000, 10) }),
    });
    const id = containerId();
    const r = tsrun(["create", "--bundle", bundle.dir, id], { root });
    t.equal(r.code, 1);
    t.equal(r.stderr, "tsrun: unable to start container process: idmapped mount /sys/kernel on /mnt/k: set MOUNT_ATTR_IDMAP: invalid argument (the filesystem of the source, or of a mount under it, does not support idmapped mounts)\n");
    t.notOk(fs.existsSync(path.join(root, id)), "no state dir");
  });

  t.test("bad inputs: one line each, naming the JSON path, nothing left", async (t) => {
    const src = ownedDir(t, 0, 0);
    const bind = (extra: object) => (c: ConfigObject) => c.mounts.push({ destination: "/tmp/a", type: "bind", source: src, options: ["bind", "idmap"], ...extra });
    const cases: [string, (c: ConfigObject) => void, RegExp][] = [
      ["idmap on a tmpfs", (c) => c.mounts.push({ destination: "/mnt/t", type: "tmpfs", source: "tmpfs", options: ["idmap"] }),
        /^tsrun: config\.json: mounts\[\d+\]\.options: "idmap" is only for bind mounts \("bind" or "rbind" in options\)\n$/],
      ["mappings on a tmpfs", (c) => c.mounts.push({ destination: "/mnt/t", type: "tmpfs", source: "tmpfs", uidMappings: map(0, 1), gidMappings: map(0, 1) }),
        /^tsrun: config\.json: mounts\[\d+\]\.uidMappings: id-mapped mounts must be bind mounts/],
      ["idmap without mappings or a user namespace", bind({}),
        /^tsrun: config\.json: mounts\[\d+\]\.options: "idmap" needs uidMappings and gidMappings on the mount, or a user namespace for the container \(no "user" in linux\.namespaces\)\n$/],
      ["uidMappings without gidMappings", bind({ uidMappings: map(0, 100000) }),
        /^tsrun: config\.json: mounts\[\d+\]\.gidMappings: is required when uidMappings is set \(id-mapped mounts need both\)\n$/],
      ["a size of 0", bind({ uidMappings: [{ containerID: 0, hostID: 1, size: 0 }], gidMappings: map(0, 1) }),
        /^tsrun: config\.json: mounts\[\d+\]\.uidMappings\[0\]\.size: must be greater than 0\n$/],
      ["overlapping ranges", bind({ uidMappings: map(0, 1), gidMappings: [...map(0, 100000, 100), ...map(50, 200000, 10)] }),
        /^tsrun: config\.json: mounts\[\d+\]\.gidMappings\[1\]\.containerID: range 50-59 overlaps mounts\[\d+\]\.gidMappings\[0\] \(0-99\)\n$/],
      ["a range past the last id", bind({ uidMappings: map(0, 4294967000, 1000), gidMappings: map(0, 1) }),
        /^tsrun: config\.json: mounts\[\d+\]\.uidMappings\[0\]\.size: hostID 4294967000 \+ size 1000 goes past 4294967294/],
    ];
    for (const [name, mutate, want] of cases) expectCreateRefused(t, root, name, mutate, want);
    t.same(fs.readdirSync(src), ["f"], "nothing was written to the source");
  });
});
