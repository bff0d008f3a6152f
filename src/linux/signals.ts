import { TsrunError } from "../errors.ts";

/** Linux signal numbers (x86_64, arm64 and most others share these). */
export const SIGNALS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGIOT: 6, SIGBUS: 7,
  SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14,
  SIGTERM: 15, SIGSTKFLT: 16, SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21,
  SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28,
  SIGIO: 29, SIGPOLL: 29, SIGPWR: 30, SIGSYS: 31,
};

const SIGRTMIN = 34;
export const SIGRTMAX = 64;

/** The signal of `kill ID` without one (runc's). */
export const KILL_DEFAULT_SIGNAL = "SIGTERM";

/** "TERM", "SIGTERM", "15", "RTMIN+3" -> signal number. 0 checks liveness (podman uses it). */
export function parseSignal(text: string): number {
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    if (n <= SIGRTMAX) return n;
    throw new TsrunError(`invalid signal: ${text}`);
  }
  const upper = text.toUpperCase();
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  const known = SIGNALS[name];
  if (known !== undefined) return known;
  const rt = /^SIGRT(MIN|MAX)([+-][0-9]+)?$/.exec(name);
  if (rt) {
    const n = (rt[1] === "MIN" ? SIGRTMIN : SIGRTMAX) + Number(rt[2] ?? 0);
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
  }
  throw new TsrunError(`invalid signal: ${text}`);
}

export function signalName(n: number): string {
  for (const [name, num] of Object.entries(SIGNALS)) if (num === n) return name;
  return String(n);
}

/** How Go (and so runc) describes a signal that ended a process ("signal: killed"): glibc's words. */
const SIGNAL_WORDS: Record<number, string> = {
  1: "hangup", 2: "interrupt", 3: "quit", 4: "illegal instruction", 5: "trace/breakpoint trap", 6: "aborted",
  7: "bus error", 8: "floating point exception", 9: "killed", 10: "user defined signal 1", 11: "segmentation fault",
  12: "user defined signal 2", 13: "broken pipe", 14: "alarm clock", 15: "terminated", 16: "stack fault",
  17: "child exited", 18: "continued", 19: "stopped (signal)", 20: "stopped", 21: "stopped (tty input)",
  22: "stopped (tty output)", 23: "urgent I/O condition", 24: "CPU time limit exceeded", 25: "file size limit exceeded",
  26: "virtual timer expired", 27: "profiling timer expired", 28: "window changed", 29: "I/O possible",
  30: "power failure", 31: "bad system call",
};

export function signalWords(n: number): string {
  return SIGNAL_WORDS[n] ?? `signal ${n}`;
}
