// The C front end (frontend/tsrun.c): `start` without start hooks, `state`, `kill ID [N]` and
// `delete` of a stopped container without poststop hooks are done by it alone, from the file
// `fast` that create writes (src/lifecycle/fast-path.ts); anything else goes to tsrun-main. A copy
// of the front end without tsrun-main beside it shows which path was taken: a fast path works,
// every other path fails with its one-line "cannot find" error. Where the front end answers, it
// answers as tsrun-main does: each command is also run through tsrun-main (build/tsrun-main,
// which never takes a fast path) on a twin container, and the two are compared.
import { procStat } from "../../src/linux/proc.ts";
import { crc32 } from "../../src/lifecycle/fast-path.ts";
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { makeBundle, type BundleOptions } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { realDir, removeAtTeardown, type TestLike } from "../lib/context.ts";
import { TSRUN, containerId, testRoot, tsrun } from "../lib/tsrun.ts";

const TSRUN_MAIN = path.join(path.dirname(TSRUN), "tsrun-main");

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

function startSleeper(t: TestLike, root: string): { id: string; dir: string; pid: number } {
  const c = createSleeper(t, root);
  const started = tsrun(["start", c.id], { root });
  if (started.code !== 0) throw new Error(`start: ${started.stderr}`);
  return c;
}

function status(root: string, id: string): string {
  const r = tsrun(["state", id], { root });
  if (r.code !== 0) throw new Error(`state ${id}: ${r.stderr}`);
  return JSON.parse(r.stdout).status;
}

/** "SIZE CRC" of dir's state.json: its length and CRC-32 in hex (the written-out one that
 * tests/unit/fast-path.test.ts checks against zlib's; Bun and the front end use their own). */
function recordId(dir: string): string {
  const bytes = fs.readFileSync(path.join(dir, "state.json"));
  return `${bytes.length} ${crc32(bytes).toString(16)}`;
}


t.test("the front end starts a container without start hooks by itself", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const lone = loneFrontEnd(t);
  const c = createSleeper(t, root);
  t.match(fs.readFileSync(path.join(c.dir, "fast"), "utf8"), new RegExp(`^tsrun-fast 4\nrecord \\d+\n${recordId(c.dir)}\ninit ${`${c.pid} ${procStat(c.pid)!.startTime}`.length}\n${c.pid} ${procStat(c.pid)!.startTime}\nstart 0\n\n`), "create wrote fast, start included");

  const started = runLone(lone, ["--root", root, "start", c.id]);
  t.same(started, { code: 0, stdout: "", stderr: "" }, "start without tsrun-main: the fast path");
  t.equal(status(root, c.id), "running");

  const list = runLone(lone, ["--root", root, "list"]);
  t.equal(list.code, 1, "list is not the front end's");
  t.match(list.stderr, CANNOT_FIND, "one line: tsrun-main not found");
  t.equal(list.stdout, "");

  const again = runLone(lone, ["--root", root, "start", c.id]);
  t.equal(again.code, 1);
  t.match(again.stderr, CANNOT_FIND, "a started container goes to tsrun-main for its error");
  const full = tsrun(["start", c.id], { root });
  t.same([full.code, full.stderr], [1, "tsrun: cannot start an already running container\n"], "which gives the usual error");

  t.equal(tsrun(["delete", "--force", c.id], { root }).code, 0);
});

