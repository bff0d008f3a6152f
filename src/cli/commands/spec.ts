import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { bool, str, type CommandContext } from "../context.ts";
import { TsrunError, errnoText } from "../../errors.ts";
import { defaultSpec } from "../../spec/defaults.ts";
import { isUnifiedHierarchy, parseMountinfo } from "../../linux/cgroups/parse.ts";

/** runc's test for adding a cgroup namespace: /sys/fs/cgroup is a cgroup2 mount. */
function cgroupV2Host(): boolean {
  try {
    return isUnifiedHierarchy(parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8")));
  } catch {
    return false;
  }
}

export function run(ctx: CommandContext): number {
  const path = join(resolve(str(ctx.values, "bundle") ?? "."), "config.json");
  const text = JSON.stringify(defaultSpec({ rootless: bool(ctx.values, "rootless"), cgroupNamespace: cgroupV2Host() }), null, "\t") + "\n";
  try {
    writeFileSync(path, text, { flag: "wx", mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new TsrunError(`${path} exists: remove it first, tsrun spec does not overwrite it`);
    throw new TsrunError(`cannot write ${path}: ${errnoText(err)}`);
  }
  return 0;
}
