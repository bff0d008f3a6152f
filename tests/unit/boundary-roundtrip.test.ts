// The boundary's round trip: a ToHelper with every field of every message set (each to a value
// of its own, never the default), encoded, decoded by the helper (`tsrun-helper --echo`, which
// refuses any field it does not know) and encoded back, must come back equal; and TypeScript's
// generated codec (ts-proto) must carry every field too. Field lists come from the declaration
// itself (protoc's descriptor set, build/gen/helper.desc), so a new field is covered untouched.
import t from "tap";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { create, createFileRegistry, equals, fromBinary, isFieldSet, toBinary, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, isWrapperDesc } from "@bufbuild/protobuf/wkt";
import { ToHelper, FromHelper } from "../../src/boundary/gen/helper.ts";
import { FromHelperReader, toHelperFrame } from "../../src/boundary/frames.ts";

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const DESC = path.join(REPO, "build/gen/helper.desc");
const HELPER = path.join(REPO, "build/tsrun-helper");

if (!existsSync(DESC) || !existsSync(HELPER)) {
  t.plan(0, "needs `make` (build/gen/helper.desc and build/tsrun-helper)");
  process.exit(0);
}

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(DESC)));
const message = (name: string): DescMessage => {
  const d = registry.getMessage(name);
  if (!d) throw new Error(`${name} not in the descriptor set`);
  return d;
};

/** Fills every field of a message (one case of each oneof: `pick` says which), counting them. */
class Filler {
  private n = 0;
  readonly seen = new Set<string>();

  constructor(private readonly pick: (oneof: string) => string | undefined = () => undefined) {}

  private scalar(f: DescField & { fieldKind: "scalar" | "list" }): unknown {
    const n = ++this.n;
    const type = f.fieldKind === "scalar" ? f.scalar : f.listKind === "scalar" ? f.scalar : undefined;
    switch (type) {
      case 9: return `s${n}`; // string
      case 8: return true; // bool
      case 12: return new Uint8Array([n & 0xff, 7]); // bytes
      case 1: return n + 0.5; // double
      case 3: case 16: case 18: return -BigInt(n) * 1000003n; // int64: negative and large
      case 4: case 6: return (1n << 63n) + BigInt(n); // uint64: past 2^63
      case 5: case 15: case 17: return -n; // int32
      default: return 0x80000000 + n; // uint32: past 2^31
    }
  }

  fill(desc: DescMessage): Message {
    const init: Record<string, unknown> = {};
    for (const f of desc.fields) {
      if (f.oneof && this.pick(f.oneof.name) !== f.name) continue;
      this.seen.add(`${desc.typeName}.${f.name}`);
      const value = (): unknown => {
        // google.protobuf.*Value fields are plain values in @bufbuild/protobuf (and in ts-proto)
        if (f.message && isWrapperDesc(f.message)) {
          this.seen.add(`${f.message.typeName}.value`);
          return this.scalar(f.message.fields[0] as DescField & { fieldKind: "scalar" });
        }
        if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) return this.fill(f.message!);
        if (f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum")) {
          const values = f.enum!.values;
          return values[values.length - 1]!.number;
        }
        return this.scalar(f as DescField & { fieldKind: "scalar" | "list" });
      };
      const v = f.fieldKind === "list" ? [value(), value()] : value();
      if (f.oneof) init[f.oneof.localName] = { case: f.localName, value: v };
      else init[f.localName] = v;
    }
    return create(desc, init);
  }
}

/** The fields that hold a value in a message and the messages in it, as "Type.field". */
function setFields(desc: DescMessage, msg: Message, out = new Set<string>()): Set<string> {
  const m = msg as unknown as Record<string, unknown>;
  for (const f of desc.fields) {
    if (!isFieldSet(msg, f)) continue;
    out.add(`${desc.typeName}.${f.name}`);
    if (!f.message) continue;
    if (isWrapperDesc(f.message)) {
      out.add(`${f.message.typeName}.value`);
      continue;
    }
    const v = f.oneof ? (m[f.oneof.localName] as { value: unknown }).value : m[f.localName];
    for (const sub of Array.isArray(v) ? v : [v]) setFields(f.message, sub as Message, out);
  }
  return out;
}

