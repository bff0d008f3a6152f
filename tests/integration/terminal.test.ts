// process.terminal: the pty master sent over --console-socket (as containerd and podman use
// it), and `run` in the foreground on the caller's own terminal (made here with script(1)).
import t from "tap";
import fs from "node:fs";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { makeBundle } from "../lib/bundle.ts";
import { leakCheck } from "../lib/leaks.ts";
import { REPO } from "../lib/rootfs.ts";
import { containerId, testRoot, tsrun, TSRUN } from "../lib/tsrun.ts";

const RECEIVER = path.join(REPO, "tests/helper/console-receiver.py");

function waitFor(cond: () => boolean, what: string): void {
  for (let i = 0; i < 1000 && !cond(); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  if (!cond()) throw new Error(`gave up waiting for ${what}`);
}

t.test("create with a console socket sends the pty master", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, {
    args: ["sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty; stty size; ls -l /dev/console | cut -c1"],
    config: (c) => {
      c.process.terminal = true;
      c.process.consoleSize = { height: 33, width: 99 };
    },
  });
  const sock = path.join(bundle.dir, "console.sock");
  const out = path.join(bundle.dir, "console.out");
  const receiver = spawn("python3", [RECEIVER, sock, out], { stdio: "ignore" });
  t.teardown(() => receiver.kill("SIGKILL"));
  waitFor(() => fs.existsSync(sock), "the console socket");
  const id = containerId();
  const created = tsrun(["create", "--bundle", bundle.dir, "--console-socket", sock, id], { root });
  t.equal(created.code, 0, created.stderr);
  t.equal(tsrun(["start", id], { root }).code, 0);
  const exited = new Promise((resolve) => receiver.on("exit", resolve));
  await exited;
  const text = fs.readFileSync(out, "utf8");
  t.match(text, /^payload=\/dev\/pts\/\d+\n/, "the payload names the pty");
  t.match(text, /on-a-tty\r\n33 99\r\nc\r\n/, "stdio is the pty, consoleSize applied, /dev/console is the pty");
  t.equal(tsrun(["delete", "--force", id], { root }).code, 0);
});

t.test("terminal errors", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const tty = makeBundle(t, { config: (c) => (c.process.terminal = true) });
  t.match(tsrun(["create", "--bundle", tty.dir, containerId()], { root }), {
    code: 1, stderr: /cannot allocate tty if tsrun will detach without setting console socket/,
  });
  const plain = makeBundle(t);
  t.match(tsrun(["create", "--bundle", plain.dir, "--console-socket", "/nonexistent.sock", containerId()], { root }), {
    code: 1, stderr: /cannot use console socket if the process does not allocate a tty/,
  });
  const missing = makeBundle(t, { config: (c) => (c.process.terminal = true) });
  const r = tsrun(["create", "--bundle", missing.dir, "--console-socket", path.join(missing.dir, "none.sock"), containerId()], { root });
  t.equal(r.code, 1);
  t.match(r.stderr, /none\.sock.*no such file or directory/, "a missing console socket is named");
  t.same(fs.readdirSync(root), [], "nothing left");
});

t.test("run in the foreground uses the caller's terminal", async (t) => {
  leakCheck(t);
  const root = testRoot(t);
  const bundle = makeBundle(t, {
    args: ["sh", "-c", "test -t 0 && echo container-on-a-tty; read line; echo got:$line; exit 4"],
    config: (c) => (c.process.terminal = true),
  });
  const cmd = `${TSRUN} --root ${root} run --bundle ${bundle.dir} ${containerId()}; echo tsrun-exit:$?`;
  // script(1) gives tsrun a pty as stdin/stdout; we type a line into it.
  const r = spawnSync("script", ["-qec", cmd, "/dev/null"], { input: "hello\n", encoding: "utf8", timeout: 60_000 });
  t.match(r.stdout, /container-on-a-tty/, r.stderr);
  t.match(r.stdout, /got:hello/, "input reached the container through the terminal");
  t.match(r.stdout, /tsrun-exit:4/, "the exit code comes back");
  t.same(fs.readdirSync(root), [], "run deleted it");
});
