// The hook process runner (src/lifecycle/hook-process.ts) under Node; tests/integration/hooks.test.ts
// drives it through the Bun-built binary.
import t from "tap";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runHookProcess, type HookProcessOptions } from "../../src/lifecycle/hook-process.ts";

const base: HookProcessOptions = { input: '{"id":"x"}', env: { ONLY: "this" }, killSignal: "SIGKILL", maxBuffer: 1 << 20 };

t.test("stdin, exactly its env, argv0, both outputs, the exit status", async (t) => {
  // Not a dump of env: tap's processinfo wraps spawn and adds variables of its own.
  process.env.TSRUN_TEST_PARENT_ONLY = "1";
  const r = await runHookProcess("/bin/sh", ["-c", 'cat; echo; echo "$0"; echo "ONLY=$ONLY HOME=${HOME-unset} PARENT=${TSRUN_TEST_PARENT_ONLY-unset}"; echo oops >&2; exit 3'], { ...base, argv0: "name0" });
  t.same(r, { kind: "ended", exitCode: 3, signal: null, timedOut: false, stdout: '{"id":"x"}\nname0\nONLY=this HOME=unset PARENT=unset\n', stderr: "oops\n" });
});

t.test("cwd", async (t) => {
  const r = await runHookProcess("/bin/sh", ["-c", "pwd"], { ...base, cwd: "/proc" });
  t.equal(r.kind === "ended" && r.stdout, "/proc\n");
});

t.test("a path that cannot be executed never runs", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tsrun-hook-process-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const notExecutable = join(dir, "hook");
  writeFileSync(notExecutable, "#!/bin/sh\n", { mode: 0o644 });
  for (const [file, code] of [["/nonexistent/hook", "ENOENT"], [notExecutable, "EACCES"]] as const) {
    const r = await runHookProcess(file, [], base);
    t.equal(r.kind, "spawn-failed", file);
    t.equal(r.kind === "spawn-failed" && (r.error as NodeJS.ErrnoException).code, code, file);
  }
});

t.test("a timeout kills it with the kill signal", async (t) => {
  const r = await runHookProcess("/bin/sleep", ["30"], { ...base, timeoutMs: 200 });
  t.match(r, { kind: "ended", exitCode: null, signal: "SIGKILL", timedOut: true });
});

t.test("SIGKILL follows a kill signal that is ignored", async (t) => {
  const r = await runHookProcess("/bin/sh", ["-c", "trap '' TERM; while :; do sleep 0.05; done"], { ...base, timeoutMs: 200, killSignal: "SIGTERM", forceKillAfterMs: 300 });
  t.match(r, { kind: "ended", signal: "SIGKILL", timedOut: true });
});

t.test("a process that does not read its stdin is not an error", async (t) => {
  const r = await runHookProcess("/bin/true", [], { ...base, input: "x".repeat(1 << 20) });
  t.match(r, { kind: "ended", exitCode: 0, timedOut: false });
});

t.test("output past maxBuffer is cut and the process stopped", async (t) => {
  const r = await runHookProcess("/bin/sh", ["-c", "yes | head -c 100000; exec sleep 30"], { ...base, maxBuffer: 1000 });
  t.match(r, { kind: "ended", signal: "SIGKILL" });
  t.equal(r.kind === "ended" && r.stdout.length, 1000);
});
