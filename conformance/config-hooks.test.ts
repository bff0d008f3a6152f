// config.md, POSIX-platform Hooks, and the hook steps of runtime.md's Lifecycle: when each
// kind of hook runs, in which namespaces, with what on stdin, and what a failing hook does.
//
// The hook program is the checker in hook mode: it writes DIR/NAME.json (its argv, env,
// stdin, namespaces, and what it saw of the container process) and appends NAME to DIR/order.
// Runtime-namespace hooks use the checker's host path; container-namespace hooks that resolve
// their path in the container use /checker and write to /hooklog, a bind mount of DIR.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { CHECKER } from "./lib/build.ts";
import { createIn, makeBundle, nsOf, parseChecker, readText, type Bundle } from "./lib/container.ts";
import { CLEAN_TRACE, traceOf } from "./lib/host.ts";
import { newId, type Runtime } from "./lib/runtime.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

interface HookRecord {
  name: string;
  argv: string[];
  env: string[];
  stdin: string;
  ns: Record<string, string | null>;
  statePid?: number;
  statePidCmdline?: string[] | null;
  statePidState?: string | null;
  statePidNs?: Record<string, string | null>;
}

let hookDirs = 0;
function hookDir(): string {
  const dir = path.join(rt.scratch, `hooks${++hookDirs}`);
  fs.mkdirSync(dir, { mode: 0o777 });
  fs.chmodSync(dir, 0o777);
  return dir;
}

/** A runtime-namespace hook entry running the checker from its host path. */
function hostHook(dir: string, name: string, opts: { status?: number; env?: string[]; timeout?: number } = {}): Record<string, unknown> {
  const args = ["checker", "hook", dir, name];
  if (opts.status) args.push(String(opts.status));
  return { path: CHECKER, args, env: opts.env ?? [`HOOK_NAME=${name}`], ...(opts.timeout ? { timeout: opts.timeout } : {}) };
}

/** A hook whose path resolves in the container (/checker), writing to /hooklog. */
function containerHook(name: string, status?: number): Record<string, unknown> {
  const args = ["checker", "hook", "/hooklog", name];
  if (status) args.push(String(status));
  return { path: "/checker", args, env: [`HOOK_NAME=${name}`] };
}

function record(dir: string, name: string): HookRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), "utf8")) as HookRecord;
  } catch {
    return undefined;
  }
}

function order(dir: string): string[] {
  return readText(path.join(dir, "order")).split("\n").filter(Boolean);
}

