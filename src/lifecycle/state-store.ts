/**
 * Container state under --root: one 0700 directory per container holding state.json
 * (written to a temp file and renamed, so a half-written state never shows) and exec.fifo.
 * Creating the directory is the lock: of two creates of one id exactly one gets it.
 */
import { mkdirSync, readFileSync, rmSync, existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { TsrunError, errnoName, errnoText } from "../errors.ts";
import { isSameLiveProcess } from "../linux/proc.ts";
import { writeFileAtomic } from "../linux/atomic-write.ts";
import type { CgroupState } from "../linux/cgroups/index.ts";
import { isResctrlDir, type RdtState } from "../linux/resctrl.ts";
import { isContainerCgroupDir } from "../linux/cgroups/dir-check.ts";
import { logWarn } from "../log.ts";
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
  /** The Intel RDT class (and monitoring group) of linux.intelRdt. */
  intelRdt?: RdtState;
  /** Created with --no-new-keyring: exec keeps the caller's session keyring too. */
  noNewKeyring?: boolean;
  /** Set once everything create does has succeeded; a record without it is a create that died half-way. */
  complete: boolean;
  /**
   * The tsrun process running the create (pid and start time), so that an incomplete record
   * reads as "creating" while that create runs and as "stopped" once it died half-way.
   */
  creator?: { pid: number; startTime: string };
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
    throw new TsrunError(`cannot create state directory ${root}: ${errnoText(err)}`, { access: { what: "state-dir", errno: errnoName(err) } });
  }
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new TsrunError("container with given ID already exists");
    throw new TsrunError(`cannot create state directory ${dir}: ${errnoText(err)}`, { access: { what: "state-dir", errno: errnoName(err) } });
  }
  return dir;
}

/**
 * What identifies the state dir a create locked. A create that fails cleans up only if its dir
 * is still the same one holding its own record: `delete --force` may have removed it meanwhile
 * and another create of the same id taken the id again, and that container is not ours to remove.
 */
export function stateDirIdentity(dir: string): string {
  // The inode number alone is not enough: ext4 gives a new directory the inode just freed.
  const st = statSync(dir, { bigint: true });
  return `${st.ino}:${st.birthtimeNs}`;
}

export function isOwnStateDir(root: string, record: ContainerRecord, identity: string): boolean {
  try {
    if (stateDirIdentity(containerDir(root, record.id)) !== identity) return false;
  } catch {
    return false;
  }
  const mine = record.creator;
  const onDisk = readRecord(root, record.id).creator;
  return !onDisk || (onDisk.pid === mine?.pid && onDisk.startTime === mine.startTime);
}

