// The conformance suite's runner and reporter (run with bun: node_modules/.bin/bun
// conformance/report.ts COMMAND).
//
//   run NAME=PATH...   run the suite against each runtime (tap, TAP output parsed with
//                      tap-parser) and save its results to conformance/build/results-NAME.json
//   table              write docs/conformance.md from the saved results (tsrun, runc, crun) and
//                      conformance/expected-tsrun.json from tsrun's
//   report             run the three default runtimes, then table
//   check [PATH]       run the suite against tsrun (PATH, default build/tsrun) and compare with
//                      conformance/expected-tsrun.json: exit 1 if any assertion that passed
//                      there does not pass now; print the ones that newly pass
//
// An assertion is identified by its test file and its name ("config-mounts :: config.md#...").
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Parser } from "tap-parser";
import type { Result as TapResult } from "tap-parser";
import { BUILD, CONFORMANCE, REPO, ensureChecker, ensureRootfs } from "./lib/build.ts";
import { sectionOf, withSection } from "./lib/doc-section.ts";

type Outcome = "pass" | "fail" | "skip" | "todo";

interface RuntimeResults {
  name: string;
  path: string;
  version: string;
  date: string;
  /** TAP exit status of the run (non-zero when anything failed). */
  exitCode: number;
  /** "file :: assertion" -> outcome, in suite order. */
  results: Record<string, Outcome>;
  /** Files whose TAP did not parse or that produced no assertions. */
  brokenFiles: string[];
}

const DEFAULT_RUNTIMES: Record<string, string> = {
  tsrun: path.join(REPO, "build/tsrun"),
  runc: "/usr/sbin/runc",
  crun: path.join(CONFORMANCE, "runtimes/crun-hybrid"),
};
const COLUMNS = ["tsrun", "runc", "crun"];
const EXPECTED = path.join(CONFORMANCE, "expected-tsrun.json");
const NOTES = path.join(CONFORMANCE, "notes.md");
const DOC = path.join(REPO, "docs/conformance.md");
const resultsFile = (name: string) => path.join(BUILD, `results-${name}.json`);

function testFiles(): string[] {
  return fs
    .readdirSync(CONFORMANCE)
    .filter((f) => f.endsWith(".test.ts"))
    .sort()
    .map((f) => path.join("conformance", f));
}

function version(bin: string): string {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
  return (r.stdout || r.stderr || "").split("\n")[0]?.trim() || "unknown";
}

/** Parse TAP from tap's runner: leaf assertions keyed "file :: name". */
function parseTap(tap: string): { results: Record<string, Outcome>; files: Set<string> } {
  const results: Record<string, Outcome> = {};
  const files = new Set<string>();
  const outcome = (r: TapResult): Outcome => (r.todo ? "todo" : r.skip ? "skip" : r.ok ? "pass" : "fail");
  const add = (key: string, o: Outcome) => {
    let k = key;
    for (let n = 2; k in results; n++) k = `${key} #${n}`;
    results[k] = o;
  };
  const watch = (p: Parser, file: string | undefined) => {
    const children = new Set<string>();
    p.on("child", (child: Parser) => {
      children.add(child.name);
      // Depth 1: the test file ("conformance/x.test.ts"); deeper: subtests of that file.
      const f = file ?? path.basename(child.name).replace(/\.test\.ts$/, "");
      if (!file) files.add(f);
      watch(child, f);
    });
    p.on("assert", (r: TapResult) => {
      if (children.has(r.name)) return; // a subtest's own summary line
      if (!file) return;
      add(`${file} :: ${r.name}`, outcome(r));
    });
  };
  const parser = new Parser();
  watch(parser, undefined);
  parser.end(tap);
  return { results, files };
}

