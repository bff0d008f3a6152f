// config-linux.md, Block IO (cgroup v1 blkio controller here).
import t from "tap";
import fs from "node:fs";
import { hostHas, withResources } from "./lib/cgroups.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

/** major:minor of the block device holding the root filesystem. */
function rootDevice(): [number, number] {
  const st = fs.statSync("/");
  // st.dev encodes major/minor (glibc's makedev layout).
  const dev = st.dev;
  const major = ((dev >> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  return [major, minor];
}

t.test("throttling", async (t) => {
  const [major, minor] = rootDevice();
  const r = await withResources(
    rt,
    {
      blockIO: {
        throttleReadBpsDevice: [{ major, minor, rate: 1048576 }],
        throttleWriteBpsDevice: [{ major, minor, rate: 2097152 }],
        throttleReadIOPSDevice: [{ major, minor, rate: 1000 }],
        throttleWriteIOPSDevice: [{ major, minor, rate: 500 }],
      },
    },
    { blkio: ["blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"] },
  );
  const f = r.files.blkio ?? {};
  const dev = `${major}:${minor}`;
  t.equal(f["blkio.throttle.read_bps_device"], `${dev} 1048576`, spec("config-linux.md#block-io", "throttleReadBpsDevice: an array of per-device bandwidth rate limits"), { stderr: r.createErr });
  t.equal(f["blkio.throttle.write_bps_device"], `${dev} 2097152`, spec("config-linux.md#block-io", "throttleWriteBpsDevice: an array of per-device bandwidth rate limits"));
  t.equal(f["blkio.throttle.read_iops_device"], `${dev} 1000`, spec("config-linux.md#block-io", "throttleReadIOPSDevice: an array of per-device IO rate limits"));
  t.equal(f["blkio.throttle.write_iops_device"], `${dev} 500`, spec("config-linux.md#block-io", "throttleWriteIOPSDevice: an array of per-device IO rate limits"));
});

t.test("weight", async (t) => {
  const file = ["blkio.weight", "blkio.bfq.weight"].find((f) => hostHas("blkio", f));
  const r = await withResources(rt, { blockIO: { weight: 300 } }, { blkio: ["blkio.weight", "blkio.bfq.weight"] });
  const seen = file ? r.files.blkio?.[file] : undefined;
  // Where the kernel has no weight file, the runtime cannot apply it and must say so.
  t.ok(
    file ? seen === "300" || seen === "default 300" : r.create.code !== 0,
    spec("config-linux.md#block-io", "weight (uint16, OPTIONAL) - specifies per-cgroup weight", file ? "applied" : "unavailable here: create must fail"),
    { file, seen, create: r.create.code, stderr: r.createErr },
  );
});

leavesNothingBehind(t, rt);
