/**
 * ROOT/ID/fast: everything frontend/tsrun.c (the `tsrun` executable managers call) needs to
 * answer start, state, kill, pause, resume and delete of this container without a Bun start-up,
 * decided here once the record is complete. The front end decides nothing: it checks the init is
 * the process create started (pid and start time), looks at exec.fifo and the freezer as
 * computeStatus does, and then does or prints what this file says for that status. Whatever it is not certain of
 * (another status, an error, an option it does not know, a file it cannot read) goes to
 * tsrun-main, which gives the same answer and the same words as before. A failed write costs
 * speed only: without the file every command takes the TypeScript path.
 *
 * Format: a first line "tsrun-fast 4", then records, each "NAME LEN\n" followed by LEN bytes
 * and "\n" (values may hold newlines). Names, in this order:
 *   record          "SIZE CRC" of the state.json this file was made from (its length and CRC-32,
 *                   in hex): a record written since makes the file void, and every
 *                   command slow again, until it is written anew (update does, by
 *                   refreshFastFile(); an edit in place by hand does not)
 *   init            "PID STARTTIME" of the init (/proc/PID/stat field 22)
 *   start           present when start has nothing to do but write exec.fifo (no startContainer
 *                   or poststart hooks, not run's own container)
 *   freezer         "v1 FILE" (freezer.state, paused when it reads FROZEN) or "v2 FILE"
 *                   (cgroup.events, paused when it has "frozen 1"); absent: never paused
 *   pause, resume   "VALUE FILE": what pause of a running container (resume of a paused one)
 *                   writes, and where; it is done when the freezer then says paused (running),
 *                   else tsrun-main goes on and waits for the kernel as freeze() does. Absent:
 *                   no cgroup to freeze (pauseContainer() refuses)
 *   state.STATUS    the exact output of `state` for each of created, running, paused, stopped
 *   kill.default    the signal number of `kill ID` without a signal
 *   kill.max        the largest signal number `kill ID N` takes
 *   kill.names      lines "NAME NUMBER": the signal names `kill ID NAME` takes, in capitals,
 *                   with and without SIG, each with what parseSignal() makes of it (other
 *                   spellings, RTMIN+N among them, go to tsrun-main)
 *   delete          present when delete of a stopped container does only what the next
 *                   records say, then removes the state dir (no poststop hooks, no systemd unit,
 *                   no Intel RDT group)
 *   delete.leaf     a container cgroup dir: must hold no process and no sub-cgroup, then rmdir
 *   delete.parent   a parent dir it made: rmdir, left when busy or not empty
 *                   (both in removalOrder()'s order)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../linux/atomic-write.ts";
import { freezerControl, freezerProbe, removalOrder } from "../linux/cgroups/index.ts";
import { hasCgroupDirs } from "../linux/cgroups/rootless.ts";
import { KILL_DEFAULT_SIGNAL, SIGRTMAX, SIGNALS, parseSignal } from "../linux/signals.ts";
import { hooksOf } from "./hooks.ts";
import { stateText } from "./status.ts";
import type { ContainerRecord, Status } from "./state-store.ts";

export const FAST_FILE = "fast";
/** The first line, with the format's version (frontend/tsrun.c takes only this one). */
const FAST_HEAD = "tsrun-fast 4\n";
const STATUSES: Status[] = ["created", "running", "paused", "stopped"];

let crcTable: Uint32Array | undefined;

/** CRC-32 (zlib's) written out, for Node, where the tests load this file. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The CRC-32 of a state.json: enough to tell a record rewritten since (frontend/tsrun.c computes
 * the same). Under Bun its native crc32: a byte loop in the interpreter took 0.25 ms of create.
 */
export function recordChecksum(bytes: Uint8Array): number {
  const bun = (globalThis as { Bun?: { hash: { crc32(data: Uint8Array): number } } }).Bun;
  return bun ? bun.hash.crc32(bytes) >>> 0 : crc32(bytes);
}

