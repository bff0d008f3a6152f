#!/usr/bin/env bun
// Soak: cycle containers through tsrun for N minutes, then report how many cycles of each kind
// ran, what failed, and whether the host grew: memory, open files, mounts, cgroups, processes,
// state dirs. Not part of CI (it takes minutes by design):
//
//   node_modules/.bin/bun tests/reliability/soak.ts --minutes N [--width W]
//
// Exits 1 if a cycle failed unexpectedly or something was left behind at the end (mounts,
// cgroups, state, processes back to their baseline; open files and memory within a margin).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { baseConfig } from "../lib/bundle.ts";
import { TSRUN, tsrunAsync, type TsrunResult } from "../lib/tsrun.ts";
import { cgroupMounts, crashSign, describe, pool, processesWith, sleep } from "./util.ts";

interface Options {
  minutes: number;
  width: number;
}

function parseOptions(argv: string[]): Options {
  const opts: Options = { minutes: 1, width: 4 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} wants a positive number`);
      return v;
    };
    if (a === "--minutes") opts.minutes = value();
    else if (a === "--width") opts.width = Math.floor(value());
    else if (a === "--help" || a === "-h") {
      process.stdout.write("usage: bun tests/reliability/soak.ts --minutes N [--width W]\n");
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return opts;
}

// ------------------------------------------------------------------------------------------
// Host measurements

interface Sample {
  at: number;
  cycles: number;
  // Host-wide: other users of the machine move these too, so they are reported, not judged.
  /** MemTotal - MemAvailable, kB. */
  memUsedKb: number;
  slabKb: number;
  /** Allocated file handles (/proc/sys/fs/file-nr). */
  files: number;
  mounts: number;
  processes: number;
  // The soak's own: anything left here at the end is a leak.
  /** Cgroup dirs named after the soak's containers, in every hierarchy. */
  cgroups: number;
  /** Live processes carrying the soak's tag in their environment. */
  tagged: number;
  state: number;
}

function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of fs.readFileSync("/proc/meminfo", "utf8").split("\n")) {
    const m = /^(\w+):\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

function countDirs(dir: string): number {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).length;
  } catch {
    return 0;
  }
}

function taggedCgroups(tag: string): number {
  let n = 0;
  for (const mp of cgroupMounts()) {
    try {
      n += fs.readdirSync(path.join(mp, "tsrun")).filter((d) => d.startsWith(`${tag}-`)).length;
    } catch {
      // no /tsrun in this hierarchy (yet)
    }
  }
  return n;
}

function sample(root: string, cycles: number, tag: string): Sample {
  const mem = meminfo();
  const pids = fs.readdirSync("/proc").filter((n) => /^[0-9]+$/.test(n) && Number(n) !== process.pid);
  return {
    at: Date.now(),
    cycles,
    memUsedKb: (mem.MemTotal ?? 0) - (mem.MemAvailable ?? 0),
    slabKb: mem.Slab ?? 0,
    files: Number(fs.readFileSync("/proc/sys/fs/file-nr", "utf8").split(/\s+/)[0]),
    mounts: fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter(Boolean).length,
    processes: pids.length,
    cgroups: taggedCgroups(tag),
    tagged: processesWith(`=${tag}`).length,
    state: fs.existsSync(root) ? fs.readdirSync(root).length : 0,
  };
}

function vmRssKb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Peak RSS (kB) of one tsrun run, through GNU time. */
function tsrunPeakKb(args: string[]): number | undefined {
  const r = spawnSync("/usr/bin/time", ["-f", "%M", TSRUN, ...args], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const n = Number((r.stderr ?? "").trim().split("\n").pop());
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

// ------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const tag = `soak-${process.pid}`;
  const root = `/run/tsrun-test/${tag}`;
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-soak-"));
  const bundle = (name: string, args: string[], edit?: (c: ReturnType<typeof baseConfig>) => void): string => {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    const c = baseConfig(args);
    c.process.env.push(`TSRUN_SOAK=${tag}`);
    edit?.(c);
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(c));
    return dir;
  };
  const sleeper = bundle("sleep", ["sleep", "1000"]);
  const quick = bundle("true", ["sh", "-c", "exit 3"]);
  const broken = bundle("broken", ["nope-not-here"]);
  const limited = bundle("limited", ["sleep", "1000"], (c) => (c.linux.resources = { ...c.linux.resources, memory: { limit: 64 << 20 }, pids: { limit: 32 } }));

  const counts = new Map<string, number>();
  const failures = new Map<string, number>();
  const initRss: number[] = [];
  const cliPeak: Record<string, number> = {};
  let cycles = 0;
  let n = 0;
  const count = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  const failed = (kind: string, step: string, r: TsrunResult) => {
    const key = `${kind} ${step}: ${crashSign(r) ?? describe(r).replace(new RegExp(`${tag}-\\d+`, "g"), "ID")}`;
    failures.set(key, (failures.get(key) ?? 0) + 1);
  };
  const t = (args: string[]) => tsrunAsync(args, { root, env: { TSRUN_TEST_TAG: tag } });
  const expect0 = async (kind: string, step: string, args: string[]): Promise<TsrunResult | undefined> => {
    const r = await t(args);
    if (r.code !== 0 || crashSign(r)) {
      failed(kind, step, r);
      return undefined;
    }
    return r;
  };
  const waitStopped = async (id: string): Promise<boolean> => {
    for (let i = 0; i < 500; i++) {
      const r = await t(["state", id]);
      if (r.code !== 0) return false;
      if ((JSON.parse(r.stdout) as { status: string }).status === "stopped") return true;
      await sleep(10);
    }
    return false;
  };

  const kinds: Array<[string, (id: string) => Promise<void>]> = [
    ["create-start-kill-delete", async (id) => {
      if (!(await expect0("lifecycle", "create", ["create", "--bundle", sleeper, id]))) return;
      const st = await expect0("lifecycle", "state", ["state", id]);
      if (st) {
        const rss = vmRssKb((JSON.parse(st.stdout) as { pid: number }).pid);
        if (rss !== undefined) initRss.push(rss);
      }
      await expect0("lifecycle", "start", ["start", id]);
      await expect0("lifecycle", "kill", ["kill", id, "KILL"]);
      if (!(await waitStopped(id))) failures.set("lifecycle: not stopped after SIGKILL", (failures.get("lifecycle: not stopped after SIGKILL") ?? 0) + 1);
      await expect0("lifecycle", "delete", ["delete", id]);
    }],
    ["run-detached-pause-exec-delete", async (id) => {
      if (!(await expect0("detached", "run -d", ["run", "-d", "--bundle", limited, id]))) return;
      await expect0("detached", "exec", ["exec", id, "true"]);
      await expect0("detached", "pause", ["pause", id]);
      await expect0("detached", "resume", ["resume", id]);
      await expect0("detached", "delete -f", ["delete", "--force", id]);
    }],
    ["run-foreground", async (id) => {
      const r = await t(["run", "--bundle", quick, id]);
      if (r.code !== 3 || crashSign(r, [3])) failed("foreground", "run", r);
    }],
    ["failing-create", async (id) => {
      const r = await t(["create", "--bundle", broken, id]);
      if (r.code !== 1 || crashSign(r) || !/executable file not found/.test(r.stderr)) failed("failing", "create", r);
    }],
    ["create-delete", async (id) => {
      if (!(await expect0("created", "create", ["create", "--bundle", sleeper, id]))) return;
      await expect0("created", "delete", ["delete", id]);
    }],
  ];

  const deadline = Date.now() + opts.minutes * 60_000;
  const samples: Sample[] = [sample(root, 0, tag)];
  let baseline: Sample | undefined;
  let nextSample = Date.now() + Math.min(30_000, (opts.minutes * 60_000) / 4);
  process.stdout.write(`soak: ${opts.minutes} min, ${opts.width} at a time, state in ${root}\n`);
  await pool(Array.from({ length: opts.width }), opts.width, async () => {
    while (Date.now() < deadline) {
      const i = n++;
      const [kind, fn] = kinds[i % kinds.length]!;
      await fn(`${tag}-${i}`);
      count(kind);
      cycles++;
      if (cycles === 25) baseline = sample(root, cycles, tag);
      if (i % 50 === 7) {
        cliPeak.list = Math.max(cliPeak.list ?? 0, tsrunPeakKb(["--root", root, "list"]) ?? 0);
        cliPeak.features = Math.max(cliPeak.features ?? 0, tsrunPeakKb(["features"]) ?? 0);
      }
      if (Date.now() >= nextSample) {
        nextSample = Date.now() + 30_000;
        const s = sample(root, cycles, tag);
        samples.push(s);
        process.stdout.write(
          `  ${Math.round((s.at - samples[0]!.at) / 1000)} s: ${cycles} cycles; host: mem used ${s.memUsedKb} kB, files ${s.files}, mounts ${s.mounts}, processes ${s.processes}; soak's: cgroups ${s.cgroups}, processes ${s.tagged}, state ${s.state}\n`,
        );
      }
    }
  });

  // Whatever is left is a leak: delete it (and say so).
  const left = fs.readdirSync(root);
  for (const id of left) await t(["delete", "--force", id]);
  await sleep(1000);
  const end = sample(root, cycles, tag);
  samples.push(end);
  const base = baseline ?? samples[0]!;
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });

  const minutes = (end.at - samples[0]!.at) / 60_000;
  const out: string[] = [];
  out.push(`soak: ${cycles} cycles in ${minutes.toFixed(1)} min (${(cycles / minutes).toFixed(0)}/min)`);
  for (const [k, v] of [...counts].sort()) out.push(`  ${v.toString().padStart(6)}  ${k}`);
  if (initRss.length) {
    const sorted = [...initRss].sort((a, b) => a - b);
    out.push(`init waiting for start: RSS median ${sorted[sorted.length >> 1]} kB, max ${sorted[sorted.length - 1]} kB (${sorted.length} samples)`);
  }
  out.push(`tsrun peak RSS: list ${cliPeak.list ?? "?"} kB, features ${cliPeak.features ?? "?"} kB`);
  // [field, margin, what, judged]: host-wide numbers move with whatever else runs on the machine,
  // so their growth is only reported (GREW?); the soak's own cgroups, processes and state must
  // all be gone at the end (compared with the first sample, taken before any cycle).
  const growth: Array<[keyof Sample, number, string, boolean]> = [
    ["memUsedKb", 64 * 1024, "kB memory used (host)", false],
    ["slabKb", 32 * 1024, "kB slab (host)", false],
    ["files", 256, "open files (host)", false],
    ["mounts", 0, "mounts (host)", false],
    ["processes", 16, "processes (host)", false],
    ["cgroups", 0, "cgroup dirs of the soak's containers", true],
    ["tagged", 0, "processes of the soak's containers", true],
    ["state", 0, "state dirs", true],
  ];
  let bad = false;
  out.push("growth from the baseline (after 25 cycles; the soak's own: from the start) to the end:");
  for (const [k, limit, what, judged] of growth) {
    const from = judged ? samples[0]! : base;
    const d = (end[k] as number) - (from[k] as number);
    const flag = d > limit;
    if (judged) bad ||= flag;
    out.push(`  ${flag ? (judged ? "LEAK" : "GREW?") : "ok   "} ${d >= 0 ? "+" : ""}${d} ${what} (${from[k]} -> ${end[k]}${limit ? `, margin ${limit}` : ""})`);
  }
  if (left.length) {
    bad = true;
    out.push(`LEFT BEHIND: ${left.length} state dirs (${left.slice(0, 5).join(" ")})`);
  }
  if (failures.size) {
    bad = true;
    out.push("FAILURES:");
    for (const [k, v] of [...failures].sort((a, b) => b[1] - a[1])) out.push(`  ${v} x ${k.slice(0, 300)}`);
  }
  out.push(bad ? "soak: FAILED" : "soak: ok");
  process.stdout.write(out.join("\n") + "\n");
  return bad ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(2);
  },
);
