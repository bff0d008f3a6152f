/**
 * What can be checked about a bundle on disk without running anything: the rootfs, the
 * program of process.args[0] (looked up inside the rootfs the way execvp would, through the
 * config's PATH), the cwd, bind mount sources, hook programs on the host, and whether the
 * host's resctrl can give what linux.intelRdt asks for.
 *
 * Paths inside the rootfs are resolved by a small resolver that follows symlinks the way the
 * kernel would with the rootfs as "/": an absolute link target restarts at the rootfs, ".."
 * stops at it, so nothing resolves to a host file outside the rootfs.
 */
import { lstatSync, readlinkSync, realpathSync, statSync, type Stats } from "node:fs";
import { isAbsolute, join, posix, resolve } from "node:path";
import { errnoName, errnoText, type Problem } from "../errors.ts";
import { HOOK_NAMES } from "./constants.ts";
import type { Mount, Spec } from "./generated/types.ts";
import { probeResctrl, rdtRefusal, requestedIntelRdt } from "../linux/resctrl.ts";

const MAX_SYMLINKS = 40;

export type InRoot =
  | { kind: "found"; host: string; stat: Stats }
  | { kind: "missing"; host: string }
  | { kind: "error"; host: string; message: string };

/**
 * Resolve `path` (a path inside the container) against the rootfs directory `root` without
 * ever leaving it. The final component is followed when it is a symlink.
 */
export function resolveInRoot(root: string, path: string): InRoot {
  let todo = path.split("/").filter((p) => p !== "" && p !== ".");
  const done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const c = todo[0]!;
    todo = todo.slice(1);
    if (c === "..") {
      done.pop();
      continue;
    }
    const host = join(root, ...done, c);
    let st: Stats;
    try {
      st = lstatSync(host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { kind: "missing", host: join(host, ...todo) };
      return { kind: "error", host, message: errnoText(err) };
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) return { kind: "error", host, message: errnoText({ code: "ELOOP" }) };
      let target: string;
      try {
        target = readlinkSync(host);
      } catch (err) {
        return { kind: "error", host, message: errnoText(err) };
      }
      if (target.startsWith("/")) done.length = 0;
      todo = [...target.split("/").filter((p) => p !== "" && p !== "."), ...todo];
      continue;
    }
    if (todo.length > 0 && !st.isDirectory()) return { kind: "error", host, message: errnoText({ code: "ENOTDIR" }) };
    done.push(c);
  }
  const host = join(root, ...done);
  try {
    return { kind: "found", host, stat: lstatSync(host) };
  } catch (err) {
    return { kind: "error", host, message: errnoText(err) };
  }
}

/**
 * root.path as create uses it: relative to the bundle, symlinks resolved (a rootfs that is a
 * symlink to a directory is that directory). The message says what is wrong otherwise.
 */
export function resolveRootfs(bundle: string, rootPath: string): { dir: string } | { message: string; errno: string } {
  const path = resolve(bundle, rootPath);
  try {
    const real = realpathSync(path);
    return statSync(real).isDirectory() ? { dir: real } : { message: `${path} is not a directory`, errno: "ENOTDIR" };
  } catch (err) {
    return { message: `${path}: ${errnoText(err)}`, errno: errnoName(err) };
  }
}

function isBind(m: Mount): boolean {
  return m.type === "bind" || (m.options ?? []).some((o) => o === "bind" || o === "rbind");
}

function executable(st: Stats): boolean {
  return st.isFile() && (st.mode & 0o111) !== 0;
}

/** The value of the last NAME= entry of an environment (later entries win, as in runc). */
function envValue(env: readonly string[] | undefined, name: string): string | undefined {
  let v: string | undefined;
  for (const e of env ?? []) if (e.startsWith(`${name}=`)) v = e.slice(name.length + 1);
  return v;
}