/** Run the suite against one runtime with tap; TAP goes to a log file and is parsed. */
async function runSuite(name: string, bin: string): Promise<RuntimeResults> {
  ensureChecker();
  ensureRootfs();
  fs.mkdirSync(BUILD, { recursive: true });
  const log = path.join(BUILD, `tap-${name}.log`);
  const files = testFiles();
  console.error(`conformance: ${name} (${bin}): ${files.length} files`);
  const tap = path.join(REPO, "node_modules/.bin/tap");
  const out = fs.openSync(log, "w");
  const code = await new Promise<number>((resolve) => {
    const child = spawn(tap, ["--reporter=tap", "--disable-coverage", "--timeout=900", ...files], {
      cwd: REPO,
      env: { ...process.env, RUNTIME: bin, FORCE_COLOR: "0" },
      stdio: ["ignore", out, "inherit"],
    });
    child.on("close", (c) => resolve(c ?? 1));
  });
  fs.closeSync(out);
  const text = fs.readFileSync(log, "utf8");
  const { results, files: seen } = parseTap(text);
  const wanted = files.map((f) => path.basename(f).replace(/\.test\.ts$/, ""));
  const brokenFiles = wanted.filter((f) => !seen.has(f) || !Object.keys(results).some((k) => k.startsWith(`${f} :: `)));
  const r: RuntimeResults = { name, path: bin, version: version(bin), date: new Date().toISOString(), exitCode: code, results, brokenFiles };
  fs.writeFileSync(resultsFile(name), JSON.stringify(r, null, 2) + "\n");
  const counts = count(results);
  console.error(`conformance: ${name}: ${counts.pass} pass, ${counts.fail} fail, ${counts.skip} skip (TAP in ${path.relative(REPO, log)})`);
  return r;
}

function count(results: Record<string, Outcome>): Record<Outcome | "total", number> {
  const c = { pass: 0, fail: 0, skip: 0, todo: 0, total: 0 };
  for (const o of Object.values(results)) {
    c[o]++;
    c.total++;
  }
  return c;
}

function loadResults(name: string): RuntimeResults | undefined {
  try {
    return JSON.parse(fs.readFileSync(resultsFile(name), "utf8")) as RuntimeResults;
  } catch {
    return undefined;
  }
}

const CELL: Record<Outcome, string> = { pass: "pass", fail: "**FAIL**", skip: "skip", todo: "todo" };
const escapeCell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** Write docs/conformance.md and expected-tsrun.json from the saved results. */
function writeTable(): void {
  const runs = COLUMNS.map((n) => loadResults(n));
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const r of runs) {
    for (const k of Object.keys(r?.results ?? {})) {
      if (!seen.has(k)) {
        seen.add(k);
        keys.push(k);
      }
    }
  }
  // Group by file, files in name order, assertions in suite order.
  const byFile = new Map<string, string[]>();
  for (const k of keys) {
    const [file] = k.split(" :: ");
    if (!byFile.has(file!)) byFile.set(file!, []);
    byFile.get(file!)!.push(k);
  }
  const files = [...byFile.keys()].sort();

  const lines: string[] = [];
  lines.push("# OCI runtime-spec conformance");
  lines.push("");
  lines.push("<!-- Generated by conformance/report.ts (`make conformance-report`); notes come from conformance/notes.md. Do not edit by hand. -->");
  lines.push("");
  lines.push(
    "Results of tsrun's conformance suite (`conformance/`, one test file per area of the runtime-spec's runtime.md, config.md and config-linux.md) run against tsrun, runc and crun on the CI machine kind: Debian 12, kernel 6.18, cgroup v1 with a cgroup2 mount at /sys/fs/cgroup/unified, root without CAP_SYS_RESOURCE in its bounding set. Each row is one assertion, named after the spec sentence it checks; `[...]` names the case.",
  );
  lines.push("");
  lines.push("| runtime | version | pass | fail | skip | total | run at |");
  lines.push("| --- | --- | ---: | ---: | ---: | ---: | --- |");
  runs.forEach((r, i) => {
    const n = COLUMNS[i]!;
    if (!r) {
      lines.push(`| ${n} | not run | | | | | |`);
      return;
    }
    const c = count(r.results);
    const via = n === "crun" ? " (through conformance/runtimes/crun-hybrid)" : "";
    lines.push(`| ${n} | ${escapeCell(r.version)}${via} | ${c.pass} | ${c.fail} | ${c.skip} | ${c.total} | ${r.date.slice(0, 16).replace("T", " ")} |`);
  });
  lines.push("");
  lines.push("A missing result (—) means the runtime's run did not reach that assertion (the test stopped early).");
  lines.push("");
  if (fs.existsSync(NOTES)) {
    lines.push(fs.readFileSync(NOTES, "utf8").trim());
    lines.push("");
  }
  lines.push("## Results");
  lines.push("");
  for (const file of files) {
    const rows = byFile.get(file)!;
    const fails = COLUMNS.map((_, i) => rows.filter((k) => runs[i]?.results[k] !== undefined && runs[i]!.results[k] !== "pass" && runs[i]!.results[k] !== "skip").length);
    lines.push(`### ${file}`);
    lines.push("");
    lines.push(`Not passing: ${COLUMNS.map((n, i) => `${n} ${fails[i]}`).join(", ")} of ${rows.length}.`);
    lines.push("");
    lines.push(`| assertion | ${COLUMNS.join(" | ")} |`);
    lines.push(`| --- | ${COLUMNS.map(() => "---").join(" | ")} |`);
    for (const k of rows) {
      const name = k.slice(file.length + 4);
      const cells = runs.map((r) => {
        const o = r?.results[k];
        return o ? CELL[o] : "—";
      });
      lines.push(`| ${escapeCell(name)} | ${cells.join(" | ")} |`);
    }
    lines.push("");
  }
  // The runtime-tools section (conformance/runtime-tools.ts) stays as it is.
  const kept = fs.existsSync(DOC) ? sectionOf(fs.readFileSync(DOC, "utf8")) : undefined;
  const doc = lines.join("\n");
  fs.writeFileSync(DOC, kept ? withSection(doc, kept) : doc);
  console.error(`conformance: wrote ${path.relative(REPO, DOC)}`);

  const ts = runs[0];
  if (ts) {
    const expected = Object.fromEntries(Object.entries(ts.results).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    fs.writeFileSync(EXPECTED, JSON.stringify(expected, null, 2) + "\n");
    console.error(`conformance: wrote ${path.relative(REPO, EXPECTED)}`);
  }
}

