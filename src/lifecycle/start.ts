/** start: release the waiting init through exec.fifo. */
import { openSync, writeSync, closeSync, unlinkSync, constants } from "node:fs";
import { TsrunError, errnoText } from "../errors.ts";
import { execFifoPath, containerDir } from "./state-store.ts";
import { loadContainer } from "./status.ts";
import { StartHookStatus, runPoststartHooks } from "./hooks.ts";

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
    throw err;
  } finally {
    closeSync(fd);
  }
  hookStatus?.wait();
  await runPoststartHooks(record);
}
