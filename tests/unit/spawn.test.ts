// src/linux/spawn.ts has a Node and a Bun implementation: both must behave the same. The cases
// (tests/lib/spawn-cases.ts) run here under Node and in a `bun` child process.
import t from "tap";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { REPO } from "../lib/rootfs.ts";
import { spawnCases } from "../lib/spawn-cases.ts";

const want = {
  syncOutput: { status: 3, signal: null, stdout: "in\n", stderr: "err\n" },
  syncIgnored: { status: 0, signal: null, stdout: "", stderr: "err\n" },
  syncNoInput: { status: 0, signal: null, stdout: "done\n", stderr: "" },
  syncSignal: { status: null, signal: "SIGKILL", stdout: "", stderr: "" },
  syncMissing: { error: "ENOENT", status: null, stdout: "" },
  socket: { lines: ["got PLAN", "hook", "reply continue", "ready", "exit 7"], exit: [3, null] },
  afterIdle: { lines: ["ready", "warn late", "exit 0"], exit: [0, null] },
  killed: { lines: ["ready"], exit: [null, "SIGKILL"] },
  helperMissing: { lines: [], failed: "ENOENT" },
};

t.test("under Node (node:child_process)", async (t) => {
  t.same(await spawnCases(), want);
});

t.test("under Bun (Bun.spawn)", async (t) => {
  const bun = path.join(REPO, "node_modules/.bin/bun");
  const r = spawnSync(bun, [path.join(REPO, "tests/lib/spawn-cases.ts")], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), want);
});
