/** start: release the waiting init through exec.fifo. */
import { openSync, writeSync, closeSync, unlinkSync, constants } from "node:fs";
import { TsrunError, errnoText } from "../errors.ts";
import { execFifoPath, containerDir } from "./state-store.ts";
import { loadContainer } from "./status.ts";

export function startContainer(root: string, id: string): void {
  const { status } = loadContainer(root, id);
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
  try {
    unlinkSync(fifo);
  } catch (err) {
    closeSync(fd);
    // Another start got here first.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new TsrunError("cannot start an already running container");
    throw new TsrunError(`cannot remove exec fifo: ${errnoText(err)}`);
  }
  try {
    writeSync(fd, "0");
  } finally {
    closeSync(fd);
  }
}
