/**
 * Which fds the caller passed to tsrun. --preserve-fds N hands fds 3 .. 3+N-1 to the container,
 * but once tsrun-main runs its own fds (Bun's eventpoll and eventfd, the --log file, a cgroup
 * file) take the lowest free numbers: a caller that passed fewer than N would give the
 * container tsrun's own descriptors. The C front end (frontend/tsrun.c) lists the fds that were
 * open, and not close-on-exec, when it executed tsrun-main, in CALLER_FDS_ENV ("3-5,8").
 */
import { TsrunError } from "../errors.ts";

export const CALLER_FDS_ENV = "_TSRUN_CALLER_FDS";

/** undefined: not started by the front end, so nothing is known about the caller's fds. */
let callerFds: Set<number> | undefined;

/** The list the front end left, taken out of the environment (hooks and the helper never see it). */
export function takeCallerFds(env: NodeJS.ProcessEnv): void {
  const text = env[CALLER_FDS_ENV];
  delete env[CALLER_FDS_ENV];
  callerFds = text === undefined ? undefined : parseFdList(text);
}

/** "3-5,8" -> {3, 4, 5, 8}; anything malformed is left out (then the fd counts as not passed). */
export function parseFdList(text: string): Set<number> {
  const fds = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^([0-9]{1,9})(?:-([0-9]{1,9}))?$/.exec(part);
    if (!m) continue;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (let fd = from; fd <= to && fd - from < 65536; fd++) fds.add(fd);
  }
  return fds;
}

/** Throws unless the caller passed every fd of 3 .. 3+n-1. */
export function checkPreservedFds(n: number): void {
  if (n === 0) return;
  if (callerFds === undefined) {
    throw new TsrunError(`--preserve-fds ${n}: cannot tell which fds the caller passed (tsrun-main was not started by the tsrun front end)`);
  }
  for (let fd = 3; fd < 3 + n; fd++) {
    if (!callerFds.has(fd)) throw new TsrunError(`--preserve-fds ${n}: fd ${fd} was not passed to tsrun (it is closed or close-on-exec)`);
  }
}
