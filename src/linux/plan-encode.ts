/**
 * Binary encoding of the launch plan for the C helper (docs/plan-format.md).
 *
 * Header: "TSRP", u32 version, u32 total length; then records of u16 tag, u32 payload length,
 * payload. Integers little-endian, strings NUL-terminated. Everything the helper does is in
 * here, so every value is checked against its field's range: a plan that cannot be encoded
 * exactly is a bug in the planner, reported as an Error naming the field.
 */
import { Buffer } from "node:buffer";
import type { LaunchPlan, NamespaceType, PlanMount, PlanDevice, PlanSeccomp, PlanStartHooks, SeccompAction, SeccompOp } from "./launch-plan.ts";

export const PLAN_MAGIC = "TSRP";
export const PLAN_VERSION = 1;
export const PLAN_HEADER_SIZE = 12;
export const PLAN_MAX_SIZE = 64 * 1024 * 1024;

export const Tag = {
  General: 1,
  Namespace: 2,
  UidMapping: 3,
  GidMapping: 4,
  TimeOffset: 5,
  CgroupProcs: 6,
  Rootfs: 7,
  Mount: 8,
  Device: 9,
  Symlink: 10,
  MaskedPath: 11,
  ReadonlyPath: 12,
  Sysctl: 13,
  Hostname: 14,
  Domainname: 15,
  Process: 16,
  Arg: 17,
  Env: 18,
  AdditionalGid: 19,
  Umask: 20,
  Rlimit: 21,
  Capabilities: 22,
  OomScoreAdj: 23,
  ConsoleSocket: 24,
  ExecFifo: 25,
  Seccomp: 26,
  SeccompArch: 27,
  SeccompRule: 28,
  StartHooks: 29,
  StartHook: 30,
  SessionKeyring: 31,
  Personality: 40,
  IoPriority: 41,
  Scheduler: 42,
  CpuAffinity: 43,
  ApparmorProfile: 44,
  MountIdmap: 45,
  UidMapHelper: 50,
  GidMapHelper: 51,
  CgroupProcsOptional: 52,
} as const;
export type Tag = (typeof Tag)[keyof typeof Tag];

/** START_HOOK nEnv: the hook has no env of its own and gets the process's environment. */
export const START_HOOK_PROCESS_ENV = 0xffffffff;

export const GENERAL_FOREGROUND = 1;
export const GENERAL_DEBUG = 2;
export const GENERAL_NO_PIVOT = 4;
export const GENERAL_READONLY_ROOT = 8;
export const GENERAL_HOOK_CREATE_RUNTIME = 16;
export const GENERAL_HOOK_CREATE_CONTAINER = 32;
export const MOUNT_DEST_FILE = 1;
export const MOUNT_COPY_UP = 2;
export const MOUNT_DETACHED_SOURCE = 4;
export const MOUNT_READONLY_LATE = 8;
export const MOUNT_IDMAP_RECURSIVE = 1;
export const PROCESS_TERMINAL = 1;
export const PROCESS_NO_NEW_PRIVILEGES = 2;
export const PROCESS_HOME_FROM_PASSWD = 4;

/** CLONE_NEW* flag of each namespace type: the helper passes these straight to clone/setns. */
export const CLONE_FLAGS: Record<NamespaceType, number> = {
  mount: 0x00020000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  network: 0x40000000,
  cgroup: 0x02000000,
  time: 0x00000080,
};

/** Seccomp action codes of the plan format (docs/plan-format.md). */
export const SECCOMP_ACTIONS: Record<SeccompAction, number> = {
  KILL: 0,
  KILL_PROCESS: 1,
  KILL_THREAD: 2,
  TRAP: 3,
  ERRNO: 4,
  TRACE: 5,
  ALLOW: 6,
  LOG: 7,
  NOTIFY: 8,
};

/** Seccomp argument operator codes of the plan format. */
export const SECCOMP_OPS: Record<SeccompOp, number> = { NE: 0, LT: 1, LE: 2, EQ: 3, GE: 4, GT: 5, MASKED_EQ: 6 };

const CLOCK_IDS: Record<"monotonic" | "boottime", number> = { monotonic: 1, boottime: 7 };
const DEVICE_TYPES: Record<PlanDevice["type"], number> = { c: 0x63, b: 0x62, p: 0x70, u: 0x75 };
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** Builds one record's payload with range-checked fields. */
class Payload {
  private readonly parts: Buffer[] = [];

