// Managers with their systemd cgroup driver, on a real systemd (tests/lib/systemd-host.ts, the
// hybrid layout nspawn gives on this machine), running containers through tsrun:
//   - containerd 1.6 with the CRI plugin, a runtime class "tsrun" with SystemdCgroup = true,
//     running a pod (sandbox + container) as the kubelet does (tests/managers/cri.ts);
//   - podman 4.3 with cgroup_manager = "systemd".
// Both run inside the systemd host (containerd as a transient service, as containerd.service
// would); their work dirs are in the host's scratch dir, bound at the same path.
import t, { type Test } from "tap";
import fs from "node:fs";
import path from "node:path";
import { CriClient, NamespaceMode, podSandboxConfig } from "./cri.ts";
import { IMAGE, buildImageArchive, callLines, containerdConfig, makeWorkspace, sleep, skipReason } from "./lib.ts";
import { onSystemdHost, type SystemdHost } from "../lib/systemd-host.ts";

await onSystemdHost(t, { unified: false, skip: () => skipReason("containerd and podman", ["containerd", "ctr", "containerd-shim-runc-v2", "podman", "conmon"]) }, suite);

async function suite(host: SystemdHost): Promise<void> {
  const ws = makeWorkspace("systemd", host.share);
  const sd = host.systemctl;
  const units = (pattern: string): string[] => sd(["list-units", "--all", "--plain", "--no-legend", pattern]).stdout.split("\n").filter(Boolean).map((l) => l.split(/\s+/)[0]!);
  const archive = buildImageArchive(ws);
  // The systemd host's /etc is its own (empty): what the managers read there.
  fs.writeFileSync(path.join(ws.dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  host.run(["sh", "-c", `echo '127.0.0.1 localhost' > /etc/hosts && : > /etc/resolv.conf && mkdir -p /etc/containers && cp ${JSON.stringify(path.join(ws.dir, "policy.json"))} /etc/containers/policy.json`]);
  const traced = (name: string, fn: (t: Test) => Promise<void>) =>
    t.test(name, async (t) => {
      const mark = callLines(ws).length;
      await fn(t);
      if (!t.passing()) t.comment(`tsrun calls:\n${callLines(ws, mark).join("\n")}`);
    });

  await traced("containerd's CRI plugin with SystemdCgroup = true: a pod through tsrun", async (t) => {
    const dir = path.join(ws.dir, "containerd");
    fs.mkdirSync(dir);
    const socket = path.join(dir, "containerd.sock");
    const criRoot = path.join(ws.dir, "cri-root");
    const config = path.join(dir, "config.toml");
    // docs/managers.md: containerd 1.x (config version 2).
    fs.writeFileSync(config, containerdConfig(dir, socket, { binary: ws.wrapper, root: criRoot, systemdCgroup: true }));
    const unit = `systemd-containerd-${process.pid}.service`;
    const started = host.run(["systemd-run", `--unit=${unit}`, "--collect", "-p", "Delegate=yes", "-p", "KillMode=mixed", "/usr/bin/containerd", "--config", config]);
    if (!t.equal(started.code, 0, `containerd as ${unit}: ${started.stderr}`)) return;
    t.teardown(() => void sd(["stop", unit]));
    const ctr = (args: string[]) => host.run(["ctr", "--address", socket, "--namespace", "k8s.io", ...args]);
    for (let i = 0; i < 300 && !(fs.existsSync(socket) && ctr(["version"]).code === 0); i++) await sleep(100);
    const imported = ctr(["images", "import", archive]);
    if (!t.equal(imported.code, 0, `ctr images import: ${imported.stderr}`)) return;

    const cri = new CriClient(socket);
    const podSlice = `systemd-kubepods-pod${process.pid}.slice`;
    const podConfig = podSandboxConfig({
      name: "hello", uid: `uid-${process.pid}`, namespace: "default", logDirectory: path.join(ws.dir, "pod-logs"),
      cgroupParent: podSlice, network: NamespaceMode.NODE,
    });
    const podId = await cri.runPodSandbox(podConfig, "tsrun");
    let removed = false;
    try {
      const sandboxScope = `cri-containerd-${podId}.scope`;
      t.match(sd(["status", sandboxScope]).stdout, /Active: active \(running\)/, "the sandbox's scope");
      t.match(sd(["show", sandboxScope, "--property=Slice"]).stdout, `Slice=${podSlice}`, "in the pod's slice");
      const cid = await cri.createContainer(podId, { name: "hello", image: IMAGE, command: ["sh", "-c", "echo hello; exec sleep 1000"], logPath: "hello.log", memoryLimit: 64 << 20 }, podConfig);
      await cri.startContainer(cid);
      t.equal((await cri.containerStatus(cid)).state, "RUNNING", "the container runs");
      const scope = `cri-containerd-${cid}.scope`;
      t.match(sd(["show", scope, "--property=MemoryLimit"]).stdout, `MemoryLimit=${64 << 20}`, "its memory limit is the scope's property");
      t.equal(host.run(["cat", `/sys/fs/cgroup/memory/${podSlice.replace(/^systemd-kubepods-/, "systemd.slice/systemd-kubepods.slice/systemd-kubepods-")}/${scope}/memory.limit_in_bytes`]).stdout.trim(), String(64 << 20), "and its cgroup's");
      t.match(await cri.execSync(cid, ["sh", "-c", "echo exec-ok; cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]), { stdout: `exec-ok\n${64 << 20}\n`, exitCode: 0 }, "ExecSync");
      await cri.updateMemoryLimit(cid, 96 << 20);
      t.match(sd(["show", scope, "--property=MemoryLimit"]).stdout, `MemoryLimit=${96 << 20}`, "UpdateContainerResources: tsrun update set the scope's property");
      t.match(await cri.execSync(cid, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]), { stdout: `${96 << 20}\n` }, "and the cgroup's limit");
      const calls = callLines(ws);
      t.ok(calls.some((l) => / update --resources - /.test(l) && l.endsWith(cid)), "through tsrun update");
      t.ok(calls.some((l) => l.includes(" --systemd-cgroup ") && / create --bundle /.test(l) && l.endsWith(podId)), "the sandbox created by tsrun --systemd-cgroup");
      t.ok(calls.some((l) => l.includes(" --systemd-cgroup ") && / create --bundle /.test(l) && l.endsWith(cid)), "the container too");
      await cri.stopContainer(cid, 0);
      t.match(await cri.containerStatus(cid), { state: "EXITED", exitCode: 137 }, "StopContainer");
      await cri.removeContainer(cid);
      t.same(units(scope), [], "its scope is gone");
      await cri.stopPodSandbox(podId);
      await cri.removePodSandbox(podId);
      removed = true;
      t.same(units("cri-containerd-*"), [], "no scope left");
      t.same(fs.readdirSync(path.join(criRoot, "k8s.io")), [], "no tsrun state left");
    } finally {
      if (!removed) {
        await cri.stopPodSandbox(podId).catch(() => {});
        await cri.removePodSandbox(podId).catch(() => {});
      }
      sd(["stop", podSlice, "systemd-kubepods.slice", "systemd.slice"]);
    }
    t.equal(sd(["stop", unit]).code, 0, "containerd stops");
  });

  await traced("podman with cgroup_manager = \"systemd\"", async (t) => {
    const conf = path.join(ws.dir, "containers.conf");
    fs.writeFileSync(
      conf,
      `[containers]
netns = "none"
log_driver = "k8s-file"
default_ulimits = ["nofile=1024:1024", "nproc=32768:32768"]
[engine]
runtime = "tsrun"
cgroup_manager = "systemd"
events_logger = "file"
events_logfile_path = "${ws.dir}/events.log"
tmp_dir = "/run/sd-podman-tmp"
runtime_supports_json = ["crun", "runc", "tsrun"]
[engine.runtimes]
tsrun = ["${ws.wrapper}"]
`,
    );
    const podman = (args: string[]) =>
      // In the systemd host's own /var and /run (podman wants a runroot of at most 50 characters).
      host.run(["podman", "--root", "/var/lib/sd-podman", "--runroot", "/run/sd-podman", "--storage-driver", "vfs", ...args], { env: { CONTAINERS_CONF: conf } });
    const loaded = podman(["load", "-i", archive]);
    if (!t.equal(loaded.code, 0, `podman load: ${loaded.stderr}`)) return;
    const once = podman(["run", "--rm", IMAGE, "sh", "-c", "echo hi; cat /proc/self/cgroup | grep memory"]);
    t.equal(once.code, 0, once.stderr);
    t.match(once.stdout, /^hi$/m);
    t.ok(callLines(ws).some((l) => l.includes(" --systemd-cgroup ") && / create --bundle /.test(l)), "tsrun create --systemd-cgroup");
    const name = `systemd-${process.pid}`;
    const runD = podman(["run", "-d", "--name", name, IMAGE, "sleep", "1000"]);
    if (!t.equal(runD.code, 0, `run -d: ${runD.stderr}`)) return;
    const id = runD.stdout.trim();
    t.match(sd(["status", `libpod-${id}.scope`]).stdout, /Active: active \(running\)/, "systemctl status shows the container's scope");
    t.match(sd(["show", `libpod-${id}.scope`, "--property=Slice"]).stdout, "Slice=machine.slice");
    t.match(podman(["exec", name, "echo", "exec-ok"]), { code: 0, stdout: "exec-ok\n" }, "exec");
    t.match(podman(["stop", "--time", "0", name]), { code: 0 }, "stop");
    t.match(podman(["rm", name]), { code: 0 }, "rm");
    t.same(units(`libpod-${id}.scope`), [], "no scope left");
    t.same(units("libpod-*"), [], "no libpod unit left (conmon's scopes neither)");
    t.equal(podman(["ps", "-aq"]).stdout, "", "no container left");
    t.equal(host.run(["sh", "-c", "ls /run/tsrun 2>/dev/null"]).stdout, "", "no tsrun state left");
  });
}
