// A create that must be refused: exit 1, the expected error, and no state dir left behind.
import fs from "node:fs";
import path from "node:path";
import { makeBundle, type ConfigObject } from "./bundle.ts";
import { containerId, tsrun, type TsrunResult } from "./tsrun.ts";
import type { Test } from "tap";

/** Creates a container from the base config after mutate in root; returns tsrun's result. */
export function expectCreateRefused(t: Test, root: string, name: string, mutate: (c: ConfigObject) => void, want: RegExp): TsrunResult {
  const bundle = makeBundle(t, { config: mutate });
  const id = containerId();
  const r = tsrun(["create", "--bundle", bundle.dir, id], { root });
  t.equal(r.code, 1, `${name}: exit 1`);
  t.match(r.stderr, want, name);
  t.notOk(fs.existsSync(path.join(root, id)), `${name}: no state dir`);
  return r;
}
