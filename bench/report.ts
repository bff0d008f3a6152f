// Turns a bench run (build/bench/results.json) into docs/performance.md. bench/bench.ts calls it
// at the end of a run; it can also be run alone to rewrite the doc from saved results:
//   node_modules/.bin/bun bench/report.ts [build/bench/results.json] [docs/performance.md]
// The hand-written analysis (bench/analysis.md) is included as it is.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { breakdownTable, MISSING, type BreakdownResult } from "./breakdown.ts";
import { REPO, BUILD, summarize, type LeakReport, type RuntimeName, type Summary } from "./lib.ts";

export interface Results {
  machine: { hostname: string; kernel: string; cpu: string; cores: number; memoryGb: number };
  started: string;
  finished: string;
  loadBefore: number[];
  loadAfter: number[];
  loadSamples: number[];
  versions: Record<string, string>;
  config: { runs: number; batchRuns: number; batch: number; jobs: number; runtimes: RuntimeName[]; crunNamespace: boolean };
  data: Record<string, Partial<Record<RuntimeName, (number | undefined | null)[]>>>;
  failures: string[];
  leaks: { when: string; report: LeakReport }[];
  finalLeaks?: LeakReport;
  finalProblems: string[];
  driverOverheadMs: number[];
  breakdown?: BreakdownResult;
}

type Unit = "ms" | "s" | "MB" | "n";

interface Row {
  metric: string;
  label: string;
  unit: Unit;
}

const TIME_ROWS: Row[] = [
  { metric: "create", label: "create", unit: "ms" },
  { metric: "state", label: "state", unit: "ms" },
  { metric: "start", label: "start", unit: "ms" },
  { metric: "exec", label: "exec /bin/true (latency)", unit: "ms" },
  { metric: "kill", label: "kill KILL", unit: "ms" },
  { metric: "delete", label: "delete (stopped)", unit: "ms" },
  { metric: "ps", label: "ps", unit: "ms" },
  { metric: "events", label: "events --stats", unit: "ms" },
  { metric: "update", label: "update --pids-limit", unit: "ms" },
  { metric: "pause", label: "pause", unit: "ms" },
  { metric: "resume", label: "resume", unit: "ms" },
  { metric: "features", label: "features", unit: "ms" },
  { metric: "run", label: "run /bin/true", unit: "ms" },
  { metric: "cycle", label: "create+start+wait+delete /bin/true", unit: "ms" },
  { metric: "cycle.create", label: "  of which create", unit: "ms" },
  { metric: "cycle.start", label: "  of which start", unit: "ms" },
  { metric: "cycle.wait", label: "  of which wait (waitpid as a shim)", unit: "ms" },
  { metric: "cycle.delete", label: "  of which delete", unit: "ms" },
  { metric: "list", label: "list with N containers", unit: "ms" },
  { metric: "batch", label: "N containers create+start, J at a time", unit: "s" },
  { metric: "batchDelete", label: "N containers delete --force, J at a time", unit: "s" },
];

const RSS_ROWS: Row[] = [
  { metric: "waitRss", label: "process waiting between create and start (VmRSS)", unit: "MB" },
  { metric: "rss.create", label: "create (peak)", unit: "MB" },
  { metric: "rss.state", label: "state (peak)", unit: "MB" },
  { metric: "rss.start", label: "start (peak)", unit: "MB" },
  { metric: "rss.exec", label: "exec (peak)", unit: "MB" },
  { metric: "rss.kill", label: "kill (peak)", unit: "MB" },
  { metric: "rss.delete", label: "delete (peak)", unit: "MB" },
  { metric: "rss.ps", label: "ps (peak)", unit: "MB" },
  { metric: "rss.events", label: "events --stats (peak)", unit: "MB" },
  { metric: "rss.update", label: "update (peak)", unit: "MB" },
  { metric: "rss.pause", label: "pause (peak)", unit: "MB" },
  { metric: "rss.resume", label: "resume (peak)", unit: "MB" },
  { metric: "rss.features", label: "features (peak)", unit: "MB" },
  { metric: "rss.run", label: "run (peak)", unit: "MB" },
  { metric: "rss.list", label: "list with N containers (peak)", unit: "MB" },
];

