// The command line as callers see it: help, version, unknown commands and flags, log formats,
// and the bundle-debugging commands (spec, check, features) through the built binary.
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { makeBundle, writeConfig } from "../lib/bundle.ts";
import { containerId, testRoot, tsrun } from "../lib/tsrun.ts";
import { spawnSync } from "node:child_process";
import { validateFeatures } from "../../src/spec/validate.ts";
import { VERSION } from "../../src/version.ts";

const COMMANDS = ["create", "start", "run", "exec", "state", "kill", "delete", "list", "pause", "resume", "ps", "spec", "check", "features"];

t.test("version and help", async (t) => {
  t.match(tsrun(["--version"]), { code: 0, stdout: /^tsrun version \d+\.\d+\.\d+\ncommit: \S+\nspec: 1\.3\.0\nlibseccomp: \d+\.\d+\.\d+\n$/ });
  const help = tsrun(["--help"]);
  t.equal(help.code, 0);
  for (const c of COMMANDS) t.match(help.stdout, new RegExp(`^   ${c}\\s`, "m"), `help lists ${c}`);
  for (const flag of ["--root", "--log", "--log-format", "--debug", "--systemd-cgroup"]) t.match(help.stdout, flag);
  for (const c of COMMANDS) {
    const r = tsrun([c, "--help"]);
    t.equal(r.code, 0, `${c} --help`);
    t.match(r.stdout, new RegExp(`^usage: tsrun \\[global options\\] ${c}`, "m"), `${c} has a usage line`);
  }
  t.match(tsrun([]), { code: 1, stdout: /^tsrun: / }, "no command: help and exit 1");
});

t.test("unknown commands and flags: one line naming them, exit 1", async (t) => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /^tsrun: unknown command "frobnicate" \(run 'tsrun --help' for the list\)\n$/],
    [["--frob", "list"], /^tsrun: unknown flag: --frob\n$/],
    [["list", "--frob"], /^tsrun: list: unknown flag: --frob\n$/],
    [["create", "--bundle"], /^tsrun: create: flag --bundle needs a value\n$/],
    [["kill"], /^tsrun: kill: expects <container-id> \[signal\], got none\n$/],
    [["state", "a", "b"], /^tsrun: state: expects <container-id>, got "a" "b"\n$/],
    [["--log-format", "xml", "list"], /^tsrun: invalid --log-format "xml": want text or json\n$/],
    [["--root", "/nonexistent-root", "kill", "x", "NOPE"], /^tsrun: invalid signal: NOPE\n$/],
    [["list", "--format", "yaml"], /^tsrun: invalid --format "yaml": want table or json\n$/],
  ];
  for (const [args, want] of cases) {
    const r = tsrun(args);
    t.equal(r.code, 1, args.join(" "));
    t.match(r.stderr, want, args.join(" "));
  }
});

t.test("runc's single-dash and = flag forms", async (t) => {
  t.equal(tsrun(["-root", "/nonexistent-root", "list", "-q"]).code, 0);
  t.equal(tsrun(["--root=/nonexistent-root", "list", "--format=json"]).stdout, "[]\n");
});

t.test("--log with json and text formats", async (t) => {
  const bundle = makeBundle(t);
  const json = path.join(bundle.dir, "log.json");
  const r = tsrun(["--log", json, "--log-format", "json", "state", "nope"], { root: "/nonexistent-root" });
  t.equal(r.code, 1);
  t.equal(r.stderr, "tsrun: container does not exist\n", "errors also go to stderr");
  const lines = fs.readFileSync(json, "utf8").trim().split("\n");
  t.equal(lines.length, 1);
  const entry = JSON.parse(lines[0]!);
  t.same(Object.keys(entry).sort(), ["level", "msg", "time"]);
  t.equal(entry.level, "error");
  t.equal(entry.msg, "container does not exist");
  const text = path.join(bundle.dir, "log.txt");
  tsrun(["--log", text, "state", "nope"], { root: "/nonexistent-root" });
  t.match(fs.readFileSync(text, "utf8"), /^time="[^"]+" level=error msg="container does not exist"\n$/);
});

t.test("spec writes a valid config once; check finds every problem with its JSON path", async (t) => {
  const bundle = makeBundle(t);
  fs.rmSync(bundle.configPath);
  t.equal(tsrun(["spec", "--bundle", bundle.dir]).code, 0);
  const spec = JSON.parse(fs.readFileSync(bundle.configPath, "utf8"));
  t.equal(spec.ociVersion, "1.3.0");
  t.match(tsrun(["spec", "--bundle", bundle.dir]), { code: 1, stderr: /config\.json exists: remove it first/ });
  // No rootfs yet: check says so, by JSON path.
  t.match(tsrun(["check", "--bundle", bundle.dir]), { code: 1, stdout: /^config\.json: root\.path: /m });

  const good = makeBundle(t, { args: ["sh", "-c", "true"] });
  t.match(tsrun(["check", "--bundle", good.dir]), { code: 0, stdout: /no problems found/ });

  const bad = makeBundle(t);
  bad.config.process.args = ["no-such-program"];
  bad.config.process.cwd = "relative";
  bad.config.linux.namespaces.push({ type: "pidd" });
  bad.config.mounts.push({ destination: "/x", type: "bind", source: "/no/such/source", options: ["rbind"] });
  writeConfig(bad);
  const r = tsrun(["check", "--bundle", bad.dir]);
  t.equal(r.code, 1);
  t.match(r.stdout, /^config\.json: process\.cwd: must be an absolute path/m);
  t.match(r.stdout, /^config\.json: linux\.namespaces\[\d+\]\.type: must be one of/m);
  t.match(r.stderr, /problems? in /);

  const unresolved = makeBundle(t);
  unresolved.config.process.args = ["no-such-program"];
  unresolved.config.mounts.push({ destination: "/x", type: "bind", source: "/no/such/source", options: ["rbind"] });
  writeConfig(unresolved);
  const u = tsrun(["check", "--bundle", unresolved.dir]);
  t.match(u.stdout, /^config\.json: process\.args\[0\]: exec: "no-such-program": executable file not found in \$PATH/m);
  t.match(u.stdout, /^config\.json: mounts\[\d+\]\.source: .*no such file or directory/m);

  fs.writeFileSync(bad.configPath, "{ not json");
  t.match(tsrun(["check", "--bundle", bad.dir]), { code: 1, stderr: /^tsrun: config\.json: invalid JSON: / });
});