t.test("after update the front end answers again, from a fast file for the new record", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const lone = loneFrontEnd(t);
  const c = createSleeper(t, root);
  const before = fs.readFileSync(path.join(c.dir, "fast"), "utf8");
  const updated = tsrun(["update", "--cpu-share", "512", c.id], { root });
  t.equal(updated.code, 0, `update: ${updated.stderr}`);
  const after = fs.readFileSync(path.join(c.dir, "fast"), "utf8");
  t.not(after, before, "the fast file was written again");
  t.match(after, new RegExp(`^tsrun-fast 4\nrecord \\d+\n${recordId(c.dir)}\n`), "it names the new state.json");
  const state = runLone(lone, ["--root", root, "state", c.id]);
  t.equal(state.code, 0, "state without tsrun-main: the fast path");
  t.equal(state.stdout, tsrun(["state", c.id], { root, main: true }).stdout, "as tsrun-main says it");
  t.same(runLone(lone, ["--root", root, "start", c.id]), { code: 0, stdout: "", stderr: "" }, "start is still the front end's");
  t.equal(status(root, c.id), "running");
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
  const fast = path.join(c.dir, "fast");
  const good = fs.readFileSync(fast, "utf8");
  const init = `${c.pid} ${procStat(c.pid)!.startTime}`;
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
    ["another start time", good.replace(`init ${init.length}\n${init}\n`, `init ${`${c.pid} 1`.length}\n${c.pid} 1\n`)],
    ["another version", good.replace(/^tsrun-fast 4\n/, "tsrun-fast 5\n")],
    ["trailing bytes", good + "x"],
    ["a length past the end", good.replace(/kill\.max (\d+)\n/, "kill.max 99\n")],
    ["a record it does not know", good + "surprise 0\n\n"],
    ["no init", good.replace(`init ${init.length}\n${init}\n`, "")],
    ["no state for a status", good.replace(/state\.paused \d+\n[^]*?\n}\n\n/, "")],
  ];
  for (const [what, text] of files) {
    t.not(text, good, `(setup) ${what} changes the file`);
    fs.writeFileSync(fast, text);
    // With another start time the init counts as gone: state would say stopped and delete would
    // find the container's cgroup busy (both then tsrun-main's); start and kill must not act.
    const cmds = what === "another start time" ? [["start", c.id], ["kill", c.id, "0"]] : [["start", c.id], ["state", c.id], ["kill", c.id, "0"], ["delete", c.id]];
    for (const cmd of cmds) {
      t.match(runLone(lone, ["--root", root, ...cmd]).stderr, CANNOT_FIND, `fast with ${what}: ${cmd[0]}`);
    }
  }
  // state.json written since the file was made (an update, or an edit in place): the file is void.
  fs.writeFileSync(fast, good);
  const record = path.join(c.dir, "state.json");
  const before = fs.readFileSync(record, "utf8");
  fs.writeFileSync(record, JSON.stringify(JSON.parse(before), null, 1));
  for (const cmd of [["start", c.id], ["state", c.id], ["kill", c.id, "0"], ["delete", c.id]]) {
    t.match(runLone(lone, ["--root", root, ...cmd]).stderr, CANNOT_FIND, `a record rewritten since: ${cmd[0]}`);
  }
  fs.writeFileSync(record, before);
  fs.rmSync(fast);
  t.match(runLone(lone, ["--root", root, "start", c.id]).stderr, CANNOT_FIND, "no fast");
  t.equal(status(root, c.id), "created", "none of them started it");
  t.equal(tsrun(["start", c.id], { root }).code, 0, "tsrun-main starts it without fast");
  t.equal(status(root, c.id), "running");
  t.equal(tsrun(["delete", "--force", c.id], { root }).code, 0);
});

t.test("no fast start with startContainer or poststart hooks", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  for (const kind of ["startContainer", "poststart"] as const) {
    const c = createSleeper(t, root, (cfg) => {
      (cfg as { hooks?: Record<string, unknown> }).hooks = { [kind]: [{ path: "/bin/true" }] };
    });
    t.notMatch(fs.readFileSync(path.join(c.dir, "fast"), "utf8"), /\nstart 0\n/, `${kind}: start is left to tsrun-main`);
    const started = tsrun(["start", c.id], { root });
    t.same([started.code, started.stderr], [0, ""], `${kind}: start runs the hook and starts it`);
    t.equal(status(root, c.id), "running");
    t.equal(tsrun(["delete", "--force", c.id], { root }).code, 0);
  }
});