const CPU_ROWS: Row[] = [
  { metric: "cpu.create", label: "create", unit: "ms" },
  { metric: "cpu.state", label: "state", unit: "ms" },
  { metric: "cpu.start", label: "start", unit: "ms" },
  { metric: "cpu.exec", label: "exec /bin/true", unit: "ms" },
  { metric: "cpu.kill", label: "kill", unit: "ms" },
  { metric: "cpu.delete", label: "delete", unit: "ms" },
  { metric: "cpu.ps", label: "ps", unit: "ms" },
  { metric: "cpu.events", label: "events --stats", unit: "ms" },
  { metric: "cpu.update", label: "update --pids-limit", unit: "ms" },
  { metric: "cpu.pause", label: "pause", unit: "ms" },
  { metric: "cpu.resume", label: "resume", unit: "ms" },
  { metric: "cpu.features", label: "features", unit: "ms" },
  { metric: "cpu.run", label: "run /bin/true", unit: "ms" },
  { metric: "cpu.cycle", label: "create+start+wait+delete /bin/true", unit: "ms" },
  { metric: "cpu.list", label: "list with N containers", unit: "ms" },
  { metric: "cpu.version", label: "--version", unit: "ms" },
];

function floorTable(r: Results): string {
  const row = (name: string, metric: string, rt: RuntimeName) => {
    const t = stat(r, metric, rt);
    const c = stat(r, `cpu.${metric}`, rt);
    const m = stat(r, `rss.${metric}`, rt);
    return t ? `| ${name} | ${num(t.median, "ms")} (${num(t.min, "ms")}-${num(t.max, "ms")}) | ${num(c?.median, "ms")} | ${num(m?.median, "MB")} |` : "";
  };
  return [
    "| one process | wall ms, median (min-max) | CPU ms (user+sys) | peak RSS MB |",
    "| --- | ---: | ---: | ---: |",
    row("`/bin/true` (fork + exec + exit)", "floor.true", "tsrun"),
    row("a Bun executable that does nothing (bench/floor.ts, built like tsrun)", "floor.bun", "tsrun"),
    ...r.config.runtimes.map((rt) => row(`\`${rt} --version\``, "version", rt)),
  ]
    .filter(Boolean)
    .join("\n");
}

function values(r: Results, metric: string, rt: RuntimeName): (number | undefined)[] {
  return (r.data[metric]?.[rt] ?? []).map((v) => (v === null ? undefined : v));
}

function scale(v: number, unit: Unit): number {
  if (unit === "s") return v / 1000;
  if (unit === "MB") return v / 1024;
  return v;
}

function num(v: number | undefined, unit: Unit): string {
  if (v === undefined || !Number.isFinite(v)) return "-";
  const x = scale(v, unit);
  if (unit === "n") return String(x);
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function stat(r: Results, metric: string, rt: RuntimeName): Summary | undefined {
  return summarize(values(r, metric, rt).filter((v): v is number => v !== undefined));
}

/** tsrun/other: ratio of the medians, and the median of the per-round ratios (same round = same noise). */
function ratios(r: Results, metric: string, other: RuntimeName): { ofMedians: number; paired: number } | undefined {
  const a = stat(r, metric, "tsrun");
  const b = stat(r, metric, other);
  if (!a || !b) return undefined;
  const ta = values(r, metric, "tsrun");
  const tb = values(r, metric, other);
  const pairs: number[] = [];
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    const x = ta[i];
    const y = tb[i];
    if (x !== undefined && y !== undefined && y > 0) pairs.push(x / y);
  }
  return { ofMedians: a.median / b.median, paired: summarize(pairs)?.median ?? NaN };
}

function ratioText(x: { ofMedians: number; paired: number } | undefined): string {
  if (!x) return "-";
  return `${x.ofMedians.toFixed(2)} (${Number.isFinite(x.paired) ? x.paired.toFixed(2) : "-"})`;
}

function label(row: Row, r: Results): string {
  return row.label.replace("N containers", `${r.config.batch} containers`).replace("J at a time", `${r.config.jobs} at a time`);
}

function table(r: Results, rows: Row[]): string {
  const rts = r.config.runtimes;
  const head = `| test | ${rts.map((rt) => `${rt} median (min-max)`).join(" | ")} | tsrun/runc | tsrun/crun |`;
  const sep = `| --- | ${rts.map(() => "---:").join(" | ")} | ---: | ---: |`;
  const lines = [head, sep];
  for (const row of rows) {
    if (!rts.some((rt) => stat(r, row.metric, rt))) continue;
    const cells = rts.map((rt) => {
      const s = stat(r, row.metric, rt);
      return s ? `${num(s.median, row.unit)} (${num(s.min, row.unit)}-${num(s.max, row.unit)})` : "-";
    });
    const name = `${label(row, r)}, ${row.unit}`;
    lines.push(`| ${name.startsWith("  ") ? "&nbsp;&nbsp;" + name.trim() : name} | ${cells.join(" | ")} | ${rts.includes("runc") ? ratioText(ratios(r, row.metric, "runc")) : "-"} | ${rts.includes("crun") ? ratioText(ratios(r, row.metric, "crun")) : "-"} |`);
  }
  return lines.join("\n");
}

