// config.md, Process: args, env, cwd, terminal, and the Linux process properties
// (noNewPrivileges, oomScoreAdj, scheduler, ioPriority).
import t from "tap";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { CHECKER } from "./lib/build.ts";
import { observe, parseChecker, readText } from "./lib/container.ts";
import { sleep, TAG, TAG_ENV } from "./lib/runtime.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

t.test("args", async (t) => {
  const args = ["/checker", "argv", "with space", "", "quote\"d", "ünïcödé"];
  const o = await observe(rt, { args });
  t.same(o.out?.argv, args, spec("config.md#process", "args (array of strings) with similar semantics to IEEE Std 1003.1-2008 execvp's argv"));

  const viaPath = await observe(rt, {
    args: ["checker", "argv"],
    config: (c) => (c.process.env = ["PATH=/nonexistent:/", `${TAG_ENV}=${TAG}`]),
  });
  t.same(viaPath.out?.argv, ["checker", "argv"], spec("config.md#process", "args: that entry is used with the same semantics as execvp's file", "found through PATH"), {
    create: viaPath.create,
    stderr: viaPath.stderr,
  });
});

t.test("env", async (t) => {
  const env = ["PATH=/bin:/usr/bin", "EMPTY=", "WITH_EQUALS=a=b", "SPACES=a b  c", `${TAG_ENV}=${TAG}`];
  const o = await observe(rt, { checker: ["env"], config: (c) => (c.process.env = [...env]) });
  const seen: string[] = o.out?.env ?? [];
  t.ok(
    o.out && env.every((e) => seen.includes(e)),
    spec("config.md#process", "env (array of strings) with the same semantics as IEEE Std 1003.1-2008's environ", "every entry is in the environment"),
    { seen },
  );
  // HOME aside: with none in env, runc and crun (and tsrun) add the user's home from the
  // container's /etc/passwd, as a login would; anything else would be the runtime's own.
  t.same(
    seen.filter((e) => !e.startsWith("HOME=")).sort(),
    [...env].sort(),
    spec("config.md#process", "env (array of strings) with the same semantics as IEEE Std 1003.1-2008's environ", "nothing else is added (but HOME, when env has none)"),
  );
});

t.test("cwd", async (t) => {
  const o = await observe(rt, { checker: ["cwd"], config: (c) => (c.process.cwd = "/mnt/a") });
  t.equal(o.out?.cwd, "/mnt/a", spec("config.md#process", "cwd (string, REQUIRED) is the working directory that will be set for the executable"));
  const tmp = await observe(rt, { checker: ["cwd"], config: (c) => (c.process.cwd = "/tmp") });
  t.equal(tmp.out?.cwd, "/tmp", spec("config.md#process", "cwd (string, REQUIRED) is the working directory that will be set for the executable", "inside a mount"));
});

t.test("terminal", async (t) => {
  const o = await observe(rt, { checker: ["tty"], config: (c) => delete c.process.terminal });
  const ttys = (x: { stdin?: boolean; stdout?: boolean; stderr?: boolean } | undefined) => [x?.stdin, x?.stdout, x?.stderr];
  t.same(ttys(o.out?.tty), [false, false, false], spec("config.md#process", "terminal (bool, OPTIONAL) specifies whether a terminal is attached to the process, defaults to false"));
  const f = await observe(rt, { checker: ["tty", "stat", "/dev/console"], config: (c) => (c.process.terminal = false) });
  t.same(ttys(f.out?.tty), [false, false, false], spec("config.md#process", "terminal false: no pseudoterminal is attached"));
  t.equal(f.out?.["stat /dev/console"]?.exists, false, spec("config-linux.md#default-devices", "/dev/console is set up if terminal is enabled in the config", "not when terminal is false"));
});