t.test("a fast start whose exec.fifo write failed is worded and logged by tsrun-main", async (t) => {
  // The front end, past the unlink, hands the errno over in TSRUN_FRONTEND_WRITE_ERRNO (a write
  // to a fifo whose reader vanished cannot be arranged reliably, so the hand-over is run as is:
  // tsrun-main started with it, as the front end execs it).
  const dir = realDir(fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-front-log-")));
  removeAtTeardown(t, dir, "log dir");
  const log = path.join(dir, "log.json");
  const r = tsrun(["--log", log, "--log-format", "json", "start", "whatever-id"], { env: { TSRUN_FRONTEND_WRITE_ERRNO: "32" }, main: true });
  t.equal(r.code, 1);
  t.equal(r.stderr, "tsrun: cannot write to exec fifo: broken pipe\n");
  const line = JSON.parse(fs.readFileSync(log, "utf8").trim().split("\n").pop()!) as { level: string; msg: string };
  t.same([line.level, line.msg], ["error", "cannot write to exec fifo: broken pipe"], "logged as every error is");
});

/** build/tsrun-main run directly: the TypeScript path, never a fast one. */
function runMain(args: string[]): { code: number | null; stdout: string; stderr: string } {
  return runLone(TSRUN_MAIN, args);
}

/** The cgroup dirs fast lists for delete (leaves and parents), in its order. */
function deleteDirs(dir: string): string[] {
  const text = fs.readFileSync(path.join(dir, "fast"), "utf8");
  return [...text.matchAll(/^delete\.(?:leaf|parent) \d+\n(.*)$/gm)].map((m) => m[1]!);
}

async function waitStatus(root: string, id: string, want: string): Promise<void> {
  for (let i = 0; i < 1000 && status(root, id) !== want; i++) await new Promise((r) => setTimeout(r, 10));
}

t.test("state: the front end prints what tsrun-main prints, in every status", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const lone = loneFrontEnd(t);
  const log = path.join(path.dirname(lone), "state.log");
  const c = createSleeper(t, root);
  const compare = (want: string) => {
    const fast = runLone(lone, ["--root", root, "--log", log, "--log-format", "json", "state", c.id]);
    const main = runMain(["--root", root, "--log", log, "--log-format", "json", "state", c.id]);
    t.equal(fast.code, 0, `${want}: the front end answered (${fast.stderr})`);
    t.equal(JSON.parse(fast.stdout).status, want);
    t.same(fast, main, `${want}: the same output, byte for byte, as tsrun-main's`);
  };
  compare("created");
  t.equal(tsrun(["start", c.id], { root }).code, 0);
  compare("running");
  t.equal(tsrun(["pause", c.id], { root }).code, 0);
  compare("paused");
  t.equal(tsrun(["resume", c.id], { root }).code, 0);
  compare("running");
  t.equal(tsrun(["kill", c.id, "KILL"], { root }).code, 0);
  await waitStatus(root, c.id, "stopped");
  compare("stopped");
  t.equal(fs.readFileSync(log, "utf8"), "", "neither logged anything");
  t.equal(tsrun(["delete", c.id], { root }).code, 0);
  const gone = runLone(lone, ["--root", root, "state", c.id]);
  t.match(gone.stderr, CANNOT_FIND, "a container that does not exist is tsrun-main's");
});