/** Every usual spelling of a signal name, in capitals, as parseSignal() reads it. */
function signalNames(): string {
  const names = new Set<string>();
  for (const n of [...Object.keys(SIGNALS), "SIGRTMIN", "SIGRTMAX"]) names.add(n).add(n.slice(3));
  const lines: string[] = [];
  for (const name of names) {
    try {
      lines.push(`${name} ${parseSignal(name)}`);
    } catch {
      // not a signal parseSignal takes: left out
    }
  }
  return lines.join("\n");
}

function record(name: string, value: string): string {
  return `${name} ${Buffer.byteLength(value)}\n${value}\n`;
}

/** recordText: the state.json create wrote last, as writeRecord() returned it. */
export function fastFileText(rec: ContainerRecord, recordText: string, opts: { startFast: boolean }): string {
  const bytes = Buffer.from(recordText);
  const out = [FAST_HEAD, record("record", `${bytes.length} ${recordChecksum(bytes).toString(16)}`), record("init", `${rec.pid} ${rec.pidStartTime}`)];
  const startHooks = hooksOf(rec.config, "startContainer").length + hooksOf(rec.config, "poststart").length;
  if (opts.startFast && startHooks === 0) out.push(record("start", ""));
  const freezer = rec.cgroup ? freezerProbe(rec.cgroup) : undefined;
  if (freezer) out.push(record("freezer", `${freezer.kind} ${freezer.file}`));
  if (rec.cgroup && hasCgroupDirs(rec.cgroup)) {
    for (const [name, frozen] of [["pause", true], ["resume", false]] as const) {
      const control = freezerControl(rec.cgroup, frozen);
      if (control) out.push(record(name, `${control.value} ${control.file}`));
    }
  }
  for (const status of STATUSES) out.push(record(`state.${status}`, stateText({ record: rec, status })));
  out.push(record("kill.default", String(parseSignal(KILL_DEFAULT_SIGNAL))), record("kill.max", String(SIGRTMAX)), record("kill.names", signalNames()));
  const simpleDelete = hooksOf(rec.config, "poststop").length === 0 && !rec.cgroup?.systemd && !rec.intelRdt;
  if (simpleDelete) {
    out.push(record("delete", ""));
    for (const { dir, leaf } of rec.cgroup ? removalOrder(rec.cgroup) : []) out.push(record(leaf ? "delete.leaf" : "delete.parent", dir));
  }
  return out.join("");
}

/** The names of the records of a fast file (bytes: lengths count bytes); undefined if malformed. */
export function fastRecordNames(file: Buffer): Set<string> | undefined {
  const head = Buffer.from(FAST_HEAD);
  if (!file.subarray(0, head.length).equals(head)) return undefined;
  const names = new Set<string>();
  for (let at = head.length; at < file.length; ) {
    const eol = file.indexOf(10, at);
    const m = eol < 0 ? null : /^([a-z.]+) ([0-9]+)$/.exec(file.toString("latin1", at, eol));
    if (!m) return undefined;
    at = eol + 1 + Number(m[2]);
    if (file[at] !== 10) return undefined;
    at++;
    names.add(m[1]!);
  }
  return names;
}

/**
 * After the record is rewritten (update): the fast file again, for the new record text, saying
 * of start what the old one said (no start hook can have come since). Without a readable old
 * one there is none: the front end was not to take any shortcut for this container.
 */
export function refreshFastFile(dir: string, rec: ContainerRecord, recordText: string): void {
  let names: Set<string> | undefined;
  try {
    names = fastRecordNames(readFileSync(join(dir, FAST_FILE)));
  } catch {
    return;
  }
  if (names) writeFastFile(dir, rec, recordText, { startFast: names.has("start") });
}

/** Written by create once the record is complete; runs (foreground) start their own container. */
export function writeFastFile(dir: string, rec: ContainerRecord, recordText: string, opts: { startFast: boolean }): void {
  try {
    writeFileAtomic(join(dir, FAST_FILE), fastFileText(rec, recordText, opts), 0o600);
  } catch {
    // every command then takes the TypeScript path
  }
}
