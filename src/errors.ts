import { errnoNameWords } from "./boundary/errno.ts";
import type { Failure } from "./boundary/gen/helper.ts";

/**
 * The one error type tsrun throws on purpose. Its message is the single line the user sees;
 * anything else that escapes is a bug and is reported as "internal error: ...". An error the
 * helper reported keeps its Failure, so that code can act on what failed, never on the words.
 */
export class TsrunError extends Error {
  readonly exitCode: number;
  /** What the helper reported, when it was the helper that failed. */
  readonly failure?: Failure;
  /** A host path tsrun itself could not use, and the errno name (ENOENT, EACCES). */
  readonly access?: AccessFailure;

  constructor(message: string, opts: { exitCode?: number; failure?: Failure; access?: AccessFailure } = {}) {
    super(message);
    this.name = "TsrunError";
    this.exitCode = opts.exitCode ?? 1;
    if (opts.failure) this.failure = opts.failure;
    if (opts.access) this.access = opts.access;
  }
}

export interface AccessFailure {
  what: "state-dir" | "bundle";
  errno: string;
}

/** The errno name of a Node error ("" when it has none). */
export function errnoName(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" ? code : "";
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

/** A Node error's errno as the lowercase words runc (Go) prints, which callers match on. */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const words = e && typeof e.code === "string" ? errnoNameWords(e.code) : undefined;
  if (words) return words;
  return e && typeof e.message === "string" ? e.message : String(err);
}
