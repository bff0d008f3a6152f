/**
 * Environment variables the C front end (frontend/tsrun.c) set only for tsrun-main's engine,
 * such as BUN_JSC_useJIT: it names them in ADDED_ENV, and they are taken out here, first thing,
 * so that the helper and hooks, which inherit tsrun's environment, get the caller's.
 */
export const ADDED_ENV = "_TSRUN_ADDED_ENV";

export function takeFrontendEnv(env: NodeJS.ProcessEnv): void {
  const names = env[ADDED_ENV];
  delete env[ADDED_ENV];
  if (names === undefined) return;
  // Only the engine's own options: a malformed list never removes a variable of the caller's.
  for (const name of names.split(",")) if (name.startsWith("BUN_JSC_")) delete env[name];
}
