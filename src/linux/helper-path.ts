/** Where the C helper is: $TSRUN_HELPER, else next to the tsrun executable, else ../libexec/tsrun. */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { TsrunError } from "../errors.ts";

export function helperPath(): string {
  const fromEnv = process.env.TSRUN_HELPER;
  if (fromEnv) return fromEnv;
  const dir = dirname(process.execPath);
  for (const candidate of [join(dir, "tsrun-helper"), join(dir, "..", "libexec", "tsrun", "tsrun-helper")]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new TsrunError(`cannot find tsrun-helper next to ${process.execPath} or in ../libexec/tsrun (set TSRUN_HELPER)`);
}

/** The libseccomp the helper is linked with (it applies the filters), as runc and crun report
 * theirs (`--version`, `features`); undefined when it cannot say. */
export async function libseccompVersion(): Promise<string | undefined> {
  const { runSync } = await import("./spawn.ts");
  try {
    const r = runSync(helperPath(), ["--libseccomp-version"], { stdout: "pipe" });
    const v = r.status === 0 ? r.stdout.toString("utf8").trim() : "";
    return /^[0-9]+\.[0-9]+\.[0-9]+$/.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
