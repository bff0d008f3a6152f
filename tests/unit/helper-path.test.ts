// Which helper tsrun-main spawns: the sealed copy the C front end handed over only when it is a
// copy of the very file tsrun-main would run (src/linux/helper-path.ts sealedCopyOf()).
import t from "tap";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { sealedCopyOf } from "../../src/linux/helper-path.ts";

t.test("the handed-over copy is taken only for the same file", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-helper-path-"));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const helper = path.join(dir, "tsrun-helper");
  const other = path.join(dir, "other");
  fs.writeFileSync(helper, "x");
  fs.writeFileSync(other, "y");
  const st = fs.statSync(helper, { bigint: true });
  const so = fs.statSync(other, { bigint: true });
  t.equal(sealedCopyOf(helper, `256 ${st.dev} ${st.ino}`, 42), "/proc/42/fd/256", "a copy of this file");
  t.equal(sealedCopyOf(helper, `256 ${so.dev} ${so.ino}`, 42), undefined, "a copy of another file is not run");
  for (const bad of [undefined, "", "256", "256 1", "x 1 2", `256 ${st.dev} ${st.ino} 9`, `-1 ${st.dev} ${st.ino}`]) {
    t.equal(sealedCopyOf(helper, bad, 42), undefined, `not "${bad}"`);
  }
  t.equal(sealedCopyOf(path.join(dir, "missing"), `256 ${st.dev} ${st.ino}`, 42), undefined, "no file: no copy");
});