  u32(value: number, field: string): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new Error(`launch plan: ${field}: ${value} is not an unsigned 32-bit integer`);
    }
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    this.parts.push(b);
    return this;
  }

  i32(value: number, field: string): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
      throw new Error(`launch plan: ${field}: ${value} is not a signed 32-bit integer`);
    }
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    this.parts.push(b);
    return this;
  }

  u64(value: bigint, field: string): this {
    if (value < 0n || value > U64_MAX) {
      throw new Error(`launch plan: ${field}: ${value} is not an unsigned 64-bit integer`);
    }
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(value);
    this.parts.push(b);
    return this;
  }

  i64(value: bigint, field: string): this {
    if (value < I64_MIN || value > I64_MAX) {
      throw new Error(`launch plan: ${field}: ${value} is not a signed 64-bit integer`);
    }
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(value);
    this.parts.push(b);
    return this;
  }

  str(value: string, field: string): this {
    if (value.includes("\0")) {
      throw new Error(`launch plan: ${field}: contains a NUL byte`);
    }
    this.parts.push(Buffer.from(value, "utf8"), Buffer.alloc(1));
    return this;
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

class PlanWriter {
  private readonly records: Buffer[] = [];
  private size = PLAN_HEADER_SIZE;

  add(tag: Tag, payload: Payload): void {
    const body = payload.bytes();
    const head = Buffer.alloc(6);
    head.writeUInt16LE(tag, 0);
    head.writeUInt32LE(body.length, 2);
    this.records.push(head, body);
    this.size += head.length + body.length;
  }

  finish(): Buffer {
    if (this.size > PLAN_MAX_SIZE) {
      throw new Error(`launch plan: ${this.size} bytes is more than the ${PLAN_MAX_SIZE} the helper reads`);
    }
    const header = Buffer.alloc(PLAN_HEADER_SIZE);
    header.write(PLAN_MAGIC, 0, "latin1");
    header.writeUInt32LE(PLAN_VERSION, 4);
    header.writeUInt32LE(this.size, 8);
    return Buffer.concat([header, ...this.records], this.size);
  }
}

function p(): Payload {
  return new Payload();
}

/** A set of capability numbers as the u64 bit mask the helper reads. */
function capMask(caps: number[], field: string): bigint {
  let mask = 0n;
  for (const [i, cap] of caps.entries()) {
    if (!Number.isInteger(cap) || cap < 0 || cap > 63) {
      throw new Error(`launch plan: ${field}[${i}]: ${cap} is not a capability number (0..63)`);
    }
    mask |= 1n << BigInt(cap);
  }
  return mask;
}

function encodeMount(m: PlanMount, field: string): Payload {
  const out = p()
    .u32(m.flags, `${field}.flags`)
    .u32(m.remountFlags, `${field}.remountFlags`)
    .u32(m.recAttrSet, `${field}.recAttrSet`)
    .u32(m.recAttrClr, `${field}.recAttrClr`)
    .u32(
      (m.destKind === "file" ? MOUNT_DEST_FILE : 0) | (m.copyUp ? MOUNT_COPY_UP : 0) | (m.detachedSource ? MOUNT_DETACHED_SOURCE : 0) | (m.readonlyLate ? MOUNT_READONLY_LATE : 0),
      `${field}.kind`,
    )
    .u32(m.propagation.length, `${field}.propagation.length`);
  m.propagation.forEach((v, j) => out.u32(v, `${field}.propagation[${j}]`));
  return out
    .str(m.source, `${field}.source`)
    .str(m.destination, `${field}.destination`)
    .str(m.fstype, `${field}.fstype`)
    .str(m.data, `${field}.data`);
}

/** MOUNT_IDMAP: the mapping of the MOUNT record written right before it. */
function encodeMountIdmap(m: NonNullable<PlanMount["idmap"]>, field: string): Payload {
  const out = p()
    .u32(m.recursive ? MOUNT_IDMAP_RECURSIVE : 0, `${field}.recursive`)
    .u32(m.uidMappings.length, `${field}.uidMappings.length`)
    .u32(m.gidMappings.length, `${field}.gidMappings.length`);
  for (const [k, list] of [["uidMappings", m.uidMappings], ["gidMappings", m.gidMappings]] as const) {
    list.forEach((x, j) => out.u32(x.containerID, `${field}.${k}[${j}].containerID`).u32(x.hostID, `${field}.${k}[${j}].hostID`).u32(x.size, `${field}.${k}[${j}].size`));
  }
  if (m.usernsPath === undefined && (m.uidMappings.length === 0 || m.gidMappings.length === 0)) {
    throw new Error(`launch plan: ${field}: needs uid and gid mappings or a user namespace path`);
  }
  return out.str(m.usernsPath ?? "", `${field}.usernsPath`);
}

function seccompAction(a: SeccompAction, field: string): number {
  const code = SECCOMP_ACTIONS[a];
  if (code === undefined) throw new Error(`launch plan: ${field}: unknown seccomp action ${String(a)}`);
  return code;
}

function encodeSeccomp(w: PlanWriter, s: PlanSeccomp): void {
  w.add(
    Tag.Seccomp,
    p()
      .u32(seccompAction(s.defaultAction, "seccomp.defaultAction"), "seccomp.defaultAction")
      .u32(s.defaultErrnoRet, "seccomp.defaultErrnoRet")
      .u32(s.flags, "seccomp.flags")
      .str(s.listenerPath ?? "", "seccomp.listenerPath")
      .str(s.listenerState ?? "", "seccomp.listenerState"),
  );
  s.architectures.forEach((a, i) => w.add(Tag.SeccompArch, p().str(a, `seccomp.architectures[${i}]`)));
  s.syscalls.forEach((r, i) => {
    const f = `seccomp.syscalls[${i}]`;
    const out = p()
      .u32(seccompAction(r.action, `${f}.action`), `${f}.action`)
      .u32(r.errnoRet, `${f}.errnoRet`)
      .u32(r.names.length, `${f}.names.length`)
      .u32(r.args.length, `${f}.args.length`);
    r.args.forEach((a, j) => {
      const op = SECCOMP_OPS[a.op];
      if (op === undefined) throw new Error(`launch plan: ${f}.args[${j}].op: unknown operator ${String(a.op)}`);
      if (!Number.isInteger(a.index) || a.index < 0 || a.index > 5) {
        throw new Error(`launch plan: ${f}.args[${j}].index: ${a.index} is not an argument number (0..5)`);
      }
      out
        .u32(a.index, `${f}.args[${j}].index`)
        .u32(op, `${f}.args[${j}].op`)
        .u64(a.value, `${f}.args[${j}].value`)
        .u64(a.valueTwo, `${f}.args[${j}].valueTwo`);
    });
    r.names.forEach((n, j) => out.str(n, `${f}.names[${j}]`));
    w.add(Tag.SeccompRule, out);
  });
}

function encodeStartHooks(w: PlanWriter, s: PlanStartHooks): void {
  w.add(Tag.StartHooks, p().str(s.statusFifo, "startHooks.statusFifo").str(s.state, "startHooks.state"));
  s.hooks.forEach((h, i) => {
    const f = `startHooks.hooks[${i}]`;
    if (!h.path.startsWith("/")) throw new Error(`launch plan: ${f}.path: ${JSON.stringify(h.path)} is not absolute`);
    if (h.argv.length === 0) throw new Error(`launch plan: ${f}.argv: must not be empty`);
    const out = p()
      .u32(h.timeout, `${f}.timeout`)
      .u32(h.argv.length, `${f}.argv.length`)
      .u32(h.env ? h.env.length : START_HOOK_PROCESS_ENV, `${f}.env.length`)
      .str(h.path, `${f}.path`);
    h.argv.forEach((a, j) => out.str(a, `${f}.argv[${j}]`));
    h.env?.forEach((e, j) => out.str(e, `${f}.env[${j}]`));
    w.add(Tag.StartHook, out);
  });
}

/** Encodes a launch plan into the helper's binary format (docs/plan-format.md). */
export function encodePlan(plan: LaunchPlan): Buffer {
  const w = new PlanWriter();
  const proc = plan.process;

  let general = 0;
  if (plan.foreground) general |= GENERAL_FOREGROUND;
  if (plan.debug) general |= GENERAL_DEBUG;
  if (plan.noPivot) general |= GENERAL_NO_PIVOT;
  if (plan.readonlyRoot) general |= GENERAL_READONLY_ROOT;
  if (plan.hookPoints?.includes("createRuntime")) general |= GENERAL_HOOK_CREATE_RUNTIME;
  if (plan.hookPoints?.includes("createContainer")) general |= GENERAL_HOOK_CREATE_CONTAINER;
  w.add(
    Tag.General,
    p()
      .u32(plan.mode === "exec" ? 1 : 0, "mode")
      .u32(general, "flags")
      .u32(plan.rootfsPropagation, "rootfsPropagation")
      .u32(plan.preserveFds, "preserveFds"),
  );

  plan.namespaces.forEach((ns, i) => {
    const flag = CLONE_FLAGS[ns.type];
    if (flag === undefined) throw new Error(`launch plan: namespaces[${i}].type: unknown type ${String(ns.type)}`);
    w.add(Tag.Namespace, p().u32(flag, `namespaces[${i}].type`).str(ns.path ?? "", `namespaces[${i}].path`));
  });
  plan.uidMappings.forEach((m, i) =>
    w.add(
      Tag.UidMapping,
      p()
        .u32(m.containerID, `uidMappings[${i}].containerID`)
        .u32(m.hostID, `uidMappings[${i}].hostID`)
        .u32(m.size, `uidMappings[${i}].size`),
    ),
  );
  plan.gidMappings.forEach((m, i) =>
    w.add(
      Tag.GidMapping,
      p()
        .u32(m.containerID, `gidMappings[${i}].containerID`)
        .u32(m.hostID, `gidMappings[${i}].hostID`)
        .u32(m.size, `gidMappings[${i}].size`),
    ),
  );
  plan.timeOffsets.forEach((t, i) => {
    const clock = CLOCK_IDS[t.clock];
    if (clock === undefined) throw new Error(`launch plan: timeOffsets[${i}].clock: unknown clock ${String(t.clock)}`);
    w.add(
      Tag.TimeOffset,
      p()
        .u32(clock, `timeOffsets[${i}].clock`)
        .i64(t.secs, `timeOffsets[${i}].secs`)
        .u32(t.nanosecs, `timeOffsets[${i}].nanosecs`),
    );
  });
  plan.cgroupProcs.forEach((f, i) => w.add(Tag.CgroupProcs, p().str(f, `cgroupProcs[${i}]`)));

  if (plan.rootfs !== "") w.add(Tag.Rootfs, p().str(plan.rootfs, "rootfs"));
  plan.mounts.forEach((m, i) => {
    w.add(Tag.Mount, encodeMount(m, `mounts[${i}]`));
    if (m.idmap !== undefined) w.add(Tag.MountIdmap, encodeMountIdmap(m.idmap, `mounts[${i}].idmap`));
  });
  plan.devices.forEach((d, i) => {
    const f = `devices[${i}]`;
    const type = DEVICE_TYPES[d.type];
    if (type === undefined) throw new Error(`launch plan: ${f}.type: unknown device type ${String(d.type)}`);
    w.add(
      Tag.Device,
      p()
        .u32(type, `${f}.type`)
        .u32(d.major, `${f}.major`)
        .u32(d.minor, `${f}.minor`)
        .u32(d.fileMode, `${f}.fileMode`)
        .u32(d.uid, `${f}.uid`)
        .u32(d.gid, `${f}.gid`)
        .u32(d.bindFromHost ? 1 : 0, `${f}.bindFromHost`)
        .str(d.path, `${f}.path`),
    );
  });
  plan.symlinks.forEach((s, i) =>
    w.add(Tag.Symlink, p().str(s.path, `symlinks[${i}].path`).str(s.target, `symlinks[${i}].target`)),
  );
  plan.maskedPaths.forEach((m, i) => w.add(Tag.MaskedPath, p().str(m, `maskedPaths[${i}]`)));
  plan.readonlyPaths.forEach((r, i) => w.add(Tag.ReadonlyPath, p().str(r, `readonlyPaths[${i}]`)));
  plan.sysctls.forEach((s, i) =>
    w.add(Tag.Sysctl, p().str(s.key, `sysctls[${i}].key`).str(s.value, `sysctls[${i}].value`)),
  );
  if (plan.hostname !== undefined) w.add(Tag.Hostname, p().str(plan.hostname, "hostname"));
  if (plan.domainname !== undefined) w.add(Tag.Domainname, p().str(plan.domainname, "domainname"));

  let procFlags = 0;
  if (proc.terminal) procFlags |= PROCESS_TERMINAL;
  if (proc.noNewPrivileges) procFlags |= PROCESS_NO_NEW_PRIVILEGES;
  if (proc.homeFromPasswd) procFlags |= PROCESS_HOME_FROM_PASSWD;
  w.add(
    Tag.Process,
    p()
      .u32(procFlags, "process.flags")
      .u32(proc.uid, "process.uid")
      .u32(proc.gid, "process.gid")
      .u32(proc.consoleHeight, "process.consoleHeight")
      .u32(proc.consoleWidth, "process.consoleWidth")
      .str(proc.cwd, "process.cwd"),
  );
  if (proc.args.length === 0) throw new Error("launch plan: process.args: must not be empty");
  proc.args.forEach((a, i) => w.add(Tag.Arg, p().str(a, `process.args[${i}]`)));
  proc.env.forEach((e, i) => w.add(Tag.Env, p().str(e, `process.env[${i}]`)));
  proc.additionalGids.forEach((g, i) => w.add(Tag.AdditionalGid, p().u32(g, `process.additionalGids[${i}]`)));
  if (proc.umask !== undefined) w.add(Tag.Umask, p().u32(proc.umask, "process.umask"));
  proc.rlimits.forEach((r, i) =>
    w.add(
      Tag.Rlimit,
      p()
        .u32(r.resource, `process.rlimits[${i}].resource`)
        .u64(r.soft, `process.rlimits[${i}].soft`)
        .u64(r.hard, `process.rlimits[${i}].hard`),
    ),
  );
  if (proc.capabilities !== undefined) {
    const c = proc.capabilities;
    w.add(
      Tag.Capabilities,
      p()
        .u64(capMask(c.bounding, "process.capabilities.bounding"), "process.capabilities.bounding")
        .u64(capMask(c.effective, "process.capabilities.effective"), "process.capabilities.effective")
        .u64(capMask(c.inheritable, "process.capabilities.inheritable"), "process.capabilities.inheritable")
        .u64(capMask(c.permitted, "process.capabilities.permitted"), "process.capabilities.permitted")
        .u64(capMask(c.ambient, "process.capabilities.ambient"), "process.capabilities.ambient"),
    );
  }
  if (proc.oomScoreAdj !== undefined) w.add(Tag.OomScoreAdj, p().i32(proc.oomScoreAdj, "process.oomScoreAdj"));
  if (plan.consoleSocket !== undefined) w.add(Tag.ConsoleSocket, p().str(plan.consoleSocket, "consoleSocket"));
  if (plan.execFifo !== undefined) w.add(Tag.ExecFifo, p().str(plan.execFifo, "execFifo"));
  if (plan.sessionKeyring !== undefined) w.add(Tag.SessionKeyring, p().str(plan.sessionKeyring, "sessionKeyring"));
  if (plan.seccomp !== undefined) encodeSeccomp(w, plan.seccomp);
  if (plan.startHooks !== undefined) encodeStartHooks(w, plan.startHooks);
  if (plan.personality !== undefined) w.add(Tag.Personality, p().u32(plan.personality, "personality"));
  if (proc.ioPriority !== undefined) w.add(Tag.IoPriority, p().u32(proc.ioPriority, "process.ioPriority"));
  if (proc.scheduler !== undefined) {
    const s = proc.scheduler;
    w.add(
      Tag.Scheduler,
      p()
        .u32(s.policy, "process.scheduler.policy")
        .i32(s.nice, "process.scheduler.nice")
        .u32(s.priority, "process.scheduler.priority")
        .u64(s.flags, "process.scheduler.flags")
        .u64(s.runtime, "process.scheduler.runtime")
        .u64(s.deadline, "process.scheduler.deadline")
        .u64(s.period, "process.scheduler.period"),
    );
  }
  (["initial", "final"] as const).forEach((which, code) => {
    const cpus = plan.cpuAffinity?.[which];
    if (cpus === undefined) return;
    const f = `cpuAffinity.${which}`;
    if (cpus.length === 0) throw new Error(`launch plan: ${f}: must not be empty`);
    const out = p().u32(code, `${f}.which`).u32(cpus.length, `${f}.length`);
    cpus.forEach((c, i) => {
      if (!Number.isInteger(c) || c < 0 || c >= 65536) throw new Error(`launch plan: ${f}[${i}]: ${c} is not a CPU number (0..65535)`);
      out.u32(c, `${f}[${i}]`);
    });
    w.add(Tag.CpuAffinity, out);
  });
  if (proc.apparmorProfile !== undefined) w.add(Tag.ApparmorProfile, p().str(proc.apparmorProfile, "process.apparmorProfile"));
  if (plan.uidMapHelper !== undefined) w.add(Tag.UidMapHelper, p().str(plan.uidMapHelper, "uidMapHelper"));
  if (plan.gidMapHelper !== undefined) w.add(Tag.GidMapHelper, p().str(plan.gidMapHelper, "gidMapHelper"));
  if (plan.cgroupProcsOptional === true) w.add(Tag.CgroupProcsOptional, p());

  return w.finish();
}
