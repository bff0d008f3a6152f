// The OCI runtime-tools validation suite (opencontainers/runtime-tools' validation/*.t programs,
// built from ../shared/runtime-tools into build/runtime-tools by `make runtime-tools-build`):
// running it, its table in docs/conformance.md, and the check CI runs. Run with bun:
// node_modules/.bin/bun conformance/runtime-tools.ts COMMAND
//
//   run NAME=PATH...   run the suite against each runtime (one at a time: the programs share
//                      cgroup paths); results in build/runtime-tools-results/NAME/ (summary.txt
//                      is the per-program table, one .tap and .stderr per program)
//   table              write the suite's section of docs/conformance.md and the tsrun column of
//                      conformance/runtime-tools-expected.tsv from the saved tsrun, runc and crun runs
//   report             run tsrun (build/tsrun), runc and crun (crun-hybrid), then table
//   check [PATH]       run the suite against PATH (default build/tsrun) and compare with
//                      conformance/runtime-tools-expected.tsv: exit 1 when a program that passes
//                      there fails now (programs whose note starts with "racy:" excepted);
//                      print the programs that newly pass
//
// Each program's result is run-suite.sh's judgement (its header): PASS, PASS_NOTAP,
// PASS_NOASSERT and SKIP count as passed; FAIL, FAIL_DIAG and TIMEOUT as failed.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BEGIN, END, withSection } from "./lib/doc-section.ts";
import { compareResults, parseExpected, parseSummary, passed, type Expected } from "./lib/runtime-tools-results.ts";

const CONFORMANCE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(CONFORMANCE);
const SUITE = path.join(REPO, "build/runtime-tools");
const RESULTS = path.join(REPO, "build/runtime-tools-results");
const EXPECTED = path.join(CONFORMANCE, "runtime-tools-expected.tsv");
const DOC = path.join(REPO, "docs/conformance.md");

const RUNTIMES: Record<string, string> = {
  tsrun: path.join(REPO, "build/tsrun"),
  runc: "/usr/sbin/runc",
  crun: path.join(CONFORMANCE, "runtimes/crun-hybrid"),
};
const COLUMNS = ["tsrun", "runc", "crun"];

interface Run {
  version: string;
  date: string;
  /** program -> run-suite.sh's result */
  results: Map<string, string>;
}

function version(bin: string): string {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
  return (r.stdout || r.stderr || "").split("\n")[0]?.trim() || "unknown";
}

/** Runs run-suite.sh (it prints a line per program) and reads its summary.tsv. */
async function runSuite(name: string, bin: string): Promise<Run> {
  const script = path.join(SUITE, "run-suite.sh");
  if (!fs.existsSync(script)) throw new Error(`${script} not found: run \`make runtime-tools-build\` first`);
  const out = path.join(RESULTS, name);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  console.error(`runtime-tools: ${name} (${bin})`);
  const code = await new Promise<number>((resolve) => {
    const child = spawn(script, [bin, out], { stdio: ["ignore", "inherit", "inherit"] });
    child.on("close", (c) => resolve(c ?? 1));
  });
  // 0: all passed, 1: some failed; anything else: the suite did not run
  if (code !== 0 && code !== 1) throw new Error(`runtime-tools: run-suite.sh exited ${code} for ${name}`);
  const run: Run = { version: version(bin), date: new Date().toISOString(), results: readSummary(out) };
  fs.writeFileSync(path.join(out, "run.json"), JSON.stringify({ version: run.version, date: run.date }) + "\n");
  console.error(`runtime-tools: ${name}: ${count(run)} of ${run.results.size} passed (${path.relative(REPO, path.join(out, "summary.txt"))})`);
  return run;
}

function readSummary(dir: string): Map<string, string> {
  return parseSummary(fs.readFileSync(path.join(dir, "summary.tsv"), "utf8"));
}

function loadRun(name: string): Run | undefined {
  const dir = path.join(RESULTS, name);
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, "run.json"), "utf8")) as { version: string; date: string };
    return { ...meta, results: readSummary(dir) };
  } catch {
    return undefined;
  }
}

function count(run: Run): number {
  return [...run.results.values()].filter(passed).length;
}

/** conformance/runtime-tools-expected.tsv: program, tsrun's result, note (why it fails, whose it is). */
function readExpected(): Map<string, Expected> {
  return parseExpected(fs.readFileSync(EXPECTED, "utf8"));
}

function writeExpected(tsrun: Run, old: Map<string, Expected>): void {
  const lines = [
    "# The OCI runtime-tools suite's results for tsrun (conformance/runtime-tools.ts; `make runtime-tools-report` rewrites the",
    "# result column, the notes are kept). `make runtime-tools-check` fails when a program passed here fails (PASS, PASS_NOTAP,",
    "# PASS_NOASSERT, SKIP) unless its note starts with \"racy:\". Notes say why a program fails and whose item that is.",
    "# program\ttsrun\tnote",
  ];
  for (const program of [...tsrun.results.keys()].sort()) {
    lines.push(`${program}\t${tsrun.results.get(program)}\t${old.get(program)?.note ?? ""}`);
  }
  fs.writeFileSync(EXPECTED, lines.join("\n") + "\n");
  console.error(`runtime-tools: wrote ${path.relative(REPO, EXPECTED)}`);
}

