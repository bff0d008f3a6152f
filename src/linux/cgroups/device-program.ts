/**
 * Device cgroup rules (linux.resources.devices) as a cgroup v2 device program
 * (BPF_PROG_TYPE_CGROUP_DEVICE), which the helper loads and attaches (a DeviceFilterPlan).
 * Pure: rules in, eBPF instructions (8 bytes each) out.
 *
 * The kernel runs the program for every mknod and open of a device node with a
 * struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } where access_type's low
 * 16 bits are the type (BPF_DEVCG_DEV_BLOCK 1, BPF_DEVCG_DEV_CHAR 2) and its high 16 bits the
 * requested access (BPF_DEVCG_ACC_MKNOD 1, READ 2, WRITE 4; an open for reading and writing asks
 * for both). It returns 1 to allow, 0 to deny.
 *
 * Meaning: the spec's rules are an ordered list where later rules win, decided per access bit.
 * A request is allowed when, for every access bit it asks for, the last rule that matches the
 * device and names that bit is an allow rule; no matching rule means deny. This is what the v1
 * controller does for every rule list it can express (devices.ts), and it also covers lists v1
 * cannot (a deny inside an earlier wider allow).
 *
 * Program shape: load the context into registers, then one section per access bit (mknod, read,
 * write); a section that is skipped when the bit is not asked for, else tries the rules naming
 * that bit from the last to the first: an allow match goes on to the next section, a deny match
 * returns 0, no match returns 0. After the last section: return 1. A rule matching every device
 * ends its section's chain (the rules before it cannot be reached).
 */
import { endianness } from "node:os";
import { TsrunError } from "../../errors.ts";
import { normalizeDeviceRules } from "./devices.ts";
import type { DeviceRule } from "./resources.ts";

export const BPF_DEVCG_DEV_BLOCK = 1;
export const BPF_DEVCG_DEV_CHAR = 2;
export const BPF_DEVCG_ACC_MKNOD = 1;
export const BPF_DEVCG_ACC_READ = 2;
export const BPF_DEVCG_ACC_WRITE = 4;

// Opcodes (linux/bpf.h, linux/bpf_common.h).
export const OP = {
  LDXW: 0x61, // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
  MOV32_IMM: 0xb4, // BPF_ALU | BPF_MOV | BPF_K
  MOV32_REG: 0xbc, // BPF_ALU | BPF_MOV | BPF_X
  AND32_IMM: 0x54, // BPF_ALU | BPF_AND | BPF_K
  RSH32_IMM: 0x74, // BPF_ALU | BPF_RSH | BPF_K
  JA: 0x05, // BPF_JMP | BPF_JA
  JNE32_IMM: 0x56, // BPF_JMP32 | BPF_JNE | BPF_K (32-bit compare: device numbers are u32)
  JSET32_IMM: 0x46, // BPF_JMP32 | BPF_JSET | BPF_K
  EXIT: 0x95, // BPF_JMP | BPF_EXIT
} as const;

/** The kernel's limit for a program loaded with CAP_BPF/CAP_SYS_ADMIN. */
const MAX_INSNS = 1_000_000;

// Registers: r1 the context (on entry), r2 type, r3 access, r4 major, r5 minor, r0 the verdict.
const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5;

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** A jump to this label (resolved into off). */
  target?: number;
}