function bars(r: Results, rows: Row[]): string {
  const rts = r.config.runtimes;
  const width = 50;
  const out: string[] = [];
  for (const row of rows) {
    const meds = rts.map((rt) => stat(r, row.metric, rt)?.median);
    const max = Math.max(...meds.filter((m): m is number => m !== undefined));
    if (!Number.isFinite(max) || max <= 0) continue;
    out.push(`${label(row, r).trim()} (${row.unit})`);
    rts.forEach((rt, i) => {
      const m = meds[i];
      const n = m === undefined ? 0 : Math.max(1, Math.round((m / max) * width));
      out.push(`  ${rt.padEnd(6)}${"#".repeat(n).padEnd(width)} ${num(m, row.unit)}`);
    });
    out.push("");
  }
  return "```\n" + out.join("\n").trimEnd() + "\n```";
}

interface BudgetItem {
  item: string;
  budget: string;
  measured: string;
  met: boolean | undefined;
}

function budget(r: Results): BudgetItem[] {
  const items: BudgetItem[] = [];
  const vs = (other: "runc" | "crun", metric: string, what: string, limit: number) => {
    const x = ratios(r, metric, other);
    const t = stat(r, metric, "tsrun");
    const u = stat(r, metric, other);
    items.push({
      item: what,
      budget: limit === 1 ? `<= ${other}` : `<= ${limit}x ${other}`,
      measured: x && t && u ? `${num(t.median, "ms")} vs ${num(u.median, "ms")} ms: ${x.ofMedians.toFixed(2)}x (paired ${x.paired.toFixed(2)}x)` : "not measured",
      met: x ? x.ofMedians <= limit : undefined,
    });
  };
  const vsRunc = (metric: string, what: string, limit: number) => vs("runc", metric, what, limit);
  // Issue 20's targets, on a quiet machine.
  vsRunc("cycle", "create+start+wait+delete of /bin/true", 0.8);
  vs("crun", "cycle", "create+start+wait+delete of /bin/true", 1.3);
  vsRunc("run", "run of /bin/true", 0.8);
  for (const c of ["state", "kill", "delete"]) vsRunc(c, c, 1);
  vsRunc("start", "start", 1);
  // Every command's CPU, those a manager calls now and then included (issue 20: every command).
  for (const row of CPU_ROWS) vsRunc(row.metric, `CPU of ${label(row, r)}`, 1);
  const w = stat(r, "waitRss", "tsrun");
  items.push({
    item: "process waiting between create and start",
    budget: "<= 2 MB RSS",
    measured: w ? `${num(w.median, "MB")} MB median, ${num(w.max, "MB")} MB max` : "not measured",
    met: w ? w.max <= 2048 : undefined,
  });
  const failed = values(r, "batch.failed", "tsrun").reduce<number>((a, b) => a + (b ?? 0), 0);
  const leaked = r.leaks.length + (r.finalLeaks ? Object.values(r.finalLeaks).flat().length : 0);
  const bt = stat(r, "batch", "tsrun");
  const bu = stat(r, "batch", "runc");
  const bx = ratios(r, "batch", "runc");
  items.push({
    item: `${r.config.batch} containers created and started ${r.config.jobs} at a time: no failure`,
    budget: "0 failures",
    measured: bt ? `${failed} failed in ${bt.n} rounds` : "not measured",
    met: bt ? failed === 0 : undefined,
  });
  items.push({
    item: "... and nothing leaked",
    budget: "mounts, cgroup dirs, state dirs, processes",
    measured: leaked ? `${leaked} leak reports (see below)` : "nothing left after any round",
    met: bt ? leaked === 0 : undefined,
  });
  items.push({
    item: "... total time",
    budget: "<= runc",
    measured: bt && bu && bx ? `${num(bt.median, "s")} vs ${num(bu.median, "s")} s: ${bx.ofMedians.toFixed(2)}x (paired ${bx.paired.toFixed(2)}x)` : "not measured",
    met: bx ? bx.ofMedians <= 1 : undefined,
  });
  vsRunc("list", `list with ${r.config.batch} containers`, 1);
  return items;
}

