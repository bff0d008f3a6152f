import t from "tap";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TsrunError, type Problem } from "../../src/errors.ts";
import {
  cgroupsPathProblem,
  jsonPath,
  loadConfigFile,
  parseJsonText,
  validateConfig,
  validateFeatures,
  validateProcess,
  validateState,
} from "../../src/spec/validate.ts";

const here = dirname(fileURLToPath(import.meta.url));
const corpus = join(here, "..", "corpus");
const schemaDir = join(here, "..", "..", "schemas");

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function readJson(path: string): Json {
  return JSON.parse(readFileSync(path, "utf8")) as Json;
}

function line(p: Problem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}

function jsonFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
}

t.test("good corpus: every config validates without problems or warnings", async (t) => {
  const files = jsonFiles(join(corpus, "good"));
  t.ok(files.length >= 5, "there are good configs");
  for (const f of files) {
    const r = validateConfig(readJson(join(corpus, "good", f)));
    t.same(r.problems.map(line), [], `${f}: no problems`);
    t.same(r.warnings.map(line), [], `${f}: no warnings`);
    t.ok(r.config, `${f}: config returned`);
  }
});

t.test("bad corpus: every config gives exactly the expected problems", async (t) => {
  const files = jsonFiles(join(corpus, "bad"));
  t.ok(files.length >= 100, `${files.length} bad configs`);
  for (const f of files) {
    const doc = readJson(join(corpus, "bad", f));
    if (doc === null || typeof doc !== "object" || Array.isArray(doc) || !Array.isArray(doc.expect)) {
      t.fail(`${f}: must be {"expect": [...], "config": ...}`);
      continue;
    }
    const expect = doc.expect.map(String);
    t.ok(expect.length > 0, `${f}: expects something`);
    const r = validateConfig(doc.config);
    t.same(r.problems.map(line).sort(), [...expect].sort(), f);
    t.equal(r.config, undefined, `${f}: no config returned`);
  }
});

// ---- every field of config.json appears in some good config --------------------------------

type Schema = { [k: string]: Json };

function loadDefs(): Schema {
  const d = readJson(join(schemaDir, "defs.json"));
  if (d === null || typeof d !== "object" || Array.isArray(d)) throw new Error("defs.json");
  return d.definitions as Schema;
}

function deref(s: Json, defs: Schema): Schema {
  let node = s as Schema;
  for (let i = 0; i < 20 && typeof node.$ref === "string"; i++) {
    const m = /#\/definitions\/([\w-]+)$/.exec(node.$ref);
    if (!m || !m[1] || !defs[m[1]]) throw new Error(`cannot resolve ${node.$ref}`);
    node = defs[m[1]] as Schema;
  }
  return node;
}

/** Property paths a schema defines: "linux.resources.memory.limit", "mounts[].uidMappings[].size", "linux.rdma.*.hcaHandles". */
function schemaPaths(s: Json, defs: Schema, path: string, out: Set<string>): void {
  const node = deref(s, defs);
  if (node.properties && typeof node.properties === "object" && !Array.isArray(node.properties)) {
    for (const [k, sub] of Object.entries(node.properties)) {
      const p = path ? `${path}.${k}` : k;
      out.add(p);
      schemaPaths(sub, defs, p, out);
    }
  }
  if (node.items && typeof node.items === "object") schemaPaths(node.items, defs, `${path}[]`, out);
  if (node.additionalProperties && typeof node.additionalProperties === "object") {
    schemaPaths(node.additionalProperties, defs, `${path}.*`, out);
  }
}

/** The same paths, for what a document actually has. */
function dataPaths(s: Json, defs: Schema, data: Json, path: string, out: Set<string>): void {
  const node = deref(s, defs);
  if (data === null || typeof data !== "object") return;
  if (Array.isArray(data)) {
    if (node.items && typeof node.items === "object") for (const x of data) dataPaths(node.items, defs, x, `${path}[]`, out);
    return;
  }
  const props = node.properties && typeof node.properties === "object" && !Array.isArray(node.properties) ? node.properties : {};
  for (const [k, v] of Object.entries(data)) {
    if (Object.prototype.hasOwnProperty.call(props, k)) {
      const p = path ? `${path}.${k}` : k;
      out.add(p);
      dataPaths(props[k] as Json, defs, v, p, out);
    } else if (node.additionalProperties && typeof node.additionalProperties === "object") {
      dataPaths(node.additionalProperties, defs, v, `${path}.*`, out);
    }
  }
}

