// The OCI runtime-tools suite's results as conformance/runtime-tools.ts compares them: run-suite.sh's
// per-program judgement, and conformance/runtime-tools-expected.tsv (program, tsrun's result, note).

/** run-suite.sh's results that count as passed; FAIL, FAIL_DIAG and TIMEOUT are failures. */
const PASSED = new Set(["PASS", "PASS_NOTAP", "PASS_NOASSERT", "SKIP"]);

export const passed = (result: string | undefined): boolean => result !== undefined && PASSED.has(result);

export interface Expected {
  result: string;
  /** Why the program fails and whose item that is; "racy: ..." for a program that passes or fails by timing. */
  note: string;
}

export function parseExpected(text: string): Map<string, Expected> {
  const m = new Map<string, Expected>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [program, result, note] = line.split("\t");
    m.set(program!, { result: result ?? "", note: note ?? "" });
  }
  return m;
}

/** summary.tsv of run-suite.sh: program -> result (its 9th column). */
export function parseSummary(text: string): Map<string, string> {
  const results = new Map<string, string>();
  for (const line of text.trim().split("\n").slice(1)) {
    const cells = line.split("\t");
    if (cells[0]) results.set(cells[0], cells[8] ?? "");
  }
  return results;
}

export interface Comparison {
  /** passed in the expected table, not now (a missing program counts as not passing) */
  regressions: string[];
  /** the same, for programs noted as racy: reported, not counted */
  racy: string[];
  /** passing now, not in the expected table */
  newlyPassing: string[];
}

export function compareResults(expected: Map<string, Expected>, now: Map<string, string>): Comparison {
  const c: Comparison = { regressions: [], racy: [], newlyPassing: [] };
  for (const [p, e] of expected) {
    if (passed(e.result) && !passed(now.get(p))) (e.note.startsWith("racy:") ? c.racy : c.regressions).push(p);
  }
  for (const [p, r] of now) if (passed(r) && !passed(expected.get(p)?.result)) c.newlyPassing.push(p);
  return c;
}
