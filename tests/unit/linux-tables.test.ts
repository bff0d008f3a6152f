import t from "tap";
import { parseSignal, signalName } from "../../src/linux/signals.ts";
import { parseMountOptions, MS, MOUNT_ATTR, MOUNT_OPTIONS } from "../../src/linux/mount-options.ts";
import { resolveCapabilities, CAPABILITIES } from "../../src/linux/capabilities.ts";
import { features } from "../../src/linux/features.ts";

t.test("signals by name, SIG name and number", async (t) => {
  t.equal(parseSignal("TERM"), 15);
  t.equal(parseSignal("SIGTERM"), 15);
  t.equal(parseSignal("sigkill"), 9);
  t.equal(parseSignal("9"), 9);
  t.equal(parseSignal("RTMIN+2"), 36);
  t.equal(signalName(2), "SIGINT");
  t.throws(() => parseSignal("NOPE"), /invalid signal: NOPE/);
  t.equal(parseSignal("0"), 0, "signal 0 probes liveness");
  t.throws(() => parseSignal("65"), /invalid signal: 65/);
});

t.test("mount options become flags, propagation, recursive attributes and data", async (t) => {
  const m = parseMountOptions(["nosuid", "noexec", "ro", "rw", "strictatime", "mode=755", "size=65536k"]);
  t.equal(m.flags, MS.NOSUID | MS.NOEXEC | MS.STRICTATIME);
  t.equal(m.data.join(","), "mode=755,size=65536k");
  const b = parseMountOptions(["rbind", "rprivate", "rro", "rnosuid"]);
  t.ok(b.bind && b.recursiveBind);
  t.same(b.propagation, [MS.PRIVATE | MS.REC]);
  t.equal(b.recAttrSet, MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID);
  t.equal(parseMountOptions(["relatime", "noatime"]).flags, MS.NOATIME, "the last atime option wins");
  t.same(parseMountOptions(["rbind", "idmap"]).idmap, { recursive: false }, "idmap: the top mount only");
  t.same(parseMountOptions(["idmap", "ridmap"]).idmap, { recursive: true }, "ridmap: every mount of the tree (the last of the two wins)");
  t.equal(parseMountOptions(["rbind"]).idmap, undefined);
});

t.test("capabilities: numbers, unknown names warned and skipped", async (t) => {
  const warnings: string[] = [];
  const caps = resolveCapabilities({ bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NOPE"], ambient: [] }, (w) => warnings.push(w));
  t.same(caps.bounding, [0, 5]);
  t.same(caps.ambient, []);
  t.match(warnings[0], /bounding: unknown capability "CAP_NOPE" skipped/);
});

t.test("features lists what the tables support", async (t) => {
  const f = features() as { mountOptions: string[]; linux: { capabilities: string[] } };
  for (const option of f.mountOptions) {
    t.ok(Object.hasOwn(MOUNT_OPTIONS, option), `${option} is handled by parseMountOptions`);
    t.same(parseMountOptions([option]).data, [], `${option} is not passed to the filesystem as data`);
  }
  t.same(f.linux.capabilities, [...CAPABILITIES]);
});