class Asm {
  insns: Insn[] = [];
  private labels: number[] = [];
  newLabel(): number {
    this.labels.push(-1);
    return this.labels.length - 1;
  }
  bind(label: number): void {
    this.labels[label] = this.insns.length;
  }
  emit(code: number, dst: number, src: number, off: number, imm: number, target?: number): void {
    this.insns.push({ code, dst, src, off, imm, target });
  }
  ret(verdict: number): void {
    this.emit(OP.MOV32_IMM, R0, 0, 0, verdict);
    this.emit(OP.EXIT, 0, 0, 0, 0);
  }
  encode(littleEndian: boolean): Buffer {
    if (this.insns.length > MAX_INSNS) throw new TsrunError(`cgroup: the device rules make a device program of ${this.insns.length} instructions (the kernel allows ${MAX_INSNS})`);
    const buf = Buffer.alloc(this.insns.length * 8);
    this.insns.forEach((ins, i) => {
      let off = ins.off;
      if (ins.target !== undefined) {
        const at = this.labels[ins.target]!;
        off = at - (i + 1);
        if (at < 0 || off < 0 || off > 0x7fff) throw new TsrunError(`cgroup: the device rules make a device program too large to encode (jump of ${off} instructions)`);
      }
      const o = i * 8;
      buf[o] = ins.code;
      buf[o + 1] = littleEndian ? (ins.src << 4) | ins.dst : (ins.dst << 4) | ins.src;
      if (littleEndian) {
        buf.writeInt16LE(off, o + 2);
        buf.writeInt32LE(ins.imm | 0, o + 4);
      } else {
        buf.writeInt16BE(off, o + 2);
        buf.writeInt32BE(ins.imm | 0, o + 4);
      }
    });
    return buf;
  }
}

const BITS: { letter: string; bit: number }[] = [
  { letter: "m", bit: BPF_DEVCG_ACC_MKNOD },
  { letter: "r", bit: BPF_DEVCG_ACC_READ },
  { letter: "w", bit: BPF_DEVCG_ACC_WRITE },
];

/**
 * The device program for `rules` (validated like the v1 rules; invalid ones throw a TsrunError
 * naming the rule). littleEndian: the host's byte order unless told.
 */
export function deviceProgram(rules: readonly DeviceRule[], opts: { littleEndian?: boolean } = {}): Buffer {
  const normalized = normalizeDeviceRules(rules);
  const a = new Asm();
  a.emit(OP.LDXW, R2, R1, 0, 0); // access_type
  a.emit(OP.LDXW, R4, R1, 4, 0); // major
  a.emit(OP.LDXW, R5, R1, 8, 0); // minor
  a.emit(OP.MOV32_REG, R3, R2, 0, 0);
  a.emit(OP.RSH32_IMM, R3, 0, 0, 16); // access
  a.emit(OP.AND32_IMM, R2, 0, 0, 0xffff); // type
  const deny = a.newLabel();
  // An access bit this program does not know about: deny.
  a.emit(OP.JSET32_IMM, R3, 0, 0, 0xffff & ~(BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE), deny);
  for (const { letter, bit } of BITS) {
    const next = a.newLabel();
    const check = a.newLabel();
    a.emit(OP.JSET32_IMM, R3, 0, 0, bit, check);
    a.emit(OP.JA, 0, 0, 0, 0, next);
    a.bind(check);
    let endsChain = false;
    for (let i = normalized.length - 1; i >= 0 && !endsChain; i--) {
      const r = normalized[i]!;
      if (!r.access.includes(letter)) continue;
      const skip = a.newLabel();
      if (r.type !== "a") a.emit(OP.JNE32_IMM, R2, 0, 0, r.type === "b" ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, skip);
      if (r.major !== -1) a.emit(OP.JNE32_IMM, R4, 0, 0, r.major, skip);
      if (r.minor !== -1) a.emit(OP.JNE32_IMM, R5, 0, 0, r.minor, skip);
      endsChain = r.type === "a" && r.major === -1 && r.minor === -1;
      if (r.allow) a.emit(OP.JA, 0, 0, 0, 0, next);
      else a.emit(OP.JA, 0, 0, 0, 0, deny);
      a.bind(skip);
    }
    if (!endsChain) a.emit(OP.JA, 0, 0, 0, 0, deny); // no rule matched
    a.bind(next);
  }
  a.ret(1);
  a.bind(deny);
  a.ret(0);
  return a.encode(opts.littleEndian ?? endianness() === "LE");
}
