// tsrun benchmarks, side by side with runc and crun (issue #9). Run: `make bench`, or
//   env -u NODE_EXTRA_CA_CERTS node_modules/.bin/bun bench/bench.ts
// Knobs (environment):
//   BENCH_RUNS=30          rounds of every single-command test (quick smoke test: BENCH_RUNS=3)
//   BENCH_BATCH_RUNS=N     rounds of the 200-container test (default: BENCH_RUNS)
//   BENCH_BATCH=200        containers in the concurrent test (and in `list`)
//   BENCH_JOBS=8           concurrency of that test
//   BENCH_RUNTIMES=runc,crun,tsrun
//   BENCH_DOC=path         where the report goes (default docs/performance.md when BENCH_RUNS >= 30,
//                          else build/bench/performance.md, so a smoke test never replaces the doc)
//   BENCH_TSRUN_DIR=dir    where tsrun, tsrun-main and tsrun-helper are taken from (default build/)
//
// Every command is timed by bench/runner.c (fork, execve, wait4: no interpreter in the
// measurement; peak RSS from the same wait4), runtimes interleaved round-robin in an order that
// rotates each round. Each runtime has a private --root; container ids carry a unique tag; all is
// deleted at the end, on SIGINT/SIGTERM too, and a leak check looks for what is left.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  ALL_RUNTIMES,
  REPO,
  BUILD,
  buildBunFloor,
  buildRunner,
  cleanStale,
  cleanup,
  containersIn,
  hybridUnifiedMount,
  leakCheck,
  leakCheckSettled,
  leakCount,
  log,
  pool,
  rotation,
  rtCmd,
  setup,
  timed,
  vmRssKb,
  waitGone,
  type LeakReport,
  type Runtime,
  type RuntimeName,
  type Step,
  type Work,
} from "./lib.ts";
import { runBreakdown, type BreakdownResult } from "./breakdown.ts";
import { QUIET_LOAD, QUIET_MARK, isQuiet, writeReport, type Results } from "./report.ts";

