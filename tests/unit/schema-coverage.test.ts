// Every property of schemas/*.json is applied, or refused with a clear error, or (where the
// spec says it has no effect on Linux) ignored with a warning: COVERAGE names, for each property
// path, the test that proves it (file and test name; the file must exist and hold that name).
// A schema property without an entry fails this test, and so does an entry for a property the
// schema no longer has. PENDING lists what is accepted and not yet applied: each is a `todo`
// (counted by tap, never a pass) until the work lands and its entry moves to COVERAGE.
import t from "tap";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { features } from "../../src/linux/features.ts";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SCHEMAS = join(REPO, "schemas");

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };
const isObj = (v: Json | undefined): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const readJson = (file: string): Obj => JSON.parse(readFileSync(join(SCHEMAS, file), "utf8")) as Obj;

/**
 * applied: the setting takes effect (read back from the host, the container, or the exact writes);
 * refused: create (or the command) fails with one clear line naming it;
 * warned: the spec gives it no effect here (another platform's field, a deprecated knob), and
 *   tsrun says so in a warning;
 * moot: nothing to apply on this kind of host, as runc (said why); where it would mean
 *   something it is refused.
 */
type Kind = "applied" | "refused" | "warned" | "moot";
interface Evidence {
  kind: Kind;
  file: string;
  test: string;
  why?: string;
}

const A = (file: string, test: string): Evidence => ({ kind: "applied", file, test });
const R = (file: string, test: string): Evidence => ({ kind: "refused", file, test });
const W = (file: string, test: string, why: string): Evidence => ({ kind: "warned", file, test, why });
const M = (file: string, test: string, why: string): Evidence => ({ kind: "moot", file, test, why });

const conf = (name: string) => `conformance/${name}.test.ts`;
const integ = (name: string) => `tests/integration/${name}.test.ts`;
const unit = (name: string) => `tests/unit/${name}.test.ts`;
const helper = (name: string) => `tests/helper/${name}.test.ts`;

const HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] as const;
const HOOK_TIMEOUT_TEST: Record<(typeof HOOKS)[number], string> = {
  prestart: "a failing or timed-out create hook fails create, leaves nothing behind, and runs poststop",
  createRuntime: "a failing or timed-out create hook fails create, leaves nothing behind, and runs poststop",
  createContainer: "a failing or timed-out create hook fails create, leaves nothing behind, and runs poststop",
  startContainer: "a failing or timed-out startContainer hook fails start; the process never runs",
  poststart: "a failing or timed-out poststart hook fails start and stops the container",
  poststop: "a failing or timed-out poststop hook is a warning: delete goes on",
};
const IDMAP = (base: string) => ["containerID", "hostID", "size"].map((k) => `${base}[].${k}`);
const THROTTLES = ["throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"];
const RDT_APPLIED = [
  A(unit("resctrl"), "no closID: a class named after the container, schemata in runtime-spec order, removed at delete"),
  R(integ("bad-input"), "linux.intelRdt where no resctrl is mounted: one line naming it, nothing left"),
];

