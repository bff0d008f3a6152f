/**
 * config.json linux.seccomp -> the plan's Seccomp: libseccomp's own numbers for actions,
 * operators and architectures (the helper passes them on as they are), and the state payload
 * sent with a NOTIFY listener fd.
 */
import type { Seccomp as OciSeccomp, SeccompAction as OciAction, SeccompFlag, SeccompOperator } from "../spec/generated/types.ts";
import type { Seccomp } from "../boundary/gen/helper.ts";

const EPERM = 1;

/**
 * What this build's seccomp supports, for `tsrun features`: every action and operator the
 * helper maps to libseccomp, the architectures libseccomp 2.5 resolves, and the filter flags
 * (WAIT_KILLABLE_RECV, which libseccomp 2.5 cannot set, is loaded by the helper with seccomp(2)
 * itself; as with libseccomp 2.6 it only applies to a filter with a NOTIFY listener).
 */
export const SECCOMP_FEATURES = {
  get actions(): string[] {
    return Object.keys(ACTIONS).sort();
  },
  get operators(): string[] {
    return Object.keys(OPERATORS).sort();
  },
  get archs(): string[] {
    return Object.keys(SECCOMP_ARCHES);
  },
  knownFlags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
  supportedFlags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
};

const FLAG_BITS: Record<SeccompFlag, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
};

/** SCMP_ACT_* values (seccomp.h); ERRNO and TRACE carry their number in the low 16 bits. */
const ACTIONS: Record<OciAction, (ret: number) => number> = {
  SCMP_ACT_KILL: () => 0x00000000,
  SCMP_ACT_KILL_THREAD: () => 0x00000000,
  SCMP_ACT_KILL_PROCESS: () => 0x80000000,
  SCMP_ACT_TRAP: () => 0x00030000,
  SCMP_ACT_ERRNO: (ret) => (0x00050000 | (ret & 0xffff)) >>> 0,
  SCMP_ACT_TRACE: (ret) => (0x7ff00000 | (ret & 0xffff)) >>> 0,
  SCMP_ACT_LOG: () => 0x7ffc0000,
  SCMP_ACT_ALLOW: () => 0x7fff0000,
  SCMP_ACT_NOTIFY: () => 0x7fc00000,
};

/** SCMP_CMP_* values (enum scmp_compare). */
const OPERATORS: Record<SeccompOperator, number> = {
  SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4, SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7,
};

/** SCMP_ARCH_* tokens (the AUDIT_ARCH_* values libseccomp 2.5 uses), by the spec's names. */
export const SECCOMP_ARCHES: Record<string, number> = {
  SCMP_ARCH_AARCH64: 0xc00000b7, SCMP_ARCH_ARM: 0x40000028, SCMP_ARCH_MIPS: 0x00000008, SCMP_ARCH_MIPS64: 0x80000008,
  SCMP_ARCH_MIPS64N32: 0xa0000008, SCMP_ARCH_MIPSEL: 0x40000008, SCMP_ARCH_MIPSEL64: 0xc0000008,
  SCMP_ARCH_MIPSEL64N32: 0xe0000008, SCMP_ARCH_PARISC: 0x0000000f, SCMP_ARCH_PARISC64: 0x8000000f, SCMP_ARCH_PPC: 0x00000014,
  SCMP_ARCH_PPC64: 0x80000015, SCMP_ARCH_PPC64LE: 0xc0000015, SCMP_ARCH_RISCV64: 0xc00000f3, SCMP_ARCH_S390: 0x00000016,
  SCMP_ARCH_S390X: 0x80000016, SCMP_ARCH_X32: 0x4000003e, SCMP_ARCH_X86: 0x40000003, SCMP_ARCH_X86_64: 0xc000003e,
};

/** errnoRet as runc sets it: the given value, or EPERM for ERRNO and TRACE. */
function actionValue(a: OciAction, given: number | undefined): number {
  const ret = given ?? (a === "SCMP_ACT_ERRNO" || a === "SCMP_ACT_TRACE" ? EPERM : 0);
  return ACTIONS[a](ret);
}

function u64(v: number, what: string): bigint {
  if (!Number.isInteger(v) || v < 0) throw new Error(`seccomp: ${what}: ${v} is not an unsigned integer`);
  return BigInt(v);
}

/** Translates linux.seccomp; listenerState is the rendered payload (renderListenerState). */
export function seccompPlan(s: OciSeccomp, listenerState?: string): Seccomp {
  return {
    defaultAction: actionValue(s.defaultAction, s.defaultErrnoRet),
    architectures: (s.architectures ?? []).map((a) => {
      const token = SECCOMP_ARCHES[a];
      if (token === undefined) throw new Error(`seccomp: unknown architecture ${a}`);
      return token;
    }),
    flags: (s.flags ?? []).reduce((bits, f) => bits | FLAG_BITS[f], 0),
    rules: (s.syscalls ?? []).map((sc, i) => ({
      names: sc.names,
      action: actionValue(sc.action, sc.errnoRet),
      args: (sc.args ?? []).map((arg, j) => ({
        index: arg.index,
        op: OPERATORS[arg.op],
        value: u64(arg.value, `syscalls[${i}].args[${j}].value`),
        valueTwo: u64(arg.valueTwo ?? 0, `syscalls[${i}].args[${j}].valueTwo`),
      })),
    })),
    listenerPath: s.listenerPath ?? "",
    listenerState: listenerState ?? "",
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
