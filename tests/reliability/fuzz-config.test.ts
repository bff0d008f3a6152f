// A config.json fuzzer: valid configs mutated (wrong types, missing fields, huge arrays, deep
// nesting, long strings, odd unicode, paths through symlinks in the rootfs, broken JSON text),
// each run through `tsrun check` and a share of them through `tsrun create` (then delete).
// tsrun must never crash (no stack trace, no "internal error"), must fail with one clear line
// (config errors: `config.json: <path>: <message>` lines) or run the container, and must leave
// nothing behind: no state, cgroup, mount or process, and nothing created on the host through a
// symlink of the rootfs.
//
// Replay: the seed is printed; FUZZ_SEED=<seed> repeats a run, FUZZ_CASE=<n> runs only case n
// (cases are generated from the seed and their number alone, so a case is the same in any run).
// FUZZ_CASES=<n> sets the number of cases (default 2000; one in 8 also runs create: FUZZ_CREATE_EVERY);
// FUZZ_HUGE=<n> the largest huge array check gets (default 20000).
// Failing configs are saved under /tmp/tsrun-fuzz-failures/.
import t from "tap";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { makeBundle, baseConfig, type ConfigObject } from "../lib/bundle.ts";
import { removeAtTeardown } from "../lib/context.ts";
import { leakCheck } from "../lib/leaks.ts";
import { TAG_ENV, TEST_TAG, containerId, testRoot, tsrunAsync, type TsrunResult } from "../lib/tsrun.ts";
import { crashSign, defaultCgroupDirs, describe, pool, waitGone } from "./util.ts";

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const CASES = Number(process.env.FUZZ_CASES || 2000);
const ONLY = process.env.FUZZ_CASE === undefined ? undefined : Number(process.env.FUZZ_CASE);
/** One case in CREATE_EVERY also runs create (250 of the default 2000). */
const CREATE_EVERY = Number(process.env.FUZZ_CREATE_EVERY || 8);
const WIDTH = Math.max(2, os.cpus().length * 2);
const FAILURES_DIR = "/tmp/tsrun-fuzz-failures";

// ------------------------------------------------------------------------------------------
// Deterministic randomness (mulberry32): a case depends only on (seed, case number).

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let x = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

