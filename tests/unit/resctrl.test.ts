// linux.intelRdt -> the resctrl file system, on a fake resctrl tree in a temp dir: which classes
// and monitoring groups are made, what goes to which schemata file, which tasks files the pid
// goes to, what delete removes, and the one-line refusals.
import t from "tap";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseMountinfo } from "../../src/linux/cgroups/parse.ts";
import { formatProblem } from "../../src/errors.ts";
import {
  applyIntelRdt, destroyIntelRdt, findResctrlRoot, planIntelRdt, rdtRefusal, rdtTasksFiles, realResctrlFs, requestedIntelRdt,
  resctrlHost, schemataMismatches, updateIntelRdt, type IntelRdt, type ResctrlFs, type ResctrlHost,
} from "../../src/linux/resctrl.ts";

const ROOT_SCHEMATA = "    L3:0=fffff;1=fffff\n    MB:0=100;1=100\n";

/**
 * A resctrl root as the kernel shows it: info/{L3,MB,L3_MON,last_cmd_status}, schemata, tasks,
 * mon_groups. mkdir of a class gives it schemata (a copy of the defaults), tasks and mon_groups;
 * of a monitoring group, tasks. Every schemata write is logged, and `refuse` makes the next
 * schemata write fail as the kernel does (EINVAL, reason in info/last_cmd_status).
 */