const cell = (r: string | undefined) => (r === undefined ? "—" : passed(r) ? r.toLowerCase() : `**${r}**`);

/** The suite's section of docs/conformance.md, between the markers (conformance/report.ts keeps it). */
function section(runs: (Run | undefined)[], expected: Map<string, Expected>): string {
  const programs = [...new Set(runs.flatMap((r) => [...(r?.results.keys() ?? [])]))].sort();
  const lines: string[] = [BEGIN, "## OCI runtime-tools validation suite", ""];
  lines.push("<!-- Generated by conformance/runtime-tools.ts (`make runtime-tools-report`); the notes come from conformance/runtime-tools-expected.tsv. Do not edit by hand. -->");
  lines.push("");
  lines.push(
    "The OCI's own validation programs (github.com/opencontainers/runtime-tools at 260e151b, kept in `../shared/runtime-tools` with its vendored modules and built offline), one row per program, as `run-suite.sh` judges it: pass (every TAP result ok), pass_notap (a negative test whose runtime refused the config), pass_noassert (a hook test without an error diagnostic); **FAIL**, **FAIL_DIAG** (a hook test's error diagnostic), **TIMEOUT**. `make runtime-tools` runs the suite against build/tsrun; `make test` runs `make runtime-tools-check`, which fails when a program that passes in `conformance/runtime-tools-expected.tsv` fails now (programs noted as racy excepted).",
  );
  lines.push("");
  lines.push("| runtime | version | programs passed | run at |");
  lines.push("| --- | --- | ---: | --- |");
  runs.forEach((r, i) => {
    const n = COLUMNS[i]!;
    const via = n === "crun" ? " (through conformance/runtimes/crun-hybrid)" : "";
    lines.push(r ? `| ${n} | ${r.version}${via} | ${count(r)} of ${r.results.size} | ${r.date.slice(0, 16).replace("T", " ")} |` : `| ${n} | not run | | |`);
  });
  lines.push("");
  lines.push(`| program | ${COLUMNS.join(" | ")} | why tsrun fails it (whose item) |`);
  lines.push(`| --- | ${COLUMNS.map(() => "---").join(" | ")} | --- |`);
  for (const p of programs) {
    const note = expected.get(p)?.note ?? "";
    lines.push(`| ${p} | ${runs.map((r) => cell(r?.results.get(p))).join(" | ")} | ${note.replace(/\|/g, "\\|")} |`);
  }
  lines.push("", END);
  return lines.join("\n");
}

function writeTable(): void {
  const runs = COLUMNS.map(loadRun);
  const tsrun = runs[0];
  if (!tsrun) throw new Error("runtime-tools: no saved tsrun run (build/runtime-tools-results/tsrun): run `make runtime-tools` first");
  const old = readExpected();
  writeExpected(tsrun, old);
  const doc = fs.existsSync(DOC) ? fs.readFileSync(DOC, "utf8") : "";
  fs.writeFileSync(DOC, withSection(doc, section(runs, readExpected())));
  console.error(`runtime-tools: wrote ${path.relative(REPO, DOC)}`);
}

function compare(run: Run): number {
  const expected = readExpected();
  const c = compareResults(expected, run.results);
  const where = (p: string) => `${p}  (${run.results.get(p) ?? "missing"}; build/runtime-tools-results/check/${p}.tap, .stderr)`;
  if (c.newlyPassing.length) {
    console.log(`\nNewly passing (${c.newlyPassing.length}); record them with \`make runtime-tools-report\`:`);
    for (const p of c.newlyPassing) console.log(`  + ${p}  (was ${expected.get(p)?.result ?? "not in the table"})`);
  }
  if (c.racy.length) {
    console.log("\nRacy programs that failed this time (not counted):");
    for (const p of c.racy) console.log(`  ~ ${where(p)}`);
  }
  if (c.regressions.length) {
    console.log(`\nREGRESSIONS (${c.regressions.length}): passed in conformance/runtime-tools-expected.tsv, not now:`);
    for (const p of c.regressions) console.log(`  - ${where(p)}`);
    return 1;
  }
  console.log(`\nruntime-tools-check: no regressions (${count(run)} of ${run.results.size} programs passed)`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "run":
      for (const pair of rest.length ? rest : Object.entries(RUNTIMES).map(([n, p]) => `${n}=${p}`)) {
        const i = pair.indexOf("=");
        await runSuite(i > 0 ? pair.slice(0, i) : path.basename(pair), path.resolve(i > 0 ? pair.slice(i + 1) : pair));
      }
      return 0;
    case "table":
      writeTable();
      return 0;
    case "report":
      for (const [n, p] of Object.entries(RUNTIMES)) await runSuite(n, p);
      writeTable();
      return 0;
    case "check":
      return compare(await runSuite("check", path.resolve(rest[0] ?? RUNTIMES.tsrun!)));
    default:
      console.error("usage: bun conformance/runtime-tools.ts run [NAME=PATH...] | table | report | check [PATH]");
      return 2;
  }
}

process.exit(await main(process.argv.slice(2)));
