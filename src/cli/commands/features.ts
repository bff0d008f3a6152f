import { features } from "../../linux/features.ts";
import { helperPath } from "../../linux/helper-path.ts";
import { runSync } from "../../linux/spawn.ts";
import { writeOut } from "../../log.ts";

/** The libseccomp the helper is linked with, as runc and crun report theirs; undefined if it cannot say. */
function libseccompVersion(): string | undefined {
  try {
    const r = runSync(helperPath(), ["--libseccomp-version"], { stdout: "pipe" });
    const v = r.status === 0 ? r.stdout.toString("utf8").trim() : "";
    return /^[0-9]+\.[0-9]+\.[0-9]+$/.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export function run(): number {
  writeOut(JSON.stringify(features(libseccompVersion()), null, 2) + "\n");
  return 0;
}
