// config.md, Root: path (absolute or relative to the bundle) and readonly.
import t from "tap";
import { observe } from "./lib/container.ts";
import { ensureRootfs } from "./lib/build.ts";
import { EROFS } from "./lib/linux.ts";
import { parseMountinfo } from "./lib/mounts.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

t.test("absolute root.path", async (t) => {
  const o = await observe(rt, { checker: ["stat", "/checker"], config: (c) => (c.root = { path: ensureRootfs() }) });
  t.equal(o.out?.["stat /checker"]?.exists, true, spec("config.md#root", "path (string, REQUIRED) Specifies the path to the root filesystem for the container", "absolute"));
});

t.test("relative root.path", async (t) => {
  const o = await observe(rt, { checker: ["stat", "/checker"], copyRootfs: true });
  t.equal(o.out?.["stat /checker"]?.exists, true, spec("config.md#root", "path is either an absolute path or a relative path to the bundle", "relative"));
});

t.test("readonly", async (t) => {
  const ro = await observe(rt, { checker: ["create", "/new-file", "mounts"], config: (c) => (c.root.readonly = true) });
  t.equal(ro.out?.["create /new-file"]?.errno, EROFS, spec("config.md#root", "readonly (bool, OPTIONAL) If true then the root filesystem MUST be read-only inside the container", "writes fail with EROFS"));
  const rootMount = parseMountinfo(ro.out?.mounts).find((m) => m.mountPoint === "/");
  t.ok(rootMount?.mountOptions.includes("ro"), spec("config.md#root", "readonly (bool, OPTIONAL) If true then the root filesystem MUST be read-only inside the container", "mounted ro"), {
    root: rootMount,
  });

  const rw = await observe(rt, { checker: ["create", "/new-file"], copyRootfs: true, config: (c) => (c.root.readonly = false) });
  t.equal(rw.out?.["create /new-file"]?.ok, true, spec("config.md#root", "readonly defaults to false", "false: writable"));
  const dflt = await observe(rt, { checker: ["create", "/new-file"], copyRootfs: true, config: (c) => delete c.root.readonly });
  t.equal(dflt.out?.["create /new-file"]?.ok, true, spec("config.md#root", "readonly defaults to false", "unset: writable"));
});

leavesNothingBehind(t, rt);
