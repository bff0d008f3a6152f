/**
 * linux.resources -> the list of cgroup file writes, for cgroup v1, v2 and hybrid hosts.
 *
 * Pure apart from the HostView it is given (which files exist, what a file holds), so the unit
 * tests can describe any host. A setting the host cannot apply is an error naming the file and
 * value; only the deprecated kernel memory limits are warnings.
 */
import { TsrunError } from "../../errors.ts";
import { deviceProgram } from "./device-program.ts";
import { devicesRestrict, parseDevicesList, v1DeviceWrites, v1TransitionWrites } from "./devices.ts";
import type { Resources, ThrottleDevice } from "./resources.ts";
import type { WarnFn } from "./types.ts";

export type Hier = "v1" | "v2";

export interface CgroupWrite {
  hierarchy: Hier;
  /** v1: the controller whose directory is written; v2: the controller the file belongs to ("" for core files). */
  controller: string;
  file: string;
  value: string;
  /** Rejected with EINVAL: try once more after the other writes (coupled limits such as memory and memory+swap). */
  retry?: boolean;
  /** Read the value back: the kernel clamps some values (cpu.shares) instead of failing. */
  verify?: boolean;
  /** cgroup v2 device rules: not a file write but this device program attached to the dir (file and value only describe it). */
  deviceProgram?: Uint8Array;
}

export interface HostView {
  /** Controllers with a v1 directory for this container ("memory", "name=systemd", ...). */
  v1: ReadonlySet<string>;
  /** Controllers enabled in the container's cgroup2 directory (its cgroup.controllers); undefined without cgroup2. */
  v2?: ReadonlySet<string>;
  /** Whether the file exists in the container's directory for that controller. */
  exists(h: Hier, controller: string, file: string): boolean;
  /** The file's content, undefined when it cannot be read. */
  read(h: Hier, controller: string, file: string): string | undefined;
}

const MAX_INT64 = 2 ** 63; // JSON's 9223372036854775807 parses to exactly this double

function int(v: number, where: string): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new TsrunError(`linux.resources.${where}: not an integer: ${String(v)}`);
  return v;
}

/** Decimal text of an integer, exact for the doubles above 2^53 too (no "1e+21"). */
function dec(v: number): string {
  return Number.isSafeInteger(v) ? String(v) : BigInt(v).toString();
}

/** A memory limit: 0 means unset (as in runc), -1 or anything from 2^63 means unlimited. */
function memLimit(v: number | undefined, where: string): number | undefined {
  if (v === undefined) return undefined;
  const n = int(v, where);
  if (n === 0) return undefined;
  if (n === -1 || n >= MAX_INT64) return -1;
  if (n < 0) throw new TsrunError(`linux.resources.${where}: invalid value ${n}`);
  return n;
}

function unsupportedOnV2(where: string, value: unknown): TsrunError {
  return new TsrunError(`cgroup: linux.resources.${where} (${String(value)}): not supported on cgroup v2`);
}

