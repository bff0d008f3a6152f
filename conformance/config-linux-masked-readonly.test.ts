// config-linux.md, Masked Paths and Readonly Paths.
import t from "tap";
import { observe } from "./lib/container.ts";
import { EROFS } from "./lib/linux.ts";
import { leavesNothingBehind, spec, suite } from "./lib/suite.ts";

const rt = suite(t);

t.test("masked paths", async (t) => {
  const o = await observe(rt, {
    checker: ["read", "/proc/kcore", "read", "/etc/hostname", "ls", "/sys/firmware", "ls", "/proc/acpi", "read", "/proc/timer_list"],
    config: (c) => (c.linux.maskedPaths = ["/proc/kcore", "/etc/hostname", "/sys/firmware", "/proc/acpi", "/proc/timer_list", "/proc/does-not-exist"]),
  });
  t.equal(o.create.code, 0, "(setup) create with masked paths", { stderr: o.createErr });
  const out = o.out ?? {};
  const unreadable = (r: { ok?: boolean; len?: number } | undefined) => !!r && (r.ok === false || r.len === 0);
  t.ok(unreadable(out["read /proc/kcore"]), spec("config-linux.md#masked-paths", "maskedPaths will mask over the provided paths inside the container so that they cannot be read", "/proc/kcore"), {
    result: out["read /proc/kcore"],
  });
  t.ok(unreadable(out["read /proc/timer_list"]), spec("config-linux.md#masked-paths", "maskedPaths will mask over the provided paths inside the container so that they cannot be read", "/proc/timer_list"));
  t.ok(unreadable(out["read /etc/hostname"]), spec("config-linux.md#masked-paths", "maskedPaths will mask over the provided paths inside the container so that they cannot be read", "a file of the rootfs"));
  const fw = out["ls /sys/firmware"];
  t.ok(Array.isArray(fw) ? fw.length === 0 : fw?.errno > 0, spec("config-linux.md#masked-paths", "maskedPaths will mask over the provided paths inside the container so that they cannot be read", "a directory"), { fw });
});

t.test("readonly paths", async (t) => {
  const o = await observe(rt, {
    checker: ["write", "/proc/sys/kernel/domainname", "x", "create", "/dev/shm/probe", "create", "/tmp/probe", "read", "/proc/sys/kernel/ostype"],
    config: (c) => (c.linux.readonlyPaths = ["/proc/sys", "/dev/shm", "/proc/does-not-exist"]),
  });
  t.equal(o.create.code, 0, "(setup) create with readonly paths", { stderr: o.createErr });
  const out = o.out ?? {};
  t.equal(out["write /proc/sys/kernel/domainname x"]?.errno, EROFS, spec("config-linux.md#readonly-paths", "readonlyPaths will set the provided paths as readonly inside the container", "/proc/sys"));
  t.equal(out["create /dev/shm/probe"]?.errno, EROFS, spec("config-linux.md#readonly-paths", "readonlyPaths will set the provided paths as readonly inside the container", "a tmpfs mount"));
  t.equal(out["read /proc/sys/kernel/ostype"]?.data, "Linux\n", spec("config-linux.md#readonly-paths", "readonlyPaths are still readable"));
  t.equal(out["create /tmp/probe"]?.ok, true, spec("config-linux.md#readonly-paths", "readonlyPaths: only the provided paths are readonly"));
});

leavesNothingBehind(t, rt);
