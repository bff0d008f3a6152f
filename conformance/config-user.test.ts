// config.md, User (POSIX): uid, gid, additionalGids, umask.
import t from "tap";
import { observe } from "./lib/container.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

t.test("uid, gid and additional gids", async (t) => {
  const o = await observe(rt, {
    checker: ["ids"],
    config: (c) => (c.process.user = { uid: 1000, gid: 1001, additionalGids: [5, 2000] }),
  });
  const ids = o.out?.ids;
  t.same([ids?.uid, ids?.euid, ids?.suid], [1000, 1000, 1000], spec("config.md#posix-user", "uid (int, REQUIRED) specifies the user ID in the container namespace"));
  t.same([ids?.gid, ids?.egid, ids?.sgid], [1001, 1001, 1001], spec("config.md#posix-user", "gid (int, REQUIRED) specifies the group ID in the container namespace"));
  t.ok(ids && [5, 2000].every((g) => ids.groups.includes(g)), spec("config.md#posix-user", "additionalGids (array of ints, OPTIONAL) specifies additional group IDs in the container namespace to be added to the process"), {
    groups: ids?.groups,
  });

  const root = await observe(rt, { checker: ["ids"], config: (c) => (c.process.user = { uid: 0, gid: 0 }) });
  t.same([root.out?.ids?.uid, root.out?.ids?.gid], [0, 0], spec("config.md#posix-user", "uid (int, REQUIRED) specifies the user ID in the container namespace", "root"));
  const unlisted = (root.out?.ids?.groups ?? []).filter((g: number) => g !== 0);
  t.same(unlisted, [], spec("config.md#posix-user", "additionalGids: only the configured groups are added", "none configured"));
});

t.test("umask", async (t) => {
  const o = await observe(rt, { checker: ["ids"], config: (c) => (c.process.user.umask = 0o077) });
  t.equal(o.out?.ids?.umask, 0o077, spec("config.md#posix-user", "umask (int, OPTIONAL) specifies the umask of the user"));
  const zero = await observe(rt, { checker: ["ids"], config: (c) => (c.process.user.umask = 0) });
  t.equal(zero.out?.ids?.umask, 0, spec("config.md#posix-user", "umask (int, OPTIONAL) specifies the umask of the user", "0"));
  // The runtime runs with umask 027; with no umask in the config the container keeps it.
  const unset = await observe(rt, { checker: ["ids"], run: { shellPrefix: "umask 027" }, config: (c) => delete c.process.user.umask });
  t.equal(unset.out?.ids?.umask, 0o027, spec("config.md#posix-user", "If unspecified, the umask should not be changed from the calling process' umask"));
});

leavesNothingBehind(t, rt);