function intEnv(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${v}: want a positive integer`);
  return n;
}

const RUNS = intEnv("BENCH_RUNS", 30);
const BATCH_RUNS = intEnv("BENCH_BATCH_RUNS", RUNS);
const BATCH = intEnv("BENCH_BATCH", 200);
const JOBS = intEnv("BENCH_JOBS", 8);
const RUNTIMES = (process.env.BENCH_RUNTIMES ?? ALL_RUNTIMES.join(",")).split(",").filter(Boolean) as RuntimeName[];
for (const r of RUNTIMES) if (!ALL_RUNTIMES.includes(r)) throw new Error(`BENCH_RUNTIMES: unknown runtime ${r}`);
const DOC = process.env.BENCH_DOC || (RUNS >= 30 ? path.join(REPO, "docs/performance.md") : path.join(BUILD, "bench/performance.md"));

// Run under the runner's reaper (a child subreaper, as a containerd shim is): container inits
// whose runtime has exited are reparented to it and reaped at once, whatever pid 1 does.
if (!process.env.TSRUN_BENCH_REAPED) {
  const runner = buildRunner();
  const env: NodeJS.ProcessEnv = { ...process.env, TSRUN_BENCH_REAPED: "1" };
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(runner, ["-R", process.execPath, ...process.argv.slice(1)], { stdio: "inherit", env });
  process.exit(r.status ?? 1);
}

type Series = Partial<Record<RuntimeName, (number | undefined)[]>>;
const data: Record<string, Series> = {};
const failures: string[] = [];
const leaks: { when: string; report: LeakReport }[] = [];
const overheadMs: number[] = [];
const loadSamples: number[] = [];

function rec(metric: string, rt: RuntimeName, round: number, value: number | undefined): void {
  const s = (data[metric] ??= {});
  const arr = (s[rt] ??= []);
  arr[round] = value;
}

/** A command's time, peak RSS and CPU, under metric, rss.metric and cpu.metric. */
function recStep(metric: string, rt: RuntimeName, round: number, s: Step): void {
  rec(metric, rt, round, s.ms);
  rec(`rss.${metric}`, rt, round, s.rssKb);
  rec(`cpu.${metric}`, rt, round, s.cpuMs);
}

let interrupted: string | undefined;
const yieldLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function forceDelete(work: Work, rt: Runtime, id: string): void {
  timed(work, rt, [rtCmd(rt, "delete", "--force", id)], { allowFail: true });
}

function lifecycle(work: Work, rt: Runtime, r: number, unified: string | undefined): void {
  const id = `${work.tag}-${rt.name}-l${r}`;
  const step = (metric: string, args: string[]) => {
    const t = timed(work, rt, [rtCmd(rt, ...args)]);
    recStep(metric, rt.name, r, t.steps[0]!);
    overheadMs.push(t.outerMs - t.totalMs);
    return t;
  };
  try {
    step("create", ["create", "--bundle", work.bundles.sleep, id]);
    const st = step("state", ["state", id]);
    const state = JSON.parse(st.output) as { pid: number; status: string };
    if (state.status !== "created") throw new Error(`state after create: ${state.status}`);
    rec("waitRss", rt.name, r, vmRssKb(state.pid));
    if (rt.ns && unified) {
      // crun the way a caller without our namespace trick would run it: through the wrapper.
      const w = timed(work, undefined, [["unshare", "-m", "sh", "-c", `umount ${unified}; exec "$0" "$@"`, ...rtCmd(rt, "state", id)]]);
      rec("wrapped.state", rt.name, r, w.steps[0]!.ms);
    }
    step("start", ["start", id]);
    step("exec", ["exec", id, "/bin/true"]);
    // What else managers call on a running container (docker top, stats, update, pause and
    // unpause), recorded for the runtimes that have the command (crun 1.8.1 has no `events`).
    for (const [metric, args] of RUNNING_COMMANDS) optionalStep(work, rt, r, metric, [...args, id]);
    step("kill", ["kill", id, "KILL"]);
    if (!waitGone(state.pid)) throw new Error(`container init ${state.pid} still there 5 s after kill`);
    step("delete", ["delete", id]);
  } catch (e) {
    failures.push(`round ${r} ${rt.name} lifecycle: ${(e as Error).message}`);
    forceDelete(work, rt, id);
  }
}

/** Commands timed on the running container, in this order (the container id is appended). */
const RUNNING_COMMANDS: [string, string[]][] = [
  ["ps", ["ps"]],
  ["events", ["events", "--stats"]],
  ["update", ["update", "--pids-limit", "1000"]],
  ["pause", ["pause"]],
  ["resume", ["resume"]],
];

/** One command whose failure is not the round's: its figures are recorded only when it worked. */
function optionalStep(work: Work, rt: Runtime, r: number, metric: string, args: string[]): void {
  const s = timed(work, rt, [rtCmd(rt, ...args)], { allowFail: true }).steps[0];
  if (s?.code === 0) recStep(metric, rt.name, r, s);
}

function runTrue(work: Work, rt: Runtime, r: number): void {
  const id = `${work.tag}-${rt.name}-r${r}`;
  try {
    const t = timed(work, rt, [rtCmd(rt, "run", "--bundle", work.bundles.true, id)]);
    recStep("run", rt.name, r, t.steps[0]!);
    if (containersIn(rt).includes(id)) throw new Error("run left the container behind");
  } catch (e) {
    failures.push(`round ${r} ${rt.name} run: ${(e as Error).message}`);
    forceDelete(work, rt, id);
  }
}

/** create+start+wait+delete of /bin/true, waited for as a shim does (subreaper, waitpid). */
function cycle(work: Work, rt: Runtime, r: number): void {
  const id = `${work.tag}-${rt.name}-c${r}`;
  const pidFile = path.join(work.dir, `pid-${id}`);
  try {
    const t = timed(
      work,
      rt,
      [rtCmd(rt, "create", "--bundle", work.bundles.true, "--pid-file", pidFile, id), rtCmd(rt, "start", id), ["@wait", pidFile], rtCmd(rt, "delete", id)],
      { subreaper: true },
    );
    rec("cycle", rt.name, r, t.totalMs);
    rec("cpu.cycle", rt.name, r, t.steps.reduce((a, s) => a + s.cpuMs, 0));
    ["create", "start", "wait", "delete"].forEach((s, i) => rec(`cycle.${s}`, rt.name, r, t.steps[i]!.ms));
  } catch (e) {
    failures.push(`round ${r} ${rt.name} create+start+wait+delete: ${(e as Error).message}`);
    forceDelete(work, rt, id);
  }
}

/**
 * The floor of one invocation: `--version` of each runtime, and beside them an exec of
 * /bin/true and of a Bun executable that does nothing (bench/floor.ts), all timed alike.
 */
function floors(work: Work, r: number, bunFloor: string | undefined): void {
  for (const rt of rotation(work.runtimes, r)) {
    const t = timed(work, undefined, [[rt.bin, "--version"]], { allowFail: true });
    if (t.steps[0]?.code === 0) recStep("version", rt.name, r, t.steps[0]);
    optionalStep(work, rt, r, "features", ["features"]);
  }
  const refs: string[][] = [["/bin/true"]];
  if (bunFloor) refs.push([bunFloor]);
  const t = timed(work, undefined, refs, { allowFail: true });
  t.steps.forEach((s, i) => {
    recStep(i === 0 ? "floor.true" : "floor.bun", "tsrun", r, s);
  });
}

function wrapperCost(work: Work, r: number, unified: string): void {
  // The per-call cost of `unshare -m sh -c 'umount ...; exec crun "$@"'`, against a plain exec.
  const t = timed(work, undefined, [["/bin/true"], ["unshare", "-m", "sh", "-c", `umount ${unified}; exec "$0" "$@"`, "/bin/true"]]);
  rec("plain.true", "crun", r, t.steps[0]!.ms);
  rec("wrapper.true", "crun", r, t.steps[1]!.ms);
}

function batch(work: Work, r: number): void {
  const order = rotation(work.runtimes, r);
  const before = leakCheck(work);
  if (leakCount(before)) leaks.push({ when: `before batch round ${r}`, report: before });
  for (const rt of order) {
    const prefix = `${work.tag}-${rt.name}-b${r}-`;
    const p = pool(work, rt, JOBS, BATCH, prefix, [rtCmd(rt, "create", "--bundle", work.bundles.sleep, "{}"), rtCmd(rt, "start", "{}")]);
    rec("batch", rt.name, r, p.totalMs);
    rec("batch.failed", rt.name, r, p.failed);
    if (p.failed) failures.push(`round ${r} ${rt.name} ${BATCH} containers: ${p.failed} failed: ${p.output.trim().split("\n").slice(0, 3).join(" | ")}`);
  }
  for (const rt of order) {
    const n = containersIn(rt).length;
    try {
      const t = timed(work, rt, [rtCmd(rt, "list")]);
      const lines = t.output.trim().split("\n").length - 1;
      if (lines !== n) throw new Error(`list printed ${lines} containers, ${n} in the state dir`);
      recStep("list", rt.name, r, t.steps[0]!);
      rec("list.count", rt.name, r, n);
    } catch (e) {
      failures.push(`round ${r} ${rt.name} list: ${(e as Error).message}`);
    }
  }
  for (const rt of order) {
    const prefix = `${work.tag}-${rt.name}-b${r}-`;
    const p = pool(work, rt, JOBS, BATCH, prefix, [rtCmd(rt, "delete", "--force", "{}")]);
    rec("batchDelete", rt.name, r, p.totalMs);
    if (p.failed) failures.push(`round ${r} ${rt.name} delete --force of ${BATCH}: ${p.failed} failed: ${p.output.trim().split("\n").slice(0, 3).join(" | ")}`);
  }
  const after = leakCheckSettled(work);
  if (leakCount(after)) {
    leaks.push({ when: `after batch round ${r}`, report: after });
    cleanup(work);
  }
}

function versionLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return (r.stdout || r.stderr || "").trim().split("\n").slice(0, 2).join("; ");
}

function gitInfo(): string {
  const rev = spawnSync("git", ["-C", REPO, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).stdout.trim();
  const dirty = spawnSync("git", ["-C", REPO, "status", "--porcelain", "--", "src", "helper", "bin"], { encoding: "utf8" }).stdout.trim();
  return dirty ? `${rev} + uncommitted changes in src/helper/bin` : rev;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = os.loadavg();
  log(`runs ${RUNS}, batch runs ${BATCH_RUNS} x ${BATCH} containers, ${JOBS} at a time; runtimes ${RUNTIMES.join(", ")}`);
  const stale = cleanStale(buildRunner());
  if (stale.length) log(`cleaned up after an earlier bench run that was killed: ${stale.join(", ")}`);
  const bunFloor = buildBunFloor();
  const work = await setup({ runtimes: RUNTIMES, tsrunFrom: process.env.BENCH_TSRUN_DIR });
  const versions = {
    runc: versionLine("runc", ["--version"]),
    crun: versionLine("crun", ["--version"]).split(";")[0]!,
    tsrun: `${versionLine(work.runtimes.find((r) => r.name === "tsrun")?.bin ?? path.join(BUILD, "tsrun"), ["--version"]).split(";")[0]} (git ${gitInfo()})`,
    bun: versionLine(process.execPath, ["--version"]),
  };
  const onSignal = (sig: string) => {
    interrupted = sig;
    log(`${sig}: stopping after the current command, then cleaning up`);
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGHUP", () => onSignal("SIGHUP"));
  let breakdown: BreakdownResult | undefined;
  const unified = hybridUnifiedMount();
  const finalProblems: string[] = [];
  let finalLeaks: LeakReport | undefined;
  try {
    for (let r = 0; r < RUNS && !interrupted; r++) {
      const order = rotation(work.runtimes, r);
      for (const rt of order) {
        if (interrupted) break;
        lifecycle(work, rt, r, unified);
        await yieldLoop();
      }
      floors(work, r, bunFloor);
      for (const rt of order) runTrue(work, rt, r);
      await yieldLoop();
      for (const rt of order) cycle(work, rt, r);
      if (unified && work.runtimes.some((rt) => rt.name === "crun")) wrapperCost(work, r, unified);
      loadSamples.push(os.loadavg()[0]!);
      await yieldLoop();
      if (r % 5 === 4 || r === RUNS - 1) log(`single-command round ${r + 1}/${RUNS} done (load ${os.loadavg()[0]!.toFixed(2)})`);
    }
    for (let r = 0; r < BATCH_RUNS && !interrupted; r++) {
      batch(work, r);
      loadSamples.push(os.loadavg()[0]!);
      log(`batch round ${r + 1}/${BATCH_RUNS} done (load ${os.loadavg()[0]!.toFixed(2)})`);
      await yieldLoop();
    }
    if (!interrupted && work.runtimes.some((rt) => rt.name === "tsrun")) {
      breakdown = runBreakdown(work, Math.min(RUNS, 20));
      log("breakdown done");
    }
  } finally {
    finalProblems.push(...cleanup(work));
    finalLeaks = leakCheckSettled(work);
    finalProblems.push(...cleanup(work, { final: true }));
  }
  if (interrupted) {
    log(`interrupted (${interrupted}); cleaned up${finalProblems.length ? ", with problems: " + finalProblems.join("; ") : ""}; no report written`);
    process.exit(130);
  }
  const results: Results = {
    machine: {
      hostname: os.hostname(),
      kernel: `${os.type()} ${os.release()} ${os.version()}`,
      cpu: os.cpus()[0]?.model ?? "?",
      cores: os.cpus().length,
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
    },
    started: started.toISOString(),
    finished: new Date().toISOString(),
    loadBefore,
    loadAfter: os.loadavg(),
    loadSamples,
    versions,
    config: { runs: RUNS, batchRuns: BATCH_RUNS, batch: BATCH, jobs: JOBS, runtimes: RUNTIMES, crunNamespace: Boolean(unified) },
    data,
    failures,
    leaks,
    finalLeaks,
    finalProblems,
    driverOverheadMs: overheadMs,
    breakdown,
  };
  fs.mkdirSync(path.join(BUILD, "bench"), { recursive: true });
  // A loaded run never replaces a quiet report: it goes beside the results instead.
  let doc = DOC;
  if (!isQuiet(results) && fs.existsSync(DOC) && fs.readFileSync(DOC, "utf8").includes(QUIET_MARK)) {
    doc = path.join(BUILD, "bench", "performance-loaded.md");
    log(`the 1-min load was ${loadBefore[0]!.toFixed(2)} at the start (${QUIET_LOAD} or more): ${path.relative(process.cwd(), DOC)} holds a quiet run and is kept`);
  }
  // A smoke test or a loaded run (report not in docs/) keeps its results apart, so report.ts still rebuilds the doc from the last run it holds.
  const json = path.join(BUILD, "bench", doc === path.join(REPO, "docs/performance.md") ? "results.json" : doc === DOC ? "results-quick.json" : "results-loaded.json");
  fs.writeFileSync(json, JSON.stringify(results, null, 1) + "\n");
  const text = writeReport(results, doc);
  process.stdout.write(text.summary);
  log(`raw results: ${path.relative(process.cwd(), json)}; report: ${path.relative(process.cwd(), doc)}`);
  if (failures.length || leaks.length || (finalLeaks && leakCount(finalLeaks)) || finalProblems.length) process.exitCode = 1;
}

main().catch((e) => {
  log(`failed: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
