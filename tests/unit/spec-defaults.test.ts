import t, { type Test } from "tap";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, defaultSpec } from "../../src/spec/defaults.ts";
import type { Spec } from "../../src/spec/generated/types.ts";
import { loadConfigFile, validateConfig } from "../../src/spec/validate.ts";

for (const [rootless, cgroupNamespace] of [[false, false], [false, true], [true, false], [true, true]] as const) {
  t.test(`defaultSpec({ rootless: ${rootless}, cgroupNamespace: ${cgroupNamespace} }) validates`, async (t) => {
    const s = defaultSpec({ rootless, cgroupNamespace });
    const r = validateConfig(s);
    t.same(r.problems, [], "no problems");
    t.same(r.warnings, [], "no warnings");
    // and it survives the trip through a file, as `tsrun spec` writes it
    const dir = mkdtempSync(join(tmpdir(), "tsrun-defaults-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "config.json"), JSON.stringify(s, null, "\t"));
    t.same(loadConfigFile(join(dir, "config.json")).config, s);
  });
}

t.test("contents of the default spec", async (t) => {
  const s = defaultSpec({ rootless: false, cgroupNamespace: true });
  t.equal(s.ociVersion, "1.3.0");
  const p = s.process!;
  t.equal(p.terminal, true);
  t.same(p.args, ["sh"]);
  t.same(p.user, { uid: 0, gid: 0 });
  t.same(p.env, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]);
  t.equal(p.cwd, "/");
  const caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
  t.same(p.capabilities, { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] });
  t.same(p.rlimits, [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }]);
  t.equal(p.noNewPrivileges, true);
  t.same(s.root, { path: "rootfs", readonly: true });
  t.equal(s.hostname, "tsrun");
  t.same(s.mounts?.map((m) => `${m.destination} ${m.type}`), [
    "/proc proc", "/dev tmpfs", "/dev/pts devpts", "/dev/shm tmpfs", "/dev/mqueue mqueue", "/sys sysfs", "/sys/fs/cgroup cgroup",
  ]);
  t.ok(s.mounts?.find((m) => m.destination === "/dev/pts")?.options?.includes("gid=5"));
  t.same(s.mounts?.find((m) => m.destination === "/sys")?.options, ["nosuid", "noexec", "nodev", "ro"]);
  t.same(s.mounts?.find((m) => m.destination === "/sys/fs/cgroup")?.options, ["nosuid", "noexec", "nodev", "relatime", "ro"]);
  t.same(s.linux?.namespaces?.map((n) => n.type), ["pid", "network", "ipc", "uts", "mount", "cgroup"]);
  t.same(defaultSpec({ rootless: false, cgroupNamespace: false }).linux?.namespaces?.map((n) => n.type), ["pid", "network", "ipc", "uts", "mount"], "cgroup namespace only when asked (cgroup v2 hosts)");
  t.same(s.linux?.maskedPaths, [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/sys/devices/virtual/powercap",
  ]);
  t.same(s.linux?.readonlyPaths, ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
  t.same(s.linux?.resources, { devices: [{ allow: false, access: "rwm" }] });
  t.equal(s.linux?.uidMappings, undefined);

  t.same(defaultSpec({ rootless: false, cgroupNamespace: true, args: ["/bin/echo", "hi"] }).process?.args, ["/bin/echo", "hi"]);
  t.same(defaultSpec({ rootless: false, cgroupNamespace: true, args: [] }).process?.args, ["sh"]);
  const a = defaultSpec({ rootless: false, cgroupNamespace: true });
  a.linux!.maskedPaths!.push("/x");
  a.process!.capabilities!.bounding!.push("CAP_SYS_ADMIN");
  t.same(defaultSpec({ rootless: false, cgroupNamespace: true }).linux?.maskedPaths, [...DEFAULT_MASKED_PATHS], "each call returns fresh arrays");
  t.same(defaultSpec({ rootless: false, cgroupNamespace: true }).process?.capabilities?.bounding, [...DEFAULT_CAPABILITIES]);
});