function budgetTable(items: BudgetItem[]): string {
  return [
    "| item | budget | measured (tsrun vs the other runtime, medians) | |",
    "| --- | --- | --- | --- |",
    ...items.map((i) => `| ${i.item} | ${i.budget} | ${i.measured} | ${i.met === undefined ? "?" : i.met ? "**met**" : "**missed**"} |`),
  ].join("\n");
}

function wrappedCmp(r: Results, metric: string, extra: number): string {
  const c = stat(r, metric, "crun");
  const t = stat(r, metric, "tsrun");
  if (!c) return "-";
  const w = c.median + extra;
  return `crun ${num(c.median, "ms")} + ${num(extra, "ms")} = ${num(w, "ms")} ms${t ? `, tsrun ${num(t.median, "ms")} ms: tsrun/wrapped crun ${(t.median / w).toFixed(2)}` : ""}`;
}

function wrapperSection(r: Results): string {
  const plain = stat(r, "plain.true", "crun");
  const wrapped = stat(r, "wrapper.true", "crun");
  const direct = stat(r, "state", "crun");
  const viaWrapper = stat(r, "wrapped.state", "crun");
  if (!plain || !wrapped) return "crun ran without a wrapper (the host has no hybrid cgroup2 mount).";
  const cost = wrapped.median - plain.median;
  return [
    "crun 1.8.1 refuses this host's hybrid layout (\"cgroups in hybrid mode not supported, drop all controllers from cgroupv2\"),",
    "so it runs in a private mount namespace where /sys/fs/cgroup/unified is unmounted. The bench makes that namespace once",
    "(`unshare -m` + `umount`, held by a sleeping process) and the runner `setns`es into it *before* its clock starts: the crun",
    "figures above carry no wrapper cost. What a caller that wraps every crun call would pay:",
    "",
    "| | median ms (min-max) |",
    "| --- | ---: |",
    `| exec of /bin/true, plain | ${num(plain.median, "ms")} (${num(plain.min, "ms")}-${num(plain.max, "ms")}) |`,
    `| exec of /bin/true through \`unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec "$0" "$@"'\` | ${num(wrapped.median, "ms")} (${num(wrapped.min, "ms")}-${num(wrapped.max, "ms")}) |`,
    `| **wrapper cost per call** (difference of medians) | **${num(cost, "ms")}** |`,
    direct && viaWrapper ? `| crun state, in the namespace (as in the tables) | ${num(direct.median, "ms")} (${num(direct.min, "ms")}-${num(direct.max, "ms")}) |` : "",
    direct && viaWrapper ? `| crun state, through the wrapper | ${num(viaWrapper.median, "ms")} (${num(viaWrapper.min, "ms")}-${num(viaWrapper.max, "ms")}) |` : "",
    "",
    `With the wrapper, add about ${num(cost, "ms")} ms to every crun figure per crun invocation: the create+start+wait+delete`,
    `cycle makes three (${wrappedCmp(r, "cycle", 3 * cost)}), \`run\` one (${wrappedCmp(r, "run", cost)}). The budget compares tsrun`,
    "with runc, which needs no wrapper.",
  ]
    .filter((l) => l !== "")
    .join("\n")
    .replace("\n| |", "\n\n| |")
    .replace("\nWith the wrapper", "\n\nWith the wrapper");
}

function leakSection(r: Results): string {
  const out: string[] = [];
  const n = r.config.batch;
  out.push(
    `Before and after each round of the ${n}-container test, and at the end, the bench looks for anything of its own left`,
    "on the host: lines naming its tag or dirs in /proc/self/mountinfo (and in crun's namespace), cgroup dirs named",
    "after its containers in every hierarchy (/sys/fs/cgroup/*/<id>, /sys/fs/cgroup/*/tsrun/<id>), entries in the",
    "private state dirs, and processes whose environment holds the bench's tag.",
    "",
  );
  if (r.leaks.length === 0) out.push(`Result: nothing left after any of the ${stat(r, "batch", "tsrun")?.n ?? 0} rounds, for any runtime.`);
  for (const l of r.leaks) {
    out.push(`- ${l.when}:`);
    for (const [k, v] of Object.entries(l.report)) for (const x of (v as string[]).slice(0, 10)) out.push(`  - ${k}: ${x}`);
  }
  const fl = r.finalLeaks ? Object.entries(r.finalLeaks).flatMap(([k, v]) => (v as string[]).map((x) => `${k}: ${x}`)) : [];
  out.push("", fl.length ? `After the final cleanup: ${fl.join("; ")}` : "After the final cleanup: nothing left.");
  if (r.finalProblems.length) out.push("", `Cleanup problems: ${r.finalProblems.join("; ")}`);
  return out.join("\n");
}

