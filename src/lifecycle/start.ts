/** start: release the waiting init through exec.fifo. */
import { openSync, writeSync, closeSync, unlinkSync, constants } from "node:fs";
import { TsrunError, errnoText } from "../errors.ts";
import { errnoWords } from "../boundary/errno.ts";
import { execFifoPath, containerDir, type ContainerRecord } from "./state-store.ts";
import { loadContainer } from "./status.ts";
import { StartHookStatus, runPoststartHooks } from "./hooks.ts";

function fifoWriteFailed(words: string): TsrunError {
  return new TsrunError(`cannot write to exec fifo: ${words}`);
}

/**
 * The C front end's fast start got past the exec.fifo unlink and its write failed: it hands the
 * command here with the errno (in FRONTEND_FAILURE_ENV), so that the words are this file's.
 */
export const FRONTEND_FAILURE_ENV = "TSRUN_FRONTEND_WRITE_ERRNO";

export function frontendStartFailure(): TsrunError | undefined {
  const errnum = process.env[FRONTEND_FAILURE_ENV];
  if (errnum === undefined) return undefined;
  delete process.env[FRONTEND_FAILURE_ENV];
  return fifoWriteFailed(/^[0-9]+$/.test(errnum) ? errnoWords(Number(errnum)) : `errno ${errnum}`);
}

export async function startContainer(root: string, id: string): Promise<void> {
  const { record, status } = loadContainer(root, id);
  switch (status) {
    case "created":
      break;
    case "running":
    case "paused":
      throw new TsrunError("cannot start an already running container");
    case "stopped":
      throw new TsrunError("cannot start a container that has stopped");
    case "creating":
      throw new TsrunError("cannot start a container that is still being created");
  }
  await releaseInit(root, record);
}

/**
 * Lets the waiting init go on to execve, then runs the poststart hooks. run calls it directly
 * with the record it has just written: reading it back would only repeat what create decided,
 * and a start by someone else in between is still found (the fifo is gone, or has no reader).
 */
export async function releaseInit(root: string, record: ContainerRecord): Promise<void> {
  const id = record.id;
  const fifo = execFifoPath(containerDir(root, id));
  let fd: number;
  try {
    // O_NONBLOCK: with no reader (the init is gone) this fails at once with ENXIO instead of hanging.
    fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENXIO") throw new TsrunError("container not running");
    if (code === "ENOENT") throw new TsrunError("cannot start an already running container");
    throw new TsrunError(`cannot open exec fifo: ${errnoText(err)}`);
  }
  let hookStatus: StartHookStatus | undefined;
  try {
    // Opened before the init is released, so that its startContainer hooks' verdict is never lost.
    hookStatus = StartHookStatus.open(record, containerDir(root, id));
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  try {
    unlinkSync(fifo);
  } catch (err) {
    closeSync(fd);
    hookStatus?.close();
    // Another start got here first.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new TsrunError("cannot start an already running container");
    throw new TsrunError(`cannot remove exec fifo: ${errnoText(err)}`);
  }
  try {
    writeSync(fd, "0");
  } catch (err) {
    hookStatus?.close();
    throw fifoWriteFailed(errnoText(err));
  } finally {
    closeSync(fd);
  }
  hookStatus?.wait();
  await runPoststartHooks(record);
}