t.test("kill ID [SIGNAL]: the front end signals the init as tsrun-main does; --all, spellings it does not know and errors are tsrun-main's", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const lone = loneFrontEnd(t);
  // The init ends with the number of the signal it got (TERM, USR1), so both paths can be compared.
  const waiter = ["sh", "-c", "trap 'exit 15' TERM; trap 'exit 10' USR1; while :; do sleep 0.05; done"];
  const twins = () => {
    const make = () => {
      const bundle = makeBundle(t, { args: waiter });
      const id = containerId();
      t.equal(tsrun(["run", "-d", "--bundle", bundle.dir, id], { root }).code, 0);
      return { id, dir: path.join(root, id) };
    };
    return [make(), make()] as const;
  };
  const endedWith = async (id: string): Promise<string> => {
    await waitStatus(root, id, "stopped");
    return status(root, id);
  };
  for (const sig of [undefined, "10", "9", "usr1", "SIGTERM", "KILL"]) {
    const [a, b] = twins();
    const args = (id: string) => ["--root", root, "kill", id, ...(sig ? [sig] : [])];
    t.same(runLone(lone, args(a.id)), { code: 0, stdout: "", stderr: "" }, `kill ${sig ?? "(default)"}: the front end sent it`);
    t.same(runMain(args(b.id)), { code: 0, stdout: "", stderr: "" });
    t.equal(await endedWith(a.id), "stopped");
    t.equal(await endedWith(b.id), "stopped");
    t.equal(tsrun(["delete", a.id], { root }).code, 0);
    t.equal(tsrun(["delete", b.id], { root }).code, 0);
  }
  const c = createSleeper(t, root);
  t.same(runLone(lone, ["--root", root, "kill", c.id, "0"]), { code: 0, stdout: "", stderr: "" }, "signal 0 to a created container");
  for (const args of [["kill", c.id, "SIGFOO"], ["kill", c.id, "RTMIN+99"], ["kill", "--all", c.id, "9"], ["kill", c.id, "65"], ["kill", c.id, "09"], ["kill", c.id, "ſigkill"]]) {
    t.match(runLone(lone, ["--root", root, ...args]).stderr, CANNOT_FIND, `${args.join(" ")}: tsrun-main's`);
  }
  t.equal(status(root, c.id), "created", "none of them reached it");
  t.equal(tsrun(["kill", c.id, "KILL"], { root }).code, 0);
  await waitStatus(root, c.id, "stopped");
  t.match(runLone(lone, ["--root", root, "kill", c.id, "9"]).stderr, CANNOT_FIND, "a stopped container's error is tsrun-main's");
  t.same(runMain(["--root", root, "kill", c.id, "9"]), { code: 1, stdout: "", stderr: "tsrun: container not running\n" });
  t.equal(tsrun(["delete", c.id], { root }).code, 0);
});

t.test("delete of a stopped container: the front end removes what tsrun-main removes; anything else is tsrun-main's", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const lone = loneFrontEnd(t);
  const stopped = async (config?: BundleOptions["config"], args: string[] = ["true"]) => {
    const bundle = makeBundle(t, { args, ...(config ? { config } : {}) });
    const id = containerId();
    t.equal(tsrun(["run", "-d", "--bundle", bundle.dir, id], { root }).code, 0);
    await waitStatus(root, id, "stopped");
    return { id, dir: path.join(root, id) };
  };
  for (const force of [false, true]) {
    const a = await stopped();
    const b = await stopped();
    const dirsA = deleteDirs(a.dir);
    const dirsB = deleteDirs(b.dir);
    t.ok(dirsA.length > 0 && dirsA.every((d) => fs.existsSync(d)), "(setup) its cgroup dirs are there");
    const flags = force ? ["--force"] : [];
    t.same(runLone(lone, ["--root", root, "delete", ...flags, a.id]), { code: 0, stdout: "", stderr: "" }, `delete ${flags.join("")}: the front end did it`);
    t.same(runMain(["--root", root, "delete", ...flags, b.id]), { code: 0, stdout: "", stderr: "" });
    for (const [c, dirs] of [[a, dirsA], [b, dirsB]] as const) {
      t.same(dirs.filter((d) => fs.existsSync(d)), [], "no cgroup dir left");
      t.notOk(fs.existsSync(c.dir), "no state dir left");
    }
  }

  // Still the TypeScript path's: a running or created container, poststop hooks, a cgroup that is
  // not empty (a process that outlived an init without a pid namespace of its own), a sub-cgroup.
  const running = createSleeper(t, root);
  t.match(runLone(lone, ["--root", root, "delete", running.id]).stderr, CANNOT_FIND, "created");
  t.equal(tsrun(["start", running.id], { root }).code, 0);
  t.match(runLone(lone, ["--root", root, "delete", running.id]).stderr, CANNOT_FIND, "running");
  t.equal(tsrun(["delete", "--force", running.id], { root }).code, 0);

  const hooked = await stopped((cfg) => {
    (cfg as { hooks?: Record<string, unknown> }).hooks = { poststop: [{ path: "/bin/true" }] };
  });
  t.match(runLone(lone, ["--root", root, "delete", hooked.id]).stderr, CANNOT_FIND, "poststop hooks");
  t.equal(tsrun(["delete", hooked.id], { root }).code, 0);

  const outlived = await stopped(
    (cfg) => {
      cfg.linux.namespaces = cfg.linux.namespaces.filter((ns: { type: string }) => ns.type !== "pid");
    },
    ["sh", "-c", "sleep 1000 & exit 0"],
  );
  const outlivedDirs = deleteDirs(outlived.dir);
  t.match(runLone(lone, ["--root", root, "delete", outlived.id]).stderr, CANNOT_FIND, "a process left in the cgroup");
  t.ok(fs.existsSync(outlived.dir), "the state dir is still there for tsrun-main");
  t.equal(tsrun(["delete", outlived.id], { root }).code, 0, "which kills what is left and removes it all");
  t.same(outlivedDirs.filter((d) => fs.existsSync(d)), [], "no cgroup dir left");

  const sub = await stopped();
  const leaf = deleteDirs(sub.dir).find((d) => d.includes("/pids/"))!;
  fs.mkdirSync(path.join(leaf, "inner"));
  t.match(runLone(lone, ["--root", root, "delete", sub.id]).stderr, CANNOT_FIND, "a sub-cgroup");
  t.equal(tsrun(["delete", sub.id], { root }).code, 0);
  t.notOk(fs.existsSync(leaf), "tsrun-main removed it with its sub-cgroup");
});

