/**
 * run: create + start. In the foreground tsrun forwards the signals it gets to the container,
 * waits for it, deletes it (unless --keep), and exits with its status (128+signal if killed).
 */
import { createContainer, type CreateOptions } from "./create.ts";
import { releaseInit } from "./start.ts";
import { destroyContainer } from "./destroy.ts";
import { runPoststopHooks } from "./hooks.ts";
import { logWarn, logDebug } from "../log.ts";
import { stateDirIdentity } from "./state-store.ts";

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
      // The record create wrote, while the state dir is the one create made. A dir that is gone
      // or new was deleted meanwhile (the id may name another container now): left alone.
      if (sameDir(created.dir, created.dirIdentity)) {
        await destroyContainer(opts.root, record);
        logDebug("run: container removed");
      } else {
        logWarn(`container ${opts.id} was deleted by another command while it ran`);
      }
    } catch (err) {
      logWarn((err as Error).message);
    }
    await runPoststopHooks(record);
  }
  return status;
}

function sameDir(dir: string, identity: string): boolean {
  try {
    return stateDirIdentity(dir) === identity;
  } catch {
    return false;
  }
}
