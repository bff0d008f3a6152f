// config-linux.md, Devices and Default Devices.
import t from "tap";
import { observe } from "./lib/container.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

const DEFAULTS: Array<[string, number, number]> = [
  ["/dev/null", 1, 3],
  ["/dev/zero", 1, 5],
  ["/dev/full", 1, 7],
  ["/dev/random", 1, 8],
  ["/dev/urandom", 1, 9],
  ["/dev/tty", 5, 0],
];

t.test("default devices", async (t) => {
  const o = await observe(rt, {
    checker: [
      ...DEFAULTS.flatMap(([p]) => ["stat", p]),
      "stat", "/dev/ptmx",
      "stat", "/dev/pts/ptmx",
      "open", "/dev/null", "rw",
      "open", "/dev/zero", "r",
      "open", "/dev/full", "w",
      "open", "/dev/urandom", "r",
      "open", "/dev/random", "r",
    ],
  });
  const out = o.out ?? {};
  for (const [p, major, minor] of DEFAULTS) {
    const st = out[`stat ${p}`];
    t.same([st?.type, st?.major, st?.minor], ["c", major, minor], spec("config-linux.md#default-devices", "In addition to any devices configured with this setting, the runtime MUST also supply", p));
  }
  for (const [p, mode] of [
    ["/dev/null", "rw"],
    ["/dev/zero", "r"],
    ["/dev/full", "w"],
    ["/dev/urandom", "r"],
    ["/dev/random", "r"],
  ]) {
    t.equal(out[`open ${p} ${mode}`]?.ok, true, spec("config-linux.md#default-devices", "the runtime MUST also supply default devices", `${p} usable`), { result: out[`open ${p} ${mode}`] });
  }
  const ptmx = out["stat /dev/ptmx"];
  const pts = out["stat /dev/pts/ptmx"];
  const isLink = ptmx?.type === "l" && /^(\/dev\/)?pts\/ptmx$/.test(ptmx?.target ?? "");
  const isBind = ptmx?.type === "c" && pts?.type === "c" && ptmx.dev === pts.dev && ptmx.ino === pts.ino;
  t.ok(isLink || isBind, spec("config-linux.md#default-devices", "/dev/ptmx: a bind-mount or symlink of the container's /dev/pts/ptmx"), { ptmx, pts });
});

t.test("configured devices", async (t) => {
  const o = await observe(rt, {
    checker: ["stat", "/dev/cf-char", "stat", "/dev/cf-block", "stat", "/dev/cf-fifo", "stat", "/tmp/outside-dev/cf-zero", "open", "/dev/cf-char", "rw"],
    config: (c) =>
      (c.linux.devices = [
        { path: "/dev/cf-char", type: "c", major: 1, minor: 3, fileMode: 0o640, uid: 1234, gid: 5678 },
        { path: "/dev/cf-block", type: "b", major: 7, minor: 200, fileMode: 0o600, uid: 0, gid: 0 },
        { path: "/dev/cf-fifo", type: "p", fileMode: 0o620 },
        { path: "/tmp/outside-dev/cf-zero", type: "c", major: 1, minor: 5 },
      ]),
  });
  const out = o.out ?? {};
  const ch = out["stat /dev/cf-char"];
  t.same([ch?.type, ch?.major, ch?.minor], ["c", 1, 3], spec("config-linux.md#devices", "devices (array of objects, OPTIONAL) lists devices that MUST be available in the container", "char"), { create: o.createErr });
  t.same([out["stat /dev/cf-block"]?.type, out["stat /dev/cf-block"]?.major, out["stat /dev/cf-block"]?.minor], ["b", 7, 200], spec("config-linux.md#devices", "devices lists devices that MUST be available in the container", "block"));
  t.equal(out["stat /dev/cf-fifo"]?.type, "p", spec("config-linux.md#devices", "devices lists devices that MUST be available in the container", "fifo"));
  t.equal(out["stat /tmp/outside-dev/cf-zero"]?.type, "c", spec("config-linux.md#devices", "path: The path MAY be anywhere in the container filesystem, notably outside of /dev"));
  t.equal(ch?.mode, 0o640, spec("config-linux.md#devices", "fileMode (uint32, OPTIONAL) - file mode for the device"));
  t.equal(out["stat /dev/cf-fifo"]?.mode, 0o620, spec("config-linux.md#devices", "fileMode (uint32, OPTIONAL) - file mode for the device", "fifo"));
  t.same([ch?.uid, ch?.gid], [1234, 5678], spec("config-linux.md#devices", "uid/gid: id of device owner and group in the container namespace"));
  t.equal(out["open /dev/cf-char rw"]?.ok, true, spec("config-linux.md#devices", "devices lists devices that MUST be available in the container", "usable"));
});

t.test("a file in the way", async (t) => {
  const o = await observe(rt, {
    checker: ["stat", "/etc/passwd"],
    copyRootfs: true,
    config: (c) => (c.linux.devices = [{ path: "/etc/passwd", type: "c", major: 1, minor: 3 }]),
  });
  t.not(o.create.code, 0, spec("config-linux.md#devices", "If a file already exists at path that does not match the requested device, the runtime MUST generate an error"), {
    seen: o.out,
  });
});

leavesNothingBehind(t, rt);
