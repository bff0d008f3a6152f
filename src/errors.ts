/**
 * The one error type tsrun throws on purpose. Its message is the single line the user sees;
 * anything else that escapes is a bug and is reported as "internal error: ...".
 */
export class TsrunError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "TsrunError";
  }
}

/** One thing wrong with a config.json, located by its JSON path ("process.args[0]"). */
export interface Problem {
  path: string;
  message: string;
}

/** One line per problem, even when the message quotes a value holding line breaks. */
export function formatProblem(p: Problem, file = "config.json"): string {
  const message = p.message.replace(/\r/g, "\\r").replace(/\n/g, "\\n");
  return p.path ? `${file}: ${p.path}: ${message}` : `${file}: ${message}`;
}

/** Node's errno codes as the lowercase words runc (Go) prints, which callers match on. */
const ERRNO_WORDS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EEXIST: "file exists",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  EINVAL: "invalid argument",
  EBUSY: "device or resource busy",
  ESRCH: "no such process",
  ENOSPC: "no space left on device",
  EROFS: "read-only file system",
  ELOOP: "too many levels of symbolic links",
  EPIPE: "broken pipe",
};

export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === "string" && ERRNO_WORDS[e.code]) return ERRNO_WORDS[e.code]!;
  return e && typeof e.message === "string" ? e.message : String(err);
}
