// Recaptures tests/corpus/real/*.json: the config.json that real tools write, on this machine.
//
//   node_modules/.bin/bun tests/corpus/real/capture.ts [--oci-runtime-tool PATH] [--only NAME,...]
//
// As root. The `spec` commands and oci-runtime-tool write a config directly. The managers (podman,
// containerd's ctr and CRI plugin, dockerd) are started with private state by tests/managers/lib.ts
// and pointed at a wrapper runtime (runcWrapper below) that copies each bundle's config.json aside
// and then execs runc with the same arguments. Writes each config verbatim, and versions.txt; see
// README.md for what each file is and why the settings below are what they are.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { CriClient, NamespaceMode, podSandboxConfig } from "../../managers/cri.ts";
import {
  IMAGE, buildImageArchive, forceCleanup, makeWorkspace, removeEmptyCgroups, run, shellQuote, startContainerd,
  startDaemon, topCgroups, which, type Containerd, type Daemon, type Result, type Workspace,
} from "../../managers/lib.ts";

const HERE = path.dirname(new URL(import.meta.url).pathname);
const { values: opts } = parseArgs({
  options: {
    "oci-runtime-tool": { type: "string", default: which("oci-runtime-tool") ?? "oci-runtime-tool" },
    only: { type: "string" },
  },
});
const only = opts.only ? new Set(opts.only.split(",")) : undefined;
const wanted = (name: string) => !only || only.has(name);

if (process.getuid?.() !== 0) throw new Error("capture.ts runs as root");
const RUNC = which("runc") ?? "";
if (!RUNC) throw new Error("runc is not installed");

const ws = makeWorkspace("corpus");
const captures = path.join(ws.dir, "captured");
fs.mkdirSync(captures);
const runcState = path.join(ws.dir, "runc-state");
fs.mkdirSync(runcState);

/**
 * bin-runc/runc: saves BUNDLE/config.json of every create and run as captured/<ns>-<id>.json
 * (the call line in runc-calls.log), then execs runc with the same argv, prefixed with
 * `--root <private dir>` when the caller gave no --root (podman gives none; runc's default
 * /run/runc is left alone). Named runc so that podman treats it as runc.
 */
function runcWrapper(): string {
  const dir = path.join(ws.dir, "bin-runc");
  fs.mkdirSync(dir);
  const file = path.join(dir, "runc");
  fs.writeFileSync(
    file,
    `#!/bin/bash
{ printf '%s' "$(date +%T.%N)"; printf ' %q' runc "$@"; printf '\\n'; } >> ${shellQuote(path.join(ws.dir, "runc-calls.log"))}
args=("$@")
# Global flags come before the command; those listed take a value.
has_root=0 cmd= i=0
while [ $i -lt $# ]; do
	case "\${args[$i]}" in
	--root | -root) has_root=1; i=$((i + 2)); continue ;;
	--root=* | -root=*) has_root=1 ;;
	--log | -log | --log-format | -log-format | --rootless | -rootless | --criu | -criu) i=$((i + 2)); continue ;;
	-*) ;;
	*) cmd=\${args[$i]}; break ;;
	esac
	i=$((i + 1))
done
root=()
[ $has_root = 1 ] || root=(--root ${shellQuote(runcState)})
bundle=.
if [ "$cmd" = create ] || [ "$cmd" = run ]; then
	for ((j = i + 1; j < $#; j++)); do
		case "\${args[$j]}" in
		--bundle | -bundle | -b) bundle=\${args[$((j + 1))]} ;;
		--bundle=* | -bundle=*) bundle=\${args[$j]#*=} ;;
		esac
	done
	id=\${args[$(($# - 1))]}
	n=$(ls ${shellQuote(captures)} | wc -l)
	cp "$bundle/config.json" ${shellQuote(captures)}/"$(printf '%03d' "$n")-$id.json"
fi
exec ${shellQuote(RUNC)} "\${root[@]}" "$@"
`,
    { mode: 0o755 },
  );
  return file;
}
const wrapper = runcWrapper();

/** Captured configs whose file name (NNN-<id>.json) ends with -<id>.json, oldest first. */
function capturedFor(id: string): string[] {
  return fs
    .readdirSync(captures)
    .filter((f) => f.endsWith(`-${id}.json`))
    .sort()
    .map((f) => path.join(captures, f));
}

const written: string[] = [];
/** Copy a config into tests/corpus/real as NAME.json, verbatim. */
function keep(name: string, from: string): void {
  const text = fs.readFileSync(from, "utf8");
  JSON.parse(text); // a capture must be a whole JSON document
  fs.writeFileSync(path.join(HERE, `${name}.json`), text.endsWith("\n") ? text : `${text}\n`);
  written.push(name);
  console.log(`captured ${name}.json`);
}
function keepOnly(name: string, id: string): void {
  const found = capturedFor(id);
  if (found.length !== 1) throw new Error(`${name}: expected one create of ${id}, found ${found.length}:\n${callLog()}`);
  keep(name, found[0]!);
}
const callLog = () => fs.readFileSync(path.join(ws.dir, "runc-calls.log"), "utf8");
function check(what: string, r: Result, okCodes = [0]): void {
  if (!okCodes.includes(r.code)) throw new Error(`${what}: exit ${r.code}\n${r.stdout}${r.stderr}`);
}