export function checkBundle(bundleDir: string, config: Spec): Problem[] {
  const problems: Problem[] = [];
  const add = (path: string, message: string): void => {
    problems.push({ path, message });
  };
  const bundle = resolve(bundleDir);

  // root.path
  let rootfs: string | undefined;
  if (config.root) {
    const r = resolveRootfs(bundle, config.root.path);
    if ("dir" in r) rootfs = r.dir;
    else add("root.path", r.message);
  }

  // process.args[0] and process.cwd, inside the rootfs
  const proc = config.process;
  if (rootfs && proc) {
    const mountDests = (config.mounts ?? []).map((m) => posix.resolve("/", m.destination));
    const underMount = (p: string): boolean => {
      const abs = posix.resolve("/", p);
      return mountDests.some((d) => d === "/" || abs === d || abs.startsWith(`${d}/`));
    };
    const cwd = posix.resolve("/", proc.cwd);
    checkProgram(rootfs, proc.args[0], cwd, envValue(proc.env, "PATH"), underMount, add);
    if (!underMount(cwd)) {
      const r = resolveInRoot(rootfs, cwd);
      if (r.kind === "found" && !r.stat.isDirectory()) add("process.cwd", `${cwd} is not a directory in the rootfs`);
      else if (r.kind === "error") add("process.cwd", `${cwd}: ${r.message}`);
    }
  }

  // bind mount sources on the host
  (config.mounts ?? []).forEach((m, i) => {
    if (!isBind(m) || !m.source) return;
    const src = isAbsolute(m.source) ? m.source : resolve(bundle, m.source);
    try {
      statSync(src);
    } catch (err) {
      add(`mounts[${i}].source`, `${src}: ${errnoText(err)}`);
    }
  });

  // linux.intelRdt: what this host's resctrl cannot give (create refuses it the same way)
  const rdt = config.linux?.intelRdt;
  if (rdt) {
    const refusal = rdtRefusal(requestedIntelRdt(rdt), probeResctrl());
    if (refusal) add(refusal.path, refusal.message);
  }

  // hook programs on the host (a startContainer hook's path resolves in the container, after its mounts)
  const hooks = config.hooks ?? {};
  for (const name of HOOK_NAMES) {
    if (name === "startContainer") continue;
    (hooks[name] ?? []).forEach((h, i) => {
      const where = `hooks.${name}[${i}].path`;
      try {
        const st = statSync(h.path);
        if (st.isDirectory()) add(where, `${h.path}: ${errnoText({ code: "EISDIR" })}`);
        else if (!executable(st)) add(where, `${h.path}: ${errnoText({ code: "EACCES" })} (not an executable file)`);
      } catch (err) {
        add(where, `${h.path}: ${errnoText(err)}`);
      }
    });
  }
  return problems;
}

/**
 * Find args[0] the way execvp does in the container: a name with a "/" is used as is
 * (relative to the cwd), otherwise each PATH directory is tried ("" meaning the cwd). Wording
 * as runc's (Go's exec.LookPath), which callers map to exit codes 126/127.
 */
function checkProgram(
  rootfs: string,
  file: string | undefined,
  cwd: string,
  path: string | undefined,
  underMount: (p: string) => boolean,
  add: (path: string, message: string) => void,
): void {
  if (file === undefined || file === "") return;
  const where = "process.args[0]";
  const q = JSON.stringify(file);
  if (file.includes("/")) {
    const target = posix.resolve(cwd, file);
    if (underMount(target)) return;
    const r = resolveInRoot(rootfs, target);
    if (r.kind === "missing") add(where, `exec: ${q}: stat ${file}: ${errnoText({ code: "ENOENT" })} (looked for ${target} in the rootfs)`);
    else if (r.kind === "error") add(where, `exec: ${q}: stat ${file}: ${r.message}`);
    else if (r.stat.isDirectory()) add(where, `exec: ${q}: ${errnoText({ code: "EISDIR" })}`);
    else if (!executable(r.stat)) add(where, `exec: ${q}: ${errnoText({ code: "EACCES" })} (not an executable file)`);
    return;
  }
  // As Go's filepath.SplitList: an empty or missing PATH searches nothing.
  const dirs = path ? path.split(":") : [];
  let mounted = false;
  for (const d of dirs) {
    const dir = posix.resolve(cwd, d === "" ? "." : d);
    const candidate = posix.join(dir, file);
    if (underMount(candidate)) {
      mounted = true;
      continue;
    }
    const r = resolveInRoot(rootfs, candidate);
    if (r.kind === "found" && executable(r.stat)) return;
  }
  if (mounted) return; // it may come from a mount: cannot tell without running
  add(where, `exec: ${q}: executable file not found in $PATH${path === undefined ? " (process.env sets no PATH)" : ` (PATH=${path})`}`);
}
