/**
 * config.json linux.seccomp -> the launch plan's seccomp part (names the helper and libseccomp
 * understand), and the state payload sent with a NOTIFY listener fd.
 */
import type { Seccomp, SeccompAction as OciAction, SeccompFlag, SeccompOperator } from "../spec/generated/types.ts";
import type { PlanSeccomp, SeccompAction, SeccompOp } from "./launch-plan.ts";

const EPERM = 1;

/**
 * What this build's seccomp supports, for `tsrun features`: every action and operator the
 * helper maps to libseccomp, the architectures libseccomp 2.5 resolves, and the filter flags
 * (WAIT_KILLABLE_RECV, which libseccomp 2.5 cannot set, is loaded by the helper with seccomp(2)
 * itself; as with libseccomp 2.6 it only applies to a filter with a NOTIFY listener).
 */
export const SECCOMP_FEATURES = {
  actions: ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
  operators: ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
  archs: [
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
  ],
  knownFlags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
  supportedFlags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
};

const FLAG_BITS: Record<SeccompFlag, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
};

function action(a: OciAction): SeccompAction {
  return a.slice("SCMP_ACT_".length) as SeccompAction;
}

function op(o: SeccompOperator): SeccompOp {
  return o.slice("SCMP_CMP_".length) as SeccompOp;
}

/** errnoRet as runc sets it: the given value, or EPERM for ERRNO and TRACE. */
function errnoRet(a: SeccompAction, given: number | undefined): number {
  if (given !== undefined) return given;
  return a === "ERRNO" || a === "TRACE" ? EPERM : 0;
}

function u64(v: number, what: string): bigint {
  if (!Number.isInteger(v) || v < 0) throw new Error(`seccomp: ${what}: ${v} is not an unsigned integer`);
  return BigInt(v);
}

/** Translates linux.seccomp; listenerState is the rendered payload (renderListenerState). */
export function seccompPlan(s: Seccomp, listenerState?: string): PlanSeccomp {
  const defaultAction = action(s.defaultAction);
  return {
    defaultAction,
    defaultErrnoRet: errnoRet(defaultAction, s.defaultErrnoRet),
    // libseccomp's names are the lowercase SCMP_ARCH_ suffixes ("x86_64", "aarch64", ...)
    architectures: (s.architectures ?? []).map((a) => a.slice("SCMP_ARCH_".length).toLowerCase()),
    flags: (s.flags ?? []).reduce((bits, f) => bits | FLAG_BITS[f], 0),
    syscalls: (s.syscalls ?? []).map((sc, i) => {
      const a = action(sc.action);
      return {
        names: sc.names,
        action: a,
        errnoRet: errnoRet(a, sc.errnoRet),
        args: (sc.args ?? []).map((arg, j) => ({
          index: arg.index,
          op: op(arg.op),
          value: u64(arg.value, `syscalls[${i}].args[${j}].value`),
          valueTwo: u64(arg.valueTwo ?? 0, `syscalls[${i}].args[${j}].valueTwo`),
        })),
      };
    }),
    ...(s.listenerPath !== undefined ? { listenerPath: s.listenerPath } : {}),
    ...(listenerState !== undefined ? { listenerState } : {}),
  };
}

export interface ListenerStateInput {
  ociVersion: string;
  id: string;
  /** "creating" for create, "running" for exec, as runc reports it. */
  status: string;
  bundle: string;
  annotations?: Record<string, string>;
  /** linux.seccomp.listenerMetadata */
  metadata?: string;
}

const PID_SENTINEL = -987654321;

/**
 * runc's ContainerProcessState JSON with "@PID@" where the helper puts the pid. Every "@" of
 * the data is written as \u0040 (the same JSON), so no text of the config can look like the
 * placeholder.
 */
export function renderListenerState(s: ListenerStateInput): string {
  const json = JSON.stringify({
    ociVersion: s.ociVersion,
    fds: ["seccompFd"],
    pid: PID_SENTINEL,
    metadata: s.metadata ?? "",
    state: {
      ociVersion: s.ociVersion,
      id: s.id,
      status: s.status,
      pid: PID_SENTINEL,
      bundle: s.bundle,
      ...(s.annotations ? { annotations: s.annotations } : {}),
    },
  });
  return json.replaceAll("@", "\\u0040").replaceAll(`"pid":${PID_SENTINEL}`, '"pid":@PID@');
}