// ---- spec generators --------------------------------------------------------------------------

function specOf(name: string, cmd: string[]): void {
  if (!wanted(name)) return;
  const dir = fs.mkdtempSync(path.join(ws.dir, `${name}-`));
  check(cmd.join(" "), run(cmd[0]!, cmd.slice(1), { cwd: dir }));
  keep(name, path.join(dir, "config.json"));
}
specOf("runc-spec", ["runc", "spec"]);
specOf("runc-spec-rootless", ["runc", "spec", "--rootless"]);
specOf("crun-spec", ["crun", "spec"]);
specOf("crun-spec-rootless", ["crun", "spec", "--rootless"]);
if (wanted("runtime-tools-generate")) {
  const tool = opts["oci-runtime-tool"]!;
  const out = path.join(ws.dir, "runtime-tools-generate.json");
  check("oci-runtime-tool generate", run(tool, ["generate", "--output", out]));
  keep("runtime-tools-generate", out);
}

// ---- managers -----------------------------------------------------------------------------------

const needManagers = ["podman-run", "podman-run-privileged", "podman-run-uidmap", "ctr-run", "cri-sandbox", "cri-container", "docker-run", "docker-run-privileged"].some(wanted);
let ctd: Containerd | undefined;
let dockerd: Daemon | undefined;
const ns = `corpus-capture-${process.pid}`;
const podCgroup = `corpus-capture-pod-${process.pid}`;
const dockerParent = `corpus-capture-docker-${process.pid}`;
// podman's default cgroup parent is shared with anything else podman runs: remove only the new.
const libpodBefore = new Set(topCgroups("libpod_parent"));
try {
  if (needManagers) await managers(ws);
} finally {
  if (dockerd?.alive()) await dockerd.stop();
  if (ctd?.daemon.alive()) await ctd.daemon.stop();
  for (const n of await forceCleanup(ws, [ns, podCgroup, dockerParent])) console.log(`cleanup: ${n}`);
  removeEmptyCgroups([...topCgroups(ns), ...topCgroups(podCgroup), ...topCgroups(dockerParent), ...topCgroups("libpod_parent").filter((d) => !libpodBefore.has(d))]);
}

