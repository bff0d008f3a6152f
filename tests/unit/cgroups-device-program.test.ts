/**
 * The cgroup v2 device program (src/linux/cgroups/device-program.ts), run by a tiny eBPF
 * interpreter that knows only the instructions the generator emits (and fails on others).
 */
import t from "tap";
import { deviceProgram, OP } from "../../src/linux/cgroups/device-program.ts";
import type { DeviceRule } from "../../src/linux/cgroups/resources.ts";
import { DEFAULT_DEVICE_RULES } from "../../src/linux/default-devices.ts";

const BLOCK = 1, CHAR = 2;
const M = 1, R = 2, W = 4;

/** Runs the program on a bpf_cgroup_dev_ctx; returns r0. */
function run(prog: Buffer, type: number, access: number, major: number, minor: number): number {
  const ctx = [((access << 16) | type) >>> 0, major >>> 0, minor >>> 0];
  const reg = new Array<number | undefined>(11).fill(undefined);
  reg[1] = -1; // the context pointer
  const get = (r: number): number => {
    const v = reg[r];
    if (v === undefined || v === -1) throw new Error(`read of uninitialised register r${r}`);
    return v;
  };
  let pc = 0;
  for (let steps = 0; steps < 1_000_000; steps++) {
    if (pc < 0 || pc * 8 >= prog.length) throw new Error(`pc ${pc} out of the program`);
    const o = pc * 8;
    const code = prog[o]!;
    const dst = prog[o + 1]! & 0xf;
    const src = prog[o + 1]! >> 4;
    const off = prog.readInt16LE(o + 2);
    const imm = prog.readInt32LE(o + 4);
    const u = (v: number): number => v >>> 0;
    pc++;
    switch (code) {
      case OP.LDXW:
        if (reg[src] !== -1 || off % 4 !== 0 || off < 0 || off > 8) throw new Error(`bad ctx load r${src}+${off}`);
        reg[dst] = ctx[off / 4]!;
        break;
      case OP.MOV32_IMM:
        reg[dst] = u(imm);
        break;
      case OP.MOV32_REG:
        reg[dst] = u(get(src));
        break;
      case OP.AND32_IMM:
        reg[dst] = u(get(dst) & imm);
        break;
      case OP.RSH32_IMM:
        reg[dst] = get(dst) >>> imm;
        break;
      case OP.JA:
        pc += off;
        break;
      case OP.JNE32_IMM:
        if (u(get(dst)) !== u(imm)) pc += off;
        break;
      case OP.JSET32_IMM:
        if (u(get(dst) & imm) !== 0) pc += off;
        break;
      case OP.EXIT:
        return get(0);
      default:
        throw new Error(`unknown opcode 0x${code.toString(16)} at ${pc - 1}`);
    }
  }
  throw new Error("no exit");
}

function allows(rules: DeviceRule[], type: number, access: number, major: number, minor: number): boolean {
  return run(deviceProgram(rules, { littleEndian: true }), type, access, major, minor) === 1;
}

const DENY_ALL: DeviceRule = { allow: false, access: "rwm" };

t.test("encoding", async (t) => {
  const p = deviceProgram([DENY_ALL], { littleEndian: true });
  t.equal(p.length % 8, 0);
  t.equal(p[0], OP.LDXW);
  t.equal(p[1], (1 << 4) | 2, "little endian: src in the high nibble");
  t.equal(p[p.length - 8], OP.EXIT, "ends in exit");
  const be = deviceProgram([DENY_ALL], { littleEndian: false });
  t.equal(be[1], (2 << 4) | 1, "big endian: dst in the high nibble");
  t.equal(be.readInt32BE(be.length - 12), 0, "imm big endian");
});

t.test("default deny", async (t) => {
  t.notOk(allows([], CHAR, R, 1, 3), "no rules: nothing allowed");
  t.notOk(allows([DENY_ALL], CHAR, R, 1, 3));
  t.notOk(allows([DENY_ALL], BLOCK, M, 8, 0));
  t.notOk(allows([{ allow: true, type: "c", major: 1, minor: 3, access: "rwm" }], CHAR, R, 1, 5), "an unlisted device");
});

t.test("allow and deny, last match wins", async (t) => {
  const rules: DeviceRule[] = [DENY_ALL, { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 5, access: "r" }];
  t.ok(allows(rules, CHAR, R, 1, 3));
  t.ok(allows(rules, CHAR, R | W, 1, 3));
  t.ok(allows(rules, CHAR, M, 1, 3));
  t.ok(allows(rules, CHAR, R, 1, 5));
  t.notOk(allows(rules, CHAR, W, 1, 5), "w not in the rule");
  t.notOk(allows(rules, CHAR, R | W, 1, 5), "rw needs both bits");
  t.notOk(allows(rules, CHAR, M, 1, 5));
  t.notOk(allows(rules, BLOCK, R, 1, 3), "the type matters");
  t.notOk(allows(rules, CHAR, R, 1, 7));

  const later = [{ allow: true, access: "rwm" }, { allow: false, type: "c", major: 1, minor: 3, access: "w" }] as DeviceRule[];
  t.ok(allows(later, CHAR, R, 1, 3), "deny inside an earlier allow-all: other bits still allowed");
  t.notOk(allows(later, CHAR, W, 1, 3));
  t.notOk(allows(later, CHAR, R | W, 1, 3));
  t.ok(allows(later, CHAR, W, 1, 5));
  t.ok(allows(later, BLOCK, R | W | M, 8, 0));

  const reAllow = [DENY_ALL, { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }, { allow: false, type: "c", major: 1, minor: 3, access: "rwm" }] as DeviceRule[];
  t.notOk(allows(reAllow, CHAR, R, 1, 3), "a later deny wins over an earlier allow");
  const reAllow2 = [...reAllow, { allow: true, type: "c", major: 1, minor: 3, access: "r" }] as DeviceRule[];
  t.ok(allows(reAllow2, CHAR, R, 1, 3), "and a later allow over that deny");
  t.notOk(allows(reAllow2, CHAR, W, 1, 3));
});

