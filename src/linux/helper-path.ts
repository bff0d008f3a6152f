/** Where the C helper is: $TSRUN_HELPER, else next to the tsrun executable, else ../libexec/tsrun. */
import { existsSync, statSync } from "node:fs";
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

/**
 * What to spawn as the helper: the sealed memfd copy of it the C front end made (frontend/tsrun.c
 * seal_helper(), "FD DEV INO" in _TSRUN_HELPER_FD) when it is a copy of the very file helperPath()
 * names, else that file (the helper then makes the copy itself). Spawned through
 * /proc/PID/fd/FD, the child needs no fd of it. Read once: the variable is removed from the
 * environment, so that no child of tsrun's sees it.
 */
let sealedCopy: string | undefined | null = null;

export function helperExecPath(): string {
  const file = helperPath();
  if (sealedCopy === null) {
    const v = process.env._TSRUN_HELPER_FD;
    delete process.env._TSRUN_HELPER_FD;
    sealedCopy = sealedCopyOf(file, v, process.pid);
  }
  return sealedCopy ?? file;
}

/** The /proc path of the copy "FD DEV INO" names when it is a copy of file, else undefined. */
export function sealedCopyOf(file: string, value: string | undefined, pid: number): string | undefined {
  const m = value !== undefined ? /^([0-9]+) ([0-9]+) ([0-9]+)$/.exec(value) : null;
  if (!m) return undefined;
  try {
    const st = statSync(file, { bigint: true });
    return st.dev === BigInt(m[2]!) && st.ino === BigInt(m[3]!) ? `/proc/${pid}/fd/${m[1]}` : undefined;
  } catch {
    return undefined; // the file is the helper's own business then
  }
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