t.test("every property of the config schema appears in some good config", async (t) => {
  const defs = loadDefs();
  const root = readJson(join(schemaDir, "config.schema.json"));
  const want = new Set<string>();
  schemaPaths(root, defs, "", want);
  t.ok(want.size > 150, `${want.size} property paths in the schema`);
  for (const must of [
    "linux.namespaces[].type", "linux.timeOffsets.*.secs", "linux.resources.memory.checkBeforeUpdate", "linux.resources.cpu.burst",
    "linux.resources.cpu.idle", "linux.resources.unified", "linux.intelRdt.schemata", "linux.memoryPolicy.flags",
    "linux.netDevices.*.name", "linux.seccomp.listenerMetadata", "linux.personality.domain", "process.execCPUAffinity.final",
    "process.ioPriority.class", "process.scheduler.flags", "process.user.umask", "mounts[].uidMappings[].size",
    "hooks.startContainer[].timeout", "domainname",
  ]) {
    t.ok(want.has(must), `schema has ${must}`);
  }
  const have = new Set<string>();
  for (const f of jsonFiles(join(corpus, "good"))) dataPaths(root, defs, readJson(join(corpus, "good", f)), "", have);
  const missing = [...want].filter((p) => !have.has(p));
  t.same(missing, [], "no schema property is missing from the good corpus");
});

// ---- single behaviours ---------------------------------------------------------------------

t.test("json paths", async (t) => {
  t.equal(jsonPath([]), "");
  t.equal(jsonPath(["process", "args", 0]), "process.args[0]");
  t.equal(jsonPath(["linux", "sysctl", "net.ipv4.ip_forward"]), 'linux.sysctl["net.ipv4.ip_forward"]');
  t.equal(jsonPath(["annotations", ""]), 'annotations[""]');
  t.equal(jsonPath(["a b", 1, "c"]), '["a b"][1].c');
});

t.test("ociVersion is SemVer 2.0.0 with major 1", async (t) => {
  const v = (ociVersion: string): string[] => validateConfig({ ociVersion, root: { path: "rootfs" } }).problems.map(line);
  for (const ok of ["1.0.0", "1.0.2-dev", "1.3.0", "1.3.0-rc.1", "1.3.0-rc.1+build.7", "1.99.0", "1.0.0+x"]) t.same(v(ok), [], ok);
  for (const bad of ["1", "1.0", "v1.0.0", "01.0.0", "1.00.0", "1.0.0-", "1.0.0-01", "1.0.0-a..b", "1.0.0+", " 1.0.0", ""]) {
    t.same(v(bad), [`ociVersion: must be a SemVer 2.0.0 version like "1.3.0" (got ${JSON.stringify(bad)})`], JSON.stringify(bad));
  }
});

t.test("schema problems come first, then semantic ones, all of them", async (t) => {
  const r = validateConfig({
    ociVersion: "1.3.0",
    root: { path: "rootfs" },
    process: { user: { uid: 0, gid: 0 }, args: ["sh"], cwd: "x", terminal: "no" },
  });
  t.same(r.problems.map(line), [
    "process.terminal: must be a boolean (true or false)",
    'process.cwd: must be an absolute path (got "x")',
  ]);
});

t.test("warnings: allowed by the spec but suspicious", async (t) => {
  const r = validateConfig({
    ociVersion: "1.3.0",
    root: { path: "rootfs" },
    process: { user: { uid: 0, gid: 0 }, args: ["sh"], cwd: "/", consoleSize: { height: 1, width: 2 } },
    mounts: [
      { destination: "data", type: "none", source: "/srv", options: ["rbind"] },
      { destination: "/m", source: "/srv/m", options: ["bind"], uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }] },
    ],
  });
  t.same(r.problems, []);
  t.ok(r.config);
  t.same(r.warnings.map(line), [
    "process.consoleSize: is ignored: terminal is not true",
    'mounts[0].destination: relative destination "data" is deprecated; it is taken relative to "/"',
    'mounts[1].options: has neither "idmap" nor "ridmap" although the mount has uidMappings/gidMappings: applied as "idmap" (the top mount only)',
  ]);
});