function stdinState(r: HookRecord | undefined): Record<string, unknown> | undefined {
  try {
    return r ? (JSON.parse(r.stdin) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function hooksBundle(dir: string, hooks: Record<string, unknown>, args = ["/checker", "wait-signal"]): Bundle {
  return makeBundle(rt, {
    args,
    config: (c) => {
      c.hooks = hooks;
      c.mounts.push({ destination: "/hooklog", type: "none", source: dir, options: ["bind", "rw"] });
    },
  });
}

const NS = ["mnt", "net", "ipc", "uts", "pid"];

t.test("every kind of hook, in a whole lifecycle", async (t) => {
  const dir = hookDir();
  const bundle = hooksBundle(dir, {
    prestart: [hostHook(dir, "prestart")],
    createRuntime: [hostHook(dir, "createRuntime-1"), hostHook(dir, "createRuntime-2")],
    createContainer: [hostHook(dir, "createContainer")],
    startContainer: [containerHook("startContainer")],
    poststart: [hostHook(dir, "poststart")],
    poststop: [hostHook(dir, "poststop")],
  }, ["/checker", "stat", "/hooklog/startContainer.json", "wait-signal"]);
  const id = newId();
  const created = createIn(rt, id, bundle);
  t.equal(created.code, 0, "(setup) create with hooks", { stderr: readText(bundle.err) });
  const pid = rt.containers.get(id) ?? 0;
  const containerNs = Object.fromEntries(NS.map((n) => [n, nsOf(pid, n)]));
  const hostNs = Object.fromEntries(NS.map((n) => [n, nsOf("self", n)]));
  const afterCreate = order(dir);

  t.ok(afterCreate.includes("prestart"), spec("config.md#prestart", "The prestart hooks MUST be called as part of the create operation"), { order: afterCreate });
  t.ok(afterCreate.includes("createRuntime-1"), spec("config.md#createruntime-hooks", "The createRuntime hooks MUST be called as part of the create operation"), { order: afterCreate });
  t.ok(afterCreate.includes("createContainer"), spec("config.md#createcontainer-hooks", "The createContainer hooks MUST be called as part of the create operation"), { order: afterCreate });
  t.ok(!afterCreate.includes("startContainer") && !afterCreate.includes("poststart"), spec("config.md#startcontainer-hooks", "The startContainer hooks MUST be called as part of the start operation", "not at create"), {
    order: afterCreate,
  });
  const idx = (n: string) => afterCreate.indexOf(n);
  t.ok(idx("createRuntime-1") >= 0 && idx("createRuntime-1") < idx("createRuntime-2"), spec("config.md#hooks", "Hooks MUST be called in the listed order"), { order: afterCreate });
  t.ok(idx("prestart") >= 0 && idx("prestart") < idx("createRuntime-1"), spec("config.md#prestart", "The prestart hooks MUST be called before the createRuntime hooks"), { order: afterCreate });
  t.ok(idx("createRuntime-2") >= 0 && idx("createRuntime-2") < idx("createContainer"), spec("config.md#createcontainer-hooks", "The createContainer hooks MUST be called after the createRuntime hooks"), {
    order: afterCreate,
  });

  const start = rt.start(id);
  t.equal(start.code, 0, "(setup) start with hooks", { stderr: start.stderr });
  const afterStart = order(dir);
  // The program itself looks for the hook's record when it starts.
  for (let i = 0; i < 500 && !readText(bundle.err).includes("ready"); i++) await new Promise((r) => setTimeout(r, 10));
  const seen = parseChecker(readText(bundle.out))?.["stat /hooklog/startContainer.json"];
  t.equal(seen?.exists, true, spec("config.md#startcontainer-hooks", "The startContainer hooks MUST be called before the user-specified process is executed as part of the start operation"), {
    order: afterStart,
  });
  t.ok(afterStart.includes("poststart"), spec("config.md#poststart", "The poststart hooks MUST be called after the user-specified process is executed but before the start operation returns"), {
    order: afterStart,
  });
  const ps = record(dir, "poststart");
  t.same(ps?.statePidCmdline, ["/checker", "stat", "/hooklog/startContainer.json", "wait-signal"], spec("config.md#poststart", "The poststart hooks MUST be called after the user-specified process is executed", "the process runs the program"));

  rt.kill(id, "KILL");
  await rt.waitStatus(id, "stopped");
  t.notOk(order(dir).includes("poststop"), spec("config.md#poststop", "The poststop hooks MUST be called after the container is deleted", "not before delete"));
  const del = rt.delete(id);
  t.equal(del.code, 0, "(setup) delete with hooks", { stderr: del.stderr });
  const post = record(dir, "poststop");
  t.ok(post, spec("config.md#poststop", "The poststop hooks MUST be called after the container is deleted but before the delete operation returns"), { order: order(dir) });
  t.ok(post && (post.statePidState === null || post.statePidState === "Z" || post.statePidState === undefined), spec("config.md#poststop", "The poststop hooks MUST be called after the container is deleted", "its process is gone"), {
    post,
  });
  await rt.destroy(id);

  // What each hook got and where it ran.
  for (const name of ["prestart", "createRuntime-1", "createContainer", "startContainer", "poststart", "poststop"]) {
    const r = record(dir, name);
    const st = stdinState(r);
    const kind = name.replace(/-\d$/, "");
    t.ok(st && st.id === id && st.bundle === bundle.dir, spec("config.md#hooks", "The state of the container MUST be passed to hooks over stdin", kind), { stdin: r?.stdin });
    const inContainer = kind === "createContainer" || kind === "startContainer";
    if (inContainer) {
      const differ = NS.filter((n) => r?.ns[n] !== containerNs[n]);
      t.same(differ, [], spec("config.md#hooks", `The ${kind} hooks MUST be executed in the container namespace`), { hook: r?.ns, container: containerNs });
    } else {
      // The runtime's namespaces: the host's network namespace, not the container's mounts.
      // (Not the host's mount namespace: a wrapper may run the runtime in a private one.)
      const ok = !!r && r.ns.net === hostNs.net && r.ns.mnt !== containerNs.mnt && r.ns.uts === hostNs.uts && r.ns.pid === hostNs.pid;
      t.ok(ok, spec("config.md#hooks", `The ${kind} hooks MUST be executed in the runtime namespace`), { hook: r?.ns, host: hostNs, container: containerNs });
    }
    const args = kind === "startContainer" ? ["checker", "hook", "/hooklog", name] : ["checker", "hook", dir, name];
    t.same(r?.argv, args, spec("config.md#hooks", "args (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008 execv's argv", kind));
    t.same(r?.env, [`HOOK_NAME=${name}`], spec("config.md#hooks", "env (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008's environ", kind));
  }
  t.ok(record(dir, "startContainer"), spec("config.md#startcontainer-hooks", "The startContainer hooks' path MUST resolve in the container namespace"));
  t.ok(record(dir, "createContainer"), spec("config.md#createcontainer-hooks", "The createContainer hooks' path MUST resolve in the runtime namespace"));
});

/** Create (and start) a container whose hooks include one that fails; returns what happened. */
async function withFailing(rt: Runtime, hooks: (dir: string) => Record<string, unknown>, startIt: boolean) {
  const dir = hookDir();
  const bundle = hooksBundle(dir, hooks(dir), ["/checker", "argv"]);
  const id = newId();
  const create = createIn(rt, id, bundle);
  const start = startIt && create.code === 0 ? rt.start(id) : undefined;
  return { dir, bundle, id, create, start };
}

for (const kind of ["prestart", "createRuntime", "createContainer"]) {
  t.test(`a failing ${kind} hook`, async (t) => {
    const r = await withFailing(
      rt,
      (dir) => ({ [kind]: [hostHook(dir, `${kind}-fails`, { status: 3 })], poststop: [hostHook(dir, "poststop")] }),
      false,
    );
    t.not(r.create.code, 0, spec("runtime.md#lifecycle", `If any ${kind} hook fails, the runtime MUST generate an error`));
    t.same(await traceOf(rt, r.id), CLEAN_TRACE, spec("runtime.md#lifecycle", `If any ${kind} hook fails, the runtime MUST stop the container, and continue the lifecycle at step 12 (destroy)`));
    t.ok(record(r.dir, "poststop"), spec("runtime.md#lifecycle", `If any ${kind} hook fails, the lifecycle continues with the poststop hooks`), { order: order(r.dir) });
    t.equal(readText(r.bundle.out), "", spec("runtime.md#lifecycle", `If any ${kind} hook fails, the user-specified program is never run`));
    await rt.destroy(r.id);
  });
}

t.test("a failing startContainer hook", async (t) => {
  const r = await withFailing(rt, (dir) => ({ startContainer: [containerHook("startContainer-fails", 3)], poststop: [hostHook(dir, "poststop")] }), true);
  t.ok(r.create.code !== 0 || (r.start?.code ?? 0) !== 0, spec("runtime.md#lifecycle", "If any startContainer hook fails, the runtime MUST generate an error"), {
    create: r.create.code,
    start: r.start?.code,
  });
  t.equal(readText(r.bundle.out), "", spec("runtime.md#lifecycle", "If any startContainer hook fails, the user-specified program is never run"));
  const status = await rt.waitStatus(r.id, "stopped", 5000);
  t.ok(status === "stopped" || status === undefined, spec("runtime.md#lifecycle", "If any startContainer hook fails, the runtime MUST stop the container"), { status });
  await rt.destroy(r.id);
});

// runtime-spec 1.3.0 (runtime.md, lifecycle step 9); 1.2 and earlier asked for a warning only.
t.test("a failing poststart hook", async (t) => {
  const r = await withFailing(
    rt,
    (dir) => ({ poststart: [hostHook(dir, "poststart-fails", { status: 3 }), hostHook(dir, "poststart-2")] }),
    true,
  );
  t.not(r.start?.code, 0, spec("runtime.md#lifecycle", "If any poststart hook fails, the runtime MUST generate an error", "start fails"), {
    start: r.start,
  });
  const status = await rt.waitStatus(r.id, "stopped", 5000);
  t.ok(status === "stopped" || status === undefined, spec("runtime.md#lifecycle", "If any poststart hook fails, the runtime MUST stop the container"), { status });
  t.notOk(record(r.dir, "poststart-2"), spec("runtime.md#lifecycle", "If any poststart hook fails, the runtime MUST continue the lifecycle at step 12", "the next poststart hook is not run"), { order: order(r.dir) });
  t.match(readText(r.bundle.out), /"argv"/, spec("runtime.md#lifecycle", "The runtime MUST run the user-specified program (step 8) before the poststart hooks (step 9)", "the program ran"));
  await rt.destroy(r.id);
});

t.test("a failing poststop hook", async (t) => {
  const r = await withFailing(
    rt,
    (dir) => ({ poststop: [hostHook(dir, "poststop-fails", { status: 3 }), hostHook(dir, "poststop-2")] }),
    true,
  );
  await rt.waitStatus(r.id, "stopped");
  const del = rt.delete(r.id);
  t.equal(del.code, 0, spec("runtime.md#lifecycle", "If any poststop hook fails, the runtime MUST log a warning, but the remaining hooks and lifecycle continue as if the hook had succeeded", "delete succeeds"), {
    del,
  });
  t.ok(record(r.dir, "poststop-2"), spec("runtime.md#lifecycle", "If any poststop hook fails, the remaining hooks continue", "poststop"), { order: order(r.dir) });
  t.not(rt.state(r.id).result.code, 0, spec("runtime.md#lifecycle", "If any poststop hook fails, the lifecycle continues as if the hook had succeeded", "the container is gone"));
  await rt.destroy(r.id);
});

t.test("hook timeout", async (t) => {
  const dir = hookDir();
  const bundle = hooksBundle(dir, { createRuntime: [{ path: "/bin/sleep", args: ["sleep", "8"], timeout: 1 }] }, ["/checker", "argv"]);
  const id = newId();
  const r = createIn(rt, id, bundle);
  t.not(r.code, 0, spec("config.md#hooks", "timeout (int, OPTIONAL) is the number of seconds before aborting the hook", "an aborted hook fails create"));
  await rt.destroy(id);
});

t.test("invalid hook entries", async (t) => {
  for (const [label, hook] of [
    ["timeout 0", { path: "/bin/true", timeout: 0 }],
    ["relative path", { path: "bin/true" }],
  ] as const) {
    const dir = hookDir();
    const bundle = hooksBundle(dir, { createRuntime: [hook] }, ["/checker", "argv"]);
    const id = newId();
    const r = createIn(rt, id, bundle);
    const sentence = label === "timeout 0" ? "If set, timeout MUST be greater than zero" : "This specification extends the IEEE standard in that path MUST be absolute";
    t.not(r.code, 0, spec("config.md#hooks", `${sentence}: runtimes MUST generate an error when invalid values are encountered`, label));
    await rt.destroy(id);
  }
});

leavesNothingBehind(t, rt);