/** identity: from stateDirIdentity, when the writer is the create that locked dir. */
/** Returns the text written (the fast file names the record by it). */
export function writeRecord(dir: string, record: ContainerRecord, identity?: string): string {
  try {
    if (identity !== undefined && stateDirIdentity(dir) !== identity) {
      throw new TsrunError(`container ${record.id} was deleted while it was being created`);
    }
    const text = JSON.stringify(record);
    writeFileAtomic(join(dir, "state.json"), text, 0o600);
    return text;
  } catch (err) {
    if (err instanceof TsrunError) throw err;
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && !existsSync(dir)) {
      throw new TsrunError(`container ${record.id} was deleted while it was being created`);
    }
    throw new TsrunError(`cannot write state of ${record.id}: ${errnoText(err)}`);
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

/** A systemd driver record: a scope's name, its slice, a manager's private socket (delete stops that unit). */
function systemdUnitOf(v: unknown): boolean {
  if (!isObject(v) || typeof v.unit !== "string" || typeof v.slice !== "string" || typeof v.socket !== "string") return false;
  if (v.started !== undefined && typeof v.started !== "boolean") return false;
  return /^[A-Za-z0-9:_.\\-]+\.scope$/.test(v.unit) && /^[A-Za-z0-9:_.\\-]+\.slice$/.test(v.slice) && v.socket.startsWith("/") && v.socket.endsWith("/systemd/private") && !v.socket.includes("/../");
}

function cgroupOf(v: unknown): CgroupState | undefined {
  if (!isObject(v) || !isObject(v.v1) || !strings(v.created)) return undefined;
  if (v.version !== "v1" && v.version !== "v2" && v.version !== "hybrid") return undefined;
  const v1 = v.v1;
  if (!Object.values(v1).every((d) => typeof d === "string" && d.startsWith("/"))) return undefined;
  if (v.v2 !== undefined && (typeof v.v2 !== "string" || !v.v2.startsWith("/"))) return undefined;
  if (v.claimed !== undefined && !strings(v.claimed)) return undefined;
  if (v.systemd !== undefined && !systemdUnitOf(v.systemd)) {
    logWarn(`the state names ${JSON.stringify(v.systemd)} as the container's systemd unit, which is not a scope of a systemd manager: its cgroup is left alone`);
    return undefined;
  }
  // Once each: v1 controllers share dirs, and created and claimed repeat them (`list` checks
  // every container's record, three syscalls per dir).
  const dirs = [...new Set([...Object.values(v1), ...(v.v2 ? [v.v2] : []), ...v.created, ...(v.claimed ?? [])] as string[])];
  const refused = dirs.find((d) => !isContainerCgroupDir(d));
  if (refused !== undefined) {
    logWarn(`the state names ${JSON.stringify(refused)} as the container's cgroup, which is not a cgroup below a hierarchy's root: its cgroup is left alone`);
    return undefined;
  }
  return v as unknown as CgroupState;
}

function rdtOf(v: unknown): RdtState | undefined {
  if (!isObject(v) || typeof v.group !== "string" || !strings(v.created) || typeof v.ownGroup !== "boolean") return undefined;
  if (v.monitor !== undefined && typeof v.monitor !== "string") return undefined;
  if (v.claimed !== undefined && !strings(v.claimed)) return undefined;
  const dirs = [...new Set([v.group, ...(v.monitor !== undefined ? [v.monitor] : []), ...v.created, ...(v.claimed ?? [])] as string[])];
  const refused = dirs.find((d) => !isResctrlDir(d));
  if (refused !== undefined) {
    logWarn(`the state names ${JSON.stringify(refused)} as the container's Intel RDT group, which is not a resctrl directory: it is left alone`);
    return undefined;
  }
  return v as unknown as RdtState;
}

/**
 * The record as far as it can be trusted: a state.json of the wrong shape (written by hand, or
 * damaged) must never make state, list or delete fail with an internal error.
 */
function recordOf(raw: unknown, id: string, dir: string): ContainerRecord {
  const r = isObject(raw) ? raw : {};
  const pid = typeof r.pid === "number" && Number.isSafeInteger(r.pid) && r.pid > 0 ? r.pid : 0;
  const annotations = isObject(r.annotations) && Object.values(r.annotations).every((a) => typeof a === "string")
    ? (r.annotations as Record<string, string>)
    : undefined;
  let created = str(r.created);
  if (!created) {
    try {
      created = statSync(dir).ctime.toISOString();
    } catch {
      created = new Date(0).toISOString();
    }
  }
  // Fields not checked here (added by other parts of tsrun) pass through as they are.
  const { annotations: _a, cgroup: _c, creator: _p, intelRdt: _r, ...rest } = r;
  const record = {
    ...rest,
    ociVersion: str(r.ociVersion),
    id,
    pid,
    pidStartTime: pid ? str(r.pidStartTime) : "",
    bundle: str(r.bundle),
    rootfs: str(r.rootfs),
    created,
    owner: str(r.owner),
    config: (isObject(r.config) ? r.config : { ociVersion: "" }) as unknown as Spec,
    complete: r.complete === true,
  } as ContainerRecord;
  if (annotations) record.annotations = annotations;
  const cgroup = cgroupOf(r.cgroup);
  if (cgroup) record.cgroup = cgroup;
  const rdt = r.intelRdt === undefined ? undefined : rdtOf(r.intelRdt);
  if (rdt) record.intelRdt = rdt;
  const c = r.creator;
  if (isObject(c) && typeof c.pid === "number" && Number.isSafeInteger(c.pid) && c.pid > 0 && typeof c.startTime === "string") {
    record.creator = { pid: c.pid, startTime: c.startTime };
  }
  return record;
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
    // Not a file that can be read, ever (a directory, a loop, an entry that is not a directory):
    // as damaged as a missing one. Anything else (EMFILE, EIO, ...) may pass, so it is an error.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "EISDIR" && code !== "ENOTDIR" && code !== "ELOOP") {
      throw new TsrunError(`cannot read state of ${id}: ${errnoText(err)}`);
    }
    text = "";
  }
  let raw: unknown;
  try {
    if (text) raw = JSON.parse(text);
  } catch {
    // a damaged record is treated like a missing one
  }
  return recordOf(raw, id, dir);
}

/** Removes the state dir; another delete removing it at the same time is fine. */
export function removeContainerDir(root: string, id: string): void {
  const dir = containerDir(root, id);
  for (let attempt = 0; ; attempt++) {
    try {
      rmSync(dir, { recursive: true, force: true });
      return;
    } catch (err) {
      if (!existsSync(dir)) return;
      if (attempt >= 3) throw new TsrunError(`cannot remove state directory ${dir}: ${errnoText(err)}`);
    }
  }
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
  if (!record.complete) {
    // A create still running (its hooks may be at work) is "creating"; one that died is "stopped".
    const c = record.creator;
    return c && isSameLiveProcess(c.pid, c.startTime) ? "creating" : "stopped";
  }
  if (!isSameLiveProcess(record.pid, record.pidStartTime)) return "stopped";
  if (existsSync(execFifoPath(containerDir(root, record.id)))) return "created";
  return isFrozen() ? "paused" : "running";
}