function caseRng(seed: number, n: number): Rng {
  // Mix the case number in so neighbouring cases do not share streams.
  return new Rng((seed ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0);
}

// ------------------------------------------------------------------------------------------
// JSON values and paths

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Seg = string | number;

function isObj(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Every path in v (containers and leaves), not deeper than maxDepth, arrays sampled. */
function allPaths(v: Json, prefix: Seg[] = [], out: Seg[][] = [], depth = 0): Seg[][] {
  out.push(prefix);
  if (depth > 8) return out;
  if (Array.isArray(v)) v.slice(0, 20).forEach((x, i) => allPaths(x, [...prefix, i], out, depth + 1));
  else if (isObj(v)) for (const [k, x] of Object.entries(v)) allPaths(x, [...prefix, k], out, depth + 1);
  return out;
}

function getAt(v: Json, p: Seg[]): Json | undefined {
  let node: Json | undefined = v;
  for (const s of p) {
    if (Array.isArray(node) && typeof s === "number") node = node[s];
    else if (isObj(node) && typeof s === "string") node = node[s];
    else return undefined;
  }
  return node;
}

/** Sets (or with value undefined deletes) the value at p; p must be non-empty. */
function setAt(root: Json, p: Seg[], value: Json | undefined): void {
  const parent = getAt(root, p.slice(0, -1));
  const last = p[p.length - 1]!;
  if (Array.isArray(parent) && typeof last === "number") {
    if (value === undefined) parent.splice(last, 1);
    else parent[last] = value;
  } else if (isObj(parent) && typeof last === "string") {
    if (value === undefined) delete parent[last];
    else parent[last] = value;
  }
}

function pathText(p: Seg[]): string {
  return p.map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`)).join("").replace(/^\./, "") || "(root)";
}

// ------------------------------------------------------------------------------------------
// Values

const ODD_STRINGS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\n",
  "line\nbreak",
  "\t\r",
  "\ud800",
  "\udfff\ud800x",
  "\ufeff",
  "\u202eevil",
  "e\u0301\u0301\u0301",
  "🙂🙃💥",
  "ｆｕｌｌｗｉｄｔｈ",
  "Ω≈ç√∫",
  "%s%n%x",
  "..",
  ".",
  "/",
  "//",
  "../../../../../../../../etc",
  "/proc/self/root",
  "/proc/1/root/etc",
  "/dev/null",
  "relative/path",
  "~",
  "$HOME",
  "C:\\Windows",
  "null",
  "true",
  "0",
  "-1",
  "1e999",
];

const ODD_NUMBERS = [0, -1, 1, 7, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -(2 ** 53), 2 ** 63, -(2 ** 63), 2 ** 64, 1.5, -0.5, 1e308, -1e308, 5e-324];

/** Paths inside the rootfs that go through the symlinks planted in it (see plantSymlinks). */
const SYMLINK_PATHS = [
  "/trap-abs",
  "/trap-abs/new",
  "/trap-abs/a/b/c",
  "/trap-rel",
  "/trap-rel/new",
  "/trap-dotdot/new",
  "/loop",
  "/loop/x",
  "/dangling",
  "/dangling/x",
  "/etc/trap-link",
  "/etc/trap-link/x",
  "/bin/../trap-abs/y",
  "/trap-file",
  "/trap-file/x",
];

function randomString(r: Rng, len: number): string {
  const alphabets = [
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "/._-",
    "\u00e9\u00df\u4e2d\u6587\u0627\u0644\u05e2\u05d1",
    "\u0000\u0001\u001f\u007f",
    "🙂💥",
  ];
  let s = "";
  while (s.length < len) {
    const a = r.pick(alphabets);
    s += a[r.int(a.length)] ?? "x";
  }
  return s;
}

function randomValue(r: Rng, depth = 0): Json {
  switch (r.int(depth > 2 ? 6 : 8)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick(ODD_NUMBERS);
    case 3:
      return r.pick(ODD_STRINGS);
    case 4:
      return randomString(r, r.int(40));
    case 5:
      return r.pick(SYMLINK_PATHS);
    case 6:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    default: {
      const o: { [k: string]: Json } = {};
      for (let i = r.int(4); i > 0; i--) o[r.pick(["type", "path", "source", "destination", "options", "x", randomString(r, 6)])] = randomValue(r, depth + 1);
      return o;
    }
  }
}

function differentType(r: Rng, v: Json | undefined): Json {
  for (;;) {
    const n = randomValue(r);
    if (typeof n !== typeof v || Array.isArray(n) !== Array.isArray(v) || (n === null) !== (v === null)) return n;
  }
}

/** Values worth trying at known places of a config. */
const FIELD_VALUES: Array<[Seg[], () => Json[]]> = [
  [["process", "args"], () => [[], [""], ["/trap-abs/sh"], ["/trap-rel"], ["/loop"], ["/dangling"], ["../../bin/true"], ["true", "x".repeat(200_000)], ["/proc/self/exe"], ["/dev/null"]]],
  [["process", "cwd"], () => ["", "relative", "/trap-abs", "/trap-rel/x", "/loop", "/dangling/x", "/proc/self/root", "/../../..", "/etc/passwd", "/nonexistent/deep/dir"]],
  [["process", "user"], () => [{ uid: -1, gid: 0 }, { uid: 2 ** 32, gid: 0 }, { uid: 0, gid: 0, additionalGids: Array.from({ length: 70_000 }, (_, i) => i) }, { uid: 0, gid: 0, umask: 4096 }, { username: "root" }]],
  [["process", "env"], () => [["A"], ["=x"], ["PATH="], [""], Array.from({ length: 20_000 }, (_, i) => `V${i}=${i}`), ["X=\u0000"]]],
  [["process", "rlimits"], () => [[{ type: "RLIMIT_NOPE", hard: 1, soft: 1 }], [{ type: "RLIMIT_NOFILE", hard: 1, soft: 2 }], [{ type: "RLIMIT_NOFILE", hard: 2 ** 64, soft: 2 ** 64 }], [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }, { type: "RLIMIT_NOFILE", hard: 10, soft: 10 }]]],
  [["process", "capabilities"], () => [{ bounding: ["CAP_NOPE"] }, { bounding: ["cap_chown"] }, { effective: ["CAP_SYS_ADMIN"], permitted: [] }, { ambient: ["CAP_KILL"] }]],
  [["process", "oomScoreAdj"], () => [-1001, 1001, 1000, -1000, 2 ** 40]],
  [["process", "apparmorProfile"], () => ["unconfined", "x".repeat(5000)]],
  [["process", "consoleSize"], () => [{ height: 2 ** 40, width: -1 }]],
  [["process", "terminal"], () => [true]],
  [["root", "path"], () => ["", "/", "/trap-abs", "nonexistent", "../../../", "/dev/null", "/proc"]],
  [["root", "readonly"], () => ["yes", 1]],
  [["hostname"], () => ["x".repeat(65), "", "a\u0000b", "a/b", "🙂"]],
  [["domainname"], () => ["x".repeat(65), "example.org"]],
  [["mounts"], () => [
    [{ destination: "/trap-abs", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "/trap-abs/new/dir", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "/trap-rel/m", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "/trap-dotdot/m", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "/etc/trap-link/m", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "/trap-file", type: "bind", source: "/etc/hostname", options: ["bind"] }],
    [{ destination: "/loop/m", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "/dangling/m", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "/proc", type: "proc", source: "proc" }, { destination: "/proc/self/root/m", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "/m", type: "bind", source: "/nonexistent", options: ["rbind"] }],
    [{ destination: "/m", type: "tmpfs", source: "tmpfs", options: ["size=-1", "mode=99999", "nosuchoption"] }],
    [{ destination: "relative", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "/", type: "tmpfs", source: "tmpfs" }],
    [{ destination: "/m", type: "", source: "" }],
    Array.from({ length: 3000 }, (_, i) => ({ destination: `/tmp/m${i}`, type: "tmpfs", source: "tmpfs" })),
    Array.from({ length: 200 }, () => ({ destination: "/tmp/same", type: "tmpfs", source: "tmpfs" })),
  ]],
  [["linux", "namespaces"], () => [
    [],
    [{ type: "mount" }],
    [{ type: "mount" }, { type: "mount" }],
    [{ type: "nope" }],
    [{ type: "mount" }, { type: "network", path: "/proc/1/ns/net" }],
    [{ type: "mount" }, { type: "pid", path: "/nonexistent" }],
    [{ type: "mount" }, { type: "user" }],
    [{ type: "mount" }, { type: "time" }],
    [{ type: "mount" }, { type: "uts", path: "/proc/self/ns/uts" }],
  ]],
  [["linux", "uidMappings"], () => [[{ containerID: 0, hostID: 0, size: 2 ** 32 }], [{ containerID: 0, hostID: 100000, size: 65536 }], Array.from({ length: 400 }, (_, i) => ({ containerID: i, hostID: 100000 + i, size: 1 }))]],
  [["linux", "maskedPaths"], () => [SYMLINK_PATHS, ["relative"], [""], ["/proc/kcore", "/proc/kcore"], Array.from({ length: 5000 }, (_, i) => `/nonexistent/${i}`)]],
  [["linux", "readonlyPaths"], () => [SYMLINK_PATHS, ["relative"], ["/"], ["/proc/sys/../../trap-abs"]]],
  [["linux", "devices"], () => [
    [{ path: "/dev/fuzz", type: "c", major: 1, minor: 3 }],
    [{ path: "/trap-abs/dev", type: "c", major: 1, minor: 3 }],
    [{ path: "/dev/../trap-rel/dev", type: "b", major: 7, minor: 0 }],
    [{ path: "relative", type: "c", major: 1, minor: 3 }],
    [{ path: "/dev/x", type: "q", major: -1, minor: 2 ** 40 }],
    [{ path: "/dev/x", type: "p" }],
  ]],
  [["linux", "resources"], () => [
    { memory: { limit: 1 } },
    { memory: { limit: -2, swap: -3, swappiness: 101 } },
    { cpu: { shares: 0, quota: -5, period: 1, cpus: "999", mems: "a-b" } },
    { pids: { limit: 0 } },
    { pids: { limit: 1 } },
    { devices: [{ allow: true, type: "z", access: "rwmx" }] },
    { devices: Array.from({ length: 2000 }, (_, i) => ({ allow: i % 2 === 0, type: "c", major: i, minor: i, access: "rwm" })) },
    { blockIO: { weight: 5, weightDevice: [{ major: 8, minor: 0 }] } },
    { hugepageLimits: [{ pageSize: "3MB", limit: 1 }] },
    { unified: { "../../escape": "1", "memory.max": "max" } },
    { unified: { "cgroup.procs": "1" } },
    { unified: { "cgroup.kill": "1" } },
  ]],
  [["linux", "cgroupsPath"], () => ["", "/", "..", "../..", "/../../x", "relative/x", "a\u0000b", "a\nb", "x".repeat(300), "🙂", "/cpu,cpuacct", "//double//slash//"]],
  [["linux", "rootfsPropagation"], () => ["shared", "rshared", "private", "slave", "unbindable", "nope", ""]],
  [["linux", "seccomp"], () => [
    { defaultAction: "SCMP_ACT_NOPE" },
    { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["nosuchcall"], action: "SCMP_ACT_ERRNO" }] },
    { defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_NOPE"] },
    { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 2 ** 40 },
    { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_ERRNO", args: [{ index: 99, value: 1, op: "SCMP_CMP_NOPE" }] }] },
    { defaultAction: "SCMP_ACT_ALLOW", syscalls: Array.from({ length: 3000 }, () => ({ names: ["getpid"], action: "SCMP_ACT_ERRNO" })) },
    { defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/nonexistent.sock" },
  ]],
  [["linux", "sysctl"], () => [{ "no.such.key": "1" }, { "../../etc/passwd": "x" }, { "": "" }, { "net.ipv4.ip_forward": "\u0000" }]],
  [["linux", "personality"], () => [{ domain: "LINUX_NOPE" }, { domain: "LINUX32", flags: ["x"] }]],
  [["linux", "intelRdt"], () => [{ closID: "../x" }]],
  [["linux", "timeOffsets"], () => [{ monotonic: { secs: 2 ** 63, nanosecs: 2 ** 40 } }]],
  [["linux", "mountLabel"], () => ["system_u:object_r:x", "\u0000"]],
  [["hooks"], () => [
    { prestart: [{ path: "relative" }] },
    { createRuntime: [{ path: "/nonexistent/hook" }] },
    { poststart: [{ path: "/bin/true", timeout: 0 }] },
    { poststop: [{ path: "/bin/true", timeout: -1, args: Array.from({ length: 10_000 }, () => "x") }] },
    { nosuchhook: [] },
  ]],
  [["annotations"], () => [{ "": "" }, { k: 1 }, Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, "v".repeat(50)]))]],
  [["ociVersion"], () => ["", "0.0.1", "9.9.9", "1.3.0-rc.1", "not a version", "1.0.0\n"]],
  [["process"], () => [{}]],
  [["root"], () => [{}]],
  [["linux"], () => [{}]],
];

// ------------------------------------------------------------------------------------------
// Mutations

interface Case {
  n: number;
  /** What was done, for the failure message. */
  steps: string[];
  /** config.json's bytes. */
  text: string | Buffer;
}

function deepNest(r: Rng, v: Json): Json {
  const depth = r.pick([50, 500, 3000]);
  let out: Json = v;
  for (let i = 0; i < depth; i++) out = r.chance(0.5) ? [out] : { a: out };
  return out;
}

/**
 * `hugeLimit` caps huge arrays: check gets up to 20 000 elements, create at most 1000 (10 000
 * readonlyPaths take the kernel most of a minute to mount, which says nothing about tsrun).
 * Check is not given more because validation time grows with the square of the number of
 * problems (100 000 bad namespaces: minutes); FUZZ_HUGE raises the cap to look at that.
 */
function mutate(r: Rng, config: Json, steps: string[], tag: string, hugeLimit: number): void {
  const paths = allPaths(config).filter((p) => p.length > 0);
  const p = r.pick(paths);
  const at = pathText(p);
  const cur = getAt(config, p);
  switch (r.int(12)) {
    case 0:
      setAt(config, p, undefined);
      steps.push(`remove ${at}`);
      break;
    case 1: {
      const v = differentType(r, cur);
      setAt(config, p, v);
      steps.push(`retype ${at} = ${JSON.stringify(v)?.slice(0, 60)}`);
      break;
    }
    case 2: {
      const len = r.pick([256, 4097, 65_536, 1_000_000]);
      setAt(config, p, r.chance(0.5) ? "x".repeat(len) : randomString(r, Math.min(len, 100_000)));
      steps.push(`long string (${len}) at ${at}`);
      break;
    }
    case 3: {
      const v = r.chance(0.5) ? r.pick(ODD_STRINGS) : r.pick(SYMLINK_PATHS);
      setAt(config, p, typeof cur === "string" && r.chance(0.5) ? cur + v : v);
      steps.push(`odd string at ${at}: ${JSON.stringify(v).slice(0, 40)}`);
      break;
    }
    case 4: {
      const v = r.pick(ODD_NUMBERS);
      setAt(config, p, v);
      steps.push(`number ${v} at ${at}`);
      break;
    }
    case 5: {
      const n = Math.min(hugeLimit, r.pick([1000, 1000, 10_000, 20_000, 100_000]));
      const arrays = paths.filter((q) => Array.isArray(getAt(config, q)));
      const q = arrays.length ? r.pick(arrays) : p;
      const arr = getAt(config, q);
      const item = Array.isArray(arr) && arr.length ? arr[r.int(arr.length)]! : randomValue(r);
      // At most about 8 MB of JSON.
      const size = Math.max(1, jsonSize(item, 8_000_000));
      const count = Math.max(1, Math.min(n, Math.floor(8_000_000 / size)));
      setAt(config, q, Array.from({ length: count }, () => item));
      steps.push(`huge array (${count}) at ${pathText(q)}`);
      break;
    }
    case 6:
      setAt(config, p, deepNest(r, cur ?? null));
      steps.push(`deep nesting at ${at}`);
      break;
    case 7: {
      const objects = paths.filter((q) => isObj(getAt(config, q)));
      const q = objects.length ? r.pick(objects) : [];
      const key = r.pick(["__proto__", "constructor", "prototype", "toString", "", "x".repeat(1000), "\u0000", randomString(r, 8)]);
      const target = q.length ? getAt(config, q) : config;
      if (isObj(target)) Object.defineProperty(target, key, { value: randomValue(r), enumerable: true, configurable: true, writable: true });
      steps.push(`unknown key ${JSON.stringify(key).slice(0, 30)} at ${pathText(q)}`);
      break;
    }
    case 8:
    case 9:
    case 10: {
      const [q, values] = r.pick(FIELD_VALUES);
      const v = r.pick(values());
      if (q.length === 1 || isObj(getAt(config, q.slice(0, -1)))) {
        if (q.length > 1 && getAt(config, q.slice(0, -1)) === undefined) setAt(config, q.slice(0, -1), {});
        setAt(config, q, JSON.parse(JSON.stringify(v)) as Json);
      }
      steps.push(`set ${pathText(q)} = ${JSON.stringify(v).slice(0, 80)}`);
      break;
    }
    default: {
      // Move a subtree somewhere it does not belong.
      const src = getAt(config, r.pick(paths)) ?? null;
      setAt(config, p, jsonSize(src, 2_000_000) <= 2_000_000 ? (JSON.parse(JSON.stringify(src)) as Json) : null);
      steps.push(`copy a subtree to ${at}`);
    }
  }
  // A cgroupsPath is kept below a dir named after this test, so that any dir a bad one leaves
  // behind is found by the leak checker (and none lands in a shared place).
  const linux = isObj(config) ? config.linux : undefined;
  if (isObj(linux) && typeof linux.cgroupsPath === "string" && !linux.cgroupsPath.startsWith(`/${tag}-fuzz/`)) {
    linux.cgroupsPath = `/${tag}-fuzz/${linux.cgroupsPath}`;
  }
}

function breakText(r: Rng, text: string, steps: string[]): string | Buffer {
  switch (r.int(9)) {
    case 0: {
      const at = r.int(text.length);
      steps.push(`truncated at ${at}`);
      return text.slice(0, at);
    }
    case 1:
      steps.push("trailing comma");
      return text.replace(/}\s*$/, ",}");
    case 2:
      steps.push("BOM");
      return "\ufeff" + text;
    case 3: {
      steps.push("invalid UTF-8 bytes");
      const b = Buffer.from(text);
      const at = r.int(b.length);
      return Buffer.concat([b.subarray(0, at), Buffer.from([0xff, 0xfe, 0xc3]), b.subarray(at)]);
    }
    case 4:
      steps.push("NUL bytes");
      return text.replace(/"/, '"\u0000');
    case 5: {
      const depth = r.pick([1000, 100_000, 1_000_000]);
      steps.push(`deep brackets (${depth})`);
      return "[".repeat(depth) + "]".repeat(depth);
    }
    case 6: {
      const v = r.pick(["", " ", "null", "[]", "0", '"x"', "{}", "{{", "{'a':1}", "NaN", "1e99999"]);
      steps.push(`the whole file is ${JSON.stringify(v)}`);
      return v;
    }
    case 7:
      steps.push("duplicate keys");
      return text.replace(/^{/, '{"ociVersion": 5, "process": null,');
    default: {
      steps.push("huge whitespace");
      return " ".repeat(5_000_000) + text;
    }
  }
}

/** About the length of v's JSON text, counted only up to just past `limit`. */
function jsonSize(v: Json, limit: number): number {
  let size = 0;
  const stack: Json[] = [v];
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (Array.isArray(x)) {
      size += 2 + x.length;
      for (const y of x) stack.push(y);
    } else if (isObj(x)) {
      size += 2;
      for (const [k, y] of Object.entries(x)) {
        size += k.length + 4;
        stack.push(y);
      }
    } else size += typeof x === "string" ? x.length + 2 : 8;
    if (size > limit) return size;
  }
  return size;
}

function makeCase(n: number, base: ConfigObject, tag: string, forCreate: boolean): Case {
  const r = caseRng(SEED, n);
  for (;;) {
    const config = JSON.parse(JSON.stringify(base)) as Json;
    const steps: string[] = [];
    const count = 1 + r.int(3);
    for (let i = 0; i < count; i++) mutate(r, config, steps, tag, forCreate ? 1000 : Number(process.env.FUZZ_HUGE || 20_000));
    // Mutations can compound (a deep subtree in every element of a huge array): measure before
    // writing, since JSON.stringify of such a tree takes minutes. Too big: draw again.
    let text: string | undefined;
    if (jsonSize(config, 8_000_000) <= 8_000_000) {
      try {
        text = JSON.stringify(config);
      } catch {
        // too deep for this engine's stringify: draw again, from the same stream
      }
    }
    // At most 8 MB (shared subtrees can multiply a mutation's size): a bigger one is drawn again.
    if (text !== undefined && text.length <= 8_000_000) return { n, steps, text: r.chance(0.07) ? breakText(r, text, steps) : text };
  }
}

// ------------------------------------------------------------------------------------------
// The rootfs with symlinks that point out of it

function plantSymlinks(rootfs: string, trap: string, trapFile: string): void {
  fs.symlinkSync(trap, path.join(rootfs, "trap-abs"));
  fs.symlinkSync(`../../../../../../../../../..${trap}`, path.join(rootfs, "trap-rel"));
  fs.symlinkSync("..", path.join(rootfs, "trap-dotdot"));
  fs.symlinkSync("loop", path.join(rootfs, "loop"));
  fs.symlinkSync("/nonexistent/target", path.join(rootfs, "dangling"));
  fs.symlinkSync(trap, path.join(rootfs, "etc", "trap-link"));
  fs.symlinkSync(trapFile, path.join(rootfs, "trap-file"));
}

/** Host paths a broken runtime could create or change through the symlinks: all must stay as they are. */
function trapState(trap: string, trapFile: string, parentOfRootfs: string): string {
  const list = (d: string) => {
    try {
      return fs.readdirSync(d).sort().join(",");
    } catch (e) {
      return `(${(e as NodeJS.ErrnoException).code})`;
    }
  };
  return [list(trap), fs.readFileSync(trapFile, "utf8"), list(parentOfRootfs)].join(" | ");
}

// ------------------------------------------------------------------------------------------
// Judging one result

/** check's last line when the config has no problem (warnings are counted, not problems). */
const NO_PROBLEMS = /: no problems found( \(\d+ warnings?\))?$/;

/** Why the output of `check` is not as it should be, or undefined. */
function badCheck(r: TsrunResult): string | undefined {
  const sign = crashSign(r);
  if (sign) return sign;
  const lines = r.stdout.split("\n").filter(Boolean);
  const stray = lines.filter((l) => !/^(warning: )?config\.json: \S/.test(l) && !NO_PROBLEMS.test(l));
  if (stray.length) return `check printed lines that are not problems: ${JSON.stringify(stray.slice(0, 2)).slice(0, 300)}`;
  if (r.code === 0 && !NO_PROBLEMS.test(lines[lines.length - 1] ?? "")) return "check succeeded without saying so";
  if (r.code === 1 && r.stdout === "" && !/^tsrun: config\.json: /.test(r.stderr)) return `check failed without a config.json line: ${JSON.stringify(r.stderr.slice(0, 200))}`;
  return undefined;
}

/** Why the output of a failed `create` is not one clear error, or undefined. */
function badCreate(r: TsrunResult): string | undefined {
  const sign = crashSign(r);
  if (sign) return sign;
  if (r.code === 0) return undefined;
  const lines = r.stderr.split("\n").filter((l) => l && !l.startsWith("tsrun: warning: "));
  if (lines.length === 0) return "create failed without an error line";
  if (/^tsrun: config\.json: /.test(lines[0]!)) {
    const bad = lines.slice(1).filter((l) => !/^(tsrun: )?config\.json: \S/.test(l));
    if (bad.length) return `a config error with lines not of the form "config.json: <path>: <message>": ${JSON.stringify(bad.slice(0, 2)).slice(0, 300)}`;
    return undefined;
  }
  if (lines.length !== 1) return `create failed with ${lines.length} lines: ${JSON.stringify(lines.slice(0, 3)).slice(0, 400)}`;
  return undefined;
}

// ------------------------------------------------------------------------------------------

t.test(`fuzzing config.json: check and create (FUZZ_SEED=${SEED})`, async (t) => {
  t.comment(`FUZZ_SEED=${SEED} FUZZ_CASES=${CASES} (one in ${CREATE_EVERY} also runs create); replay one case with FUZZ_CASE=<n>`);
  leakCheck(t, { settleMs: 5000 });
  const root = testRoot(t);
  const trap = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-fuzz-trap-")));
  removeAtTeardown(t, trap, "trap dir");
  const trapFile = path.join(trap, "..", `${path.basename(trap)}.file`);
  fs.writeFileSync(trapFile, "unchanged\n");
  t.teardown(() => fs.rmSync(trapFile, { force: true }));

  // One rootfs for all cases, with the symlinks; each worker has a bundle with its own config.json.
  const rootfsBundle = makeBundle(t, { copyRootfs: true });
  const rootfs = path.join(rootfsBundle.dir, "rootfs");
  plantSymlinks(rootfs, trap, trapFile);
  const base = baseConfig(["true"]);
  base.root = { path: rootfs, readonly: false };
  const workers = Array.from({ length: WIDTH }, () => makeBundle(t).dir);
  const trapBefore = trapState(trap, trapFile, rootfsBundle.dir);

  const numbers = ONLY !== undefined ? [ONLY] : Array.from({ length: CASES }, (_, i) => i);
  const failures: string[] = [];
  const stats = { check: 0, create: 0, created: 0, configErrors: 0, otherErrors: 0 };
  const started = Date.now();
  const slow: Array<[number, string]> = [];
  const otherErrors = new Map<string, number>();
  const fail = (c: Case, what: string) => {
    failures.push(`case ${c.n} (FUZZ_SEED=${SEED} FUZZ_CASE=${c.n}) [${c.steps.join("; ")}]: ${what}`);
    try {
      fs.mkdirSync(FAILURES_DIR, { recursive: true });
      fs.writeFileSync(path.join(FAILURES_DIR, `${SEED}-${c.n}.json`), c.text);
    } catch {
      // only a convenience
    }
  };
  let free = [...workers];
  await pool(numbers, WIDTH, async (n) => {
    // Whether the case runs create is part of it (it caps huge arrays), so a replay matches.
    const withCreate = n % CREATE_EVERY === 0;
    const c = makeCase(n, base, TEST_TAG, withCreate);
    const bundle = free.pop()!;
    try {
      fs.writeFileSync(path.join(bundle, "config.json"), c.text);
      const t0 = Date.now();
      const r = await tsrunAsync(["check", "--bundle", bundle], { root });
      slow.push([Date.now() - t0, `case ${c.n} check [${c.steps.join("; ")}]`]);
      stats.check++;
      const bad = badCheck(r);
      if (bad) fail(c, `check: ${bad}`);
      if (!withCreate && ONLY === undefined) return;
      const id = containerId(`f${n}`);
      const t1 = Date.now();
      // A guard against a hang only (the machine may be busy): never a speed check.
      const cr = await tsrunAsync(["create", "--bundle", bundle, id], { root, timeoutMs: 180_000 });
      slow.push([Date.now() - t1, `case ${c.n} create [${c.steps.join("; ")}]`]);
      stats.create++;
      const badC = badCreate(cr);
      if (badC) fail(c, `create: ${badC}`);
      if (cr.code === 0) {
        stats.created++;
        const d = await tsrunAsync(["delete", "--force", id], { root });
        if (d.code !== 0) fail(c, `delete --force after a successful create: ${describe(d)}`);
      } else if (/^tsrun: config\.json: /.test(cr.stderr)) stats.configErrors++;
      else {
        stats.otherErrors++;
        const msg = cr.stderr.split("\n").find((l) => l && !l.startsWith("tsrun: warning: ")) ?? "";
        const key = msg.replace(new RegExp(`${TEST_TAG}[\\w.+-]*`, "g"), "ID").replace(/\/tmp\/[\w./-]+/g, "PATH").slice(0, 160);
        otherErrors.set(key, (otherErrors.get(key) ?? 0) + 1);
      }
      if (fs.existsSync(path.join(root, id))) {
        fail(c, `state dir left after create (${describe(cr)})`);
        await tsrunAsync(["delete", "--force", id], { root });
      }
      const cg = defaultCgroupDirs(id).filter((d) => fs.existsSync(d));
      if (cg.length) fail(c, `cgroup left: ${cg[0]}`);
      const trapNow = trapState(trap, trapFile, rootfsBundle.dir);
      if (trapNow !== trapBefore) fail(c, `the host changed through a rootfs symlink: ${trapNow} (was ${trapBefore})`);
    } finally {
      free.push(bundle);
    }
  });
  free = [];
  t.comment(
    `${stats.check} checks, ${stats.create} creates (${stats.created} ran, ${stats.configErrors} config errors, ${stats.otherErrors} other errors) in ${Date.now() - started} ms`,
  );
  t.comment(`create errors other than config.json ones:\n${[...otherErrors].sort((a, b) => b[1] - a[1]).map(([m, k]) => `  ${k} x ${m}`).join("\n")}`);
  slow.sort((a, b) => b[0] - a[0]);
  const median = [...slow].sort((a, b) => a[0] - b[0])[slow.length >> 1]?.[0];
  t.comment(`median ${median} ms, total ${slow.reduce((n, [ms]) => n + ms, 0)} ms; slowest:\n${slow.slice(0, 5).map(([ms, what]) => `  ${ms} ms: ${what.slice(0, 200)}`).join("\n")}`);
  t.same(failures, [], "no crash, one clear error or a container, nothing left");
});

// Cases the fuzzer found, kept as fixed tests.
t.test("configs the fuzzer found", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const victim = spawn("sleep", ["1000"], { stdio: "ignore", env: { ...process.env, [TAG_ENV]: TEST_TAG } });
  victim.unref();
  const vpid = victim.pid!;
  t.teardown(() => victim.kill("SIGKILL"));
  const cgroupOf = () => fs.readFileSync(`/proc/${vpid}/cgroup`, "utf8");
  const before = cgroupOf();
  const cases: Array<[string, (c: ConfigObject) => void, RegExp]> = [
    // Would move any host process (here: ours) into the container's cgroup, where delete kills it.
    ["unified cgroup.procs", (c) => (c.linux.resources.unified = { "cgroup.procs": String(vpid) }), /cgroup\.procs is not a resource/],
    ["unified cgroup.threads", (c) => (c.linux.resources.unified = { "cgroup.threads": String(vpid) }), /cgroup\.threads is not a resource/],
    ["unified cgroup.freeze", (c) => (c.linux.resources.unified = { "cgroup.freeze": "1" }), /cgroup\.freeze is not a resource/],
    // A NUL byte the validator let through reached the plan encoder: "internal error".
    ["NUL in a sysctl value", (c) => (c.linux.sysctl = { "net.ipv4.ip_forward": "\u0000" }), /NUL byte/],
    ["NUL in mount data", (c) => c.mounts.push({ destination: "/m", type: "tmpfs", source: "tmpfs", options: ["size=1\u0000"] }), /NUL byte/],
  ];
  for (const [name, edit, message] of cases) {
    const bundle = makeBundle(t, { config: edit });
    const id = containerId();
    const r = await tsrunAsync(["create", "--bundle", bundle.dir, id], { root });
    t.notOk(badCreate(r), `${name}: ${badCreate(r) ?? "one clear line"}`);
    t.equal(r.code, 1, `${name}: refused`);
    t.match(r.stderr, message, name);
    if (r.code === 0) await tsrunAsync(["delete", "--force", id], { root });
    t.equal(cgroupOf(), before, `${name}: the other process stayed in its cgroup`);
  }
  t.same(fs.readdirSync(root), [], "nothing left");
  victim.kill("SIGKILL");
  await waitGone(vpid);
});