t.test("contents of the rootless default spec", async (t) => {
  const s = defaultSpec({ rootless: true, cgroupNamespace: true });
  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  t.same(s.linux?.namespaces?.map((n) => n.type), ["pid", "ipc", "uts", "mount", "cgroup", "user"]);
  t.same(defaultSpec({ rootless: true, cgroupNamespace: false }).linux?.namespaces?.map((n) => n.type), ["pid", "ipc", "uts", "mount", "user"]);
  t.same(s.linux?.uidMappings, [{ containerID: 0, hostID: euid, size: 1 }]);
  t.same(s.linux?.gidMappings, [{ containerID: 0, hostID: egid, size: 1 }]);
  t.same(defaultSpec({ rootless: true, cgroupNamespace: false, uid: 1000, gid: 100 }).linux?.uidMappings, [{ containerID: 0, hostID: 1000, size: 1 }]);
  t.same(s.mounts?.find((m) => m.destination === "/sys"), {
    destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"],
  });
  t.notOk(s.mounts?.some((m) => m.destination === "/sys/fs/cgroup"), "no cgroup mount");
  t.notOk(s.mounts?.find((m) => m.destination === "/dev/pts")?.options?.includes("gid=5"), "devpts without gid=5");
  t.ok(s.mounts?.some((m) => m.destination === "/dev/mqueue"));
  t.equal(s.linux?.resources, undefined, "no resources");
  t.same(s.linux?.maskedPaths, [...DEFAULT_MASKED_PATHS]);
  t.same(s.linux?.readonlyPaths, [...DEFAULT_READONLY_PATHS]);
  t.equal(s.process?.noNewPrivileges, true);
});

const RUNC = ["/usr/bin/runc", "/usr/sbin/runc", "/usr/local/bin/runc", "/usr/local/sbin/runc"].find((p) => existsSync(p));

function runcSpec(t: Test, rootless: boolean): Spec {
  const dir = mkdtempSync(join(tmpdir(), "tsrun-runc-spec-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync(RUNC!, ["spec", ...(rootless ? ["--rootless"] : [])], { cwd: dir, stdio: "ignore" });
  return JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Spec;
}

const sorted = (xs: readonly string[] | undefined): string[] => [...(xs ?? [])].sort();

for (const rootless of [false, true]) {
  t.test(`at least as tight as runc spec${rootless ? " --rootless" : ""}`, { skip: RUNC ? false : "runc is not installed" }, async (t) => {
    const theirs = runcSpec(t, rootless);
    const ours = defaultSpec({ rootless, cgroupNamespace: (theirs.linux?.namespaces ?? []).some((n) => n.type === "cgroup") });
    t.same(validateConfig(theirs).problems, [], "runc's own spec validates too");

    const tc = theirs.process?.capabilities ?? {};
    const oc = ours.process?.capabilities ?? {};
    for (const set of ["bounding", "effective", "permitted"] as const) {
      t.same(sorted(oc[set]), sorted(tc[set]), `${set}: the same capabilities as runc`);
    }
    for (const set of ["inheritable", "ambient"] as const) {
      const extra = (oc[set] ?? []).filter((c) => !(tc[set] ?? []).includes(c));
      t.same(extra, [], `${set}: nothing runc does not grant`);
    }
    const allTheirs = new Set(Object.values(tc).flat());
    const allOurs = new Set(Object.values(oc).flat());
    t.same([...allTheirs].filter((c) => !allOurs.has(c)), [], "every capability named by runc is in ours");

    const missingMasked = (theirs.linux?.maskedPaths ?? []).filter((p) => !(ours.linux?.maskedPaths ?? []).includes(p));
    t.same(missingMasked, [], "every masked path of runc is masked");
    const missingRo = (theirs.linux?.readonlyPaths ?? []).filter((p) => !(ours.linux?.readonlyPaths ?? []).includes(p));
    t.same(missingRo, [], "every readonly path of runc is readonly");
    const missingNs = (theirs.linux?.namespaces ?? []).map((n) => n.type).filter((ty) => !(ours.linux?.namespaces ?? []).some((n) => n.type === ty));
    t.same(missingNs, [], "every namespace of runc is unshared");

    t.equal(ours.process?.noNewPrivileges, true);
    t.equal(theirs.process?.noNewPrivileges === true && ours.process?.noNewPrivileges !== true, false);
    t.same(ours.process?.rlimits, theirs.process?.rlimits, "same rlimits");
    t.equal(ours.root?.readonly, theirs.root?.readonly ?? false, "same read-only root");
    t.same(ours.process?.user, theirs.process?.user);

    const ourMounts = new Map((ours.mounts ?? []).map((m) => [m.destination, m]));
    for (const m of theirs.mounts ?? []) {
      if (rootless && m.destination === "/sys/fs/cgroup") continue; // deliberately absent rootless
      const o = ourMounts.get(m.destination);
      t.ok(o, `mount ${m.destination} present`);
      if (!o) continue;
      t.equal(o.type, m.type, `${m.destination}: same type`);
      const weaker = (m.options ?? []).filter((x) => ["ro", "nosuid", "noexec", "nodev"].includes(x) && !(o.options ?? []).includes(x));
      t.same(weaker, [], `${m.destination}: keeps every restricting option of runc`);
    }
    if (theirs.linux?.resources?.devices) t.same(ours.linux?.resources?.devices, theirs.linux.resources.devices, "same device rules");
    t.same(ours.linux?.uidMappings?.map((x) => x.size), theirs.linux?.uidMappings?.map((x) => x.size));
  });
}
