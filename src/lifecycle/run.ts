/**
 * run: create + start. In the foreground tsrun forwards the signals it gets to the container,
 * waits for it, deletes it (unless --keep), and exits with its status (128+signal if killed).
 */
import { createContainer, type CreateOptions } from "./create.ts";
import { releaseInit } from "./start.ts";
import { destroyContainer } from "./destroy.ts";
import { loadContainer } from "./status.ts";
import { runPoststopHooks } from "./hooks.ts";
import { logWarn, logDebug } from "../log.ts";

const FORWARDED: NodeJS.Signals[] = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT", "SIGTSTP"];

export async function runContainer(opts: CreateOptions & { detach: boolean; keep: boolean }): Promise<number> {
  const created = await createContainer({ ...opts, foreground: !opts.detach });
  const { record, helper } = created;
  const forward = (sig: NodeJS.Signals) => {
    try {
      process.kill(record.pid, sig);
    } catch {
      // already gone: its exit is on the way
    }
  };
  if (!opts.detach) for (const sig of FORWARDED) process.on(sig, forward);
  try {
    await releaseInit(opts.root, record);
  } catch (err) {
    helper.abort();
    await destroyContainer(opts.root, record);
    await runPoststopHooks(record);
    throw err;
  }
  logDebug("run: started");
  if (opts.detach) return 0;
  let status: number;
  try {
    status = await helper.exitStatus;
  } finally {
    for (const sig of FORWARDED) process.off(sig, forward);
  }
  logDebug(`run: the process exited (${status})`);
  if (!opts.keep) {
    try {
      await destroyContainer(opts.root, loadContainer(opts.root, opts.id).record);
      logDebug("run: container removed");
    } catch (err) {
      logWarn((err as Error).message);
    }
    await runPoststopHooks(record);
  }
  return status;
}
