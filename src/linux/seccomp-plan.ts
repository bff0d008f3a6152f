/**
 * config.json linux.seccomp -> the launch plan's seccomp part (names the helper and libseccomp
 * understand), and the state payload sent with a NOTIFY listener fd.
 */
import type { Seccomp, SeccompAction as OciAction, SeccompFlag, SeccompOperator } from "../spec/generated/types.ts";
import type { PlanSeccomp, SeccompAction, SeccompOp } from "./launch-plan.ts";

const EPERM = 1;

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
