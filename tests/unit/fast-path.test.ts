import t from "tap";
import * as zlib from "node:zlib";
import { crc32, recordChecksum } from "../../src/lifecycle/fast-path.ts";

// zlib.crc32 came with Node 20.15: where it is missing, the standard check value stands alone.
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

t.test("the written-out CRC-32 is zlib's (what Bun.hash.crc32 and the front end compute)", async (t) => {
  t.equal(crc32(Buffer.from("123456789")), 0xcbf43926, "the standard check value");
  t.equal(crc32(new Uint8Array()), 0);
  const text = Buffer.from(JSON.stringify({ id: "x", note: "é ü \u2603", n: [1, 2, 3] }).repeat(50));
  if (zlibCrc32) t.equal(crc32(text), zlibCrc32(text), "the same as zlib's");
  t.equal(recordChecksum(text), crc32(text), "under Node, recordChecksum() is the written-out one");
});

t.test("fastRecordNames reads the records' names, counting lengths in bytes", async (t) => {
  const { fastRecordNames } = await import("../../src/lifecycle/fast-path.ts");
  const file = (body: string) => Buffer.from(`tsrun-fast 4\n${body}`);
  t.same([...fastRecordNames(file("record 4\n1 ab\ninit 5\n12 34\nstart 0\n\n"))!], ["record", "init", "start"]);
  t.same([...fastRecordNames(file("state.created 4\n\u00e9\u00e9\n"))!], ["state.created"], "two 2-byte characters are 4 bytes");
  t.same([...fastRecordNames(file(""))!], [], "no records");
  for (const [what, text] of [
    ["another version", Buffer.from("tsrun-fast 3\n")],
    ["a length past the end", file("record 40\n1 ab\n")],
    ["no newline after a value", file("record 4\n1 abX")],
    ["a bad name line", file("Record 4\n1 ab\n")],
    ["a truncated name line", file("record 4")],
  ] as const) {
    t.equal(fastRecordNames(text), undefined, what);
  }
});
