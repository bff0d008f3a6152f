// Tests of the tsrun runner helpers (tests/lib/tsrun.ts) against a stub tsrun, so they do not
// depend on the real binary. TSRUN_BIN is read when tsrun.ts loads, hence the dynamic import.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestLike } from "../lib/context.ts";

const stubDir = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-testlib-"));
t.teardown(() => fs.rmSync(stubDir, { recursive: true, force: true }));
const stub = path.join(stubDir, "tsrun");
// Prints its arguments and tag, echoes stdin, and acts out a few commands.
fs.writeFileSync(
  stub,
  `#!/bin/sh
echo "args:$*"
echo "tag:$TSRUN_TEST_TAG"
echo "cwd:$(pwd)"
case " $* " in
*" delete --force gone "*) echo 'container does not exist' >&2; exit 1 ;;
*" delete --force broken "*) echo 'permission denied' >&2; exit 1 ;;
*" delete --force "*) rm -rf "$2/$5"; exit 0 ;;
*" cat "*) cat ;;
*" fail "*) echo oops >&2; exit 3 ;;
*" hang "*) exec sleep 1000 ;;
*" daemon "*) sleep 1000 & echo "bg:$!"; exit 0 ;;
esac
exit 0
`,
  { mode: 0o755 },
);
process.env.TSRUN_BIN = stub;
const { TSRUN, TEST_TAG, cleanupContainer, containerId, spawnTsrun, testRoot, tsrun, tsrunAsync } = await import("../lib/tsrun.ts");
const { leakCheck } = await import("../lib/leaks.ts");

t.test("TSRUN honours TSRUN_BIN; ids and tag name the test file", async (t) => {
  t.equal(TSRUN, stub);
  t.match(TEST_TAG, new RegExp(`^testlib-tsrun-${process.pid}$`));
  const a = containerId();
  const b = containerId("x");
  t.match(a, new RegExp(`^${TEST_TAG}-\\d+$`));
  t.match(b, new RegExp(`^${TEST_TAG}-\\d+-x$`));
  t.not(a, b);
  t.match(a, /^[A-Za-z0-9_+.-]+$/, "a valid container id");
});

t.test("tsrun puts --root first, passes stdin, env, cwd, and reports exit codes", async (t) => {
  leakCheck(t);
  const r = tsrun(["state", "c1"], { root: "/run/x" });
  t.equal(r.code, 0);
  t.match(r.stdout, "args:--root /run/x state c1\n");
  t.match(r.stdout, `tag:${TEST_TAG}\n`);
  t.equal(r.stderr, "");
  t.match(tsrun(["list"]).stdout, "args:list\n", "no --root when none is given");
  t.match(tsrun(["cat"], { input: "from stdin" }).stdout, /from stdin$/);
  t.match(tsrun(["cat"]).stdout, /cwd:.*\n$/, "stdin is empty by default");
  t.match(tsrun(["x"], { cwd: "/tmp" }).stdout, "cwd:/tmp\n");
  t.match(tsrun(["x"], { env: { TSRUN_TEST_TAG: "override" } }).stdout, "tag:override\n");
  const f = tsrun(["fail"]);
  t.equal(f.code, 3);
  t.equal(f.stderr, "oops\n");
  const h = tsrun(["hang"], { timeoutMs: 300 });
  t.equal(h.signal, "SIGKILL", "a hung tsrun is killed after timeoutMs");
  t.equal(h.code, 128 + 9);
});

t.test("tsrunAsync and spawnTsrun", async (t) => {
  leakCheck(t);
  const r = await tsrunAsync(["run", "c2"], { root: "/run/y" });
  t.equal(r.code, 0);
  t.match(r.stdout, "args:--root /run/y run c2\n");
  t.match((await tsrunAsync(["cat"], { input: "abc" })).stdout, /abc$/);
  const { child, done } = spawnTsrun(["cat"]);
  child.stdin!.end("streamed");
  t.match((await done).stdout, /streamed$/);
  const hang = spawnTsrun(["hang"]);
  await new Promise((r) => setTimeout(r, 100));
  hang.child.kill("SIGTERM");
  const hr = await hang.done;
  t.equal(hr.signal, "SIGTERM");
  t.equal(hr.code, 128 + 15);
});

t.test("tsrun and tsrunAsync return when tsrun exits, though its stdio lives on", async (t) => {
  // As after `create`: the container inherits tsrun's stdout and stderr and outlives tsrun.
  leakCheck(t);
  for (const r of [tsrun(["daemon"]), await tsrunAsync(["daemon"])]) {
    t.equal(r.code, 0);
    t.equal(r.signal, null, "not killed by the timeout");
    const bg = Number(/bg:(\d+)/.exec(r.stdout)?.[1]);
    t.ok(bg > 0, "the stub left a process holding stdout");
    process.kill(bg, "SIGKILL");
  }
});

t.test("testRoot and cleanupContainer", async (t) => {
  let root = "";
  await t.test("root", async (t) => {
    root = testRoot(t);
    t.ok(root.startsWith(`/run/tsrun-test/${TEST_TAG}-r`));
    t.same(fs.readdirSync(root), []);
    t.equal(fs.statSync(root).mode & 0o777, 0o700);
    t.notOk(cleanupContainer(root, "gone"), "a container that does not exist is fine");
    t.throws(() => cleanupContainer(root, "broken"), /permission denied/);
    fs.mkdirSync(path.join(root, "deleted"));
    t.ok(cleanupContainer(root, "deleted"));
    t.notOk(fs.existsSync(path.join(root, "deleted")));
  });
  t.notOk(fs.existsSync(root), "state dir removed when the test ended");

  // Containers left in a test root are force-deleted at teardown (here by the stub).
  const teardowns: Array<() => unknown> = [];
  const ft: TestLike = { teardown: (fn) => void teardowns.push(fn), fail: () => false };
  const r2 = testRoot(ft);
  fs.mkdirSync(path.join(r2, "left"));
  for (let fn; (fn = teardowns.pop()); ) await fn();
  t.notOk(fs.existsSync(r2));
});