async function managers(ws: Workspace): Promise<void> {
  const archive = buildImageArchive(ws);

  // podman 4.3: its own defaults, except what needs the host's network set-up (netavark would
  // change the host's firewall): --network none.
  if (["podman-run", "podman-run-privileged", "podman-run-uidmap"].some(wanted)) {
    const storageDriver = run("stat", ["-f", "-c", "%T", ws.dir]).stdout.trim() === "overlayfs" ? "vfs" : "overlay";
    const conf = path.join(ws.dir, "containers.conf");
    fs.writeFileSync(conf, `[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "${ws.dir}/events.log"\ntmp_dir = "${ws.dir}/tmp"\n`);
    const base = ["--root", path.join(ws.dir, "proot"), "--runroot", path.join(ws.dir, "prun"), "--storage-driver", storageDriver, "--runtime", wrapper];
    const podman = (args: string[]) => run("podman", [...base, ...args], { env: { CONTAINERS_CONF: conf } });
    check("podman load", podman(["load", "-i", archive]));
    const scenarios: Array<[string, string[]]> = [
      ["podman-run", []],
      ["podman-run-privileged", ["--privileged"]],
      ["podman-run-uidmap", ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"]],
    ];
    try {
      for (const [name, flags] of scenarios) {
        if (!wanted(name)) continue;
        const id = podman(["create", "--network", "none", ...flags, IMAGE, "true"]);
        check(`podman create ${name}`, id);
        const cid = id.stdout.trim();
        // The exit status does not matter: the config is saved before runc runs it.
        podman(["start", "--attach", cid]);
        keepOnly(name, cid);
        podman(["rm", "--force", cid]);
      }
    } finally {
      podman(["rm", "--all", "--force", "--time", "0"]);
      run("podman", [...base, "system", "reset", "--force"], { env: { CONTAINERS_CONF: conf } });
    }
  }

  const needCtd = ["ctr-run", "cri-sandbox", "cri-container", "docker-run", "docker-run-privileged"].some(wanted);
  if (!needCtd) return;
  const criRoot = path.join(ws.dir, "cri-runc-root");
  ctd = await startContainerd(ws, { cri: { binary: wrapper, root: criRoot } });
  const ctr = (args: string[], namespace = ns) => run("ctr", ["--address", ctd!.socket, "--namespace", namespace, ...args]);

  if (wanted("ctr-run")) {
    check("ctr images import", ctr(["images", "import", archive]));
    check("ctr run", ctr(["run", "--rm", "--runc-binary", wrapper, "--runc-root", path.join(ws.dir, "ctr-runc-root"), "--fifo-dir", path.join(ws.dir, "fifo"), IMAGE, "ctr-run", "true"]));
    keepOnly("ctr-run", "ctr-run");
  }

  if (wanted("cri-sandbox") || wanted("cri-container")) {
    // The pod a kubelet would ask for, with its defaults but host networking (no CNI here).
    check("ctr images import (k8s.io)", ctr(["images", "import", archive], "k8s.io"));
    const cri = new CriClient(ctd.socket);
    const logDir = path.join(ws.dir, "pod-logs");
    fs.mkdirSync(logDir);
    const podConfig = podSandboxConfig({ name: "corpus", uid: `uid-${process.pid}`, namespace: "default", logDirectory: logDir, cgroupParent: `/${podCgroup}`, network: NamespaceMode.NODE });
    // The runtime class tests/managers/lib.ts declares as "tsrun": its BinaryName is the wrapper.
    const podId = await cri.runPodSandbox(podConfig, "tsrun");
    try {
      const cid = await cri.createContainer(podId, { name: "app", image: IMAGE, command: ["true"], logPath: "app.log", memoryLimit: 64 << 20 }, podConfig);
      await cri.startContainer(cid);
      keepOnly("cri-sandbox", podId);
      keepOnly("cri-container", cid);
      await cri.stopContainer(cid, 0);
      await cri.removeContainer(cid);
    } finally {
      await cri.stopPodSandbox(podId);
      await cri.removePodSandbox(podId);
    }
  }

  if (wanted("docker-run") || wanted("docker-run-privileged")) {
    // dockerd 20.10 with its defaults, except the host's network (no bridge, no iptables).
    const dir = path.join(ws.dir, "docker");
    fs.mkdirSync(dir);
    const socket = path.join(dir, "docker.sock");
    const docker = (args: string[]) => run("docker", ["--host", `unix://${socket}`, ...args]);
    const daemonJson = path.join(dir, "daemon.json");
    fs.writeFileSync(daemonJson, JSON.stringify({ runtimes: { "runc-capture": { path: wrapper } }, "default-runtime": "runc-capture" }));
    const storageDriver = run("stat", ["-f", "-c", "%T", ws.dir]).stdout.trim() === "overlayfs" ? "vfs" : "overlay2";
    dockerd = await startDaemon(
      "dockerd",
      which("dockerd")!,
      [
        "--config-file", daemonJson, "--host", `unix://${socket}`, "--data-root", path.join(dir, "data"), "--exec-root", path.join(dir, "exec"),
        "--pidfile", path.join(dir, "docker.pid"), "--containerd", ctd.socket, "--storage-driver", storageDriver,
        "--cgroup-parent", `/${dockerParent}`, "--bridge", "none", "--iptables=false", "--ip-masq=false", "--userland-proxy=false",
      ],
      path.join(dir, "dockerd.log"),
      () => fs.existsSync(socket) && docker(["version"]).code === 0,
    );
    check("docker load", docker(["load", "--input", archive]));
    for (const [name, flags] of [["docker-run", []], ["docker-run-privileged", ["--privileged"]]] as Array<[string, string[]]>) {
      if (!wanted(name)) continue;
      const c = docker(["create", "--network", "none", ...flags, IMAGE, "true"]);
      check(`docker create ${name}`, c);
      const cid = c.stdout.trim();
      docker(["start", "--attach", cid]);
      keepOnly(name, cid);
      docker(["rm", "--force", cid]);
    }
  }
}

// ---- versions -----------------------------------------------------------------------------------

// versions.txt: one line per config, replaced when that config is captured again.
const first = (cmd: string, args: string[]) => {
  try {
    const r = run(cmd, args);
    return (r.stdout || r.stderr).trim().split("\n")[0] ?? "";
  } catch {
    return `${cmd}: not found`;
  }
};
const toolOf = (name: string): string[] => {
  const runc = first("runc", ["--version"]);
  if (name.startsWith("runc-")) return [runc];
  if (name.startsWith("crun-")) return [first("crun", ["--version"])];
  if (name.startsWith("runtime-tools-")) return [first(opts["oci-runtime-tool"]!, ["--version"])];
  if (name.startsWith("podman-")) return [first("podman", ["--version"]), first("conmon", ["--version"]), runc];
  if (name.startsWith("docker-")) return [first("dockerd", ["--version"]), first("containerd", ["--version"]), runc];
  return [first("containerd", ["--version"]), runc];
};
if (written.length) {
  const file = path.join(HERE, "versions.txt");
  const old = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
  const lines = new Map(old.map((l) => [l.split(":")[0]!, l]));
  const host = `Linux ${os.release()}, Debian ${fs.readFileSync("/etc/debian_version", "utf8").trim()}`;
  for (const name of written) lines.set(`${name}.json`, `${name}.json: ${new Date().toISOString().slice(0, 10)}, ${host}; ${toolOf(name).join("; ")}`);
  fs.writeFileSync(file, `${[...lines.keys()].sort().map((k) => lines.get(k)).join("\n")}\n`);
}
fs.rmSync(ws.dir, { recursive: true, force: true });
