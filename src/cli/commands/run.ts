import { bool, str, type CommandContext } from "../context.ts";
import { parsePreserveFds } from "../../lifecycle/create.ts";
import { runContainer } from "../../lifecycle/run.ts";

export function run(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  return runContainer({
    root: ctx.global.root,
    id: ctx.operands[0]!,
    bundle: str(v, "bundle"),
    pidFile: str(v, "pid-file"),
    consoleSocket: str(v, "console-socket"),
    noPivot: bool(v, "no-pivot"),
    preserveFds: parsePreserveFds(str(v, "preserve-fds")),
    foreground: !bool(v, "detach"),
    debug: ctx.global.debug,
    systemdCgroup: ctx.global.systemdCgroup,
    detach: bool(v, "detach"),
    keep: bool(v, "keep"),
  });
}
