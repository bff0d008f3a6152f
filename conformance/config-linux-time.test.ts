// config-linux.md, Offset for Time Namespace (timeOffsets) and the time namespace type.
import t from "tap";
import { nsOf, observe } from "./lib/container.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

function hostClocks(): { monotonic: number; boottime: number } {
  // process.hrtime is CLOCK_MONOTONIC; boottime from /proc/uptime (seconds since boot).
  const monotonic = Number(process.hrtime.bigint() / 1_000_000_000n);
  return { monotonic, boottime: monotonic };
}

t.test("a new time namespace", async (t) => {
  const o = await observe(rt, { checker: ["ns", "time"], config: (c) => c.linux.namespaces.push({ type: "time" }) });
  t.equal(o.create.code, 0, "(setup) create with a time namespace", { stderr: o.createErr });
  t.ok(o.out?.ns?.time && o.out.ns.time !== nsOf("self", "time"), spec("config-linux.md#namespaces", "If path is not specified, the runtime MUST create a new container namespace of type type", "time"));
});

t.test("offsets", async (t) => {
  const MONO = 10 * 86400;
  const BOOT = 20 * 86400;
  const before = hostClocks();
  const o = await observe(rt, {
    checker: ["time"],
    config: (c) => {
      c.linux.namespaces.push({ type: "time" });
      c.linux.timeOffsets = { monotonic: { secs: MONO, nanosecs: 0 }, boottime: { secs: BOOT, nanosecs: 0 } };
    },
  });
  const after = hostClocks();
  const offsets = (o.out?.time?.offsets ?? []).map((l: string) => l.trim().split(/\s+/).join(" "));
  t.ok(offsets.includes(`monotonic ${MONO} 0`), spec("config-linux.md#offset-for-time-namespace", "timeOffsets sets the offset for Time Namespace", "monotonic offset"), { offsets });
  t.ok(offsets.includes(`boottime ${BOOT} 0`), spec("config-linux.md#offset-for-time-namespace", "timeOffsets sets the offset for Time Namespace", "boottime offset"), { offsets });
  // The clock the process reads is shifted by the offset (a bound from clocks read around the
  // container's life, not a timing check).
  const mono = o.out?.time?.monotonic;
  t.ok(typeof mono === "number" && mono >= before.monotonic + MONO - 1 && mono <= after.monotonic + MONO + 1, spec("config-linux.md#offset-for-time-namespace", "secs is the offset of clock (in seconds) in the container", "the monotonic clock is shifted"), {
    mono,
    before,
    after,
  });
});

leavesNothingBehind(t, rt);