/**
 * A quiet run: the 1-minute load below 1 when it began (issue 20; nothing else is to run
 * meanwhile, which only the one who starts it can see to). Only a quiet run's report may replace
 * a quiet report in docs/ (bench.ts); the line QUIET_MARK says which one a report is.
 */
export const QUIET_LOAD = 1;
export const QUIET_MARK = "- quiet machine: yes";
export function isQuiet(r: Pick<Results, "loadBefore">): boolean {
  return r.loadBefore[0]! < QUIET_LOAD;
}

function machineSection(r: Results): string {
  const ls = summarize(r.loadSamples);
  const shared = !isQuiet(r);
  return [
    `- machine: \`${r.machine.hostname}\`, ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGb} GB`,
    `- kernel: ${r.machine.kernel}`,
    `- date: ${r.started} to ${r.finished}`,
    `- runc: ${r.versions.runc}`,
    `- crun: ${r.versions.crun}`,
    `- tsrun: ${r.versions.tsrun}; driver: bun ${r.versions.bun}`,
    `- load average (1/5/15 min) before: ${r.loadBefore.map((x) => x.toFixed(2)).join(" / ")}, after: ${r.loadAfter.map((x) => x.toFixed(2)).join(" / ")}; 1-min load during the run: ${ls ? `${ls.min.toFixed(2)}-${ls.max.toFixed(2)}` : "-"}`,
    shared
      ? `- **a loaded run, not a quiet one** (1-min load ${r.loadBefore[0]!.toFixed(2)} before it, ${QUIET_LOAD} or more), so absolute numbers are noisy and inflated; runtimes were interleaved round by round so that the noise hits all three alike, and the ratios are the figures to read.`
      : `${QUIET_MARK} (1-min load ${r.loadBefore[0]!.toFixed(2)} when it began, below ${QUIET_LOAD}, nothing else started meanwhile; the 200-container rounds load it themselves).`,
  ].join("\n");
}