t.test("validateProcess (exec --process): paths relative to the process object", async (t) => {
  const ok = validateProcess({ user: { uid: 0, gid: 0 }, args: ["ls", "-l"], cwd: "/", env: ["A=b"], terminal: true });
  t.same(ok.problems, []);
  t.ok(ok.process);
  const bad = validateProcess({
    user: { uid: 0, gid: 0 },
    args: [],
    cwd: "tmp",
    env: ["NOPE"],
    rlimits: [{ type: "RLIMIT_NOFILE", soft: 1, hard: 1 }, { type: "RLIMIT_NOFILE", soft: 1, hard: 1 }],
  });
  t.same(bad.problems.map(line), [
    "args: must not be empty",
    'cwd: must be an absolute path (got "tmp")',
    'env[0]: must be "NAME=value" (got "NOPE")',
    'rlimits[1].type: duplicate rlimit "RLIMIT_NOFILE" (also at rlimits[0])',
  ]);
  t.equal(bad.process, undefined);
  t.same(validateProcess(null).problems.map(line), ["must be an object"]);
  t.same(validateProcess({ args: ["sh"] }).problems.map(line).sort(), ["cwd: is required", "user: is required"]);
});

t.test("validateState and validateFeatures", async (t) => {
  const running = { ociVersion: "1.3.0", id: "c1", status: "running", pid: 42, bundle: "/b" };
  t.same(validateState(running).problems, []);
  t.same(validateState({ ...running, status: "stopped", pid: undefined }).problems, []);
  t.same(validateState({ ociVersion: "1.3.0", id: "c1", status: "created", bundle: "/b" }).problems.map(line), ["pid: is required"]);
  t.same(validateState({ ...running, status: "paused" }).problems.map(line), [
    'status: must be one of "creating", "created", "running", "stopped" (got "paused")',
  ]);
  const features = {
    ociVersionMin: "1.0.0",
    ociVersionMax: "1.3.0",
    hooks: ["prestart", "createRuntime"],
    mountOptions: ["ro", "rbind"],
    linux: {
      namespaces: ["pid", "time"],
      capabilities: ["CAP_KILL"],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp: { enabled: true, actions: ["SCMP_ACT_ALLOW"], operators: ["SCMP_CMP_EQ"], archs: ["SCMP_ARCH_X86_64"], knownFlags: [], supportedFlags: [] },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false, schemata: false, monitoring: false },
      memoryPolicy: { modes: ["MPOL_BIND"], flags: ["MPOL_F_STATIC_NODES"] },
      mountExtensions: { idmap: { enabled: true } },
      netDevices: { enabled: true },
    },
    annotations: { "org.tsrun.version": "0.1.0" },
    potentiallyUnsafeConfigAnnotations: ["run.oci."],
  };
  t.same(validateFeatures(features).problems, []);
  t.same(validateFeatures({ ociVersionMin: "1.0.0" }).problems.map(line), ["ociVersionMax: is required"]);
  t.same(validateFeatures({ ...features, linux: { namespaces: ["net"] } }).problems.map(line), [
    'linux.namespaces[0]: must be one of "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time" (got "net")',
  ]);
});

t.test("cgroupsPath with the systemd driver", async (t) => {
  t.equal(cgroupsPathProblem("system.slice:tsrun:abc", true), undefined);
  t.equal(cgroupsPathProblem(":tsrun:abc", true), undefined);
  t.match(cgroupsPathProblem("/a/b", true), /slice:prefix:name/);
  t.match(cgroupsPathProblem("system:tsrun:abc", true), /\.slice/);
  t.equal(cgroupsPathProblem("/a/b", false), undefined);
  t.equal(cgroupsPathProblem("a:b", false), undefined, "a colon is a valid directory name for cgroupfs");
  t.match(cgroupsPathProblem("a/../../b", false), /\.\./);
});