t.test("access bits from separate rules combine", async (t) => {
  const rules = [DENY_ALL, { allow: true, type: "c", major: 1, minor: 3, access: "r" }, { allow: true, type: "c", major: 1, minor: 3, access: "w" }] as DeviceRule[];
  t.ok(allows(rules, CHAR, R | W, 1, 3), "r from one rule, w from another (as v1 merges them)");
  t.notOk(allows(rules, CHAR, M, 1, 3));
});

t.test("wildcards", async (t) => {
  const major = [DENY_ALL, { allow: true, type: "c", major: 136, access: "rwm" }] as DeviceRule[];
  t.ok(allows(major, CHAR, R | W, 136, 0), "minor absent: any minor");
  t.ok(allows(major, CHAR, R | W, 136, 4095));
  t.notOk(allows(major, CHAR, R, 137, 0));
  const minus = [DENY_ALL, { allow: true, type: "b", major: -1, minor: 0, access: "r" }] as DeviceRule[];
  t.ok(allows(minus, BLOCK, R, 8, 0), "major -1: any major");
  t.ok(allows(minus, BLOCK, R, 259, 0));
  t.notOk(allows(minus, BLOCK, R, 8, 1));
  t.notOk(allows(minus, CHAR, R, 8, 0));
  const anyType = [DENY_ALL, { allow: true, type: "a", major: 10, minor: 200, access: "rw" }] as DeviceRule[];
  t.ok(allows(anyType, CHAR, R, 10, 200), "type a: chars");
  t.ok(allows(anyType, BLOCK, W, 10, 200), "type a: blocks");
  t.notOk(allows(anyType, BLOCK, M, 10, 200));
  t.ok(allows([{ allow: true, type: "a" }], BLOCK, M | R | W, 1, 1), "type, numbers and access absent: everything");
  t.ok(allows([DENY_ALL, { allow: true, type: "c", access: "m" }], CHAR, M, 42, 42), "mknod of any char device");
  t.notOk(allows([DENY_ALL, { allow: true, type: "c", access: "m" }], CHAR, R, 42, 42));
  t.ok(allows([{ allow: true, type: "c", major: 4294967295, minor: 0, access: "r" }], CHAR, R, 4294967295, 0), "u32 device numbers compare as u32");
});

t.test("unknown access bits are denied", async (t) => {
  t.notOk(allows([{ allow: true, access: "rwm" }], CHAR, 8, 1, 3));
});

t.test("the default device rules after a deny-all", async (t) => {
  const rules = [DENY_ALL, ...DEFAULT_DEVICE_RULES];
  t.ok(allows(rules, CHAR, R | W, 1, 3), "/dev/null");
  t.ok(allows(rules, CHAR, R | W, 136, 2), "/dev/pts/2");
  t.ok(allows(rules, CHAR, R | W, 5, 2), "/dev/ptmx");
  t.ok(allows(rules, BLOCK, M, 8, 0), "mknod of a block device");
  t.notOk(allows(rules, BLOCK, R, 8, 0), "but not its use");
  t.notOk(allows(rules, CHAR, R, 4, 1), "/dev/tty1");
  t.notOk(allows(rules, CHAR, R | W, 5, 1), "the host's /dev/console");
});

t.test("invalid rules", async (t) => {
  t.throws(() => deviceProgram([{ allow: true, type: "x" } as DeviceRule]), /invalid device type/);
  t.throws(() => deviceProgram([{ allow: true, access: "x" }]), /invalid device access/);
});

t.test("every rule order agrees with a per-bit reference", async (t) => {
  // Random rule lists against the meaning written out directly.
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const pick = <T>(xs: T[]): T => xs[rnd(xs.length)]!;
  const devices: [number, number, number][] = [];
  for (const type of [BLOCK, CHAR]) for (const major of [1, 2]) for (const minor of [1, 2]) devices.push([type, major, minor]);
  let checked = 0;
  for (let n = 0; n < 200; n++) {
    const rules: DeviceRule[] = [];
    for (let i = rnd(6); i >= 0; i--) {
      rules.push({ allow: rnd(2) === 0, type: pick(["a", "b", "c"]), major: pick([-1, 1, 2]), minor: pick([-1, 1, 2]), access: pick(["r", "w", "m", "rw", "rm", "wm", "rwm"]) });
    }
    const prog = deviceProgram(rules, { littleEndian: true });
    for (const [type, major, minor] of devices) {
      for (let access = 1; access < 8; access++) {
        let want = true;
        for (const [bit, letter] of [[M, "m"], [R, "r"], [W, "w"]] as const) {
          if (!(access & bit)) continue;
          let verdict = false;
          for (const r of rules) {
            const typeOk = r.type === "a" || (r.type === "b" ? BLOCK : CHAR) === type;
            if (typeOk && (r.major === -1 || r.major === major) && (r.minor === -1 || r.minor === minor) && r.access!.includes(letter)) verdict = r.allow;
          }
          want &&= verdict;
        }
        if ((run(prog, type, access, major, minor) === 1) !== want) {
          t.fail(`rules ${JSON.stringify(rules)} on ${type} ${major}:${minor} access ${access}: want ${want}`);
          return;
        }
        checked++;
      }
    }
  }
  t.pass(`${checked} requests agree`);
});