t.test("terminal true", async (t) => {
  // The other end of --console-socket: the checker's console-receiver mode, on the host.
  const sock = path.join(rt.scratch, "console.sock");
  const out = path.join(rt.scratch, "console.out");
  const receiver = spawn(CHECKER, ["console-receiver", sock, out], { stdio: "ignore", env: { ...process.env, [TAG_ENV]: TAG } });
  const exited = new Promise<void>((resolve) => receiver.on("close", () => resolve()));
  for (let i = 0; i < 500 && !fs.existsSync(sock); i++) await sleep(10);
  const o = await observe(rt, {
    checker: ["tty", "stat", "/dev/console"],
    config: (c) => ((c.process.terminal = true), (c.process.consoleSize = { height: 31, width: 101 })),
    run: { consoleSocket: sock },
  });
  const timer = setTimeout(() => receiver.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
  const seen = parseChecker(readText(out).replace(/\r\n/g, "\n"));
  const tty = seen?.tty;
  t.same(
    [tty?.stdin, tty?.stdout, tty?.stderr],
    [true, true, true],
    spec("config.md#process", "terminal: if set to true on Linux a pseudoterminal pair is allocated for the process and the pseudoterminal pty is duplicated on the process's standard streams"),
    { create: o.create.code, stderr: o.createErr, console: readText(out) },
  );
  t.same([tty?.rows, tty?.cols], [31, 101], spec("config.md#process", "consoleSize (object, OPTIONAL) specifies the console size in characters of the terminal"));
  const con = seen?.["stat /dev/console"];
  t.ok(
    con?.type === "c" && con.major === tty?.stdinMajor && con.minor === tty?.stdinMinor,
    spec("config-linux.md#default-devices", "/dev/console is set up if terminal is enabled in the config by bind mounting the pseudoterminal pty to /dev/console"),
    { console: con, tty },
  );
});

t.test("noNewPrivileges", async (t) => {
  const on = await observe(rt, { checker: ["nnp"], config: (c) => (c.process.noNewPrivileges = true) });
  t.equal(on.out?.nnp, 1, spec("config.md#linux-process", "noNewPrivileges: setting noNewPrivileges to true prevents the process from gaining additional privileges"));
  const off = await observe(rt, { checker: ["nnp"], config: (c) => (c.process.noNewPrivileges = false) });
  t.equal(off.out?.nnp, 0, spec("config.md#linux-process", "noNewPrivileges: setting noNewPrivileges to true prevents the process from gaining additional privileges", "false leaves it off"));
});

t.test("oomScoreAdj", async (t) => {
  const set = await observe(rt, { checker: ["oom"], config: (c) => (c.process.oomScoreAdj = 123) });
  t.equal(set.out?.oom?.value, "123", spec("config.md#linux-process", "If oomScoreAdj is set, the runtime MUST set oom_score_adj to the given value"));
  // The runtime is started with oom_score_adj 7: the container must keep it.
  const unset = await observe(rt, {
    checker: ["oom"],
    config: (c) => delete c.process.oomScoreAdj,
    run: { shellPrefix: "echo 7 > /proc/self/oom_score_adj" },
  });
  t.equal(unset.out?.oom?.value, "7", spec("config.md#linux-process", "If oomScoreAdj is not set, the runtime MUST NOT change the value of oom_score_adj"));
});

t.test("scheduler", async (t) => {
  const o = await observe(rt, { checker: ["sched"], config: (c) => (c.process.scheduler = { policy: "SCHED_BATCH", nice: 5 }) });
  t.equal(o.create.code, 0, spec("config.md#linux-process", "scheduler (object, OPTIONAL) is an object describing the scheduler properties for the process", "accepted"), { stderr: o.createErr });
  t.equal(o.out?.sched?.policy, 3, spec("config.md#linux-process", "scheduler.policy represents the scheduling policy", "SCHED_BATCH"));
  t.equal(o.out?.sched?.nice, 5, spec("config.md#linux-process", "scheduler.nice is the nice value for the process"));
});

t.test("ioPriority", async (t) => {
  const o = await observe(rt, { checker: ["sched"], config: (c) => (c.process.ioPriority = { class: "IOPRIO_CLASS_BE", priority: 6 }) });
  t.equal(o.create.code, 0, spec("config.md#linux-process", "ioPriority (object, OPTIONAL) configures the I/O priority settings for the container's processes", "accepted"), { stderr: o.createErr });
  // ioprio value: class << 13 | level; IOPRIO_CLASS_BE is 2.
  t.equal(o.out?.sched?.ioprio, (2 << 13) | 6, spec("config.md#linux-process", "ioPriority class and priority are applied to the process"));
});

leavesNothingBehind(t, rt);
