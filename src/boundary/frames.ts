/**
 * Frames of the TypeScript-helper boundary (boundary/helper.proto): a u32 little-endian length,
 * then the message. ts-proto's codec (src/boundary/gen/) does the messages.
 */
import { Buffer } from "node:buffer";
import { FromHelper, ToHelper } from "./gen/helper.ts";

/** The helper refuses longer frames; so do we. */
export const FRAME_MAX = 64 * 1024 * 1024;

/**
 * The helper's strings end at their first NUL (protobuf-c gives C strings), so a string holding
 * one would reach it cut short: refused, naming where it is ("create.sysctls[0].value").
 */
export function refuseNul(value: unknown, where: string): void {
  const at = (k: string) => (where ? `${where}.${k}` : k);
  if (typeof value === "string") {
    if (value.includes("\0")) throw new Error(`${where}: contains a NUL byte`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => refuseNul(v, `${where}[${i}]`));
  } else if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    const o = value as Record<string, unknown>;
    // a oneof ({ $case, value }) is named by its case
    if (typeof o.$case === "string") refuseNul(o.value, at(o.$case));
    else for (const [k, v] of Object.entries(o)) refuseNul(v, at(k));
  }
}

/** One ToHelper message as a frame. */
export function toHelperFrame(msg: ToHelper): Buffer {
  refuseNul(msg.msg, "");
  const body = ToHelper.encode(msg).finish();
  if (body.length > FRAME_MAX) throw new Error(`launch plan: ${body.length} bytes is more than the ${FRAME_MAX} the helper reads`);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32LE(body.length, 0);
  frame.set(body, 4);
  return frame;
}

/** Splits a byte stream from the helper into its events, whatever the chunks. */
export class FromHelperReader {
  private pending: Buffer = Buffer.alloc(0);

  /** The events the chunk completes, in order. */
  push(chunk: Uint8Array): FromHelper[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : Buffer.from(chunk);
    const out: FromHelper[] = [];
    for (;;) {
      if (this.pending.length < 4) break;
      const len = this.pending.readUInt32LE(0);
      if (len > FRAME_MAX) throw new Error(`the helper sent a frame of ${len} bytes`);
      if (this.pending.length < 4 + len) break;
      out.push(FromHelper.decode(this.pending.subarray(4, 4 + len)));
      this.pending = this.pending.subarray(4 + len);
    }
    return out;
  }

  /** Bytes of an unfinished frame (the helper died while writing it). */
  get leftover(): number {
    return this.pending.length;
  }
}

/** Every event in a finished stream (the start-status fifo, a helper's stdout). */
export function readEvents(bytes: Uint8Array): FromHelper[] {
  return new FromHelperReader().push(bytes);
}
