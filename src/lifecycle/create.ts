/**
 * create: validate the bundle, take the id, make the cgroup, launch the helper, and record
 * the container. Whatever fails, the host is left as if create never ran.
 */
import { realpathSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { TsrunError, errnoName, errnoText, formatProblem } from "../errors.ts";
import { logDebug, logWarn } from "../log.ts";
import { loadConfigFile } from "../spec/validate.ts";
import { resolveRootfs } from "../spec/check-bundle.ts";
import { claimCgroup, procsFiles, sharedCgroups, refuseUnavailableUnified, type CgroupState } from "../linux/cgroups/index.ts";
import { planContainerCgroup, makeContainerCgroup } from "../linux/cgroups/driver.ts";
import { procStat } from "../linux/proc.ts";
import { checkPreservedFds } from "../linux/caller-fds.ts";
import { writeFileAtomic } from "../linux/atomic-write.ts";
import { withDefaultDeviceRules } from "../linux/default-devices.ts";
import { planCreate } from "./plan.ts";
import { startHelper, type HelperRun, type StartedHelper } from "./helper-process.ts";
import { lockNewContainer, writeRecord, execFifoPath, validateId, stateDirIdentity, isOwnStateDir, type ContainerRecord } from "./state-store.ts";
import { destroyContainer } from "./destroy.ts";
import { planHooks, createHookHandler, runPoststopHooks } from "./hooks.ts";
import { crashPoint } from "./crash-point.ts";
import { writeFastFile } from "./fast-path.ts";
import { rootlessPreflight, rootlessCgroup, rootlessResources, type RootlessContext } from "./rootless.ts";
import { SPEC_VERSION } from "../version.ts";
import { applyIntelRdt, planIntelRdt, probeResctrl, rdtTasksFiles, requestedIntelRdt, type RdtPlan } from "../linux/resctrl.ts";

export interface CreateOptions {
  root: string;
  id: string;
  bundle?: string;
  pidFile?: string;
  consoleSocket?: string;
  /** --pidfd-socket: a unix socket that receives a pidfd of the container's init. */
  pidfdSocket?: string;
  noPivot: boolean;
  noNewKeyring: boolean;
  preserveFds: number;
  /** run in the foreground: the helper stays and reports the exit status. */
  foreground: boolean;
  debug: boolean;
  systemdCgroup: boolean;
  /** The caller's privileges (docs/rootless.md); absent: a privileged caller. */
  rootless?: RootlessContext;
}

export interface Created {
  record: ContainerRecord;
  dir: string;
  /** stateDirIdentity() of dir: while it is unchanged, the record is this create's. */
  dirIdentity: string;
  helper: HelperRun;
}

function resolveBundle(bundle: string | undefined): string {
  const path = resolve(bundle ?? ".");
  try {
    const real = realpathSync(path);
    if (!statSync(real).isDirectory()) throw new TsrunError(`bundle ${path}: not a directory`);
    return real;
  } catch (err) {
    if (err instanceof TsrunError) throw err;
    throw new TsrunError(`bundle ${path}: ${errnoText(err)}`, { access: { what: "bundle", errno: errnoName(err) } });
  }
}

/** The rootfs dir, decided as `tsrun check` decides it. */
function rootfsDir(bundle: string, rootPath: string): string {
  const r = resolveRootfs(bundle, rootPath);
  if ("message" in r) throw new TsrunError(`config.json: root.path: ${r.message}`, { access: { what: "bundle", errno: r.errno } });
  return r.dir;
}

/** Written like runc, to a temp file beside it then renamed, so readers never see half a pid. */
export function writePidFile(path: string, pid: number): void {
  const abs = resolve(path);
  try {
    writeFileAtomic(abs, String(pid), 0o644);
  } catch (err) {
    throw new TsrunError(`cannot write pid file ${abs}: ${errnoText(err)}`);
  }
}

/** --preserve-fds N, refused unless the caller passed every one of fds 3 .. 3+N-1. */
export function parsePreserveFds(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^[0-9]+$/.test(text)) throw new TsrunError(`invalid --preserve-fds value "${text}": want a number`);
  const n = Number(text);
  checkPreservedFds(n);
  return n;
}

