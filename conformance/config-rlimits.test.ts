// config.md, POSIX process: rlimits.
import t from "tap";
import { execFileSync } from "node:child_process";
import { observe } from "./lib/container.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

// Values below this host's own hard limits: the runtime may lack CAP_SYS_RESOURCE to raise any.
const LIMITS: Array<{ type: string; soft: number; hard: number }> = [
  { type: "RLIMIT_NOFILE", soft: 512, hard: 1000 },
  { type: "RLIMIT_CORE", soft: 4096, hard: 8192 },
  { type: "RLIMIT_CPU", soft: 3600, hard: 7200 },
  { type: "RLIMIT_FSIZE", soft: 1 << 30, hard: 2 ** 31 },
  { type: "RLIMIT_NPROC", soft: 3000, hard: 4000 },
  { type: "RLIMIT_MSGQUEUE", soft: 8192, hard: 16384 },
  { type: "RLIMIT_SIGPENDING", soft: 1000, hard: 2000 },
  { type: "RLIMIT_STACK", soft: 4 << 20, hard: 8 << 20 },
  { type: "RLIMIT_MEMLOCK", soft: 32768, hard: 65536 },
  { type: "RLIMIT_AS", soft: 2 ** 40, hard: 2 ** 41 },
];

function hostHard(type: string): bigint {
  const name = type.replace("RLIMIT_", "").toLowerCase();
  // prlimit prints "HARD" for the calling shell; "unlimited" for infinity.
  const out = execFileSync("prlimit", [`--${name}`, "--output=HARD", "--noheadings", "--raw", `--pid=${process.pid}`], {
    encoding: "utf8",
  }).trim();
  return out === "unlimited" || out === "" ? 2n ** 64n - 1n : BigInt(out);
}

t.test("soft and hard limits", async (t) => {
  const usable = LIMITS.filter((l) => BigInt(l.hard) <= hostHard(l.type));
  const o = await observe(rt, { checker: ["rlimits"], config: (c) => (c.process.rlimits = usable) });
  t.equal(o.create.code, 0, spec("config.md#posix-process", "rlimits (array of objects, OPTIONAL) allows setting resource limits for the process", "accepted"), { stderr: o.createErr });
  for (const l of usable) {
    const seen = o.out?.rlimits?.[l.type];
    t.equal(seen?.soft, String(l.soft), spec("config.md#posix-process", "rlimits soft: rlim.rlim_cur MUST match the configured value", l.type));
    t.equal(seen?.hard, String(l.hard), spec("config.md#posix-process", "rlimits hard: rlim.rlim_max MUST match the configured value", l.type));
  }
});

t.test("a limit the runtime cannot set", async (t) => {
  const hard = hostHard("RLIMIT_NOFILE");
  const want = 1n << 30n;
  if (hard >= want) {
    t.pass(spec("runtime.md#lifecycle", "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error", "RLIMIT_NOFILE above the runtime's hard limit"), {
      skip: "the runtime may raise hard limits here",
    });
    return;
  }
  // Raising a hard limit needs CAP_SYS_RESOURCE, which the runtime may not have here.
  const o = await observe(rt, {
    checker: ["rlimits"],
    config: (c) => (c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: Number(want), hard: Number(want) }]),
  });
  const set = o.out?.rlimits?.RLIMIT_NOFILE;
  // Either it was set (the runtime could raise it) or creating the container failed.
  t.ok(
    o.create.code !== 0 || (set?.soft === String(want) && set?.hard === String(want)),
    spec("runtime.md#lifecycle", "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error", "RLIMIT_NOFILE above the runtime's hard limit"),
    { create: o.create.code, seen: set },
  );
});

leavesNothingBehind(t, rt);