t.test("loadConfigFile", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tsrun-spec-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "config.json");

  writeFileSync(file, JSON.stringify({ ociVersion: "1.3.0", root: { path: "rootfs" } }));
  t.same(loadConfigFile(file), { config: { ociVersion: "1.3.0", root: { path: "rootfs" } }, warnings: [] });

  writeFileSync(file, '{\n  "ociVersion": "1.3.0",\n  "root": { "path": "rootfs" },\n}\n');
  t.throws(() => loadConfigFile(file), { name: "TsrunError", message: /^config\.json: invalid JSON: .+/ });
  const err = (() => {
    try {
      loadConfigFile(file);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(err instanceof TsrunError);
  t.notOk(String((err as Error).message).includes("\n"), "a JSON error is one line");

  writeFileSync(file, JSON.stringify({ ociVersion: "1.3.0", root: { path: "rootfs" }, process: { user: { uid: 0, gid: 0 }, args: ["sh"], cwd: "x" } }));
  t.throws(() => loadConfigFile(file), { name: "TsrunError", message: 'config.json: process.cwd: must be an absolute path (got "x")' });

  writeFileSync(file, JSON.stringify({ ociVersion: "3", process: { user: { uid: 0, gid: 0 }, args: [], cwd: "/" } }));
  t.throws(() => loadConfigFile(file), {
    name: "TsrunError",
    message: [
      "config.json: process.args: must not be empty",
      'config.json: ociVersion: must be a SemVer 2.0.0 version like "1.3.0" (got "3")',
      "config.json: root: is required on Linux",
    ].join("\n"),
  });

  writeFileSync(file, "[]");
  t.throws(() => loadConfigFile(file), { message: "config.json: must be an object" });

  const env = Array.from({ length: 5000 }, (_, i) => `NOEQUALS${i}`);
  writeFileSync(file, JSON.stringify({ ociVersion: "1.3.0", root: { path: "rootfs" }, process: { user: { uid: 0, gid: 0 }, args: ["sh"], cwd: "/", env } }));
  const many = (() => {
    try {
      loadConfigFile(file);
    } catch (e) {
      return (e as Error).message.split("\n");
    }
    return [];
  })();
  t.equal(many.length, 101, "a hundred problems, then how many more");
  t.match(many[0], /^config\.json: process\.env\[0\]: /);
  t.equal(many[100], "config.json: 4900 more problems not listed");

  t.throws(() => loadConfigFile(join(dir, "nope", "config.json")), { name: "TsrunError", message: /^config\.json: cannot read .*: no such file or directory$/ });
});

t.test("parseJsonText gives a position when the engine does", async (t) => {
  const r = parseJsonText('{\n  "a": 1,\n  "b": }');
  t.ok("error" in r);
  if ("error" in r && /position/.test(r.error)) t.match(r.error, /\(line 3, column \d+\)/);
  t.same(parseJsonText('\ufeff{"a":1}'), { value: { a: 1 } }, "a byte order mark is skipped");
});

// ---- never throws --------------------------------------------------------------------------

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const WEIRD: unknown[] = [
  null, undefined, true, false, 0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 64, -(2 ** 63), "", "\0", "/", "..", "a".repeat(5000),
  [], [null], {}, { __proto__: null }, JSON.parse('{"__proto__": {"polluted": 1}}'), { constructor: 1, toString: 2, hasOwnProperty: 3 },
  Object.create(null), [[[[[]]]]], { "": { "": [""] } },
];

function mutate(v: unknown, r: () => number, depth = 0): unknown {
  if (depth > 6 || r() < 0.08) return WEIRD[Math.floor(r() * WEIRD.length)];
  if (Array.isArray(v)) {
    const out = v.map((x) => (r() < 0.3 ? mutate(x, r, depth + 1) : x));
    if (r() < 0.1) out.push(WEIRD[Math.floor(r() * WEIRD.length)]);
    if (r() < 0.1) out.reverse();
    return out;
  }
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (r() < 0.05) continue;
      out[r() < 0.03 ? `${k}_` : k] = r() < 0.35 ? mutate(x, r, depth + 1) : x;
    }
    return out;
  }
  return r() < 0.5 ? WEIRD[Math.floor(r() * WEIRD.length)] : v;
}

t.test("validateConfig and validateProcess never throw (fuzz)", async (t) => {
  const seeds = jsonFiles(join(corpus, "good")).map((f) => readJson(join(corpus, "good", f)));
  const r = rng(20240531);
  let runs = 0;
  let failures = 0;
  for (let i = 0; i < 3000; i++) {
    const input = mutate(seeds[i % seeds.length], r);
    for (const fn of [validateConfig, validateProcess] as const) {
      try {
        const out = fn(input);
        if (!Array.isArray(out.problems) || out.problems.some((p) => typeof p.path !== "string" || typeof p.message !== "string")) failures++;
        if (out.problems.some((p) => p.message.startsWith("internal error"))) failures++;
      } catch {
        failures++;
      }
      runs++;
    }
  }
  for (const w of WEIRD) {
    t.doesNotThrow(() => validateConfig(w));
    t.doesNotThrow(() => validateProcess(w));
  }
  t.equal(failures, 0, `${runs} fuzz runs, no throw, well-formed problems`);
  t.same(Object.prototype.hasOwnProperty.call({}, "polluted"), false, "no prototype pollution");
});