/** config.json (config.schema.json) and the state (state.schema.json, as "state:PATH"). */
const COVERAGE: Array<[string[], Evidence[]]> = [
  [["ociVersion"], [A(unit("spec-validate"), "ociVersion is SemVer 2.0.0 with major 1"), R(integ("bad-input"), "bad input: one clear line, exit 1, nothing left")]],
  [["root.path"], [A(conf("config-root"), "absolute root.path"), A(conf("config-root"), "relative root.path"), A(integ("cli"), "check and create agree on a rootfs that is a symlink to a directory")]],
  [["root.readonly"], [A(conf("config-root"), "readonly")]],
  [["mounts[].destination", "mounts[].source"], [A(conf("config-mounts"), "sources and destinations")]],
  [["mounts[].type"], [A(conf("config-mounts"), "filesystem types")]],
  [["mounts[].options"], [A(conf("config-mounts"), "per-mount flags"), A(conf("config-mounts"), "bind and rbind"), A(integ("mounts"), "tmpcopyup fills the tmpfs with what the directory held (podman's --tmpfs, --read-only)")]],
  [[...IDMAP("mounts[].uidMappings"), ...IDMAP("mounts[].gidMappings")], [A(integ("idmap-mounts"), "a host directory owned by 1000 is root's in a user-namespaced container; its writes land as 1000")]],

  [["process.terminal"], [A(conf("config-process"), "terminal true")]],
  [["process.consoleSize.height", "process.consoleSize.width"], [A(integ("terminal"), "create with a console socket sends the pty master")]],
  [["process.user.uid", "process.user.gid", "process.user.additionalGids"], [A(conf("config-user"), "uid, gid and additional gids")]],
  [["process.user.umask"], [A(conf("config-user"), "umask")]],
  [["process.user.username", "process.commandLine"], [W(integ("process-attrs"), "Windows fields (commandLine, user.username) are ignored with a warning", "runtime-spec: Windows only")]],
  [["process.args"], [A(conf("config-process"), "args")]],
  [["process.env"], [A(conf("config-process"), "env")]],
  [["process.cwd"], [A(conf("config-process"), "cwd")]],
  [["bounding", "effective", "inheritable", "permitted", "ambient"].map((s) => `process.capabilities.${s}`), [A(conf("config-capabilities"), "non-root process"), A(integ("container-config"), "capabilities are exactly the configured ones, and no_new_privs")]],
  [["process.rlimits[].type", "process.rlimits[].soft", "process.rlimits[].hard"], [A(conf("config-rlimits"), "soft and hard limits")]],
  [["process.noNewPrivileges"], [A(conf("config-process"), "noNewPrivileges")]],
  [["process.apparmorProfile"], [A(unit("boundary-roundtrip"), "every ToHelper field survives the helper's decoding and TypeScript's codec"), R(integ("process-attrs"), "apparmorProfile on a host without AppArmor: an error, as runc's")]],
  [["process.oomScoreAdj"], [A(conf("config-process"), "oomScoreAdj")]],
  [["process.scheduler.policy", "process.scheduler.nice"], [A(integ("process-attrs"), "scheduler SCHED_BATCH with nice 5")]],
  [["process.scheduler.priority"], [A(integ("process-attrs"), "scheduler SCHED_RR with a priority")]],
  [["process.scheduler.flags", "process.scheduler.runtime", "process.scheduler.deadline", "process.scheduler.period"], [A(integ("process-attrs"), "scheduler SCHED_DEADLINE with runtime, deadline, period and a flag")]],
  [["process.selinuxLabel"], [R(integ("process-attrs"), "selinuxLabel without SELinux: runc's validation error; mountLabel: ignored")]],
  [["process.ioPriority.class", "process.ioPriority.priority"], [A(integ("process-attrs"), "ioPriority: read back from the host with ionice")]],
  [["process.execCPUAffinity.initial", "process.execCPUAffinity.final"], [A(integ("process-attrs"), "execCPUAffinity: final, initial only, and never the init")]],

  [["hostname"], [A(conf("config-hostname"), "hostname")]],
  [["domainname"], [A(conf("config-hostname"), "domainname")]],
  ...HOOKS.map((h): [string[], Evidence[]] => [[`hooks.${h}[].path`, `hooks.${h}[].args`, `hooks.${h}[].env`], [A(integ("hooks"), "every hook at its moment, in its namespaces, with its state, argv and env")]]),
  ...HOOKS.map((h): [string[], Evidence[]] => [[`hooks.${h}[].timeout`], [A(integ("hooks"), HOOK_TIMEOUT_TEST[h])]]),
  [["annotations", "state:annotations"], [A(conf("runtime-state"), "state of a created, running and stopped container")]],

  [["linux.namespaces[].type"], [A(conf("config-linux-namespaces"), "new namespaces")]],
  [["linux.namespaces[].path"], [A(conf("config-linux-namespaces"), "namespaces joined by path")]],
  [[...IDMAP("linux.uidMappings"), ...IDMAP("linux.gidMappings")], [A(conf("config-linux-userns"), "several mapping entries")]],
  [["linux.timeOffsets", "linux.timeOffsets.*.secs", "linux.timeOffsets.*.nanosecs"], [A(conf("config-linux-time"), "offsets"), A(integ("container-config"), "time namespace offsets")]],
  [["type", "path", "major", "minor", "fileMode", "uid", "gid"].map((k) => `linux.devices[].${k}`), [A(conf("config-linux-devices"), "configured devices"), A(helper("create"), "devices: modes, numbers, owners; symlinks")]],
  [["linux.cgroupsPath"], [A(conf("config-linux-cgroups"), "absolute cgroupsPath"), A(conf("config-linux-cgroups"), "nested cgroupsPath is created")]],
  [["allow", "type", "major", "minor", "access"].map((k) => `linux.resources.devices[].${k}`), [A(conf("config-linux-cgroup-devices"), "allow with access"), A(integ("cgroups-v2-devices"), "create attaches the device program, update replaces it")]],
  [["limit", "reservation", "swap", "swappiness", "disableOOMKiller"].map((k) => `linux.resources.memory.${k}`), [A(conf("config-linux-cgroup-memory"), "limits")]],
  [["linux.resources.memory.kernel"], [W(unit("cgroups-map"), "mapResources: cgroup v1", "runtime-spec: deprecated; kernels 6.x have no kernel memory limit")]],
  [["linux.resources.memory.kernelTCP"], [A(unit("cgroups-map"), "mapResources: cgroup v1"), W(unit("cgroups-map"), "mapResources: cgroup v2", "cgroup v2 has no kernel TCP memory limit")]],
  [["linux.resources.memory.useHierarchy"], [A(unit("cgroups-map"), "mapResources: memory limits and unlimited values")]],
  [["linux.resources.memory.checkBeforeUpdate"], [A(unit("cgroups-map"), "mapResources: checkBeforeUpdate")]],
  [["shares", "quota", "burst", "period"].map((k) => `linux.resources.cpu.${k}`), [A(conf("config-linux-cgroup-cpu"), "cfs shares, quota, period, burst")]],
  [["linux.resources.cpu.realtimeRuntime", "linux.resources.cpu.realtimePeriod"], [A(conf("config-linux-cgroup-cpu"), "realtime")]],
  [["linux.resources.cpu.cpus", "linux.resources.cpu.mems"], [A(conf("config-linux-cgroup-cpu"), "cpus and mems")]],
  [["linux.resources.cpu.idle"], [A(conf("config-linux-cgroup-cpu"), "idle"), A(integ("resources"), "update --cpu-idle, --l3-cache-schema and --mem-bw-schema (runc's flags)")]],
  [["linux.resources.pids.limit"], [A(conf("config-linux-cgroup-pids"), "limit"), A(integ("resources"), "pids.limit 0 is a limit, at create and by update (runtime-spec 1.3.0)")]],
  [["linux.resources.blockIO.weight"], [A(conf("config-linux-cgroup-blockio"), "weight")]],
  [["linux.resources.blockIO.leafWeight", ...["major", "minor", "weight", "leafWeight"].map((k) => `linux.resources.blockIO.weightDevice[].${k}`)], [A(unit("cgroups-map"), "mapResources: cgroup v1")]],
  [THROTTLES.flatMap((k) => ["major", "minor", "rate"].map((f) => `linux.resources.blockIO.${k}[].${f}`)), [A(conf("config-linux-cgroup-blockio"), "throttling")]],
  [["linux.resources.hugepageLimits[].pageSize", "linux.resources.hugepageLimits[].limit"], [A(conf("config-linux-cgroup-other"), "hugepageLimits")]],
  [["linux.resources.network.classID"], [A(conf("config-linux-cgroup-other"), "network")]],
  [["linux.resources.network.priorities[].name", "linux.resources.network.priorities[].priority"], [A(unit("cgroups-map"), "mapResources: cgroup v1")]],
  [["linux.resources.rdma", "linux.resources.rdma.*.hcaHandles", "linux.resources.rdma.*.hcaObjects"], [A(conf("config-linux-cgroup-other"), "rdma")]],
  [["linux.resources.unified"], [A(conf("config-linux-cgroup-other"), "unified")]],
  [["linux.intelRdt.closID"], [A(unit("resctrl"), "a named class: made with its schemata when missing (and kept at delete), required when none are given"), A(unit("resctrl"), 'closID "/": the default class, with a monitoring group of its own'), ...RDT_APPLIED]],
  [["linux.intelRdt.l3CacheSchema", "linux.intelRdt.memBwSchema", "linux.intelRdt.schemata"], [A(unit("resctrl"), "an existing class: the schemata are compared, never overwritten"), ...RDT_APPLIED]],
  [["linux.intelRdt.enableMonitoring"], [A(unit("resctrl"), "monitoring in a class of the container's own: class, then group; removed deepest first"), ...RDT_APPLIED]],
  [["linux.sysctl"], [A(conf("config-linux-sysctl"), "namespaced sysctls")]],
  [["linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet"], [A(conf("config-linux-seccomp"), "defaultAction and defaultErrnoRet")]],
  [["linux.seccomp.architectures"], [A(helper("seccomp"), "rules apply to every listed architecture (32-bit syscalls through int $0x80)")]],
  [["linux.seccomp.flags"], [A(helper("seccomp"), "filter flags: LOG and SPEC_ALLOW accepted, unknown flags refused")]],
  [["linux.seccomp.listenerPath"], [A(helper("seccomp"), "NOTIFY: the listener fd goes to the listener socket with the rendered state")]],
  [["linux.seccomp.listenerMetadata"], [A(unit("seccomp-plan"), "listener state: runc's shape, @PID@ placeholders, no @ from the data")]],
  [["linux.seccomp.syscalls[].names", "linux.seccomp.syscalls[].action"], [A(conf("config-linux-seccomp"), "SCMP_ACT_ERRNO"), A(conf("config-linux-seccomp"), "killing actions")]],
  [["linux.seccomp.syscalls[].errnoRet"], [A(conf("config-linux-seccomp"), "errnoRet")]],
  [["index", "value", "valueTwo", "op"].map((k) => `linux.seccomp.syscalls[].args[].${k}`), [A(conf("config-linux-seccomp"), "argument filters")]],
  [["linux.rootfsPropagation"], [A(integ("mounts"), "each rootfsPropagation value creates a container whose / shows it")]],
  [["linux.maskedPaths"], [A(conf("config-linux-masked-readonly"), "masked paths")]],
  [["linux.readonlyPaths"], [A(conf("config-linux-masked-readonly"), "readonly paths")]],
  [["linux.mountLabel"], [M(integ("process-attrs"), "selinuxLabel without SELinux: runc's validation error; mountLabel: ignored", "a mount label means nothing where SELinux is disabled (runc's label code skips it too); refused where SELinux is enabled")]],
  [["linux.personality.domain"], [A(conf("config-linux-personality"), "LINUX32")]],
  [["linux.personality.flags"], [W(integ("process-attrs"), "personality flags are ignored with a warning, as runc", "runtime-spec: no flag values are defined yet")]],

  [["state:ociVersion", "state:id", "state:status", "state:pid", "state:bundle"], [A(conf("runtime-state"), "state of a created, running and stopped container")]],

  [["linux.netDevices", "linux.netDevices.*.name"], [
    A(integ("spec-1-3"), "netDevices: a host device moves into the container's new network namespace, renamed, with its address"),
    A(integ("spec-1-3"), "netDevices: into a namespace joined by path, where it stays after delete"),
    R(integ("spec-1-3"), "netDevices: a device that is not there, a name taken, no network namespace: one clear line, host unchanged"),
  ]],
  [["linux.memoryPolicy.mode", "linux.memoryPolicy.nodes", "linux.memoryPolicy.flags"], [
    A(integ("spec-1-3"), "memoryPolicy: set_mempolicy in the container, each mode shown in numa_maps"),
    R(integ("spec-1-3"), "memoryPolicy: exec'd processes get it too; a node the host lacks is refused, nothing left"),
  ]],
];