export function writeReport(r: Results, docPath: string): { summary: string } {
  const items = budget(r);
  const overhead = summarize(r.driverOverheadMs);
  const analysisFile = path.join(REPO, "bench/analysis.md");
  const analysis = fs.existsSync(analysisFile) ? fs.readFileSync(analysisFile, "utf8").trim() : "";
  const b = r.breakdown;
  const doc = [
    "# Performance",
    "",
    `Generated by \`make bench\` (bench/bench.ts) from one run: ${r.config.runs} rounds of each single-command test,`,
    `${r.config.batchRuns} rounds of the ${r.config.batch}-container test. Every number below is what that run printed on this machine:`,
    "",
    machineSection(r),
    "",
    "To run it: `make bench` (30 rounds; about 6 minutes on this machine). `BENCH_RUNS=3 make bench` is a smoke test whose",
    "report goes to build/bench/performance.md; `bun bench/breakdown.ts [N]` times the stages of one create;",
    "`bun bench/report.ts` rewrites this file from build/bench/results.json. Knobs and files: bench/README.md.",
    "",
    "## How it is measured",
    "",
    "- Each runtime command is started and timed by a small C runner (bench/runner.c: `fork`, `execve`, `wait4`; monotonic",
    "  clock), so neither the Bun driver's start-up nor its event loop lands inside a measurement; peak RSS is the `ru_maxrss`",
    "  of the same `wait4` (the command and the processes it reaped, e.g. tsrun and its helper: what `/usr/bin/time -f %M` prints).",
    `  The driver's own cost around each call (spawnSync of the runner, hrtime around it, minus the runner's figure) was`,
    `  ${overhead ? `${overhead.median.toFixed(2)} ms median` : "-"}; it is the same for all runtimes and is not in the tables.`,
    "- Runtimes are interleaved: in each round every test runs for runc, crun and tsrun in turn, in an order that rotates",
    "  each round. Medians with min-max; ratios are tsrun's median over the other runtime's median, and in parentheses the",
    "  median of the per-round ratios (each pair measured seconds apart, under the same load).",
    "- The same bundle for all three: a read-only busybox rootfs (tests/make-rootfs.sh) and the tests' realistic runc-like",
    "  config (bench/config.ts: pid, net, ipc, uts, mount, cgroup namespaces, 7 mounts, masked and read-only paths, 14",
    "  capabilities, no seccomp), ociVersion 1.0.2 (crun 1.8.1 refuses 1.3.0). No cgroupsPath: each runtime's default",
    "  path; no resources but the default device rules. NODE_EXTRA_CA_CERTS is unset for everything.",
    "- Private `--root` per runtime under /run/tsrun-bench, unique container ids; every container is deleted at the end",
    "  (also on SIGINT/SIGTERM). The driver runs under the runner as a child subreaper, as a containerd shim is: container",
    "  inits whose runtime has exited are reparented to it and reaped.",
    "- lifecycle (one container per round, /bin/sleep): `create`, `state` (then the VmRSS of the container's init, which is the",
    "  process waiting for `start`), `start`, `exec /bin/true`, then on the running container `ps`, `events --stats`,",
    "  `update --pids-limit 1000`, `pause`, `resume` (each recorded only for the runtimes that have it: crun 1.8.1 has no",
    "  `events`), `kill KILL`, wait until the init is gone, `delete`. `features` is timed beside `--version`; `spec` is not timed.",
    "- `run /bin/true` (foreground; each runtime deletes the container itself).",
    "- create+start+wait+delete of /bin/true: one runner call that is a subreaper, `create --pid-file`, `start`, `waitpid` of",
    "  the pid (the init was reparented to the runner), `delete`.",
    `- ${r.config.batch} containers (/bin/sleep), created and started ${r.config.jobs} at a time (the runner forks ${r.config.jobs} workers, each runs`,
    `  create then start); the time is from the first fork to the last exit. Then \`list\` with the ${r.config.batch} (timed), then \`delete --force\``,
    `  of all, ${r.config.jobs} at a time (timed), then the leak check.`,
    "",
    "## Results",
    "",
    table(r, TIME_ROWS),
    "",
    "Memory, MB (VmRSS of the waiting process; peak RSS of each command):",
    "",
    table(r, RSS_ROWS),
    "",
    "CPU time, ms (user + system of the command and the processes it reaped: load-independent, and what limits throughput when",
    "many containers start at once):",
    "",
    table(r, CPU_ROWS),
    "",
    "The floor of one invocation (same runner, same rounds):",
    "",
    floorTable(r),
    "",
    "### Bars (medians)",
    "",
    bars(r, [...TIME_ROWS.filter((x) => !x.metric.startsWith("cycle.")), RSS_ROWS[0]!, RSS_ROWS[1]!]),
    "",
    "## Budget (docs: shared design, section 3)",
    "",
    budgetTable(items),
    "",
    "## crun and its wrapper",
    "",
    wrapperSection(r),
    "",
    `## ${r.config.batch} containers: failures and leaks`,
    "",
    leakSection(r),
    "",
    r.failures.length ? `Failures (${r.failures.length}):\n\n${r.failures.slice(0, 30).map((f) => `- ${f}`).join("\n")}` : "No command failed during the run.",
    "",
    "## Breakdown of one tsrun create",
    "",
    b
      ? [
          `bench/breakdown.ts, ${b.runs} creates with \`--debug --log FILE --log-format json\` (this run). Helper stages come from`,
          "its own debug lines (microseconds); TypeScript stages can only be placed by the two TypeScript debug lines with a",
          "millisecond timestamp (\"cgroup ready\", \"helper ready after N ms\"), so they are coarse and lumped.",
          "",
          breakdownTable(b),
          "",
          b.stamped ? "" : "Not reported separately, and the debug line that would report it (bench/breakdown.ts reads them as they are given here):",
          "",
          ...(b.stamped ? [] : MISSING).map((m) => `- ${m}`),
        ].join("\n")
      : "(not run)",
    "",
    analysis,
    "",
  ].join("\n");
  fs.mkdirSync(path.dirname(docPath), { recursive: true });
  fs.writeFileSync(docPath, doc.replace(/\n{3,}/g, "\n\n"));
  const summary = [
    "",
    table(r, [...TIME_ROWS, RSS_ROWS[0]!]),
    "",
    budgetTable(items),
    "",
  ].join("\n");
  return { summary };
}

// CLI: rewrite the doc from saved results.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const json = process.argv[2] ?? path.join(BUILD, "bench/results.json");
  const doc = process.argv[3] ?? path.join(REPO, "docs/performance.md");
  const r = JSON.parse(fs.readFileSync(json, "utf8")) as Results;
  process.stdout.write(writeReport(r, doc).summary);
}
