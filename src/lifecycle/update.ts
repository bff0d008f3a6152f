/**
 * update: change a running container's cgroup limits, from runtime-spec LinuxResources JSON
 * (containerd sends it on stdin with `--resources -`, podman a file) and/or runc's flags.
 * The new values are also kept in the container's record, so later reads see them.
 */
import { readFileSync } from "node:fs";
import { TsrunError, errnoText, formatProblem } from "../errors.ts";
import { logWarn } from "../log.ts";
import { refuseUnavailableUnified, type Resources } from "../linux/cgroups/index.ts";
import { updateContainerCgroup } from "../linux/cgroups/driver.ts";
import { parseJsonText, validateConfig } from "../spec/validate.ts";
import { loadContainer } from "./status.ts";
import { rootlessResources } from "./rootless.ts";
import { withDefaultDeviceRules } from "../linux/default-devices.ts";
import { hasCgroupDirs } from "../linux/cgroups/rootless.ts";
import type { RootlessContext } from "../linux/rootless.ts";
import { writeRecord, containerDir } from "./state-store.ts";
import { refreshFastFile } from "./fast-path.ts";
import { probeResctrl, updateIntelRdt } from "../linux/resctrl.ts";

type Spec = Parameters<typeof writeRecord>[1]["config"];
type LinuxResources = NonNullable<NonNullable<Spec["linux"]>["resources"]>;

/** The resources JSON, checked against the schema by validating it inside a minimal config. */
export function parseResourcesJson(text: string, source: string): LinuxResources {
  const parsed = parseJsonText(text);
  if ("error" in parsed) throw new TsrunError(`${source}: invalid JSON: ${parsed.error}`);
  const { problems } = validateConfig({ ociVersion: "1.3.0", root: { path: "rootfs" }, linux: { resources: parsed.value } });
  const own = problems.filter((p) => p.path.startsWith("linux.resources")).map((p) => ({ ...p, path: p.path.slice("linux.resources.".length) }));
  if (own.length) throw new TsrunError(own.map((p) => formatProblem(p, source)).join("\n"));
  return parsed.value as LinuxResources;
}