/** Accepted and not applied yet. Each stays a `todo` until it lands; then its entry moves to COVERAGE. */
const PENDING: Record<string, string> = {};

// ---- walking the schemas -------------------------------------------------------------------

const defs = readJson("defs.json").definitions as Obj;

function deref(node: Json, local: Obj | undefined): Obj {
  let n = node;
  for (let i = 0; isObj(n) && typeof n.$ref === "string"; i++) {
    const m = /^(defs\.json)?#\/definitions\/([\w-]+)$/.exec(n.$ref);
    if (!m || i > 20) throw new Error(`cannot resolve ${String(n.$ref)}`);
    n = (m[1] ? defs[m[2]!] : local?.[m[2]!] ?? defs[m[2]!]) ?? null;
  }
  if (!isObj(n)) throw new Error("bad schema node");
  return n;
}

/**
 * Property paths ("linux.resources.memory.limit", "mounts[].type", "linux.rdma.*.hcaHandles"),
 * each with whether it needs an entry: an object or array of objects with a fixed set of
 * properties holds nothing of its own (its properties carry the entries); everything else
 * (values, arrays of values, maps) does.
 */
function walk(node: Json, path: string, local: Obj | undefined, out: Map<string, boolean>): void {
  const n = deref(node, local);
  if (isObj(n.properties)) {
    for (const [k, sub] of Object.entries(n.properties)) {
      const p = path ? `${path}.${k}` : k;
      out.set(p, needsEntry(sub, local));
      walk(sub, p, local, out);
    }
  }
  if (n.items !== undefined) walk(n.items, `${path}[]`, local, out);
  if (isObj(n.additionalProperties)) walk(n.additionalProperties, `${path}.*`, local, out);
}

