// Cases for src/linux/spawn.ts, run by tests/unit/spawn.test.ts twice: in the test process
// (Node: node:child_process) and as `bun tests/lib/spawn-cases.ts` (Bun: Bun.spawn), which
// prints the results as JSON. Both must give the same results.
import { runSync, spawnWithSyncSocket, type SyncResult } from "../../src/linux/spawn.ts";

export interface SocketRun {
  lines: string[];
  exit?: [number | null, string | null];
  failed?: string;
}

/** Runs `sh -c script` with the sync socket at fd 3, writing `send` first and `reply` on a "hook" line. */
function socketRun(script: string, send: string, opts: { killAfterMs?: number; idleOnReady?: boolean } = {}): Promise<SocketRun> {
  return new Promise((resolve) => {
    const out: SocketRun = { lines: [] };
    let buffered = "";
    let child: ReturnType<typeof spawnWithSyncSocket> | undefined;
    const events = {
      error: (err: Error) => resolve({ ...out, failed: (err as NodeJS.ErrnoException).code ?? err.message }),
      data: (chunk: Buffer) => {
        buffered += chunk.toString("utf8");
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          out.lines.push(line);
          if (line === "hook") child?.write("continue\n");
          if (line === "ready" && opts.idleOnReady) child?.idle();
          if (line === "ready" && opts.killAfterMs !== undefined) setTimeout(() => child?.kill("SIGKILL"), opts.killAfterMs);
        }
      },
      exit: (code: number | null, signal: NodeJS.Signals | null) => {
        out.exit = [code, signal];
        resolve(out);
      },
    };
    try {
      child = spawnWithSyncSocket(script === "" ? "/nonexistent/helper" : "/bin/sh", ["-c", script], 3, events);
    } catch (err) {
      resolve({ ...out, failed: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
      return;
    }
    child.write(send);
  });
}

export async function spawnCases(): Promise<Record<string, unknown>> {
  const r: Record<string, unknown> = {};
  // stdout comes as bytes: compared as text
  const text = (s: SyncResult) => ({ ...s, stdout: s.stdout.toString("utf8") });
  r.syncOutput = text(runSync("/bin/sh", ["-c", "cat; echo err >&2; exit 3"], { input: Buffer.from("in\n"), stdout: "pipe" }));
  r.syncIgnored = text(runSync("/bin/sh", ["-c", "echo out; echo err >&2"], { stdout: "ignore" }));
  r.syncNoInput = text(runSync("/bin/sh", ["-c", "cat; echo done"], { stdout: "pipe" }));
  r.syncSignal = text(runSync("/bin/sh", ["-c", "kill -KILL $$"], { stdout: "pipe" }));
  const missing = runSync("/nonexistent/tool", [], { stdout: "pipe" });
  r.syncMissing = { error: (missing.error as NodeJS.ErrnoException | undefined)?.code, status: missing.status, stdout: missing.stdout.toString("utf8") };
  // The protocol as the helper speaks it: the plan in, lines out, a reply to "hook", the exit.
  r.socket = await socketRun('read plan <&3; echo "got $plan" >&3; echo hook >&3; read reply <&3; echo "reply $reply" >&3; echo ready >&3; echo "exit 7" >&3; exit 3', "PLAN\n");
  // Lines written after idle() (after "ready"), up to the exit, still come, in order, before the exit.
  r.afterIdle = await socketRun('read plan <&3; echo ready >&3; sleep 0.3; echo "warn late" >&3; echo "exit 0" >&3', "PLAN\n", { idleOnReady: true });
  r.killed = await socketRun('read plan <&3; echo ready >&3; exec sleep 30', "PLAN\n", { idleOnReady: true, killAfterMs: 50 });
  r.helperMissing = await socketRun("", "PLAN\n");
  return r;
}

if ((import.meta as { main?: boolean }).main) {
  spawnCases().then((r) => process.stdout.write(JSON.stringify(r) + "\n"));
}