/** "512m", "1G", "1024" -> bytes (binary units, as runc's RAMInBytes); "-1" stays -1 (unlimited). */
export function parseBytes(text: string, flag: string): number {
  const m = /^(-1|[0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)i?b?$/i.exec(text.trim());
  if (!m) throw new TsrunError(`invalid value "${text}" for --${flag}: want a number of bytes, optionally with k, m, g, t or p`);
  if (m[1] === "-1") return -1;
  const power = " kmgtp".indexOf((m[2] || " ").toLowerCase());
  return Math.round(Number(m[1]) * 1024 ** power);
}

function parseInteger(text: string, flag: string): number {
  if (!/^-?[0-9]+$/.test(text)) throw new TsrunError(`invalid value "${text}" for --${flag}: want an integer`);
  return Number(text);
}

export interface UpdateFlags {
  resourcesFile?: string;
  /** runc flag name -> its text value. */
  flags: Record<string, string | undefined>;
  /** Rootless: device rules are not written (they cannot be), as at create. */
  rootless?: RootlessContext;
}

/** runc's update flags, laid over the resources (the flags win, as in runc). */
export function resourcesFromFlags(base: LinuxResources, flags: Record<string, string | undefined>): LinuxResources {
  const r: LinuxResources = structuredClone(base);
  const set = <K extends keyof LinuxResources>(key: K): NonNullable<LinuxResources[K]> => (r[key] ??= {} as NonNullable<LinuxResources[K]>) as NonNullable<LinuxResources[K]>;
  const f = (name: string) => flags[name];
  const int = (name: string) => parseInteger(f(name)!, name);
  const bytes = (name: string) => parseBytes(f(name)!, name);
  if (f("memory") !== undefined) set("memory").limit = bytes("memory");
  if (f("memory-reservation") !== undefined) set("memory").reservation = bytes("memory-reservation");
  if (f("memory-swap") !== undefined) set("memory").swap = bytes("memory-swap");
  if (f("kernel-memory") !== undefined) set("memory").kernel = bytes("kernel-memory");
  if (f("kernel-memory-tcp") !== undefined) set("memory").kernelTCP = bytes("kernel-memory-tcp");
  if (f("cpu-share") !== undefined) set("cpu").shares = int("cpu-share");
  if (f("cpu-quota") !== undefined) set("cpu").quota = int("cpu-quota");
  if (f("cpu-period") !== undefined) set("cpu").period = int("cpu-period");
  if (f("cpu-burst") !== undefined) set("cpu").burst = int("cpu-burst");
  if (f("cpu-rt-period") !== undefined) set("cpu").realtimePeriod = int("cpu-rt-period");
  if (f("cpu-rt-runtime") !== undefined) set("cpu").realtimeRuntime = int("cpu-rt-runtime");
  if (f("cpu-idle") !== undefined) {
    const idle = int("cpu-idle");
    if (idle !== 0 && idle !== 1) throw new TsrunError(`invalid value "${f("cpu-idle")}" for --cpu-idle: want 0 (default behaviour) or 1 (SCHED_IDLE)`);
    set("cpu").idle = idle;
  }
  if (f("cpuset-cpus") !== undefined) set("cpu").cpus = f("cpuset-cpus");
  if (f("cpuset-mems") !== undefined) set("cpu").mems = f("cpuset-mems");
  if (f("pids-limit") !== undefined) set("pids").limit = int("pids-limit");
  if (f("blkio-weight") !== undefined) set("blockIO").weight = int("blkio-weight");
  return r;
}

export async function updateContainer(root: string, id: string, opts: UpdateFlags): Promise<void> {
  const { record, status } = loadContainer(root, id);
  if (status === "stopped" || status === "creating") throw new TsrunError("container not running");
  if (!record.cgroup || !hasCgroupDirs(record.cgroup)) {
    throw new TsrunError("container has no cgroup to update (a rootless container without a delegated cgroup runs without limits: docs/rootless.md)");
  }
  let resources: LinuxResources = {};
  if (opts.resourcesFile !== undefined) {
    const source = opts.resourcesFile === "-" ? "stdin" : opts.resourcesFile;
    let text: string;
    try {
      text = readFileSync(opts.resourcesFile === "-" ? 0 : opts.resourcesFile, "utf8");
    } catch (err) {
      throw new TsrunError(`cannot read resources from ${source}: ${errnoText(err)}`);
    }
    resources = parseResourcesJson(text, source);
  }
  resources = resourcesFromFlags(resources, opts.flags);
  refuseUnavailableUnified(resources.unified, opts.resourcesFile === "-" ? "stdin" : opts.resourcesFile ?? "resources", "");
  // Intel RDT first: a schema the host refuses is found before any cgroup file changes.
  const rdt = rdtFromFlags(opts.flags);
  if (rdt) updateIntelRdt(record.intelRdt, rdt, probeResctrl());
  // As at create: the default devices stay allowed whatever the new rules say.
  const applied: Resources = resources.devices ? withDefaultDeviceRules(resources as Resources) : (resources as Resources);
  await updateContainerCgroup(record.cgroup, rootlessResources(applied, opts.rootless) ?? {}, logWarn);
  const linux = (record.config.linux ??= {});
  linux.resources = mergeResources(linux.resources ?? {}, resources);
  if (rdt) linux.intelRdt = { ...linux.intelRdt, ...rdt };
  const dir = containerDir(root, id);
  refreshFastFile(dir, record, writeRecord(dir, record));
}

/** --l3-cache-schema and --mem-bw-schema (runc's update flags), or undefined when neither is given. */
function rdtFromFlags(flags: Record<string, string | undefined>): { l3CacheSchema?: string; memBwSchema?: string } | undefined {
  const l3 = flags["l3-cache-schema"];
  const mb = flags["mem-bw-schema"];
  if (!l3 && !mb) return undefined;
  if (mb && !/^MB:[^\n]*$/.test(mb)) throw new TsrunError(`invalid value ${JSON.stringify(mb)} for --mem-bw-schema: want one line "MB:<id>=<bandwidth>;..."`);
  return { ...(l3 ? { l3CacheSchema: l3 } : {}), ...(mb ? { memBwSchema: mb } : {}) };
}

/** Field by field: what the update names replaces what was there; the rest stays. */
function mergeResources(old: LinuxResources, update: LinuxResources): LinuxResources {
  const out: Record<string, unknown> = { ...old };
  for (const [key, value] of Object.entries(update)) {
    const prev = out[key];
    out[key] = value && typeof value === "object" && !Array.isArray(value) && prev && typeof prev === "object" && !Array.isArray(prev)
      ? { ...prev, ...value }
      : value;
  }
  return out as LinuxResources;
}
