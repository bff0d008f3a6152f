/**
 * The OCI runtime-tools check's comparison (conformance/lib/runtime-tools-results.ts), the
 * docs/conformance.md section both reporters keep (conformance/lib/doc-section.ts), and the
 * committed expected table: every program tsrun fails there says why.
 */
import t from "tap";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compareResults, parseExpected, parseSummary, passed } from "../../conformance/lib/runtime-tools-results.ts";
import { BEGIN, END, sectionOf, withSection } from "../../conformance/lib/doc-section.ts";

const REPO = join(import.meta.dirname, "..", "..");

t.test("run-suite.sh's pass-like results count as passed, the rest as failed", async (t) => {
  for (const r of ["PASS", "PASS_NOTAP", "PASS_NOASSERT", "SKIP"]) t.ok(passed(r), r);
  for (const r of ["FAIL", "FAIL_DIAG", "TIMEOUT", "", undefined]) t.notOk(passed(r), String(r));
});

t.test("a program that passed and fails now is a regression, unless it is noted as racy", async (t) => {
  const expected = parseExpected(
    [
      "# program\ttsrun\tnote",
      "a\tPASS\t",
      "b\tPASS_NOASSERT\t",
      "c\tFAIL\tstale test",
      "d\tPASS\tracy: timing",
      "e\tPASS\t",
      "f\tPASS\t",
      "",
    ].join("\n"),
  );
  const now = parseSummary(
    [
      "test\tok\tnot_ok\ttodo\tskipped\tplanned\texit\tseconds\tresult",
      "a\t1\t0\t0\t0\t1\t0\t0.1\tPASS",
      "b\t0\t0\t0\t0\t0\t0\t0.1\tFAIL_DIAG",
      "c\t1\t0\t0\t0\t1\t0\t0.1\tPASS",
      "d\t0\t1\t0\t0\t1\t0\t0.1\tFAIL",
      "e\t0\t0\t0\t0\t0\t124\t60\tTIMEOUT",
      "g\t1\t0\t0\t0\t1\t0\t0.1\tPASS",
      "",
    ].join("\n"),
  );
  const c = compareResults(expected, now);
  t.same(c.regressions, ["b", "e", "f"], "f is missing from the run: that fails too");
  t.same(c.racy, ["d"]);
  t.same(c.newlyPassing, ["c", "g"]);
});

t.test("the committed table: every program tsrun fails has a note, every note of a passing program says racy", async (t) => {
  const expected = parseExpected(readFileSync(join(REPO, "conformance/runtime-tools-expected.tsv"), "utf8"));
  t.equal(expected.size, 58, "the suite's 58 programs");
  for (const [p, e] of expected) {
    if (!passed(e.result)) t.not(e.note, "", `${p} (${e.result}) says why it fails`);
    else if (e.note !== "") t.match(e.note, /^racy: /, `${p} passes: a note only for a racy program`);
  }
});

t.test("docs/conformance.md: the runtime-tools section is replaced in place, or put before the results", async (t) => {
  const section = (x: string) => `${BEGIN}\n## OCI runtime-tools validation suite\n${x}\n${END}`;
  const page = "# OCI runtime-spec conformance\n\nintro\n\n## Results\n\nrows\n";
  const once = withSection(page, section("one"));
  t.equal(once, `# OCI runtime-spec conformance\n\nintro\n\n${section("one")}\n\n## Results\n\nrows\n`);
  const twice = withSection(once, section("two"));
  t.equal(twice, once.replace("one", "two"), "replaced, not added again");
  t.equal(sectionOf(twice), section("two"));
  // conformance/report.ts rewrites the page and puts the kept section back
  const regenerated = "# OCI runtime-spec conformance\n\nnew intro\n\n## Results\n\nnew rows\n";
  t.equal(withSection(regenerated, sectionOf(twice)!), `# OCI runtime-spec conformance\n\nnew intro\n\n${section("two")}\n\n## Results\n\nnew rows\n`);
  t.equal(sectionOf(page), undefined);
});