function needsEntry(node: Json, local: Obj | undefined): boolean {
  const n = deref(node, local);
  if (n.additionalProperties !== undefined) return true;
  if (isObj(n.properties)) return false;
  return n.items === undefined || !isObj(deref(n.items, local).properties);
}

function schemaPaths(file: string, prefix = ""): Map<string, boolean> {
  const s = readJson(file);
  const raw = new Map<string, boolean>();
  walk(s, "", isObj(s.definitions) ? s.definitions : undefined, raw);
  return new Map([...raw].map(([p, need]) => [prefix + p, need]));
}

// ---- the tests -----------------------------------------------------------------------------

t.test("every property of the config and state schemas has an entry, and every entry a property", async (t) => {
  const paths = new Map([...schemaPaths("config.schema.json"), ...schemaPaths("state.schema.json", "state:")]);
  t.ok(paths.size > 200, `${paths.size} property paths`);
  const covered = new Map<string, Evidence[]>();
  for (const [ps, evidence] of COVERAGE) {
    for (const p of ps) {
      t.notOk(covered.has(p), `${p}: one entry`);
      covered.set(p, evidence);
    }
  }
  for (const p of [...covered.keys(), ...Object.keys(PENDING)]) t.ok(paths.has(p), `${p} is a property of the schemas (an entry for a property that is gone fails)`);
  for (const [p, need] of paths) {
    if (PENDING[p] !== undefined) {
      t.notOk(covered.has(p), `${p}: pending or covered, not both`);
      t.todo(`${p} is applied or refused`, { todo: PENDING[p] }, (tt) => {
        tt.fail(`${p}: accepted and not applied yet`);
        tt.end();
      });
    } else if (need) {
      t.ok(covered.has(p), `${p} has an entry naming the test that proves it applied or refused`);
    }
  }
});