export async function createContainer(opts: CreateOptions): Promise<Created> {
  validateId(opts.id);
  const bundle = resolveBundle(opts.bundle);
  logDebug("create: start");
  const { config, warnings } = loadConfigFile(join(bundle, "config.json"));
  logDebug("config read and validated");
  for (const w of warnings) logWarn(formatProblem(w));
  if (!config.process) throw new TsrunError("config.json: process: is required to create a container");
  const terminal = config.process.terminal === true;
  if (terminal && !opts.consoleSocket && !opts.foreground) {
    throw new TsrunError("cannot allocate tty if tsrun will detach without setting console socket");
  }
  if (!terminal && opts.consoleSocket) {
    throw new TsrunError("cannot use console socket if the process does not allocate a tty (process.terminal is false)");
  }
  const rootfs = rootfsDir(bundle, config.root?.path ?? "rootfs");

  // Planned before the id is taken. The claim names the cgroup dirs that do not exist yet:
  // those a create killed half-way may have made, for delete to remove.
  const idMapHelpers = rootlessPreflight(config, opts.rootless);
  refuseUnavailableUnified(config.linux?.resources?.unified);
  const planned = await planContainerCgroup({
    id: opts.id, cgroupsPath: config.linux?.cgroupsPath, systemd: opts.systemdCgroup, rootless: opts.rootless?.cgroups, unprivileged: opts.rootless?.unprivileged,
  });
  let cgroup: CgroupState = claimCgroup(rootlessCgroup(planned, config, opts.rootless));
  const rdtConfig = config.linux?.intelRdt;
  const rdt: RdtPlan | undefined = rdtConfig ? planIntelRdt(opts.id, requestedIntelRdt(rdtConfig), probeResctrl(), { unprivileged: opts.rootless?.unprivileged }) : undefined;
  const self = procStat(process.pid);
  const dir = lockNewContainer(opts.root, opts.id);
  const dirIdentity = stateDirIdentity(dir);
  crashPoint("create-locked");
  const record: ContainerRecord = {
    ociVersion: config.ociVersion ?? SPEC_VERSION,
    id: opts.id,
    pid: 0,
    pidStartTime: "",
    bundle,
    rootfs,
    created: new Date().toISOString(),
    owner: "",
    annotations: config.annotations,
    config,
    ...(opts.noNewKeyring ? { noNewKeyring: true } : {}),
    cgroup,
    ...(rdt ? { intelRdt: rdt.state } : {}),
    complete: false,
    ...(self ? { creator: { pid: process.pid, startTime: self.startTime } } : {}),
  };
  let helper: HelperRun | undefined;
  let started: StartedHelper | undefined;
  let launched = false;
  let releaseCgroup = async (): Promise<void> => {};
  try {
    // Recorded before it exists, so that a create killed half-way can be cleaned up by delete.
    writeRecord(dir, record, dirIdentity);
    crashPoint("create-record-written");
    logDebug("state dir locked, cgroup planned, first state write");
    // Started now, so that its exec overlaps the cgroup set-up and the plan.
    started = startHelper(opts.preserveFds);
    const made = await makeContainerCgroup(cgroup, {
      id: opts.id,
      resources: rootlessResources(withDefaultDeviceRules(config.linux?.resources), opts.rootless),
      warn: logWarn,
      save: (s) => {
        record.cgroup = s;
        writeRecord(dir, record, dirIdentity);
      },
    });
    releaseCgroup = made.release;
    cgroup = made.state;
    record.cgroup = cgroup;
    writeRecord(dir, record, dirIdentity);
    crashPoint("create-cgroup-created");
    logDebug(`cgroup ready: ${JSON.stringify(cgroup)}`);
    if (rdt) {
      record.intelRdt = applyIntelRdt(rdt);
      writeRecord(dir, record, dirIdentity);
      logDebug(`Intel RDT class ready: ${JSON.stringify(record.intelRdt)}`);
    }
    // The Intel RDT tasks files after the cgroup ones: the helper writes the init's pid to each, in order.
    const cgroupProcs = [...procsFiles(cgroup), ...rdtTasksFiles(record.intelRdt)];

    const plan = planCreate({
      id: opts.id,
      config, bundle, rootfs, cgroup, sharedCgroups: sharedCgroups(planned, cgroup), cgroupProcs, execFifo: execFifoPath(dir),
      consoleSocket: opts.consoleSocket ? resolve(opts.consoleSocket) : undefined,
      pidfdSocket: opts.pidfdSocket ? resolve(opts.pidfdSocket) : undefined,
      noPivot: opts.noPivot, noNewKeyring: opts.noNewKeyring, preserveFds: opts.preserveFds, foreground: opts.foreground, debug: opts.debug,
      warn: logWarn,
    });
    Object.assign(plan, planHooks(record, dir), idMapHelpers);
    logDebug("plan built");
    launched = true;
    helper = await started.launch({ $case: "create", value: plan }, { onHook: createHookHandler(record, procsFiles(cgroup)) });
    crashPoint("create-helper-ready");
    await releaseCgroup();
    const stat = procStat(helper.pid);
    if (!stat) throw new TsrunError("container init exited during create");
    record.pid = helper.pid;
    record.pidStartTime = stat.startTime;
    record.complete = true;
    const recordText = writeRecord(dir, record, dirIdentity);
    crashPoint("create-record-complete");
    // run starts it here, in this process.
    writeFastFile(dir, record, recordText, { startFast: !opts.foreground });
    logDebug("state written");
    if (opts.pidFile) writePidFile(opts.pidFile, helper.pid);
    crashPoint("create-pid-file");
    return { record, dir, dirIdentity, helper };
  } catch (err) {
    helper?.abort();
    await started?.cancel();
    try {
      await releaseCgroup();
      if (isOwnStateDir(opts.root, record, dirIdentity)) await destroyContainer(opts.root, record);
    } catch (cleanupErr) {
      logWarn((cleanupErr as Error).message);
    }
    // The container existed (its createRuntime hooks may have set things up): as runc's destroy.
    if (launched) await runPoststopHooks(record);
    throw err;
  }
}
