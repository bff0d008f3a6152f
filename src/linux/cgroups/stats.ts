/**
 * Resource usage, shaped like the `data` of runc's `events --stats` (runc types/events.go).
 * Optional fields are the ones Go marks omitempty: they are left out when zero, as runc does.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { UINT64_MAX, parseFlatKeyed, parseUint, readOpt } from "./io.ts";

export interface Throttling {
  periods?: number;
  throttledPeriods?: number;
  throttledTime?: number;
}

export interface CpuUsage {
  total?: number;
  percpu?: number[];
  percpu_kernel?: number[];
  percpu_user?: number[];
  kernel: number;
  user: number;
}

export interface CpuStats {
  usage: CpuUsage;
  throttling: Throttling;
}

export interface CpusetStats {
  cpus?: number[];
  cpu_exclusive: number;
  mems?: number[];
  mem_hardwall: number;
  mem_exclusive: number;
  memory_migrate: number;
  memory_spread_page: number;
  memory_spread_slab: number;
  memory_pressure: number;
  sched_load_balance: number;
  sched_relax_domain_level: number;
}

export interface MemoryEntry {
  limit: number;
  usage?: number;
  max?: number;
  failcnt: number;
}

export interface MemoryStats {
  cache?: number;
  usage: MemoryEntry;
  swap: MemoryEntry;
  kernel: MemoryEntry;
  kernelTCP: MemoryEntry;
  raw?: Record<string, number>;
}

export interface PidsStats {
  current?: number;
  limit?: number;
}

export interface BlkioEntry {
  major?: number;
  minor?: number;
  op?: string;
  value?: number;
}

export interface BlkioStats {
  ioServiceBytesRecursive?: BlkioEntry[];
  ioServicedRecursive?: BlkioEntry[];
  ioQueueRecursive?: BlkioEntry[];
  ioServiceTimeRecursive?: BlkioEntry[];
  ioWaitTimeRecursive?: BlkioEntry[];
  ioMergedRecursive?: BlkioEntry[];
  ioTimeRecursive?: BlkioEntry[];
  sectorsRecursive?: BlkioEntry[];
}

export interface HugetlbStats {
  usage?: number;
  max?: number;
  failcnt: number;
}

export interface Stats {
  cpu: CpuStats;
  cpuset: CpusetStats;
  memory: MemoryStats;
  pids: PidsStats;
  blkio: BlkioStats;
  hugetlb: Record<string, HugetlbStats>;
  intel_rdt: Record<string, never>;
  network_interfaces: null;
}

/** Where each controller's files are for this container: a hierarchy and a directory. */
export interface StatSource {
  h: "v1" | "v2";
  dir: string;
}

export interface StatSources {
  cpu?: StatSource;
  cpuacct?: StatSource;
  cpuset?: StatSource;
  memory?: StatSource;
  pids?: StatSource;
  blkio?: StatSource;
  hugetlb?: StatSource;
}

/** Sets obj[key] only when the value is not Go's zero value (omitempty). */
function oe<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined): void {
  if (isZero(value)) return;
  obj[key] = value as T[K];
}

function isZero(v: unknown): boolean {
  return v === undefined || v === 0 || v === "" || (Array.isArray(v) && v.length === 0);
}

/** Objects are built with every field in runc's (Go struct) order; this drops the omitempty zeros. */
function omitZero<T extends object>(obj: T, ...keys: (keyof T)[]): T {
  for (const k of keys) if (isZero(obj[k])) delete obj[k];
  return obj;
}

function num(dir: string, file: string): number {
  return parseUint(readOpt(join(dir, file))) ?? 0;
}

/** "0-2,5" -> [0, 1, 2, 5]. */
export function parseCpuList(text: string | undefined): number[] {
  const out: number[] = [];
  for (const part of (text ?? "").trim().split(",")) {
    if (!part) continue;
    const [a, b] = part.split("-");
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) continue;
    for (let i = lo; i <= hi; i++) out.push(i);
  }
  return out;
}

/** Cgroup v1 blkio lines: "8:0 Read 4096", "8:0 4096" (no op), "Total 4096" (skipped). */
export function parseBlkioV1(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? "").split("\n")) {
    const f = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(f[0] ?? "");
    if (!m) continue;
    const e: BlkioEntry = {};
    oe(e, "major", Number(m[1]));
    oe(e, "minor", Number(m[2]));
    const value = Number(f.length >= 3 ? f[2] : f[1]);
    if (f.length >= 3) oe(e, "op", f[1]);
    oe(e, "value", Number.isFinite(value) ? value : 0);
    out.push(e);
  }
  return out;
}