t.test("check warns about keys runtime-spec 1.3.0 does not define, with the nearest known key, and still passes", async (t) => {
  const b = makeBundle(t, { args: ["true"] });
  b.config.process.enviroment = ["A=1"];
  b.config.linux.resources = { ...b.config.linux.resources, memory: { limt: 1 << 20 } };
  b.config.linux.rootPropagation = "shared";
  b.config.annotations = { "org.example.extension": "allowed" };
  b.config.linux.sysctl = { "net.core.somaxconn": "256" };
  writeConfig(b);
  const r = tsrun(["check", "--bundle", b.dir]);
  t.equal(r.code, 0, "unknown keys are ignored by the spec's rule: warnings, not problems");
  t.same(r.stdout.split("\n").filter((l) => l.startsWith("warning: ")), [
    'warning: config.json: process.enviroment: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "env"?',
    'warning: config.json: linux.resources.memory.limt: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "limit"?',
    'warning: config.json: linux.rootPropagation: is not a key of runtime-spec 1.3.0 and is ignored: did you mean "rootfsPropagation"?',
  ], "annotation and sysctl keys are the config's own");
  t.match(r.stdout, /: no problems found \(3 warnings\)\n$/);
});

t.test("check and create agree on a rootfs that is a symlink to a directory", async (t) => {
  const root = testRoot(t);
  const b = makeBundle(t, { args: ["true"] });
  fs.symlinkSync(b.config.root.path, path.join(b.dir, "rootfs-link"));
  b.config.root.path = "rootfs-link";
  writeConfig(b);
  const c = tsrun(["check", "--bundle", b.dir]);
  t.same({ code: c.code, stdout: c.stdout }, { code: 0, stdout: `${b.dir}: no problems found\n` });
  const r = tsrun(["run", "--bundle", b.dir, containerId()], { root });
  t.equal(r.code, 0, `create runs it: ${r.stderr}`);
});

t.test("features is valid JSON describing this build", async (t) => {
  const r = tsrun(["features"]);
  t.equal(r.code, 0);
  const f = JSON.parse(r.stdout);
  t.same(validateFeatures(f).problems, [], "valid against the features schema (runtime-spec 1.3.0)");
  t.equal(f.ociVersionMax, "1.3.0");
  t.ok(f.mountOptions.includes("rro"));
  t.same(f.linux.namespaces.sort(), ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]);
  t.equal(f.annotations["io.github.tsrun.version"], VERSION, "tsrun's own version, not the spec's");
  const runc = spawnSync("runc", ["features"], { encoding: "utf8" });
  const runcLibseccomp = runc.status === 0 ? JSON.parse(runc.stdout).annotations?.["io.github.seccomp.libseccomp.version"] : undefined;
  t.match(f.annotations["io.github.seccomp.libseccomp.version"], /^\d+\.\d+\.\d+$/, "the libseccomp version, under runc's and crun's key");
  if (runcLibseccomp) t.equal(f.annotations["io.github.seccomp.libseccomp.version"], runcLibseccomp, "the same library runc reports on this host");
  t.same(f.linux.apparmor, { enabled: true }, "AppArmor profiles are applied (where the host has AppArmor)");
  t.same(f.linux.selinux, { enabled: false }, "SELinux labels are not");
  t.same(f.linux.intelRdt, { enabled: true, schemata: true, monitoring: true });
  t.same(f.linux.netDevices, { enabled: true });
  t.same(f.linux.memoryPolicy.modes, ["MPOL_BIND", "MPOL_DEFAULT", "MPOL_INTERLEAVE", "MPOL_LOCAL", "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"]);
  t.same(f.linux.memoryPolicy.flags, ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]);
  t.same(f.potentiallyUnsafeConfigAnnotations, [], "no config annotation changes what tsrun does");
});

// Managers run the runtime with their own working directory (often the bundle). A Bun
// executable built without --no-compile-autoload-bunfig/-dotenv reads bunfig.toml there (its
// preload runs code, as root) and .env (which could point TSRUN_HELPER at any program).
t.test("bunfig.toml and .env in the working directory are not read", async (t) => {
  const root = testRoot(t);
  const bundle = makeBundle(t);
  const marker = path.join(bundle.dir, "preload-ran");
  fs.writeFileSync(path.join(bundle.dir, "preload.js"), `require("fs").writeFileSync(${JSON.stringify(marker)}, "ran");\n`);
  fs.writeFileSync(path.join(bundle.dir, "bunfig.toml"), 'preload = ["./preload.js"]\n');
  fs.writeFileSync(path.join(bundle.dir, ".env"), "TSRUN_HELPER=/nonexistent/helper-from-dotenv\n");
  const version = tsrun(["--version"], { cwd: bundle.dir });
  t.equal(version.code, 0, version.stderr);
  const run = tsrun(["run", "--bundle", bundle.dir, containerId()], { root, cwd: bundle.dir });
  t.equal(run.code, 0, `run from the bundle dir: ${run.stderr}`);
  t.notOk(fs.existsSync(marker), "the bunfig.toml preload did not run");
});
