// Many tsrun processes at once: 200 containers through their whole life 8 at a time, 20 creates
// of one id, and kill/delete/state/start racing on one container. Nothing may crash, every
// failure must be one of the expected messages, and nothing may be left behind.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { makeBundle } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { containerId, testRoot, tsrun, tsrunAsync, type TsrunResult } from "../lib/tsrun.ts";
import { alive, crashSign, defaultCgroupDirs, describe, pool, sleep, state, waitGone } from "./util.ts";

const COUNT = Number(process.env.RELIABILITY_CONTAINERS || 200);
const WIDTH = 8;

t.test(`${COUNT} containers created, started, killed and deleted ${WIDTH} at a time`, async (t) => {
  leakCheck(t, { settleMs: 5000 });
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const ids = Array.from({ length: COUNT }, () => containerId());
  const failures: string[] = [];
  const fail = (id: string, step: string, r: TsrunResult) => failures.push(`${id} ${step}: ${describe(r)}`);
  const started = Date.now();
  await pool(ids, WIDTH, async (id) => {
    let r = await tsrunAsync(["create", "--bundle", bundle.dir, id], { root });
    if (r.code !== 0) return fail(id, "create", r);
    r = await tsrunAsync(["start", id], { root });
    if (r.code !== 0) return fail(id, "start", r);
    r = await tsrunAsync(["state", id], { root });
    if (r.code !== 0) return fail(id, "state", r);
    const pid = (JSON.parse(r.stdout) as { pid: number }).pid;
    r = await tsrunAsync(["kill", id, "KILL"], { root });
    if (r.code !== 0) return fail(id, "kill", r);
    // delete without --force wants it stopped: wait for the kernel to finish the kill.
    if (!(await waitGone(pid, 10_000))) return failures.push(`${id}: init ${pid} still alive 10 s after SIGKILL`);
    r = await tsrunAsync(["delete", id], { root });
    if (r.code !== 0) return fail(id, "delete", r);
  });
  t.comment(`${COUNT} lifecycles in ${Date.now() - started} ms`);
  t.same(failures, [], "every step of every container succeeded");
  t.same(fs.readdirSync(root), [], "no state left");
  t.same(ids.flatMap(defaultCgroupDirs).filter((d) => fs.existsSync(d)), [], "no cgroup left");
});

t.test("20 concurrent creates of one id: exactly one wins", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  for (let round = 0; round < 3; round++) {
    const id = containerId(`race${round}`);
    const results = await Promise.all(Array.from({ length: 20 }, () => tsrunAsync(["create", "--bundle", bundle.dir, id], { root })));
    const won = results.filter((r) => r.code === 0);
    const lost = results.filter((r) => r.code !== 0);
    t.equal(won.length, 1, `round ${round}: one create succeeded`);
    t.same(
      lost.filter((r) => r.code !== 1 || r.stderr !== "tsrun: container with given ID already exists\n").map(describe),
      [],
      `round ${round}: the others say "container with given ID already exists"`,
    );
    t.equal(state(root, id).status, "created", `round ${round}: the winner's container is intact`);
    t.equal(tsrun(["start", id], { root }).code, 0, `round ${round}: and starts`);
    t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
  }
  t.same(fs.readdirSync(root), []);
});

t.test("10 concurrent starts of one created container: exactly one starts it", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  for (let round = 0; round < 3; round++) {
    const id = containerId(`start${round}`);
    t.equal(tsrun(["create", "--bundle", bundle.dir, id], { root }).code, 0);
    const results = await Promise.all(Array.from({ length: 10 }, () => tsrunAsync(["start", id], { root })));
    t.equal(results.filter((r) => r.code === 0).length, 1, `round ${round}: one start succeeded`);
    t.same(
      results.filter((r) => r.code !== 0 && r.stderr !== "tsrun: cannot start an already running container\n").map(describe),
      [],
      `round ${round}: the others say "cannot start an already running container"`,
    );
    t.equal(state(root, id).status, "running");
    t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
  }
});

/** What each racing command may say when it loses a race; anything else is a failure. */
const EXPECTED_FAILURES: Record<string, RegExp> = {
  kill: /^tsrun: (container does not exist|container not running)\n$/,
  delete: /^tsrun: (container does not exist|cannot delete container \S+ that is not stopped: (running|created|paused))\n$/,
  "delete --force": /^tsrun: container does not exist\n$/,
  state: /^tsrun: container does not exist\n$/,
  start: /^tsrun: (container does not exist|container not running|cannot start a container that has stopped|cannot start an already running container)\n$/,
  list: /^$/,
  pause: /^tsrun: (container does not exist|container not running|container already paused)\n$/,
  resume: /^tsrun: (container does not exist|container not running|container not paused)\n$/,
};

function commandName(args: string[]): string {
  return args[0] === "delete" && args[1] === "--force" ? "delete --force" : args[0]!;
}

