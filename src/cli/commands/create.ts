import { bool, str, type CommandContext } from "../context.ts";
import { createContainer, parsePreserveFds } from "../../lifecycle/create.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  await createContainer({
    root: ctx.global.root,
    id: ctx.operands[0]!,
    bundle: str(v, "bundle"),
    pidFile: str(v, "pid-file"),
    consoleSocket: str(v, "console-socket"),
    noPivot: bool(v, "no-pivot"),
    preserveFds: parsePreserveFds(str(v, "preserve-fds")),
    foreground: false,
    debug: ctx.global.debug,
    systemdCgroup: ctx.global.systemdCgroup,
  });
  return 0;
}
