// src/boundary/frames.ts: a u32 length, then the message; strings the helper would cut short refused.
import t from "tap";
import { FromHelperReader, toHelperFrame } from "../../src/boundary/frames.ts";
import { FromHelper } from "../../src/boundary/gen/helper.ts";

t.test("a string with a NUL byte never reaches the helper, and the error says where", async (t) => {
  t.throws(
    () => toHelperFrame({ msg: { $case: "enter", value: { pid: 1, cgroupProcs: [], namespaces: [], becomeRoot: false, cwd: "", path: "/h", argv: ["a", "b\u0000c"], fork: false } } }),
    { message: "enter.argv[1]: contains a NUL byte" },
  );
  const frame = toHelperFrame({ msg: { $case: "hookAnswer", value: { proceed: true } } });
  t.equal(frame.readUInt32LE(0), frame.length - 4, "length prefix");
});

t.test("the reader returns whole events, whatever the chunks, and refuses an absurd length", async (t) => {
  const one = FromHelper.encode({ event: { $case: "pid", value: 4242 } }).finish();
  const two = FromHelper.encode({ event: { $case: "exited", value: 3 } }).finish();
  const stream = Buffer.concat([Buffer.from(new Uint32Array([one.length]).buffer), one, Buffer.from(new Uint32Array([two.length]).buffer), two]);
  const r = new FromHelperReader();
  const got = [];
  for (const byte of stream) got.push(...r.push(Uint8Array.of(byte)));
  t.same(got.map((e) => e.event), [{ $case: "pid", value: 4242 }, { $case: "exited", value: 3 }]);
  t.equal(r.leftover, 0);
  t.throws(() => new FromHelperReader().push(Buffer.from([0xff, 0xff, 0xff, 0xff])), /frame of 4294967295 bytes/);
});