t.test("every named test exists: its file holds the test's name", async (t) => {
  const texts = new Map<string, string>();
  for (const [ps, evidence] of COVERAGE) {
    t.ok(evidence.length > 0, `${ps[0]}: at least one test`);
    for (const e of evidence) {
      if (!texts.has(e.file)) texts.set(e.file, existsSync(join(REPO, e.file)) ? readFileSync(join(REPO, e.file), "utf8") : "");
      const text = texts.get(e.file)!;
      t.ok(text !== "", `${e.file} exists`);
      const quoted = [`"${e.test}"`, `'${e.test}'`, `\`${e.test}\``, JSON.stringify(e.test)];
      t.ok(quoted.some((q) => text.includes(q)), `${e.file} has the test ${JSON.stringify(e.test)} (for ${ps.join(", ")})`);
      if (e.kind === "warned" || e.kind === "moot") t.ok(e.why, `${ps[0]}: a ${e.kind} entry says why`);
    }
  }
});

t.test("exec --process takes the config's process definition, covered as process.*", async (t) => {
  t.same(readJson("process.schema.json").$ref, "defs.json#/definitions/Process");
  t.same(Object.keys(readJson("process.schema.json")).sort(), ["$id", "$ref", "$schema", "description"], "nothing of its own");
  const exec = readFileSync(join(REPO, "tests/integration/exec.test.ts"), "utf8");
  t.ok(exec.includes('"--process FILE gives the whole process"'), "exec's process file is applied like config.json's process");
});

t.test("features: the document holds every property of features.schema.json", async (t) => {
  const doc = features("2.5.4") as Json;
  const has = (p: string): boolean => {
    let node: Json | undefined = doc;
    for (const k of p.split(".")) node = isObj(node ?? null) ? (node as Obj)[k] : undefined;
    return node !== undefined;
  };
  for (const p of schemaPaths("features.schema.json").keys()) t.ok(has(p), `features has ${p}`);
});