t.test("kill, delete, state, start racing on one container from several processes", async (t) => {
  leakCheck(t, { settleMs: 5000 });
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const rounds = Number(process.env.RELIABILITY_RACE_ROUNDS || 12);
  const problems: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const id = containerId(`r${round}`);
    const running = round % 2 === 1;
    t.equal(tsrun([running ? "run" : "create", ...(running ? ["-d"] : []), "--bundle", bundle.dir, id], { root }).code, 0);
    const pid = state(root, id).pid;
    const cmds: string[][] = [
      ["kill", id, "KILL"],
      ["kill", id, "TERM"],
      ["kill", "--all", id, "KILL"],
      ["delete", "--force", id],
      ["delete", "--force", id],
      ["delete", "--force", id],
      ["delete", id],
      ["state", id],
      ["state", id],
      ["start", id],
      ["list"],
      ["pause", id],
      ["resume", id],
    ];
    // A different mix each round: shuffle, with small random delays between the launches.
    for (let i = cmds.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [cmds[i], cmds[j]] = [cmds[j]!, cmds[i]!];
    }
    const results = await Promise.all(
      cmds.map(async (args, i) => {
        if (i % 3 === 1) await sleep(Math.floor(Math.random() * 5));
        return { args, r: await tsrunAsync(args, { root }) };
      }),
    );
    for (const { args, r } of results) {
      const sign = crashSign(r);
      if (sign) problems.push(`round ${round}: ${args.join(" ")}: ${sign}`);
      else if (r.code !== 0 && !EXPECTED_FAILURES[commandName(args)]!.test(r.stderr)) problems.push(`round ${round}: ${args.join(" ")}: ${describe(r)}`);
    }
    // Whatever order they ran in, the three delete --force leave nothing (one of them runs last).
    const last = tsrun(["state", id], { root });
    if (last.code === 0) {
      // Possible only if every delete --force ran before... they cannot: each one removes it.
      problems.push(`round ${round}: container still there after three delete --force: ${last.stdout}`);
      tsrun(["delete", "--force", id], { root });
    }
    if (!(await waitGone(pid))) problems.push(`round ${round}: init ${pid} still alive`);
    const cg = defaultCgroupDirs(id).filter((d) => fs.existsSync(d));
    if (cg.length) problems.push(`round ${round}: cgroup left: ${cg.join(" ")}`);
    if (fs.existsSync(path.join(root, id))) problems.push(`round ${round}: state dir left`);
  }
  t.same(problems, [], "no crash, only expected errors, nothing left");
});

t.test("a create racing with delete, delete --force, state and kill of the same id", async (t) => {
  leakCheck(t, { settleMs: 5000 });
  const root = testRoot(t);
  const bundle = makeBundle(t, { args: ["sleep", "1000"] });
  const problems: string[] = [];
  const outcomes = new Map<string, number>();
  for (let round = 0; round < 16; round++) {
    const id = containerId(`cd${round}`);
    const create = tsrunAsync(["create", "--bundle", bundle.dir, id], { root });
    await sleep((round % 8) * 4);
    const others = [["delete", id], ["state", id], ["kill", id, "KILL"], ["delete", "--force", id]].map(async (args, i) => {
      await sleep(i * 2);
      return { args, r: await tsrunAsync(args, { root }) };
    });
    const all = [{ args: ["create"], r: await create }, ...(await Promise.all(others))];
    for (const { args, r } of all) {
      const sign = crashSign(r);
      if (sign) problems.push(`round ${round}: ${args.join(" ")}: ${sign}`);
      const said = `${args[0]}${args[1] === "--force" ? " --force" : ""}: ${r.code === 0 ? (args[0] === "state" ? (JSON.parse(r.stdout) as { status: string }).status : "ok") : r.stderr.trim().replace(/\S*cd\d+\S*/g, "ID").replace(/\/sys\/fs\/cgroup\/\S+/g, "CGROUP")}`;
      outcomes.set(said, (outcomes.get(said) ?? 0) + 1);
    }
    // Whoever won, one more delete --force leaves nothing.
    const fin = tsrun(["delete", "--force", id], { root });
    if (fin.code !== 0) problems.push(`round ${round}: final delete: ${describe(fin)}`);
    const cg = defaultCgroupDirs(id).filter((d) => fs.existsSync(d));
    if (cg.length) problems.push(`round ${round}: cgroup left: ${cg.join(" ")}`);
    if (fs.existsSync(path.join(root, id))) problems.push(`round ${round}: state dir left`);
  }
  t.comment(`outcomes:\n${[...outcomes].sort().map(([k, n]) => `  ${n} x ${k}`).join("\n")}`);
  t.same(problems, [], "no crash, nothing left");
});

t.test("a create that fails after its id was force-deleted and taken again leaves the new container alone", async (t) => {
  leakCheck(t, { settleMs: 5000 });
  const root = testRoot(t);
  const release = path.join(root, "..", `${path.basename(root)}-release`);
  t.teardown(() => fs.rmSync(release, { force: true }));
  // A: held in its createRuntime hook (the init already in its cgroup) until `release` exists.
  const held = makeBundle(t, {
    args: ["sleep", "1000"],
    config: (c) => (c.hooks = { createRuntime: [{ path: "/bin/sh", args: ["sh", "-c", `while [ ! -e ${release} ]; do sleep 0.02; done`] }] }),
  });
  const other = makeBundle(t, { args: ["sleep", "1000"] });
  const id = containerId("retaken");
  const a = tsrunAsync(["create", "--bundle", held.dir, id], { root });
  // `state` says the container does not exist until A has made its state dir.
  let status = "";
  for (let i = 0; i < 500 && status !== "creating"; i++) {
    const r = tsrun(["state", id], { root });
    if (r.code === 0) status = (JSON.parse(r.stdout) as { status: string }).status;
    else await sleep(10);
  }
  t.equal(status, "creating", "A is in its hook");
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0, "delete --force of A");
  const b = tsrun(["create", "--bundle", other.dir, id], { root });
  t.equal(b.code, 0, `B took the id: ${describe(b)}`);
  const before = state(root, id);
  fs.writeFileSync(release, "");
  const ra = await a;
  t.not(ra.code, 0, `A failed: ${describe(ra)}`);
  t.equal(crashSign(ra), undefined, "A failed with a message, not a crash");
  const after = state(root, id);
  t.same({ status: after.status, pid: after.pid, bundle: after.bundle }, { status: "created", pid: before.pid, bundle: other.dir }, "B is untouched");
  t.ok(alive(before.pid), "B's init is alive");
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
});
