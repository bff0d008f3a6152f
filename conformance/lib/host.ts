// Looking at containers from the host: cgroups of a process, the environment's leftovers after
// a failed operation, namespaces kept in files.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { readMounts, isUnder } from "../../tests/lib/context.ts";
import { ensureRootfs } from "./build.ts";
import { alive, isOurs, listDir, sleep, TAG, type Runtime } from "./runtime.ts";

/** Mount point of each cgroup v1 controller ("memory" -> /sys/fs/cgroup/memory) and "" for v2. */
export function cgroupMountPoints(): Map<string, string> {
  const map = new Map<string, string>();
  const text = fs.readFileSync("/proc/self/mountinfo", "utf8");
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-", 6);
    if (sep < 0) continue;
    const fsType = f[sep + 1];
    const mp = f[4]!;
    if (fsType === "cgroup2") {
      if (!map.has("")) map.set("", mp);
    } else if (fsType === "cgroup") {
      for (const opt of (f[sep + 3] ?? "").split(",")) {
        if (["rw", "ro", "relatime", "nosuid", "nodev", "noexec", "clone_children", "xattr"].includes(opt)) continue;
        if (!map.has(opt)) map.set(opt, mp);
      }
    }
  }
  return map;
}

/** controller -> cgroup path of a process, from /proc/PID/cgroup ("" is the v2 entry). */
export function cgroupsOf(pid: number): Map<string, string> {
  const map = new Map<string, string>();
  let text = "";
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8");
  } catch {
    return map;
  }
  for (const line of text.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1]!.split(",")) map.set(c, m[2]!);
  }
  return map;
}

/** Host directory of a process's cgroup for a controller (v1), undefined when unknown. */
export function cgroupDir(pid: number, controller: string): string | undefined {
  const mp = cgroupMountPoints().get(controller);
  const p = cgroupsOf(pid).get(controller);
  if (!mp || p === undefined) return undefined;
  return path.join(mp, p);
}

/** Read a cgroup file of a process's cgroup (trimmed), undefined when unreadable. */
export function readCgroupFile(pid: number, controller: string, file: string): string | undefined {
  const dir = cgroupDir(pid, controller);
  if (!dir) return undefined;
  try {
    return fs.readFileSync(path.join(dir, file), "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Tagged processes still alive (after giving killed ones up to 2 s to finish dying). */
export async function taggedProcesses(except: number[] = []): Promise<number[]> {
  const scan = () =>
    fs
      .readdirSync("/proc")
      .filter((n) => /^[0-9]+$/.test(n))
      .map(Number)
      .filter((pid) => pid !== process.pid && !except.includes(pid) && alive(pid) && isOurs(pid));
  let pids = scan();
  for (let i = 0; i < 40 && pids.length; i++) {
    await sleep(50);
    pids = scan();
  }
  return pids;
}

/** Cgroup directories whose name contains text, in every hierarchy (4 levels deep). */
export function cgroupsNamed(text: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name.includes(text)) found.push(p);
      else if (depth < 4) walk(p, depth + 1);
    }
  };
  for (const mp of new Set(cgroupMountPoints().values())) walk(mp, 1);
  return found;
}

export interface EnvironmentTrace {
  /** The container's id in `state`: must not exist. */
  stateExists: boolean;
  stateDirs: string[];
  processes: number[];
  cgroups: string[];
  mounts: string[];
}

/**
 * What a failed `create ID` left behind: the container itself, state dirs, processes,
 * cgroups named after the id, mounts below the scratch dir or the rootfs. All empty/false
 * when the environment is as if the operation was never attempted.
 */
export async function traceOf(rt: Runtime, id: string): Promise<EnvironmentTrace> {
  const rootfs = ensureRootfs();
  return {
    stateExists: rt.state(id).result.code === 0,
    stateDirs: listDir(rt.root),
    processes: await taggedProcesses(),
    cgroups: cgroupsNamed(id),
    mounts: readMounts()
      .map((m) => m.mountPoint)
      .filter((mp) => isUnder(mp, rt.scratch) || isUnder(mp, rootfs) || mp.includes(TAG)),
  };
}

export const CLEAN_TRACE: EnvironmentTrace = { stateExists: false, stateDirs: [], processes: [], cgroups: [], mounts: [] };

/**
 * A namespace of `type` ("net", "ipc", "uts", ...) kept alive by a bind mount at file (made
 * with util-linux unshare). Returns a function that releases it.
 */
export function persistentNamespace(file: string, type: string): () => void {
  fs.writeFileSync(file, "");
  execFileSync("unshare", [`--${type}=${file}`, "true"], { stdio: "ignore" });
  return () => {
    try {
      execFileSync("umount", [file], { stdio: "ignore" });
    } catch {
      // already unmounted
    }
    fs.rmSync(file, { force: true });
  };
}

/**
 * A cgroupsPath for one test: "/<TAG>-cg/<name>", absolute (relative to each hierarchy's mount
 * point). removeCgroupParents() removes the "<TAG>-cg" dirs a runtime may leave behind.
 */
export function testCgroupPath(name: string): string {
  return `/${TAG}-cg/${name}`;
}

/** Remove the empty "<TAG>-cg" parents of testCgroupPath() from every hierarchy. */
export function removeCgroupParents(): void {
  for (const mp of new Set(cgroupMountPoints().values())) {
    const dir = path.join(mp, `${TAG}-cg`);
    const rm = (d: string) => {
      let entries: fs.Dirent[] = [];
      try {
        entries = fs.readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) rm(path.join(d, e.name));
      try {
        fs.rmdirSync(d);
      } catch {
        // busy or gone: the file's leak check reports what stays
      }
    };
    rm(dir);
  }
}
