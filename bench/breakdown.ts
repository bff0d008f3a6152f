// Where one `tsrun create` spends its time, from its own --debug lines.
//   env -u NODE_EXTRA_CA_CERTS node_modules/.bin/bun bench/breakdown.ts [N]     (default N = 10)
// Runs N creates of the bench bundle with `--debug --log FILE --log-format json` (the JSON log
// stamps each line with the time, to the millisecond), deletes each, and prints the median of
// each stage. Helper stages come from its "helper: <ms> <stage>" lines (microseconds, relative to
// the helper's start); TypeScript stages can only be anchored to the few debug lines TypeScript
// prints ("cgroup ready", "helper ready after N ms"), so several stages are lumped together and
// listed as not reported.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildRunner, cleanStale, cleanup, log, rtCmd, setup, summarize, timed, type Work } from "./lib.ts";

export interface Stage {
  name: string;
  /** what the stage covers */
  covers: string;
  ms: number[];
}

export interface BreakdownResult {
  runs: number;
  /** the TypeScript debug lines carried "@<epoch ms>" stamps (all stages placed to the microsecond) */
  stamped: boolean;
  stages: { name: string; covers: string; median: number; min: number; max: number }[];
  totalMedian: number;
  /** `tsrun --version`: Bun start-up, module load and exit, with no work */
  versionMedian: number;
  missing: string[];
  /** the debug output of the last run, for reference */
  sample: string[];
}

interface LogLine {
  msg: string;
  time: string;
}

/** What the time up to each debug line covers (matched on the line's start). */
const COVERS: [RegExp, string][] = [
  [/^main: /, "exec, Bun runtime start, module evaluation, argument parsing"],
  [/^command module loaded/, "the command's module (lazy import)"],
  [/^create: start/, "bundle path checks"],
  [/^config read and validated/, "config.json read, JSON.parse, ajv validation, semantic checks"],
  [/^state dir lock/, "mkdir of the state dir (the lock), cgroup paths planned (mountinfo, /proc/self/cgroup), first state.json write"],
  [/^cgroup ready/, "cgroup dirs made in every hierarchy, device rules written, state.json rewritten"],
  [/^plan built/, "launch plan built (mounts, devices, capabilities, ...)"],
  [/^spawning helper/, "(the helper is started before the cgroup and the plan, so that its exec overlaps them)"],
  [/^helper spawned/, "Bun.spawn() of tsrun-helper returns"],
  [/^plan encoded/, "plan encoded into its binary form"],
  [/^plan sent/, "hooks planned, the plan encoded and written to the sync socket"],
  [/^helper: t0/, "(the helper's main starts)"],
  [/^helper: sealed copy running/, "memfd copy of the helper + seals + fexecve (CVE-2019-5736)"],
  [/^helper: plan: first byte/, "the helper waits for the plan"],
  [/^helper: plan read/, "plan read and decoded"],
  [/^helper: namespaces joined/, "mkfifo exec.fifo, open the cgroup.procs files, sockets, setns (none here)"],
  [/^helper: process created/, "clone() into new pid/net/ipc/uts/mount namespaces; the pid written to every cgroup.procs"],
  [/^helper: init: namespaces ready/, "child woken, setsid, unshare(CLONE_NEWCGROUP)"],
  [/^helper: init: mounts done/, "rootfs bind, the config's mounts, /dev nodes and symlinks"],
  [/^helper: init: pivot done/, "maskedPaths, readonlyPaths, pivot_root"],
  [/^helper: seccomp rules added/, "seccomp filter built"],
  [/^helper: init: ready/, "hostname, rlimits, capabilities, user, cwd, fds"],
  [/^helper: ready/, "the helper's parent reads the init's ready line"],
  [/^helper ready after/, "TypeScript reads the helper's ready line"],
  [/^state written/, "/proc/PID/stat read, state.json written"],
  [/^main done/, "return to main"],
  [/^exit/, "process.exit, until the driver's spawnSync returns"],
];

/** Without stamped TypeScript lines, a few rows cover several stages at once. */
const LUMPED: Record<string, string> = {
  "cgroup ready": "everything from the exec of tsrun: Bun start-up, module loading, argument parsing, config read + validate, state dir lock + state writes, cgroup dirs + device rules (not reported separately)",
  "helper: plan read": "plan built and encoded, child_process.spawn of tsrun-helper, its memfd copy + seals + re-exec, the plan sent and read (not reported separately)",
  "helper ready after N ms": "TypeScript reads the ready line",
  exit: "/proc/PID/stat read, state.json written, process exit (not reported separately)",
};

