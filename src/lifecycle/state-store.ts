/**
 * Container state under --root: one 0700 directory per container holding state.json
 * (written to a temp file and renamed, so a half-written state never shows) and exec.fifo.
 * Creating the directory is the lock: of two creates of one id exactly one gets it.
 */
import { mkdirSync, readFileSync, writeFileSync, renameSync, rmSync, existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { TsrunError, errnoText } from "../errors.ts";
import { isSameLiveProcess } from "../linux/proc.ts";
import type { CgroupState } from "../linux/cgroups/index.ts";
import type { Spec } from "../spec/generated/types.ts";

export type Status = "creating" | "created" | "running" | "paused" | "stopped";

/** What tsrun keeps about a container. The config is the one read at create: editing config.json later changes nothing. */
export interface ContainerRecord {
  ociVersion: string;
  id: string;
  /** Host pid of the container's init; 0 until the helper reported it. */
  pid: number;
  /** Start time of that pid (from /proc/PID/stat): a reused pid never matches it. */
  pidStartTime: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
  config: Spec;
  cgroup?: CgroupState;
  /** Set once everything create does has succeeded; a record without it is a create that died half-way. */
  complete: boolean;
}

const ID_PATTERN = /^[A-Za-z0-9_+.-]+$/;
const MAX_ID_LENGTH = 1024;

export function validateId(id: string): void {
  if (id === "" || id === "." || id === ".." || id.length > MAX_ID_LENGTH || !ID_PATTERN.test(id)) {
    throw new TsrunError(`invalid container id ${JSON.stringify(id.length > 80 ? id.slice(0, 80) + "..." : id)}: it must match ${ID_PATTERN.source}, not be "." or "..", and be at most ${MAX_ID_LENGTH} characters`);
  }
}

export function containerDir(root: string, id: string): string {
  validateId(id);
  return join(root, id);
}

export function execFifoPath(dir: string): string {
  return join(dir, "exec.fifo");
}

/** Takes the id: fails with runc's words when another container (or create) holds it. */
export function lockNewContainer(root: string, id: string): string {
  const dir = containerDir(root, id);
  try {
    mkdirSync(root, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new TsrunError(`cannot create state directory ${root}: ${errnoText(err)}`);
  }
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new TsrunError("container with given ID already exists");
    throw new TsrunError(`cannot create state directory ${dir}: ${errnoText(err)}`);
  }
  return dir;
}

export function writeRecord(dir: string, record: ContainerRecord): void {
  const tmp = join(dir, `.state.json.${process.pid}`);
  writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
  renameSync(tmp, join(dir, "state.json"));
}

/**
 * The container's record. A directory without a readable state.json is what a create killed
 * half-way leaves: it reads as a stopped, incomplete record so that delete can clean it up.
 */
export function readRecord(root: string, id: string): ContainerRecord {
  const dir = containerDir(root, id);
  let text: string;
  try {
    text = readFileSync(join(dir, "state.json"), "utf8");
  } catch (err) {
    if (!existsSync(dir)) throw new TsrunError("container does not exist");
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new TsrunError(`cannot read state of ${id}: ${errnoText(err)}`);
    text = "";
  }
  try {
    if (text) return JSON.parse(text) as ContainerRecord;
  } catch {
    // fall through: a damaged record is treated like a missing one
  }
  return {
    ociVersion: "", id, pid: 0, pidStartTime: "", bundle: "", rootfs: "", created: statSync(dir).ctime.toISOString(),
    owner: "", config: { ociVersion: "" } as Spec, complete: false,
  };
}

export function removeContainerDir(root: string, id: string): void {
  rmSync(containerDir(root, id), { recursive: true, force: true });
}

export function listIds(root: string): string[] {
  try {
    return readdirSync(root).filter((name) => ID_PATTERN.test(name) && name !== "." && name !== "..").sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new TsrunError(`cannot list ${root}: ${errnoText(err)}`);
  }
}

/** Status is computed from the live system, never trusted from disk. */
export function computeStatus(root: string, record: ContainerRecord, isFrozen: () => boolean): Status {
  if (!isSameLiveProcess(record.pid, record.pidStartTime)) return "stopped";
  if (!record.complete) return "creating";
  if (existsSync(execFifoPath(containerDir(root, record.id)))) return "created";
  return isFrozen() ? "paused" : "running";
}
