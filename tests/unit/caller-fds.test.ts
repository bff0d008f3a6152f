// The caller's fds as the C front end lists them (_TSRUN_CALLER_FDS), and the --preserve-fds check.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CALLER_FDS_ENV, checkPreservedFds, parseFdList, takeCallerFds } from "../../src/linux/caller-fds.ts";
import { writeFileAtomic } from "../../src/linux/atomic-write.ts";

t.test("parseFdList reads ranges and single fds, and skips what it cannot read", async (t) => {
  t.same([...parseFdList("3-5,8")], [3, 4, 5, 8]);
  t.same([...parseFdList("")], []);
  t.same([...parseFdList("3,x,5-,-2,7")], [3, 7]);
});

t.test("checkPreservedFds: every fd of 3..3+N-1 must have been passed", async (t) => {
  const env: NodeJS.ProcessEnv = { [CALLER_FDS_ENV]: "3,5" };
  takeCallerFds(env);
  t.notOk(CALLER_FDS_ENV in env, "taken out of the environment");
  t.doesNotThrow(() => checkPreservedFds(0));
  t.doesNotThrow(() => checkPreservedFds(1));
  t.throws(() => checkPreservedFds(3), { message: "--preserve-fds 3: fd 4 was not passed to tsrun (it is closed or close-on-exec)" });
  takeCallerFds({});
  t.doesNotThrow(() => checkPreservedFds(0));
  t.throws(() => checkPreservedFds(1), { message: /cannot tell which fds the caller passed/ });
});

t.test("writeFileAtomic replaces the file (and a symlink at its path) and leaves no temporary file", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-atomic-"));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const target = path.join(dir, "victim");
  fs.writeFileSync(target, "keep");
  fs.symlinkSync(target, path.join(dir, "f"));
  writeFileAtomic(path.join(dir, "f"), "new", 0o600);
  t.equal(fs.readFileSync(target, "utf8"), "keep");
  t.ok(fs.lstatSync(path.join(dir, "f")).isFile());
  t.equal(fs.readFileSync(path.join(dir, "f"), "utf8"), "new");
  t.same(fs.readdirSync(dir).sort(), ["f", "victim"]);
  t.throws(() => writeFileAtomic(path.join(dir, "no-such-dir", "f"), "x", 0o600), { code: "ENOENT" });
});