function eventName(msg: string): string {
  return msg
    .replace(/^cgroup ready: .*/, "cgroup ready")
    .replace(/^helper ready after \d+ ms/, "helper ready after N ms")
    .replace(/^main: arguments parsed.*/, "main: arguments parsed")
    .replace(/^helper: process \d+ created/, "helper: process created")
    .replace(/^helper: t0 epoch.*/, "helper: t0")
    .replace(/^helper: plan read.*/, "helper: plan read");
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

export function runBreakdown(work: Work, n: number): BreakdownResult {
  const rt = work.runtimes.find((r) => r.name === "tsrun");
  if (!rt) throw new Error("breakdown needs tsrun");
  const stages = new Map<string, Stage>();
  const add = (name: string, covers: string, ms: number) => {
    let s = stages.get(name);
    if (!s) stages.set(name, (s = { name, covers, ms: [] }));
    s.ms.push(ms);
  };
  const firstSeen: string[] = [];
  const totals: number[] = [];
  const versions: number[] = [];
  let sample: string[] = [];
  let stamped = false;
  for (let i = 0; i < n; i++) {
    const id = `${work.tag}-bd${i}`;
    const logFile = path.join(work.dir, `breakdown-${i}.log`);
    const outFile = path.join(work.dir, `breakdown-${i}.out`);
    const out = fs.openSync(outFile, "w");
    const t0 = process.hrtime.bigint();
    const wall0 = now();
    const r = spawnSync(rt.bin, ["--root", rt.root, "--debug", "--log", logFile, "--log-format", "json", "create", "--bundle", work.bundles.sleep, id], {
      stdio: ["ignore", out, out],
      env: work.env,
    });
    const total = Number(process.hrtime.bigint() - t0) / 1e6;
    fs.closeSync(out);
    try {
      if (r.status !== 0) throw new Error(`tsrun create failed: ${fs.readFileSync(outFile, "utf8").trim()}`);
      const lines = fs
        .readFileSync(logFile, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as LogLine);
      sample = lines.map((l) => `${l.time} ${l.msg.length > 140 ? l.msg.slice(0, 137) + "..." : l.msg}`);
      // Events: [name, ms since the spawn]. A TypeScript line is placed by its "@<epoch ms>" prefix
      // when it has one, else by the log's millisecond timestamp; helper lines by the helper's
      // "t0 epoch" line when there is one, else by anchoring its "ready" to TypeScript's.
      const events: { name: string; at: number }[] = [];
      const helperLines: { ms: number; stage: string }[] = [];
      let helperEpoch: number | undefined;
      let tsReady: number | undefined;
      for (const l of lines) {
        let msg = l.msg;
        let at = Date.parse(l.time) - wall0;
        const m = /^@([0-9.]+) (.*)$/s.exec(msg);
        if (m) {
          at = Number(m[1]) - wall0;
          msg = m[2]!;
          stamped = true;
        }
        const h = /^helper: ([0-9.]+) (.*)$/.exec(msg);
        if (h) {
          helperLines.push({ ms: Number(h[1]), stage: h[2]! });
          const e = /^t0 epoch ([0-9.]+)/.exec(h[2]!);
          if (e) helperEpoch = Number(e[1]);
          continue;
        }
        if (msg.startsWith("helper ready after")) tsReady = at;
        events.push({ name: eventName(msg), at });
      }
      const hReady = helperLines.find((h) => h.stage === "ready");
      const hBase = helperEpoch !== undefined ? helperEpoch - wall0 : tsReady !== undefined && hReady ? tsReady - hReady.ms : undefined;
      if (hBase === undefined) throw new Error("cannot place the helper's debug lines (no \"helper ready after\" line)");
      for (const h of helperLines) events.push({ name: eventName(`helper: ${h.stage}`), at: hBase + h.ms });
      events.push({ name: "exit", at: total });
      events.sort((a, b) => a.at - b.at);
      let prev = 0;
      for (const e of events) {
        if (!firstSeen.includes(e.name)) firstSeen.push(e.name);
        add(e.name, COVERS.find(([re]) => re.test(e.name))?.[1] ?? "", e.at - prev);
        prev = e.at;
      }
      totals.push(total);
    } catch (e) {
      log(`breakdown run ${i}: ${(e as Error).message}`);
    } finally {
      timed(work, rt, [rtCmd(rt, "delete", "--force", id)], { allowFail: true });
    }
    const v = timed(work, rt, [[rt.bin, "--version"]], { allowFail: true });
    versions.push(v.steps[0]?.ms ?? NaN);
  }
  const result: BreakdownResult = {
    runs: totals.length,
    stamped,
    stages: [...stages.values()]
      .sort((a, b) => firstSeen.indexOf(a.name) - firstSeen.indexOf(b.name))
      .map((s) => ({ name: s.name, covers: s.covers, ...summarize(s.ms)! })),
    totalMedian: summarize(totals)?.median ?? NaN,
    versionMedian: summarize(versions)?.median ?? NaN,
    missing: stamped ? [] : MISSING,
    sample,
  };
  return result;
}

/**
 * Stages the debug output does not separate, and the debug line that would (for the lead to
 * add; bench/breakdown.ts already understands them).
 */
export const MISSING = [
  "timestamps: TypeScript debug lines carry none (the --log JSON time has 1 ms resolution). src/log.ts logDebug(): prefix the message with `@${(performance.timeOrigin + performance.now()).toFixed(3)} ` (epoch ms, microseconds), which places every line below exactly",
  "process start to main: src/cli/main.ts dispatch(), right after configureLog(): logDebug(`main: arguments parsed (timeOrigin ${performance.timeOrigin.toFixed(3)})`); and after `await command.load()`: logDebug(\"command module loaded\")",
  "config read + validate: src/lifecycle/create.ts createContainer(): logDebug(\"create: start\") before loadConfigFile() and logDebug(\"config read and validated\") after it",
  "state dir lock + first state write: createContainer(), after crashPoint(\"create-record-written\"): logDebug(\"state dir locked, cgroup planned, first state write\")",
  "cgroup setup: the existing \"cgroup ready\" line then closes the stage (no change needed once lines are stamped)",
  "plan build: createContainer(), before `launched = true`: logDebug(\"plan built\")",
  "helper spawn: src/lifecycle/helper-process.ts startHelper(): logDebug(\"spawning helper\") right before spawn(), logDebug(\"helper spawned\") right after it; launch(): logDebug(\"plan sent\") after the write of the encoded plan",
  "helper sealing and plan wait: helper/main.c main(): note now_ns() after ensure_sealed_exe() and after poll(POLLIN) on the sync fd (the plan's first byte); once the plan says debug, report \"debug <ms> t0 epoch <CLOCK_REALTIME ms of g_t0_ns>\", \"debug <ms> sealed copy running\", \"debug <ms> plan: first byte\" (the t0 epoch line places the helper's stages on the same clock as TypeScript's)",
  "state write: createContainer(), after crashPoint(\"create-record-complete\"): logDebug(\"state written\"); and in main()'s finally, before closeLog(): logDebug(\"main done\")",
];

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : "-";
}

