import { bool, str, strs, type CommandContext } from "../context.ts";
import { parsePreserveFds } from "../../lifecycle/create.ts";
import { execInContainer } from "../../lifecycle/exec.ts";
import { rootlessContext } from "../../linux/rootless.ts";

export function run(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  const [id, ...args] = ctx.operands;
  return execInContainer({
    root: ctx.global.root,
    id: id!,
    processFile: str(v, "process"),
    args,
    tty: bool(v, "tty"),
    consoleSocket: str(v, "console-socket"),
    pidfdSocket: str(v, "pidfd-socket"),
    detach: bool(v, "detach"),
    pidFile: str(v, "pid-file"),
    cwd: str(v, "cwd"),
    env: strs(v, "env"),
    user: str(v, "user"),
    additionalGids: strs(v, "additional-gids"),
    caps: strs(v, "cap"),
    noNewPrivs: bool(v, "no-new-privs"),
    apparmor: str(v, "apparmor"),
    processLabel: str(v, "process-label"),
    preserveFds: parsePreserveFds(str(v, "preserve-fds")),
    ignorePaused: bool(v, "ignore-paused"),
    cgroups: strs(v, "cgroup"),
    debug: ctx.global.debug,
    rootless: rootlessContext(ctx.global.rootless),
  });
}