/** Compare a tsrun run with expected-tsrun.json. Returns the process exit status. */
function compare(r: RuntimeResults): number {
  const expected = JSON.parse(fs.readFileSync(EXPECTED, "utf8")) as Record<string, Outcome>;
  const regressions: string[] = [];
  const newlyPassing: string[] = [];
  for (const [k, was] of Object.entries(expected)) {
    const now = r.results[k];
    if (was === "pass" && now !== "pass") regressions.push(`${k}  (${now ?? "missing"})`);
  }
  for (const [k, now] of Object.entries(r.results)) {
    if (now === "pass" && expected[k] !== "pass") newlyPassing.push(`${k}  (was ${expected[k] ?? "not in the table"})`);
  }
  if (newlyPassing.length) {
    console.log(`\nNewly passing (${newlyPassing.length}); regenerate the table with \`make conformance-report\`:`);
    for (const l of newlyPassing) console.log(`  + ${l}`);
  }
  if (r.brokenFiles.length) console.log(`\nTest files without results: ${r.brokenFiles.join(", ")}`);
  if (regressions.length) {
    console.log(`\nREGRESSIONS (${regressions.length}): passed in conformance/expected-tsrun.json, not now:`);
    for (const l of regressions) console.log(`  - ${l}`);
    return 1;
  }
  const c = count(r.results);
  console.log(`\nconformance-check: no regressions (${c.pass} pass, ${c.fail} fail, ${c.skip} skip)`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "run": {
      const pairs = rest.length ? rest : Object.entries(DEFAULT_RUNTIMES).map(([n, p]) => `${n}=${p}`);
      let status = 0;
      for (const pair of pairs) {
        const [name, bin] = pair.includes("=") ? [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)] : [path.basename(pair), pair];
        const r = await runSuite(name!, path.resolve(bin!));
        if (r.brokenFiles.length) status = 1;
      }
      return status;
    }
    case "table":
      writeTable();
      return 0;
    case "report": {
      for (const [n, p] of Object.entries(DEFAULT_RUNTIMES)) await runSuite(n, p);
      writeTable();
      return 0;
    }
    case "check": {
      const r = await runSuite("tsrun-check", path.resolve(rest[0] ?? DEFAULT_RUNTIMES.tsrun!));
      return compare(r);
    }
    default:
      console.error("usage: bun conformance/report.ts run [NAME=PATH...] | table | report | check [PATH]");
      return 2;
  }
}

process.exit(await main(process.argv.slice(2)));
