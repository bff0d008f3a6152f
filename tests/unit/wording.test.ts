// src/boundary/wording.ts: the one place the helper's reports become words.
import t from "tap";
import { failureText, hookFailureText, warningText } from "../../src/boundary/wording.ts";
import { errnoNameWords, errnoWords } from "../../src/boundary/errno.ts";
import { ErrorCode, Stage, WarningCode, type Failure, type HookEnd } from "../../src/boundary/gen/helper.ts";

const failure = (code: ErrorCode, over: Partial<Failure> = {}): Failure => ({ code, errnum: 0, stage: Stage.STAGE_UNSPECIFIED, path: "/p", value: 0n, detail: "", ...over });

t.test("every code has words: one line, never the fallback", async (t) => {
  const codes = Object.values(ErrorCode).filter((v): v is ErrorCode => typeof v === "number" && v !== ErrorCode.UNRECOGNIZED);
  t.ok(codes.length > 150);
  for (const code of codes) {
    const text = failureText(failure(code, { errnum: 2, detail: "line one\nline two" }));
    t.ok(text.length > 0 && !text.includes("\n") && !/failed with code/.test(text), `${ErrorCode[code]}: ${text}`);
  }
  t.equal(failureText(failure(9999 as ErrorCode)), "the helper failed with code 9999", "a code of another version is still one line");
});

t.test("errno words as Go (and runc) print them, from numbers and from Node's names", async (t) => {
  t.equal(errnoWords(2), "no such file or directory");
  t.equal(errnoWords(13), "permission denied");
  t.equal(errnoWords(8), "exec format error");
  t.equal(errnoWords(4242), "errno 4242");
  t.equal(errnoNameWords("EPERM"), "operation not permitted");
  t.equal(errnoNameWords("EWOULDBLOCK"), "resource temporarily unavailable");
  t.equal(failureText(failure(ErrorCode.EXEC_NOT_FOUND, { path: "nosuch" })), 'exec: "nosuch": executable file not found in $PATH');
  t.equal(failureText(failure(ErrorCode.CHDIR_CWD, { path: "/x", errnum: 20 })), 'chdir to cwd ("/x") set in config.json failed: not a directory');
});

t.test("names from the kernel's numbers: capabilities, rlimits, namespaces", async (t) => {
  t.equal(failureText(failure(ErrorCode.CAPABILITY, { value: 24n, errnum: 1 })), "capability CAP_SYS_RESOURCE: operation not permitted");
  t.equal(failureText(failure(ErrorCode.SETRLIMIT, { value: 7n, errnum: 1 })), "setrlimit RLIMIT_NOFILE: operation not permitted");
  t.equal(failureText(failure(ErrorCode.NAMESPACE_JOIN, { path: "/proc/1/ns/net", value: 0x40000000n, errnum: 22 })), "join network namespace /proc/1/ns/net: invalid argument");
  t.equal(warningText({ code: WarningCode.CAPABILITY_UNKNOWN_TO_KERNEL, subject: "", value: 45n }), "capability 45 is not known to the kernel, ignored");
});

t.test("a mount failure names the mount's source and destination from the plan", async (t) => {
  const plan = { mounts: [{ source: "/src", destination: "/dst" }] } as never;
  t.equal(failureText(failure(ErrorCode.MOUNT, { path: "/dst", value: 0n, errnum: 19 }), plan), "mount /src on /dst: no such device");
});

t.test("hook failures: one wording wherever the hook ran", async (t) => {
  const out = (s: string) => new TextEncoder().encode(s);
  const end = (how: HookEnd["how"]): HookEnd => ({ how, stdoutHead: out("said this \n\n"), stderrHead: out("and that\t\n") });
  t.equal(hookFailureText("prestart", 0, "/h", end({ $case: "exitStatus", value: 3 })), "error running prestart hook #0: exit status 3, stdout: said this, stderr: and that");
  t.equal(hookFailureText("startContainer", 1, "/h", end({ $case: "signal", value: 9 })), "error running startContainer hook #1: signal: killed, stdout: said this, stderr: and that");
  t.equal(hookFailureText("poststop", 2, "/h", end({ $case: "timedOutAfter", value: 2 })), "error running poststop hook #2: hook ran past specified timeout of 2.0s");
  t.equal(hookFailureText("createContainer", 0, "/nx", end({ $case: "startErrno", value: 2 })), "error running createContainer hook #0: fork/exec /nx: no such file or directory");
});