/** Every field of every message reachable from root, as "Type.field". */
function allFields(root: DescMessage, out = new Set<string>(), done = new Set<string>()): Set<string> {
  if (done.has(root.typeName)) return out;
  done.add(root.typeName);
  for (const f of root.fields) {
    out.add(`${root.typeName}.${f.name}`);
    if (f.message) allFields(f.message, out, done);
  }
  return out;
}

function helperEcho(frame: Uint8Array): { status: number | null; body?: Uint8Array; stderr: string } {
  const r = spawnSync(HELPER, ["--echo"], { input: frame });
  const out = r.stdout;
  if (r.status !== 0 || out.length < 4) return { status: r.status, stderr: r.stderr.toString() };
  return { status: r.status, body: out.subarray(4, 4 + out.readUInt32LE(0)), stderr: r.stderr.toString() };
}

const toHelper = message("tsrun.ToHelper");
const cases = toHelper.oneofs[0]!.fields.map((f) => f.name);

t.test("every ToHelper field survives the helper's decoding and TypeScript's codec", async (t) => {
  const covered = new Set<string>();
  for (const which of cases) {
    const filler = new Filler((oneof) => (oneof === "msg" ? which : undefined));
    const msg = filler.fill(toHelper);
    for (const f of filler.seen) covered.add(f);
    const bytes = toBinary(toHelper, msg);

    // the helper: decodes all of it (an unknown field would be refused), encodes it again
    const frame = Buffer.concat([Buffer.from(new Uint32Array([bytes.length]).buffer), bytes]);
    const echo = helperEcho(frame);
    t.equal(echo.status, 0, `${which}: the helper took the frame ${echo.stderr}`);
    if (echo.body) {
      const back = fromBinary(toHelper, echo.body);
      t.same([...setFields(toHelper, back)].sort(), [...filler.seen].sort(), `${which}: every field set came back set`);
      t.ok(equals(toHelper, back, msg), `${which}: the helper gave back every value`);
    }

    // TypeScript: ts-proto decodes and encodes every field the same
    const again = toHelperFrame(ToHelper.decode(bytes));
    t.ok(equals(toHelper, fromBinary(toHelper, again.subarray(4)), msg), `${which}: ts-proto carried every value`);
  }
  const missing = [...allFields(toHelper)].filter((f) => !covered.has(f));
  t.same(missing, [], "every field of every message was set in one of the cases");
});

t.test("every FromHelper event survives TypeScript's codec and the frame reader", async (t) => {
  const fromHelper = message("tsrun.FromHelper");
  const covered = new Set<string>();
  const reader = new FromHelperReader();
  for (const which of fromHelper.oneofs[0]!.fields.map((f) => f.name)) {
    // one run per HookEnd.how case as well
    for (const how of message("tsrun.HookEnd").oneofs[0]!.fields.map((f) => f.name)) {
      const filler = new Filler((oneof) => (oneof === "event" ? which : oneof === "how" ? how : undefined));
      const msg = filler.fill(fromHelper);
      for (const f of filler.seen) covered.add(f);
      const bytes = toBinary(fromHelper, msg);
      const frame = Buffer.concat([Buffer.from(new Uint32Array([bytes.length]).buffer), bytes]);
      // split in two, as a socket may deliver it
      const events = [...reader.push(frame.subarray(0, 3)), ...reader.push(frame.subarray(3))];
      t.equal(events.length, 1, `${which}/${how}: one event`);
      const back = fromBinary(fromHelper, FromHelper.encode(events[0]!).finish());
      t.same([...setFields(fromHelper, back)].sort(), [...filler.seen].sort(), `${which}/${how}: every field set came back set`);
      t.ok(equals(fromHelper, back, msg), `${which}/${how}: every value`);
    }
  }
  t.same([...allFields(fromHelper)].filter((f) => !covered.has(f)), [], "every field was set");
});

t.test("the helper refuses a frame carrying a field it does not know", async (t) => {
  const bytes = toBinary(toHelper, new Filler((o) => (o === "msg" ? "hook_answer" : undefined)).fill(toHelper));
  const withUnknown = Buffer.concat([bytes, Buffer.from([0xc0, 0x3e, 0x01])]); // field 1000, varint 1
  const frame = Buffer.concat([Buffer.from(new Uint32Array([withUnknown.length]).buffer), withUnknown]);
  const r = helperEcho(frame);
  t.equal(r.status, 1);
});