t.test("the helper runs from a sealed copy, the front end's or its own", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const seals = (pid: number): string => {
    // F_GET_SEALS of the init's executable, as python's fcntl gives it (node has no fcntl).
    const r = spawnSync("python3", ["-c", "import fcntl,os,sys; fd=os.open(f'/proc/{sys.argv[1]}/exe', os.O_RDONLY); print(fcntl.fcntl(fd, 1034))", String(pid)], { encoding: "utf8" });
    return r.stdout.trim() || r.stderr.trim();
  };
  const F_SEAL_SEAL = 1, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4, F_SEAL_WRITE = 8;
  const want = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
  for (const main of [false, true]) {
    const bundle = makeBundle(t, { args: ["sleep", "1000"] });
    const id = containerId();
    t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root, main }).code, 0);
    const pid = JSON.parse(tsrun(["state", id], { root }).stdout).pid as number;
    t.equal(fs.readlinkSync(`/proc/${pid}/exe`), "/memfd:tsrun-helper (deleted)", `${main ? "tsrun-main" : "front end"}: a memfd`);
    t.equal(Number(seals(pid)) & want, want, "sealed against writes, shrinking, growing and new seals");
    t.equal(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0], "tsrun-helper", "ps shows its name");
    t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
  }
});

/**
 * build/tsrun copied into a fresh dir with the real helper beside it and a tsrun-main that only
 * says it ran (exit 99), and how the front end handed over (TSRUN_FRONTEND_WROTE_FREEZER).
 */