/** Cgroup v2's cpu.weight from v1 cpu.shares, with runc's formula ([2, 262144] -> [1, 10000]). */
export function sharesToWeight(shares: number): number {
  const s = Math.min(Math.max(shares, 2), 262144);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

/** Cgroup v2's io.weight from v1 blkio.weight, with runc's formula ([10, 1000] -> [1, 10000]). */
export function blkioWeightToIoWeight(weight: number): number {
  const w = Math.min(Math.max(weight, 10), 1000);
  return 1 + Math.floor(((w - 10) * 9999) / 990);
}

/** "2MB", "64KB", "1GB": also what makes the pageSize safe to put in a file name. */
const PAGE_SIZE_RE = /^[1-9][0-9]*[KMGTP]?B$/;
/**
 * cgroup2 core files that are not resources: writing a pid to cgroup.procs would move any host
 * process into the container's cgroup (where delete kills it); freeze and kill are tsrun's.
 */
const UNIFIED_RESERVED = new Set(["cgroup.procs", "cgroup.threads", "cgroup.freeze", "cgroup.kill"]);

/** A unified key is a file name in the cgroup2 directory. */
const UNIFIED_KEY_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+$/;
const NO_SPACE_RE = /^[^\s/]+$/;

export function mapResources(r: Resources, host: HostView, warn: WarnFn): CgroupWrite[] {
  const out: CgroupWrite[] = [];

  /**
   * One resource section: `build` emits its writes for the hierarchy that holds the controller.
   * Where no hierarchy has it, the writes the section would need make the error message.
   */
  const section = (v1Name: string, v2Name: string, build: (h: Hier, w: (file: string, value: string, extra?: Partial<CgroupWrite>) => void) => void): void => {
    const h: Hier | undefined = host.v1.has(v1Name) ? "v1" : host.v2?.has(v2Name) ? "v2" : undefined;
    const writes: CgroupWrite[] = [];
    const hh: Hier = h ?? (host.v2 ? "v2" : "v1");
    const controller = hh === "v1" ? v1Name : v2Name;
    build(hh, (file, value, extra) => writes.push({ hierarchy: hh, controller, file, value, ...extra }));
    if (writes.length === 0) return;
    if (!h) {
      const w = writes[0]!;
      const why = host.v2 ? "no v1 hierarchy has it and it is not enabled in the container's cgroup2 directory" : "no v1 hierarchy has it";
      throw new TsrunError(`cgroup: cannot write ${w.value} to ${w.file}: the ${controller} controller is not available (${why})`);
    }
    out.push(...writes);
  };

  const mem = r.memory;
  if (mem) {
    if (mem.kernel !== undefined) warn("linux.resources.memory.kernel is deprecated and not supported by current kernels: ignored");
    section("memory", "memory", (h, w) => {
      const limit = memLimit(mem.limit, "memory.limit");
      let swap = memLimit(mem.swap, "memory.swap");
      const reservation = memLimit(mem.reservation, "memory.reservation");
      // Unlimited memory: unlimited swap too (runc), where the kernel accounts swap at all.
      const impliedSwap = limit === -1 && swap === undefined;
      if (impliedSwap) swap = -1;
      if (limit !== undefined && limit > 0 && swap !== undefined && swap !== -1 && swap < limit) {
        throw new TsrunError(`linux.resources.memory.swap (${swap}) must not be lower than memory.limit (${limit}): it is the memory+swap limit`);
      }
      if (mem.checkBeforeUpdate && limit !== undefined && limit > 0) {
        const usageFile = h === "v1" ? "memory.usage_in_bytes" : "memory.current";
        const usage = Number(host.read(h, "memory", usageFile)?.trim());
        if (Number.isFinite(usage) && limit < usage) throw new TsrunError(`cgroup: memory limit ${limit} is lower than the current usage ${usage} (checkBeforeUpdate)`);
      }
      if (h === "v1") {
        if (limit !== undefined) w("memory.limit_in_bytes", dec(limit), { retry: true });
        if (swap !== undefined && !(impliedSwap && !host.exists("v1", "memory", "memory.memsw.limit_in_bytes"))) {
          w("memory.memsw.limit_in_bytes", dec(swap), { retry: true });
        }
        if (reservation !== undefined) w("memory.soft_limit_in_bytes", dec(reservation));
        if (mem.kernelTCP !== undefined) {
          const v = memLimit(mem.kernelTCP, "memory.kernelTCP");
          if (v !== undefined) w("memory.kmem.tcp.limit_in_bytes", dec(v));
        }
        if (mem.swappiness !== undefined) {
          const s = int(mem.swappiness, "memory.swappiness");
          if (s < 0 || s > 100) throw new TsrunError(`linux.resources.memory.swappiness: invalid value ${s} (0 to 100)`);
          w("memory.swappiness", String(s));
        }
        if (mem.disableOOMKiller) w("memory.oom_control", "1");
        if (mem.useHierarchy !== undefined) w("memory.use_hierarchy", mem.useHierarchy ? "1" : "0");
      } else {
        if (swap !== undefined && !(impliedSwap && !host.exists("v2", "memory", "memory.swap.max"))) {
          let v: string;
          if (swap === -1) v = "max";
          else if (limit === undefined || limit === -1) throw new TsrunError(`linux.resources.memory.swap (${swap}): a swap limit needs a memory limit on cgroup v2`);
          else v = dec(swap - limit);
          w("memory.swap.max", v);
        }
        if (limit !== undefined) w("memory.max", limit === -1 ? "max" : dec(limit));
        if (reservation !== undefined) w("memory.low", reservation === -1 ? "max" : dec(reservation));
        if (mem.kernelTCP !== undefined) warn("linux.resources.memory.kernelTCP has no cgroup v2 equivalent: ignored");
        if (mem.swappiness !== undefined) throw unsupportedOnV2("memory.swappiness", mem.swappiness);
        if (mem.disableOOMKiller) throw unsupportedOnV2("memory.disableOOMKiller", true);
        if (mem.useHierarchy === false) throw unsupportedOnV2("memory.useHierarchy", false);
      }
    });
  }

  const cpu = r.cpu;
  if (cpu) {
    // 0 means unset for shares, quota, period and the realtime pair (as in runc); burst and idle 0 are values.
    const shares = cpu.shares ? int(cpu.shares, "cpu.shares") : undefined;
    const quota = cpu.quota ? int(cpu.quota, "cpu.quota") : undefined;
    const period = cpu.period ? int(cpu.period, "cpu.period") : undefined;
    const burst = cpu.burst !== undefined ? int(cpu.burst, "cpu.burst") : undefined;
    const rtRuntime = cpu.realtimeRuntime ? int(cpu.realtimeRuntime, "cpu.realtimeRuntime") : undefined;
    const rtPeriod = cpu.realtimePeriod ? int(cpu.realtimePeriod, "cpu.realtimePeriod") : undefined;
    const idle = cpu.idle !== undefined ? int(cpu.idle, "cpu.idle") : undefined;
    section("cpu", "cpu", (h, w) => {
      if (h === "v1") {
        if (shares !== undefined) w("cpu.shares", dec(shares), { verify: true });
        if (period !== undefined) w("cpu.cfs_period_us", dec(period), { retry: true });
        if (quota !== undefined) w("cpu.cfs_quota_us", dec(quota), { retry: true });
        if (burst !== undefined) w("cpu.cfs_burst_us", dec(burst), { retry: true });
        if (rtPeriod !== undefined) w("cpu.rt_period_us", dec(rtPeriod), { retry: true });
        if (rtRuntime !== undefined) w("cpu.rt_runtime_us", dec(rtRuntime), { retry: true });
      } else {
        if (shares !== undefined) w("cpu.weight", String(sharesToWeight(shares)));
        if (quota !== undefined || period !== undefined) {
          const q = quota !== undefined && quota > 0 ? dec(quota) : "max";
          w("cpu.max", period !== undefined ? `${q} ${dec(period)}` : q, { retry: true });
        }
        if (burst !== undefined) w("cpu.max.burst", dec(burst), { retry: true });
        if (rtPeriod !== undefined) throw unsupportedOnV2("cpu.realtimePeriod", rtPeriod);
        if (rtRuntime !== undefined) throw unsupportedOnV2("cpu.realtimeRuntime", rtRuntime);
      }
      if (idle !== undefined) {
        // cgroup v2's, and v1's too on kernels that have it there (6.x do): a kernel without the file cannot apply it.
        if (!host.exists(h, "cpu", "cpu.idle")) throw new TsrunError(`cgroup: linux.resources.cpu.idle (${idle}): not supported by this kernel's ${h} cpu controller (no cpu.idle file)`);
        w("cpu.idle", dec(idle));
      }
    });
    section("cpuset", "cpuset", (_h, w) => {
      if (cpu.cpus) w("cpuset.cpus", cpu.cpus);
      if (cpu.mems) w("cpuset.mems", cpu.mems);
    });
  }

  if (r.pids && r.pids.limit !== undefined) {
    // runtime-spec 1.3.0: 0 is a limit (no new process); only a negative value means unlimited.
    const limit = int(r.pids.limit, "pids.limit");
    section("pids", "pids", (_h, w) => w("pids.max", limit >= 0 ? dec(limit) : "max"));
  }

  const bio = r.blockIO;
  if (bio) {
    const dev = (d: { major: number; minor: number }, where: string): string => `${int(d.major, where + ".major")}:${int(d.minor, where + ".minor")}`;
    const throttles: [keyof typeof bio, string, string][] = [
      ["throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"],
      ["throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"],
      ["throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"],
      ["throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"],
    ];
    section("blkio", "io", (h, w) => {
      const weight = bio.weight !== undefined ? int(bio.weight, "blockIO.weight") : undefined;
      const leafWeight = bio.leafWeight !== undefined ? int(bio.leafWeight, "blockIO.leafWeight") : undefined;
      if (h === "v1") {
        // Without CFQ (kernels >= 5.0) only BFQ's files exist; runc writes the same value there.
        const weightFile = host.exists("v1", "blkio", "blkio.weight") || !host.exists("v1", "blkio", "blkio.bfq.weight") ? "blkio.weight" : "blkio.bfq.weight";
        const deviceFile = host.exists("v1", "blkio", "blkio.weight_device") || !host.exists("v1", "blkio", "blkio.bfq.weight_device") ? "blkio.weight_device" : "blkio.bfq.weight_device";
        if (weight) w(weightFile, String(weight));
        if (leafWeight) w("blkio.leaf_weight", String(leafWeight));
        bio.weightDevice?.forEach((d, i) => {
          const where = `blockIO.weightDevice[${i}]`;
          if (d.weight !== undefined) w(deviceFile, `${dev(d, where)} ${int(d.weight, where + ".weight")}`);
          if (d.leafWeight !== undefined) w("blkio.leaf_weight_device", `${dev(d, where)} ${int(d.leafWeight, where + ".leafWeight")}`);
        });
        for (const [key, file] of throttles) {
          (bio[key] as ThrottleDevice[] | undefined)?.forEach((d, i) => w(file, `${dev(d, `blockIO.${key}[${i}]`)} ${dec(int(d.rate, `blockIO.${key}[${i}].rate`))}`));
        }
      } else {
        const bfq = host.exists("v2", "io", "io.bfq.weight");
        if (weight) {
          if (bfq) w("io.bfq.weight", String(weight));
          else w("io.weight", String(blkioWeightToIoWeight(weight)));
        }
        if (leafWeight) throw unsupportedOnV2("blockIO.leafWeight", leafWeight);
        bio.weightDevice?.forEach((d, i) => {
          const where = `blockIO.weightDevice[${i}]`;
          if (d.weight !== undefined) {
            const wt = int(d.weight, where + ".weight");
            if (bfq) w("io.bfq.weight", `${dev(d, where)} ${wt}`);
            else w("io.weight", `${dev(d, where)} ${blkioWeightToIoWeight(wt)}`);
          }
          if (d.leafWeight !== undefined) throw unsupportedOnV2(where + ".leafWeight", d.leafWeight);
        });
        for (const [key, , kind] of throttles) {
          (bio[key] as ThrottleDevice[] | undefined)?.forEach((d, i) => {
            const rate = int(d.rate, `blockIO.${key}[${i}].rate`);
            w("io.max", `${dev(d, `blockIO.${key}[${i}]`)} ${kind}=${rate > 0 ? dec(rate) : "max"}`);
          });
        }
      }
    });
  }

  if (r.hugepageLimits && r.hugepageLimits.length > 0) {
    const limits = r.hugepageLimits;
    section("hugetlb", "hugetlb", (h, w) => {
      limits.forEach((l, i) => {
        if (typeof l.pageSize !== "string" || !PAGE_SIZE_RE.test(l.pageSize)) {
          throw new TsrunError(`linux.resources.hugepageLimits[${i}].pageSize: invalid page size ${JSON.stringify(l.pageSize)} (like "2MB")`);
        }
        const v = dec(int(l.limit, `hugepageLimits[${i}].limit`));
        const [limitFile, rsvdFile] = h === "v1" ? [`hugetlb.${l.pageSize}.limit_in_bytes`, `hugetlb.${l.pageSize}.rsvd.limit_in_bytes`] : [`hugetlb.${l.pageSize}.max`, `hugetlb.${l.pageSize}.rsvd.max`];
        w(limitFile, v);
        // Reservation accounting exists since 5.7; limit it too, as runc does, where it exists.
        if (host.exists(h, "hugetlb", rsvdFile)) w(rsvdFile, v);
      });
    });
  }

  const net = r.network;
  if (net) {
    if (net.classID !== undefined) {
      const id = int(net.classID, "network.classID");
      section("net_cls", "net_cls", (_h, w) => w("net_cls.classid", String(id)));
    }
    if (net.priorities && net.priorities.length > 0) {
      const prios = net.priorities;
      section("net_prio", "net_prio", (_h, w) =>
        prios.forEach((p, i) => {
          if (typeof p.name !== "string" || !NO_SPACE_RE.test(p.name)) throw new TsrunError(`linux.resources.network.priorities[${i}].name: invalid interface name ${JSON.stringify(p.name)}`);
          w("net_prio.ifpriomap", `${p.name} ${int(p.priority, `network.priorities[${i}].priority`)}`);
        }),
      );
    }
  }

  if (r.rdma) {
    const rdma = r.rdma;
    section("rdma", "rdma", (_h, w) => {
      for (const [name, l] of Object.entries(rdma)) {
        if (!NO_SPACE_RE.test(name)) throw new TsrunError(`linux.resources.rdma: invalid device name ${JSON.stringify(name)}`);
        const parts: string[] = [];
        if (l.hcaHandles !== undefined) parts.push(`hca_handle=${int(l.hcaHandles, `rdma.${name}.hcaHandles`)}`);
        if (l.hcaObjects !== undefined) parts.push(`hca_object=${int(l.hcaObjects, `rdma.${name}.hcaObjects`)}`);
        if (parts.length > 0) w("rdma.max", `${name} ${parts.join(" ")}`);
      }
    });
  }

  if (r.devices && r.devices.length > 0) {
    const rules = r.devices;
    if (host.v1.has("devices")) {
      // From what the cgroup allows now, the fewest writes and never a moment without a device
      // that both the old and the new rules allow (an update of a running container).
      const { final } = v1DeviceWrites(rules);
      const current = host.read("v1", "devices", "devices.list");
      for (const d of v1TransitionWrites(current === undefined ? undefined : parseDevicesList(current), final)) {
        out.push({ hierarchy: "v1", controller: "devices", file: d.file, value: d.value });
      }
    } else if (host.v2) {
      // cgroup v2: an eBPF device program attached to the container's cgroup2 dir, replacing
      // the one attached before. Allow-all gets a program too, so that an `update` to allow-all
      // replaces a restrictive one instead of leaving it in place.
      const program = deviceProgram(rules);
      out.push({ hierarchy: "v2", controller: "devices", file: "(device program)", value: `${program.length / 8} eBPF instructions`, deviceProgram: program });
    } else if (devicesRestrict(rules)) {
      throw new TsrunError("cgroup: linux.resources.devices: the devices controller is not available on this host");
    }
  }

  if (r.unified) {
    const entries = Object.entries(r.unified);
    if (entries.length > 0 && !host.v2) throw new TsrunError("cgroup: linux.resources.unified needs cgroup v2, which is not mounted on this host");
    for (const [key, value] of entries) {
      if (!UNIFIED_KEY_RE.test(key) || key.includes("..")) throw new TsrunError(`linux.resources.unified: invalid cgroup file name ${JSON.stringify(key)}`);
      if (UNIFIED_RESERVED.has(key)) throw new TsrunError(`linux.resources.unified: ${key} is not a resource: tsrun manages it (it moves, freezes or kills processes)`);
      if (typeof value !== "string") throw new TsrunError(`linux.resources.unified[${JSON.stringify(key)}]: not a string`);
      out.push({ hierarchy: "v2", controller: key.slice(0, key.indexOf(".")), file: key, value });
    }
  }

  return out;
}
