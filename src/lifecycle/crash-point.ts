/**
 * Test-only crash points: the reliability tests set TSRUN_TEST_CRASH_AT to the name of a step
 * of create or delete, and tsrun SIGKILLs itself right there, as a kill -9 from outside would,
 * so they can check that `delete --force` still cleans up whatever was left half done.
 *
 * The names, in the order they are reached:
 *   create: create-locked, create-record-written, create-cgroup-dirs (inside createCgroup: dirs
 *           made, not yet recorded), create-cgroup-created, create-helper-pid (the helper made
 *           the init and said its pid, not ready yet), create-helper-ready,
 *           create-record-complete, create-pid-file
 *   delete: delete-killed, delete-cgroup-destroyed, delete-before-remove-dir
 * and, only with the systemd driver (so not in CRASH_POINTS, which every create reaches):
 * create-unit-started (the scope exists, its dirs are not on record yet).
 * Unset (always, outside the tests) this is one environment lookup.
 */
export const CRASH_POINTS = [
  "create-locked",
  "create-record-written",
  "create-cgroup-dirs",
  "create-cgroup-created",
  "create-helper-pid",
  "create-helper-ready",
  "create-record-complete",
  "create-pid-file",
  "delete-killed",
  "delete-cgroup-destroyed",
  "delete-before-remove-dir",
] as const;

export type CrashPointName = (typeof CRASH_POINTS)[number];

export function crashPoint(name: CrashPointName | (string & {})): void {
  if (process.env.TSRUN_TEST_CRASH_AT === name) process.kill(process.pid, "SIGKILL");
}