function frontEndWithFakeMain(t: TestLike): { dir: string; run: (args: string[], env?: NodeJS.ProcessEnv) => { code: number | null; stdout: string; stderr: string } } {
  const bin = loneFrontEnd(t);
  const dir = path.dirname(bin);
  fs.copyFileSync(path.join(path.dirname(TSRUN), "tsrun-helper"), path.join(dir, "tsrun-helper"));
  fs.chmodSync(path.join(dir, "tsrun-helper"), 0o755);
  fs.writeFileSync(path.join(dir, "tsrun-main"), '#!/bin/sh\necho "tsrun-main ran${TSRUN_FRONTEND_WROTE_FREEZER:+ after $TSRUN_FRONTEND_WROTE_FREEZER}" >&2\nexit 99\n', { mode: 0o755 });
  const run = (args: string[], env: NodeJS.ProcessEnv = process.env) => {
    const r = spawnSync(bin, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  return { dir, run };
}

t.test("--version and features: the front end prints tsrun-main's text itself; any other form is tsrun-main's", async (t) => {
  const { dir, run } = frontEndWithFakeMain(t);
  const main = spawnSync(TSRUN_MAIN, ["--version"], { encoding: "utf8" });
  t.equal(main.status, 0);
  t.match(main.stdout, /^tsrun version \S+\ncommit: \S+\nspec: \S+\nlibseccomp: [0-9]+\.[0-9]+\.[0-9]+\n$/);
  t.same(run(["--version"]), { code: 0, stdout: main.stdout, stderr: "" }, "--version: tsrun-main's text, and tsrun-main never ran");
  t.same(run(["-v"]), { code: 0, stdout: main.stdout, stderr: "" }, "-v the same");
  const toMainEarly = { code: 99, stdout: "", stderr: "tsrun-main ran\n" };
  const features = spawnSync(TSRUN_MAIN, ["features"], { encoding: "utf8" });
  t.equal(features.status, 0);
  t.match(JSON.parse(features.stdout), { annotations: { "io.github.seccomp.libseccomp.version": /^[0-9]+\.[0-9]+\.[0-9]+$/ } });
  t.same(run(["features"]), { code: 0, stdout: features.stdout, stderr: "" }, "features: tsrun-main's document, byte for byte");
  const log = path.join(dir, "features.log");
  t.same(run(["--root", path.join(dir, "no-such-root"), "--log", log, "--log-format", "json", "features"]), { code: 0, stdout: features.stdout, stderr: "" }, "features after --root, --log and --log-format (as managers call it)");
  t.equal(fs.readFileSync(log, "utf8"), "", "the log made, empty");
  t.same(run(["--log-format", "xml", "features"]), toMainEarly, "an unknown log format: tsrun-main's error");
  const toMain = { code: 99, stdout: "", stderr: "tsrun-main ran\n" };
  t.same(run(["--version", "--debug"]), toMain, "with another option");
  t.same(run(["features", "--help"]), toMain, "features with an option");
  t.same(run(["--version"], { ...process.env, TSRUN_HELPER: path.join(dir, "tsrun-helper") }), toMain, "TSRUN_HELPER names the helper: tsrun-main's to find");
  t.same(run(["features"], { ...process.env, TSRUN_HELPER: path.join(dir, "tsrun-helper") }), toMain, "features the same");
  // As `make install` lays them out: bin/tsrun, libexec/tsrun/tsrun-main and tsrun-helper.
  const prefix = path.join(dir, "prefix");
  fs.mkdirSync(path.join(prefix, "bin"), { recursive: true });
  fs.mkdirSync(path.join(prefix, "libexec", "tsrun"), { recursive: true });
  for (const [from, to] of [["tsrun", "bin/tsrun"], ["tsrun-helper", "libexec/tsrun/tsrun-helper"], ["tsrun-main", "libexec/tsrun/tsrun-main"]]) {
    fs.copyFileSync(path.join(dir, from!), path.join(prefix, to!));
    fs.chmodSync(path.join(prefix, to!), 0o755);
  }
  const installed = spawnSync(path.join(prefix, "bin", "tsrun"), ["--version"], { encoding: "utf8" });
  t.same([installed.status, installed.stdout, installed.stderr], [0, main.stdout, ""], "installed: the front end answers too");
  fs.writeFileSync(path.join(dir, "tsrun-helper"), "#!/bin/sh\necho 2.5\n", { mode: 0o755 });
  t.same(run(["--version"]), toMain, "a helper that does not answer N.N.N: tsrun-main words it");
  t.same(run(["features"]), toMain, "features: tsrun-main leaves the annotation out");
  fs.rmSync(path.join(dir, "tsrun-helper"));
  t.same(run(["--version"]), toMain, "no helper beside tsrun-main");
});

t.test("pause and resume: the front end freezes and thaws a container as tsrun-main does; any other status is tsrun-main's", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const lone = loneFrontEnd(t);
  const freezerOf = (dir: string): string => {
    const m = /\npause \d+\nFROZEN (\S+)\nresume \d+\nTHAWED (\S+)\n/.exec(fs.readFileSync(path.join(dir, "fast"), "utf8"));
    t.ok(m, "fast names what pause and resume write, and where");
    t.equal(m![1], m![2], "the same file");
    return m![1]!;
  };
  const a = startSleeper(t, root);
  const b = startSleeper(t, root);
  const fileA = freezerOf(a.dir);
  const ok = { code: 0, stdout: "", stderr: "" };
  t.same(runLone(lone, ["--root", root, "pause", a.id]), ok, "pause: the front end alone");
  t.same(runMain(["--root", root, "pause", b.id]), ok, "pause: tsrun-main");
  t.equal(status(root, a.id), "paused");
  t.equal(fs.readFileSync(fileA, "utf8").trim(), fs.readFileSync(freezerOf(b.dir), "utf8").trim(), "the same freezer state");
  t.match(runLone(lone, ["--root", root, "pause", a.id]).stderr, CANNOT_FIND, "pause of a paused container: tsrun-main's error");
  t.same(runMain(["--root", root, "pause", a.id]), { code: 1, stdout: "", stderr: "tsrun: container already paused\n" });
  t.same(runLone(lone, ["--root", root, "resume", a.id]), ok, "resume: the front end alone");
  t.same(runMain(["--root", root, "resume", b.id]), ok, "resume: tsrun-main");
  t.equal(status(root, a.id), "running");
  t.equal(fs.readFileSync(fileA, "utf8").trim(), "THAWED");
  t.match(runLone(lone, ["--root", root, "resume", a.id]).stderr, CANNOT_FIND, "resume of a running container: tsrun-main's error");
  const c = createSleeper(t, root);
  t.match(runLone(lone, ["--root", root, "pause", c.id]).stderr, CANNOT_FIND, "pause of a created container: tsrun-main's");
  t.match(runLone(lone, ["--root", root, "pause", "--help"]).stderr, CANNOT_FIND, "an option: tsrun-main's");
  for (const x of [a, b, c]) t.equal(tsrun(["delete", "--force", x.id], { root }).code, 0);
});

t.test("a fast file naming a file or dir that is no cgroup's: the front end neither writes it nor removes it", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const lone = loneFrontEnd(t);
  const scratch = realDir(fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-notcg-")));
  removeAtTeardown(t, scratch, "scratch dir");
  /** fast with the one record NAME set to value (lengths count bytes). */
  const withRecord = (text: string, name: string, value: string): string => {
    const out = text.replace(new RegExp(`\n${name.replace(".", "\\.")} \\d+\n[^\n]*\n`), `\n${name} ${Buffer.byteLength(value)}\n${value}\n`);
    t.not(out, text, `(setup) ${name} replaced`);
    return out;
  };

  const a = startSleeper(t, root);
  const victim = path.join(scratch, "victim");
  fs.writeFileSync(victim, "untouched\n");
  const fastA = path.join(a.dir, "fast");
  fs.writeFileSync(fastA, withRecord(fs.readFileSync(fastA, "utf8"), "pause", `FROZEN ${victim}`));
  t.match(runLone(lone, ["--root", root, "pause", a.id]).stderr, CANNOT_FIND, "pause: tsrun-main's");
  t.equal(fs.readFileSync(victim, "utf8"), "untouched\n", "the file was not written");
  t.equal(status(root, a.id), "running");

  const b = createSleeper(t, root);
  t.equal(tsrun(["kill", b.id, "KILL"], { root }).code, 0);
  await waitStatus(root, b.id, "stopped");
  const emptyDir = path.join(scratch, "empty");
  fs.mkdirSync(emptyDir);
  const fastB = path.join(b.dir, "fast");
  fs.writeFileSync(fastB, fs.readFileSync(fastB, "utf8") + `delete.parent ${Buffer.byteLength(emptyDir)}\n${emptyDir}\n`);
  t.match(runLone(lone, ["--root", root, "delete", b.id]).stderr, CANNOT_FIND, "delete: tsrun-main's");
  t.ok(fs.existsSync(emptyDir), "the empty dir is still there");
  for (const x of [a, b]) t.equal(tsrun(["delete", "--force", x.id], { root }).code, 0);
  t.ok(fs.existsSync(emptyDir), "tsrun-main never looked at it");
});

t.test("a pause or resume the kernel has not finished when the front end looks: tsrun-main goes on, told the write was made", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const { run } = frontEndWithFakeMain(t);
  // a's pause and resume records name b's freezer: the write lands, a's own freezer never says so.
  const a = startSleeper(t, root);
  const b = startSleeper(t, root);
  const fastA = path.join(a.dir, "fast");
  const fastB = fs.readFileSync(path.join(b.dir, "fast"), "utf8");
  const recordOf = (text: string, name: string) => new RegExp(`\n${name} \\d+\n[^\n]*\n`).exec(text)![0];
  let text = fs.readFileSync(fastA, "utf8");
  for (const name of ["pause", "resume"]) text = text.replace(recordOf(text, name), recordOf(fastB, name));
  fs.writeFileSync(fastA, text);
  t.same(run(["--root", root, "pause", a.id]), { code: 99, stdout: "", stderr: "tsrun-main ran after pause\n" }, "pause: handed over, saying so");
  t.equal(status(root, b.id), "paused", "(the write was made)");
  t.equal(tsrun(["resume", b.id], { root }).code, 0);
  t.same(run(["--root", root, "pause", a.id, "--help"], { ...process.env, TSRUN_FRONTEND_WROTE_FREEZER: "pause" }), { code: 99, stdout: "", stderr: "tsrun-main ran\n" }, "a caller's own value never reaches tsrun-main");

  // tsrun-main told so takes a container already in the new state as its own doing.
  t.equal(tsrun(["pause", a.id], { root }).code, 0);
  const told = (cmd: string) => spawnSync(TSRUN_MAIN, ["--root", root, cmd, a.id], { encoding: "utf8", env: { ...process.env, TSRUN_FRONTEND_WROTE_FREEZER: cmd } });
  t.same([told("pause").status, told("pause").stderr], [0, ""], "pause of a paused container after the front end's write");
  t.equal(status(root, a.id), "paused");
  t.same(runMain(["--root", root, "pause", a.id]), { code: 1, stdout: "", stderr: "tsrun: container already paused\n" }, "not told: the usual error");
  t.equal(tsrun(["resume", a.id], { root }).code, 0);
  t.same([told("resume").status, told("resume").stderr], [0, ""], "resume of a running container after the front end's write");
  t.same(runMain(["--root", root, "resume", a.id]), { code: 1, stdout: "", stderr: "tsrun: container not paused\n" });
  for (const x of [a, b]) t.equal(tsrun(["delete", "--force", x.id], { root }).code, 0);
});

t.test("a caller's own TSRUN_FRONTEND_WRITE_ERRNO never reaches tsrun-main: start is tried, not reported failed", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const c = createSleeper(t, root);
  // --debug: not the fast path, so tsrun-main starts it.
  const r = tsrun(["--debug", "start", c.id], { root, env: { TSRUN_FRONTEND_WRITE_ERRNO: "32" } });
  t.equal(r.code, 0, `started: ${r.stderr.split("\n").filter((l) => !l.includes("debug")).join(" ")}`);
  t.equal(status(root, c.id), "running");
  t.equal(tsrun(["delete", "--force", c.id], { root }).code, 0);
});
