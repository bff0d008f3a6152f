// What every conformance test file uses: one Runtime per file, assertion names taken from the
// spec, and a last test that checks the file left nothing behind on the host.
//
//   import t from "tap";
//   import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";
//   const rt = suite(t);
//   t.test("...", async (t) => { ... t.equal(x, y, spec("runtime.md#create", "...")) });
//   leavesNothingBehind(t, rt);
//
// Assertion names are the table rows of docs/conformance.md and the keys of
// expected-tsrun.json, so they must be stable and unique within a file: the spec document and
// section, the sentence (or a short paraphrase when the requirement is a table entry), and a
// [case] when one sentence is checked several ways.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Test } from "tap";
import { readMounts, isUnder } from "../../tests/lib/context.ts";
import { ensureRootfs } from "./build.ts";
import { cgroupsNamed } from "./host.ts";
import { alive, isOurs, listDir, ROOT_PARENT, Runtime, RUNTIME, sleep, TAG } from "./runtime.ts";

/** "doc.md#section: sentence [case]". */
export function spec(ref: string, sentence: string, detail?: string): string {
  return detail ? `${ref}: ${sentence} [${detail}]` : `${ref}: ${sentence}`;
}

// The tap root object and its subtests share this shape; typed loosely to accept either.
type TapLike = Pick<Test, "test" | "teardown" | "comment">;

/**
 * Set up a test file: a Runtime (private --root and scratch dir), a comment naming the runtime,
 * and cleanup when the file ends. End the file with leavesNothingBehind(t, rt).
 */
export function suite(t: TapLike): Runtime {
  ensureRootfs();
  const rt = new Runtime();
  t.comment(`runtime: ${RUNTIME}`);
  t.teardown(async () => {
    await rt.destroyAll();
    await cleanup(rt, await leftovers(rt));
    fs.rmSync(rt.root, { recursive: true, force: true });
    try {
      fs.rmdirSync(ROOT_PARENT); // only when empty: other test files may still use it
    } catch {
      // not empty, or gone
    }
    if (!readMounts().some((m) => isUnder(m.mountPoint, rt.scratch))) fs.rmSync(rt.scratch, { recursive: true, force: true });
  });
  return rt;
}

/** The file's last test: after destroying its containers, nothing of them is left on the host. */
export function leavesNothingBehind(t: TapLike, rt: Runtime): void {
  t.test("suite: nothing left behind", async (t) => {
    await rt.destroyAll();
    const left = await leftovers(rt);
    t.same(left, { state: [], processes: [], mounts: [], cgroups: [] }, "suite: the test file leaves no containers, processes, mounts, cgroups or state behind");
    await cleanup(rt, left);
  });
}

interface Leftovers {
  state: string[];
  processes: Array<{ pid: number; cmdline: string }>;
  mounts: string[];
  cgroups: string[];
}

async function leftovers(rt: Runtime): Promise<Leftovers> {
  const rootfs = ensureRootfs();
  const procs = () =>
    fs
      .readdirSync("/proc")
      .filter((n) => /^[0-9]+$/.test(n))
      .map(Number)
      .filter((pid) => pid !== process.pid && alive(pid) && isOurs(pid));
  // A SIGKILLed process takes a moment to finish dying: look again for up to 2 s.
  let pids = procs();
  for (let i = 0; i < 40 && pids.length; i++) {
    await sleep(50);
    pids = procs();
  }
  return {
    state: listDir(rt.root),
    processes: pids.map((pid) => {
      let cmdline = "";
      try {
        cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      } catch {
        // gone
      }
      return { pid, cmdline };
    }),
    mounts: readMounts()
      .map((m) => m.mountPoint)
      .filter((mp) => isUnder(mp, rt.scratch) || isUnder(mp, rootfs) || mp.includes(TAG)),
    cgroups: cgroupsNamed(TAG),
  };
}

async function cleanup(rt: Runtime, left: Leftovers): Promise<void> {
  for (const p of left.processes) {
    try {
      if (isOurs(p.pid)) process.kill(p.pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  for (const mp of [...left.mounts].sort((a, b) => b.length - a.length)) {
    try {
      execFileSync("umount", ["-l", mp], { stdio: "ignore" });
    } catch {
      // already gone
    }
  }
  // Deepest first; a cgroup empties a moment after its last process died.
  for (const cg of [...left.cgroups].sort((a, b) => b.length - a.length)) {
    for (let i = 0; i < 40; i++) {
      try {
        removeCgroup(cg);
        break;
      } catch {
        await sleep(50);
      }
    }
  }
  for (const id of left.state) fs.rmSync(path.join(rt.root, id), { recursive: true, force: true });
}

function removeCgroup(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) removeCgroup(path.join(dir, e.name));
  }
  try {
    fs.rmdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}
