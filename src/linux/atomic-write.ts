/**
 * Writing a whole file so that readers never see half of it: to a temporary file beside it, then
 * renamed over it. The temporary file is made with O_CREAT|O_EXCL|O_NOFOLLOW under a name nobody
 * can guess: tsrun runs as root, and a user who may write the directory of a caller-given path
 * (a --pid-file) must not get root to write through a symlink planted at the temporary name.
 * The rename replaces a symlink at the final path itself, never what it points to.
 */
import { closeSync, constants, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

// Node and Bun add O_CLOEXEC to every open themselves (fs.constants has no such flag).
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function randomSuffix(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return Buffer.from(bytes).toString("hex");
}

/** Throws the fs error (its code set) when the file cannot be written. */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  const dir = dirname(path);
  const base = basename(path);
  let tmp = "";
  let fd = -1;
  for (let attempt = 0; fd < 0; attempt++) {
    tmp = join(dir, `.${base}.${randomSuffix()}`);
    try {
      fd = openSync(tmp, CREATE_NEW, mode);
    } catch (err) {
      // Someone made that very name: only by guessing it, so try another.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 8) throw err;
    }
  }
  try {
    let buf = Buffer.from(data);
    while (buf.length > 0) buf = buf.subarray(writeSync(fd, buf));
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (err) {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // the error that stopped the write is the one to report
    }
    throw err;
  }
}