export function breakdownTable(b: BreakdownResult): string {
  const covers = (s: { name: string; covers: string }) => (!b.stamped && LUMPED[s.name]) || s.covers;
  const rows = b.stages.map((s) => `| ${s.name === "exit" ? "(exit: spawnSync returns)" : s.name} | ${fmt(s.median)} | ${fmt(s.min)}-${fmt(s.max)} | ${((s.median / b.totalMedian) * 100).toFixed(0)}% | ${covers(s)} |`);
  return [
    `| up to the debug line | median ms | min-max | share | what happens in between |`,
    `| --- | ---: | ---: | ---: | --- |`,
    ...rows,
    `| **total (tsrun create, wall)** | **${fmt(b.totalMedian)}** | | 100% | |`,
    `| reference: \`tsrun --version\` | ${fmt(b.versionMedian)} | | | Bun start + exit with no work |`,
  ].join("\n");
}

// CLI
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const n = Number(process.argv[2] ?? 10);
  cleanStale(buildRunner());
  const work = await setup({ runtimes: ["tsrun"], tsrunFrom: process.env.BENCH_TSRUN_DIR });
  const stop = () => {
    cleanup(work);
    cleanup(work, { final: true });
    process.exit(130);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  try {
    const b = runBreakdown(work, n);
    process.stdout.write(
      `tsrun create, ${b.runs} runs, medians in ms; ${b.stamped ? "debug lines stamped to the microsecond" : "TypeScript lines placed by the log's 1 ms timestamps"}\n\n`,
    );
    process.stdout.write(breakdownTable(b) + "\n");
    if (b.missing.length) process.stdout.write("\nnot reported separately (debug lines to add):\n");
    for (const m of b.missing) process.stdout.write(`- ${m}\n`);
    process.stdout.write(`\ndebug output of the last run:\n${b.sample.map((l) => "  " + l).join("\n")}\n`);
  } finally {
    cleanup(work);
    cleanup(work, { final: true });
  }
}
