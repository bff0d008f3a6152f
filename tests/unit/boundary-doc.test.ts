// docs/boundary.md is generated from boundary/helper.proto (make docs/boundary.md) and committed,
// so that the format can be read without building: it must say what the declaration says.
import t from "tap";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { renderDescriptorSet } from "../../scripts/gen-boundary-doc.ts";

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const DESC = path.join(REPO, "build/gen/helper.desc");

if (!existsSync(DESC)) {
  t.plan(0, "needs `make` (build/gen/helper.desc)");
  process.exit(0);
}

t.test("docs/boundary.md is the declaration, rendered", async (t) => {
  const doc = readFileSync(path.join(REPO, "docs/boundary.md"), "utf8");
  t.equal(doc, renderDescriptorSet(readFileSync(DESC)), "run `make docs/boundary.md` and commit it");
  for (const name of ["ToHelper", "CreatePlan", "ExecPlan", "FromHelper", "Failure", "ErrorCode"]) t.match(doc, new RegExp(`^### ${name}$`, "m"));
});
