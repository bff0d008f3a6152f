// Running a container with cgroup resources and reading its cgroup files from the host.
import fs from "node:fs";
import path from "node:path";
import { startRunning, type Config } from "./container.ts";
import { cgroupDir, cgroupMountPoints, removeCgroupParents, testCgroupPath } from "./host.ts";
import type { Result, Runtime } from "./runtime.ts";

export interface CgroupRun {
  create: Result;
  createErr: string;
  /** controller -> file -> trimmed content (undefined when unreadable). */
  files: Record<string, Record<string, string | undefined>>;
  /** The checker's output (commands run before it waited). */
  out: Record<string, unknown> | undefined;
}

let n = 0;

/**
 * Start a container with `resources` (and cgroupsPath testCgroupPath(...)), read the given
 * cgroup files of its process from the host while it runs, then remove it.
 */
export async function withResources(
  rt: Runtime,
  resources: Record<string, unknown>,
  read: Record<string, string[]>,
  opts: { checker?: string[]; config?: (c: Config) => void; cgroupsPath?: string } = {},
): Promise<CgroupRun> {
  const c = await startRunning(rt, {
    checker: opts.checker,
    config: (cfg) => {
      cfg.linux.cgroupsPath = opts.cgroupsPath ?? testCgroupPath(`r${++n}`);
      cfg.linux.resources = { devices: [{ allow: false, access: "rwm" }], ...resources };
      opts.config?.(cfg);
    },
  });
  const files: CgroupRun["files"] = {};
  try {
    for (const [controller, names] of Object.entries(read)) {
      files[controller] = {};
      const dir = c.pid ? cgroupDir(c.pid, controller) : undefined;
      for (const name of names) {
        try {
          files[controller]![name] = dir ? fs.readFileSync(path.join(dir, name), "utf8").trim() : undefined;
        } catch {
          files[controller]![name] = undefined;
        }
      }
    }
    return { create: c.create, createErr: fs.existsSync(c.bundle.err) ? fs.readFileSync(c.bundle.err, "utf8") : "", files, out: c.out() };
  } finally {
    await c.stop();
    removeCgroupParents();
  }
}

/** Whether this host has a file in a controller's root cgroup (the kernel supports it). */
export function hostHas(controller: string, file: string): boolean {
  const mp = cgroupMountPoints().get(controller);
  return !!mp && fs.existsSync(path.join(mp, file));
}

