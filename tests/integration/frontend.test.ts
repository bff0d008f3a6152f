// The C front end (frontend/tsrun.c): `start` of a container without start hooks is done by it
// alone, from the start.fast that create writes; anything else goes to tsrun-main. A copy of the
// front end without tsrun-main beside it shows which path was taken: the fast path works, every
// other path fails with its one-line "cannot find" error.
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { makeBundle, type BundleOptions } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { realDir, removeAtTeardown, type TestLike } from "../lib/context.ts";
import { TSRUN, containerId, testRoot, tsrun } from "../lib/tsrun.ts";

const CANNOT_FIND = /^tsrun: cannot find tsrun-main next to \S+ or in \.\.\/libexec\/tsrun\n$/;

/** build/tsrun copied alone into a fresh dir. */
function loneFrontEnd(t: TestLike): string {
  const dir = realDir(fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-front-")));
  removeAtTeardown(t, dir, "lone front end");
  const bin = path.join(dir, "tsrun");
  fs.copyFileSync(TSRUN, bin);
  fs.chmodSync(bin, 0o755);
  return bin;
}

function runLone(bin: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(bin, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function createSleeper(t: TestLike, root: string, config?: BundleOptions["config"]): { id: string; dir: string; pid: number } {
  const bundle = makeBundle(t, { args: ["sleep", "1000"], ...(config ? { config } : {}) });
  const id = containerId();
  const created = tsrun(["create", "--bundle", bundle.dir, id], { root });
  if (created.code !== 0) throw new Error(`create: ${created.stderr}`);
  const state = tsrun(["state", id], { root });
  return { id, dir: path.join(root, id), pid: JSON.parse(state.stdout).pid };
}

function status(root: string, id: string): string {
  const r = tsrun(["state", id], { root });
  if (r.code !== 0) throw new Error(`state ${id}: ${r.stderr}`);
  return JSON.parse(r.stdout).status;
}

function startTimeOf(pid: number): string {
  const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return text.slice(text.lastIndexOf(")") + 2).split(" ")[19]!;
}

t.test("the front end starts a container without start hooks by itself", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const lone = loneFrontEnd(t);
  const c = createSleeper(t, root);
  t.equal(fs.readFileSync(path.join(c.dir, "start.fast"), "utf8"), `1 ${c.pid} ${startTimeOf(c.pid)}\n`, "create wrote start.fast");

  const started = runLone(lone, ["--root", root, "start", c.id]);
  t.same(started, { code: 0, stdout: "", stderr: "" }, "start without tsrun-main: the fast path");
  t.equal(status(root, c.id), "running");

  const state = runLone(lone, ["--root", root, "state", c.id]);
  t.equal(state.code, 1, "state is not the front end's");
  t.match(state.stderr, CANNOT_FIND, "one line: tsrun-main not found");
  t.equal(state.stdout, "");

  const again = runLone(lone, ["--root", root, "start", c.id]);
  t.equal(again.code, 1);
  t.match(again.stderr, CANNOT_FIND, "a started container goes to tsrun-main for its error");
  const full = tsrun(["start", c.id], { root });
  t.same([full.code, full.stderr], [1, "tsrun: cannot start an already running container\n"], "which gives the usual error");

  t.equal(tsrun(["delete", "--force", c.id], { root }).code, 0);
});

t.test("the fast path takes --root=DIR, --log and --log-format, and leaves an empty log", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const lone = loneFrontEnd(t);
  const log = path.join(path.dirname(lone), "log.json");
  const c = createSleeper(t, root);
  const started = runLone(lone, [`--root=${root}`, "--log", log, "--log-format", "json", "start", c.id]);
  t.same(started, { code: 0, stdout: "", stderr: "" });
  t.equal(fs.readFileSync(log, "utf8"), "", "the log is made, as tsrun-main makes it, and nothing is logged");
  t.equal(status(root, c.id), "running");
  t.equal(tsrun(["delete", "--force", c.id], { root }).code, 0);
});

t.test("anything the fast path is not sure of goes to tsrun-main", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const lone = loneFrontEnd(t);
  const c = createSleeper(t, root);
  const fast = path.join(c.dir, "start.fast");
  const good = fs.readFileSync(fast, "utf8");
  const cases: [string, string[]][] = [
    ["--debug", ["--root", root, "--debug", "start", c.id]],
    ["an extra operand", ["--root", root, "start", c.id, "x"]],
    ["--help", ["--root", root, "start", "--help", c.id]],
    ["a repeated --root", ["--root", root, "--root", root, "start", c.id]],
    ["a root with ..", ["--root", `${root}/../${path.basename(root)}`, "start", c.id]],
    ["an unknown --log-format", ["--root", root, "--log-format", "xml", "start", c.id]],
    ["an invalid id", ["--root", root, "start", "../x"]],
  ];
  for (const [what, args] of cases) {
    const r = runLone(lone, args);
    t.match(r.stderr, CANNOT_FIND, what);
  }
  const files: [string, string][] = [
    ["another start time", `1 ${c.pid} 1\n`],
    ["another version", good.replace(/^1 /, "2 ")],
    ["trailing bytes", good + "x"],
    ["no pid", "1  1\n"],
  ];
  for (const [what, text] of files) {
    fs.writeFileSync(fast, text);
    t.match(runLone(lone, ["--root", root, "start", c.id]).stderr, CANNOT_FIND, `start.fast with ${what}`);
  }
  fs.rmSync(fast);
  t.match(runLone(lone, ["--root", root, "start", c.id]).stderr, CANNOT_FIND, "no start.fast");
  t.equal(status(root, c.id), "created", "none of them started it");
  t.equal(tsrun(["start", c.id], { root }).code, 0, "tsrun-main starts it without start.fast");
  t.equal(status(root, c.id), "running");
  t.equal(tsrun(["delete", "--force", c.id], { root }).code, 0);
});

t.test("no start.fast with startContainer or poststart hooks", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const kind of ["startContainer", "poststart"] as const) {
    const c = createSleeper(t, root, (cfg) => {
      (cfg as { hooks?: Record<string, unknown> }).hooks = { [kind]: [{ path: "/bin/true" }] };
    });
    t.notOk(fs.existsSync(path.join(c.dir, "start.fast")), `${kind}: start is left to tsrun-main`);
    const started = tsrun(["start", c.id], { root });
    t.same([started.code, started.stderr], [0, ""], `${kind}: start runs the hook and starts it`);
    t.equal(status(root, c.id), "running");
    t.equal(tsrun(["delete", "--force", c.id], { root }).code, 0);
  }
});

t.test("a fast start whose exec.fifo write failed is worded and logged by tsrun-main", async (t) => {
  // The front end, past the unlink, hands the errno over in TSRUN_FRONTEND_WRITE_ERRNO (a write
  // to a fifo whose reader vanished cannot be arranged reliably, so the hand-over is run as is).
  const dir = realDir(fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-front-log-")));
  removeAtTeardown(t, dir, "log dir");
  const log = path.join(dir, "log.json");
  const r = tsrun(["--log", log, "--log-format", "json", "start", "whatever-id"], { env: { TSRUN_FRONTEND_WRITE_ERRNO: "32" } });
  t.equal(r.code, 1);
  t.equal(r.stderr, "tsrun: cannot write to exec fifo: broken pipe\n");
  const line = JSON.parse(fs.readFileSync(log, "utf8").trim().split("\n").pop()!) as { level: string; msg: string };
  t.same([line.level, line.msg], ["error", "cannot write to exec fifo: broken pipe"], "logged as every error is");
});
