import t from "tap";
import { crc32 as zlibCrc32 } from "node:zlib";
import { crc32, recordChecksum } from "../../src/lifecycle/fast-path.ts";

t.test("the written-out CRC-32 is zlib's (what Bun.hash.crc32 and the front end compute)", async (t) => {
  t.equal(crc32(Buffer.from("123456789")), 0xcbf43926, "the standard check value");
  t.equal(crc32(new Uint8Array()), 0);
  const text = Buffer.from(JSON.stringify({ id: "x", note: "é ü \u2603", n: [1, 2, 3] }).repeat(50));
  t.equal(crc32(text), zlibCrc32(text));
  t.equal(recordChecksum(text), zlibCrc32(text), "under Node, recordChecksum() is the written-out one");
});