/** Cgroup v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0". */
export function parseIoStat(text: string | undefined): BlkioStats {
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  const kinds: Record<string, [BlkioEntry[], string]> = { rbytes: [bytes, "Read"], wbytes: [bytes, "Write"], rios: [ios, "Read"], wios: [ios, "Write"] };
  for (const line of (text ?? "").split("\n")) {
    const f = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(f[0] ?? "");
    if (!m) continue;
    for (const kv of f.slice(1)) {
      const [k, v] = kv.split("=");
      const kind = kinds[k ?? ""];
      if (!kind) continue;
      const e: BlkioEntry = {};
      oe(e, "major", Number(m[1]));
      oe(e, "minor", Number(m[2]));
      oe(e, "op", kind[1]);
      oe(e, "value", Number(v) || 0);
      kind[0].push(e);
    }
  }
  const out: BlkioStats = {};
  oe(out, "ioServiceBytesRecursive", bytes);
  oe(out, "ioServicedRecursive", ios);
  return out;
}

/** runc's names for huge page sizes: 2097152 -> "2MB", 1073741824 -> "1GB", 65536 -> "64KB". */
export function hugePageSizeName(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v}${units[i]}`;
}

/** The huge page sizes this kernel supports, from /sys/kernel/mm/hugepages/hugepages-<N>kB. */
export function hugePageSizes(): string[] {
  let names: string[];
  try {
    names = readdirSync("/sys/kernel/mm/hugepages");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const m = /^hugepages-(\d+)kB$/.exec(n);
    if (m) out.push(hugePageSizeName(Number(m[1]) * 1024));
  }
  return out;
}

const CLOCK_TICKS = 100; // USER_HZ: the unit of cpuacct.stat on every Linux architecture

function memEntry(dir: string, prefix: string): MemoryEntry {
  return omitZero(
    {
      limit: num(dir, `${prefix}.limit_in_bytes`),
      usage: num(dir, `${prefix}.usage_in_bytes`),
      max: num(dir, `${prefix}.max_usage_in_bytes`),
      failcnt: num(dir, `${prefix}.failcnt`),
    },
    "usage",
    "max",
  );
}

function numbers(text: string | undefined): number[] {
  return (text ?? "").trim().split(/\s+/).filter(Boolean).map(Number);
}

function cpuStats(src: StatSources): CpuStats {
  let usage: CpuUsage = { kernel: 0, user: 0 };
  let throttling: Throttling = {};
  if (src.cpu?.h === "v2") {
    const s = parseFlatKeyed(readOpt(join(src.cpu.dir, "cpu.stat")));
    usage = { total: (s.usage_usec ?? 0) * 1000, kernel: (s.system_usec ?? 0) * 1000, user: (s.user_usec ?? 0) * 1000 };
    throttling = { periods: s.nr_periods, throttledPeriods: s.nr_throttled, throttledTime: (s.throttled_usec ?? 0) * 1000 };
  } else {
    if (src.cpuacct) {
      const d = src.cpuacct.dir;
      const st = parseFlatKeyed(readOpt(join(d, "cpuacct.stat")));
      const all = (readOpt(join(d, "cpuacct.usage_all")) ?? "").split("\n").slice(1).map(numbers).filter((f) => f.length === 3);
      usage = {
        total: num(d, "cpuacct.usage"),
        percpu: numbers(readOpt(join(d, "cpuacct.usage_percpu"))),
        percpu_kernel: all.map((f) => f[2]!),
        percpu_user: all.map((f) => f[1]!),
        kernel: Math.round(((st.system ?? 0) * 1e9) / CLOCK_TICKS),
        user: Math.round(((st.user ?? 0) * 1e9) / CLOCK_TICKS),
      };
    }
    if (src.cpu) {
      const s = parseFlatKeyed(readOpt(join(src.cpu.dir, "cpu.stat")));
      throttling = { periods: s.nr_periods, throttledPeriods: s.nr_throttled, throttledTime: s.throttled_time };
    }
  }
  return {
    usage: omitZero(usage, "total", "percpu", "percpu_kernel", "percpu_user"),
    throttling: omitZero(throttling, "periods", "throttledPeriods", "throttledTime"),
  };
}

function cpusetStats(src: StatSource | undefined): CpusetStats {
  const v1 = src?.h === "v1" ? src.dir : undefined;
  const flag = (f: string): number => (v1 ? num(v1, `cpuset.${f}`) : 0);
  const list = (f: string): number[] => (src ? parseCpuList(readOpt(join(src.dir, v1 ? `cpuset.${f}` : `cpuset.${f}.effective`))) : []);
  return omitZero(
    {
      cpus: list("cpus"),
      cpu_exclusive: flag("cpu_exclusive"),
      mems: list("mems"),
      mem_hardwall: flag("mem_hardwall"),
      mem_exclusive: flag("mem_exclusive"),
      memory_migrate: flag("memory_migrate"),
      memory_spread_page: flag("memory_spread_page"),
      memory_spread_slab: flag("memory_spread_slab"),
      memory_pressure: flag("memory_pressure"),
      sched_load_balance: flag("sched_load_balance"),
      sched_relax_domain_level: flag("sched_relax_domain_level"),
    },
    "cpus",
    "mems",
  );
}

function memoryStats(src: StatSource | undefined): MemoryStats {
  const none = (): MemoryEntry => ({ limit: 0, failcnt: 0 });
  if (!src) return { usage: none(), swap: none(), kernel: none(), kernelTCP: none() };
  const d = src.dir;
  const raw = parseFlatKeyed(readOpt(join(d, "memory.stat")));
  let m: MemoryStats;
  if (src.h === "v1") {
    m = { cache: raw.cache, usage: memEntry(d, "memory"), swap: memEntry(d, "memory.memsw"), kernel: memEntry(d, "memory.kmem"), kernelTCP: memEntry(d, "memory.kmem.tcp"), raw };
  } else {
    const used = num(d, "memory.current");
    const limit = num(d, "memory.max");
    const swapMax = num(d, "memory.swap.max");
    const events = parseFlatKeyed(readOpt(join(d, "memory.events")));
    m = {
      cache: raw.file,
      usage: omitZero({ limit, usage: used, max: num(d, "memory.peak"), failcnt: events.max ?? 0 }, "usage", "max"),
      // v1 reports swap as memory+swap; runc keeps that meaning on v2.
      swap: omitZero({ limit: swapMax === UINT64_MAX || limit === UINT64_MAX ? UINT64_MAX : swapMax + limit, usage: num(d, "memory.swap.current") + used, failcnt: 0 }, "usage"),
      kernel: none(),
      kernelTCP: none(),
      raw,
    };
  }
  if (Object.keys(raw).length === 0) delete m.raw;
  return omitZero(m, "cache");
}

function blkioStats(src: StatSource | undefined): BlkioStats {
  if (!src) return {};
  const d = src.dir;
  if (src.h === "v2") return parseIoStat(readOpt(join(d, "io.stat")));
  const read = (f: string): BlkioEntry[] => parseBlkioV1(readOpt(join(d, f)));
  let b: BlkioStats;
  // CFQ's files first, then BFQ's, then the throttling ones (runc's order).
  if (readOpt(join(d, "blkio.io_service_bytes_recursive")) !== undefined) {
    b = {
      ioServiceBytesRecursive: read("blkio.io_service_bytes_recursive"),
      ioServicedRecursive: read("blkio.io_serviced_recursive"),
      ioQueueRecursive: read("blkio.io_queued_recursive"),
      ioServiceTimeRecursive: read("blkio.io_service_time_recursive"),
      ioWaitTimeRecursive: read("blkio.io_wait_time_recursive"),
      ioMergedRecursive: read("blkio.io_merged_recursive"),
      ioTimeRecursive: read("blkio.time_recursive"),
      sectorsRecursive: read("blkio.sectors_recursive"),
    };
  } else {
    const kind = readOpt(join(d, "blkio.bfq.io_service_bytes_recursive")) !== undefined ? "bfq" : "throttle";
    b = { ioServiceBytesRecursive: read(`blkio.${kind}.io_service_bytes_recursive`), ioServicedRecursive: read(`blkio.${kind}.io_serviced_recursive`) };
  }
  return omitZero(b, ...(Object.keys(b) as (keyof BlkioStats)[]));
}

function hugetlbStats(src: StatSource | undefined): Record<string, HugetlbStats> {
  const out: Record<string, HugetlbStats> = {};
  if (!src) return out;
  const d = src.dir;
  for (const size of hugePageSizes()) {
    out[size] =
      src.h === "v1"
        ? omitZero({ usage: num(d, `hugetlb.${size}.usage_in_bytes`), max: num(d, `hugetlb.${size}.max_usage_in_bytes`), failcnt: num(d, `hugetlb.${size}.failcnt`) }, "usage", "max")
        : omitZero({ usage: num(d, `hugetlb.${size}.current`), failcnt: parseFlatKeyed(readOpt(join(d, `hugetlb.${size}.events`))).max ?? 0 }, "usage");
  }
  return out;
}

export function readStats(src: StatSources): Stats {
  const pids: PidsStats = {};
  if (src.pids) {
    const max = readOpt(join(src.pids.dir, "pids.max"))?.trim();
    oe(pids, "current", num(src.pids.dir, "pids.current"));
    oe(pids, "limit", max === "max" ? 0 : parseUint(max));
  }
  return {
    cpu: cpuStats(src),
    cpuset: cpusetStats(src.cpuset),
    memory: memoryStats(src.memory),
    pids,
    blkio: blkioStats(src.blkio),
    hugetlb: hugetlbStats(src.hugetlb),
    intel_rdt: {},
    network_interfaces: null,
  };
}