function fakeResctrl(t: { teardown(fn: () => void): void }, features: string[] = ["L3", "MB", "L3_MON"]) {
  const root = mkdtempSync(join(tmpdir(), "tsrun-resctrl-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const f of features) mkdirSync(join(root, "info", f), { recursive: true });
  mkdirSync(join(root, "info"), { recursive: true });
  writeFileSync(join(root, "info", "last_cmd_status"), "ok\n");
  writeFileSync(join(root, "schemata"), ROOT_SCHEMATA);
  writeFileSync(join(root, "tasks"), "");
  mkdirSync(join(root, "mon_groups"));
  const writes: string[] = [];
  let refuse: string | undefined;
  const fs: ResctrlFs = {
    ...realResctrlFs,
    mkdir: (p) => {
      realResctrlFs.mkdir(p);
      writeFileSync(join(p, "tasks"), "");
      if (!p.includes("/mon_groups/")) {
        writeFileSync(join(p, "schemata"), ROOT_SCHEMATA);
        mkdirSync(join(p, "mon_groups"));
      }
    },
    rmdir: (p) => {
      if (!existsSync(p)) realResctrlFs.rmdir(p); // ENOENT as the kernel gives it
      rmSync(p, { recursive: true });
    },
    write: (p, v) => {
      if (p.endsWith("/schemata") && refuse !== undefined) {
        writeFileSync(join(root, "info", "last_cmd_status"), `${refuse}\n`);
        refuse = undefined;
        throw Object.assign(new Error("EINVAL"), { code: "EINVAL" });
      }
      writes.push(`${p.slice(root.length)} <- ${JSON.stringify(v)}`);
      writeFileSync(p, v, { flag: "r+" });
    },
  };
  const host: ResctrlHost = resctrlHost(root, fs);
  return { root, fs, host, writes, refuse: (why: string) => (refuse = why) };
}

const rel = (root: string, paths: readonly string[]) => paths.map((p) => p.slice(root.length) || "/");

t.test("the resctrl mount and its features", async (t) => {
  const mi = [
    "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
    "40 22 0:35 / /sys/fs/resctrl rw,relatime shared:20 - resctrl resctrl rw,mba_MBps",
  ].join("\n");
  t.equal(findResctrlRoot(parseMountinfo(mi)), "/sys/fs/resctrl");
  t.equal(findResctrlRoot(parseMountinfo(mi.split("\n")[0]!)), undefined);
  const all = fakeResctrl(t);
  t.same({ ...all.host, root: "" }, { root: "", cat: true, mba: true, monitoring: true });
  const catOnly = fakeResctrl(t, ["L3CODE", "L3DATA"]);
  t.same({ ...catOnly.host, root: "" }, { root: "", cat: true, mba: false, monitoring: false }, "CDP's L3CODE counts as cache allocation");
});

t.test("refused in one line naming the field, where the host cannot apply it", async (t) => {
  const refusal = (...a: Parameters<typeof rdtRefusal>) => {
    const p = rdtRefusal(...a);
    return p && formatProblem(p);
  };
  t.equal(refusal({}, undefined), "config.json: linux.intelRdt: Intel RDT is not supported or enabled on this host (no resctrl file system is mounted)");
  t.throws(() => planIntelRdt("c1", { closID: "/" }, undefined), { name: "TsrunError", message: /^config\.json: linux\.intelRdt: Intel RDT is not supported or enabled on this host/ });
  const none = fakeResctrl(t, []);
  t.equal(refusal({ l3CacheSchema: "L3:0=f" }, none.host), `config.json: linux.intelRdt.l3CacheSchema: Intel RDT/CAT is not enabled on this host (no ${none.root}/info/L3)`);
  t.equal(refusal({ memBwSchema: "MB:0=20" }, none.host), `config.json: linux.intelRdt.memBwSchema: Intel RDT/MBA is not enabled on this host (no ${none.root}/info/MB)`);
  t.equal(refusal({ enableMonitoring: true }, none.host), `config.json: linux.intelRdt.enableMonitoring: Intel RDT monitoring is not enabled on this host (no ${none.root}/info/L3_MON)`);
  t.equal(refusal({ enableMonitoring: false, schemata: ["L2:0=f"] }, none.host), undefined, "schemata lines are the kernel's to check");
  t.equal(refusal({}, none.host, true), "config.json: linux.intelRdt: not supported for rootless containers (resctrl groups need root)");
  const f = fakeResctrl(t);
  for (const name of ["info", "mon_groups", "mon_data"]) {
    t.throws(() => planIntelRdt("c1", { closID: name, l3CacheSchema: "L3:0=f" }, f.host, { fs: f.fs }), { message: `config.json: linux.intelRdt.closID: "${name}" is a name the resctrl file system reserves` });
  }
  t.throws(() => planIntelRdt("info", {}, f.host, { fs: f.fs }), { message: 'config.json: linux.intelRdt: the container id "info" cannot name a class (resctrl reserves it): set closID' });
});

t.test("no closID: a class named after the container, schemata in runtime-spec order, removed at delete", async (t) => {
  const f = fakeResctrl(t);
  const rdt: IntelRdt = { l3CacheSchema: "L3:0=ffff0;1=3ff\nMB:0=10", memBwSchema: "MB:0=20;1=70", schemata: ["L2:0=f;1=f"] };
  const plan = planIntelRdt("c1", rdt, f.host, { fs: f.fs });
  t.same(rel(f.root, plan.mkdirs), ["/c1"]);
  t.same(rel(f.root, plan.state.claimed ?? []), ["/c1"], "claimed before it exists, for a delete after a crash");
  t.notOk(existsSync(join(f.root, "c1")), "planning makes nothing");
  const state = applyIntelRdt(plan, f.fs);
  t.same(f.writes, ['/c1/schemata <- "L3:0=ffff0;1=3ff\\nMB:0=20;1=70\\nL2:0=f;1=f\\n"'], "l3CacheSchema without its MB line, then memBwSchema, then schemata, in one write");
  t.same({ ...state, group: rel(f.root, [state.group]), created: rel(f.root, state.created) }, { group: ["/c1"], ownGroup: true, created: ["/c1"] });
  t.same(rel(f.root, rdtTasksFiles(state)), ["/c1/tasks"], "the pid goes to the class's tasks file");
  destroyIntelRdt(state, f.fs);
  t.notOk(existsSync(join(f.root, "c1")), "delete removes it");
  t.doesNotThrow(() => destroyIntelRdt(state, f.fs), "and a second delete is fine");
});

t.test("without schemata fields nothing is written: the class is made and joined", async (t) => {
  const f = fakeResctrl(t);
  const state = applyIntelRdt(planIntelRdt("c2", { l3CacheSchema: "", memBwSchema: "" }, f.host, { fs: f.fs }), f.fs);
  t.same(f.writes, []);
  t.same(rel(f.root, rdtTasksFiles(state)), ["/c2/tasks"]);
});

t.test("a named class: made with its schemata when missing (and kept at delete), required when none are given", async (t) => {
  const f = fakeResctrl(t);
  t.throws(() => planIntelRdt("c1", { closID: "gold" }, f.host, { fs: f.fs }), {
    message: `config.json: linux.intelRdt.closID: class "gold" does not exist (${f.root}/gold); without schemata it must be made beforehand`,
  });
  const made = applyIntelRdt(planIntelRdt("c1", { closID: "gold", l3CacheSchema: "L3:0=f0;1=f" }, f.host, { fs: f.fs }), f.fs);
  t.same(f.writes, ['/gold/schemata <- "L3:0=f0;1=f\\n"']);
  t.same({ own: made.ownGroup, created: made.created }, { own: true, created: [] }, "ours to set, not ours to remove: others may join it");
  destroyIntelRdt(made, f.fs);
  t.ok(existsSync(join(f.root, "gold")), "delete leaves a named class");

  const joined = applyIntelRdt(planIntelRdt("c2", { closID: "gold" }, f.host, { fs: f.fs }), f.fs);
  t.same({ own: joined.ownGroup, tasks: rel(f.root, rdtTasksFiles(joined)) }, { own: false, tasks: ["/gold/tasks"] }, "a class that exists is joined");
  t.equal(f.writes.length, 1, "and nothing is written to it");
});

t.test("an existing class: the schemata are compared, never overwritten", async (t) => {
  const f = fakeResctrl(t);
  mkdirSync(join(f.root, "silver", "mon_groups"), { recursive: true });
  writeFileSync(join(f.root, "silver", "schemata"), "    L3:0=00ff0;1=003ff\n    MB:0= 20;1= 70\n");
  writeFileSync(join(f.root, "silver", "tasks"), "");
  const ok = applyIntelRdt(planIntelRdt("c1", { closID: "silver", l3CacheSchema: "L3:1=3ff;0=ff0", memBwSchema: "MB:0=20;1=70" }, f.host, { fs: f.fs }), f.fs);
  t.equal(ok.ownGroup, false, "the kernel's padding and leading zeros compare equal");
  t.same(f.writes, []);
  const plan = planIntelRdt("c2", { closID: "silver", memBwSchema: "MB:0=30;1=70", enableMonitoring: true }, f.host, { fs: f.fs });
  t.same(rel(f.root, plan.mkdirs), ["/silver/mon_groups/c2"]);
  t.throws(() => applyIntelRdt(plan, f.fs), { message: new RegExp(`^config\\.json: linux\\.intelRdt: the class ${f.root}/silver already exists with other schemata \\("MB:0=30;1=70" not in `) });
  t.notOk(existsSync(join(f.root, "silver", "mon_groups", "c2")), "the monitoring group made for it is removed again");
  t.same(f.writes, [], "nothing written");
  t.same(schemataMismatches("L3:0=fff\n", ["L2:0=f"]), ["L2:0=f"], "a resource the class does not list differs");
});

t.test('closID "/": the default class, with a monitoring group of its own', async (t) => {
  const f = fakeResctrl(t);
  const plan = planIntelRdt("c1", { closID: "/", enableMonitoring: true }, f.host, { fs: f.fs });
  t.same(rel(f.root, plan.mkdirs), ["/mon_groups/c1"]);
  const state = applyIntelRdt(plan, f.fs);
  t.same(rel(f.root, rdtTasksFiles(state)), ["/tasks", "/mon_groups/c1/tasks"], "the class's tasks file first: the kernel moves a task into a monitoring group only from its parent class");
  t.same({ own: state.ownGroup, created: rel(f.root, state.created) }, { own: false, created: ["/mon_groups/c1"] });
  t.throws(() => applyIntelRdt(planIntelRdt("c2", { closID: "/", l3CacheSchema: "L3:0=f" }, f.host, { fs: f.fs }), f.fs), /already exists with other schemata/, "the default class's schemata are never written");
  t.doesNotThrow(() => applyIntelRdt(planIntelRdt("c3", { closID: "/", l3CacheSchema: "L3:0=fffff;1=fffff" }, f.host, { fs: f.fs }), f.fs), "equal ones are fine");
  t.same(f.writes, []);
  destroyIntelRdt(state, f.fs);
  t.notOk(existsSync(join(f.root, "mon_groups", "c1")), "delete removes the monitoring group");
  t.ok(existsSync(join(f.root, "tasks")), "and nothing else");
});

t.test("monitoring in a class of the container's own: class, then group; removed deepest first", async (t) => {
  const f = fakeResctrl(t);
  const state = applyIntelRdt(planIntelRdt("c1", requestedIntelRdt({ l3CacheSchema: "L3:0=f", enableCMT: true }), f.host, { fs: f.fs }), f.fs);
  t.same(rel(f.root, state.created), ["/c1", "/c1/mon_groups/c1"], "runtime-spec 1.2's enableCMT asks for the monitoring group too");
  t.same(rel(f.root, rdtTasksFiles(state)), ["/c1/tasks", "/c1/mon_groups/c1/tasks"]);
  destroyIntelRdt(state, f.fs);
  t.notOk(existsSync(join(f.root, "c1")));
  t.same(requestedIntelRdt({ closID: "x", enableMBM: false }), { closID: "x" });
});

t.test("a schemata write the kernel refuses: the error says why, and what was made is removed", async (t) => {
  const f = fakeResctrl(t);
  f.refuse("Mask out of range");
  t.throws(() => applyIntelRdt(planIntelRdt("c1", { l3CacheSchema: "L3:0=fffffff" }, f.host, { fs: f.fs }), f.fs), {
    name: "TsrunError",
    message: `config.json: linux.intelRdt: write ${f.root}/c1/schemata: invalid argument (resctrl: Mask out of range)`,
  });
  t.notOk(existsSync(join(f.root, "c1")));
});

t.test("update --l3-cache-schema / --mem-bw-schema", async (t) => {
  const f = fakeResctrl(t);
  const own = applyIntelRdt(planIntelRdt("c1", {}, f.host, { fs: f.fs }), f.fs);
  updateIntelRdt(own, { l3CacheSchema: "L3:0=f0", memBwSchema: "MB:0=50" }, f.host, f.fs);
  t.same(f.writes, ['/c1/schemata <- "L3:0=f0\\nMB:0=50\\n"']);
  const shared = applyIntelRdt(planIntelRdt("c2", { closID: "/" }, f.host, { fs: f.fs }), f.fs);
  t.throws(() => updateIntelRdt(shared, { memBwSchema: "MB:0=50" }, f.host, f.fs), { message: `update --mem-bw-schema: the container is in the class ${f.root}, which tsrun did not make for it: its schemata are shared and not changed here` });
  t.throws(() => updateIntelRdt(undefined, { l3CacheSchema: "L3:0=f" }, f.host, f.fs), { message: "update --l3-cache-schema: the container has no Intel RDT class (linux.intelRdt was not set when it was created)" });
  t.throws(() => updateIntelRdt(undefined, { l3CacheSchema: "L3:0=f" }, undefined), { message: "update --l3-cache-schema: Intel RDT/CAT: l3 cache schema is not enabled (no resctrl file system is mounted)" });
  t.throws(() => updateIntelRdt(own, { memBwSchema: "MB:0=5" }, fakeResctrl(t, ["L3"]).host), { message: "update --mem-bw-schema: Intel RDT/MBA: memory bandwidth schema is not enabled" });
  t.doesNotThrow(() => updateIntelRdt(undefined, {}, undefined), "nothing asked, nothing checked");
});
