import { bool, str, type CommandContext } from "../context.ts";
import { createContainer, parsePreserveFds, type CreateOptions } from "../../lifecycle/create.ts";

/** The options create and run share, from their common flags. */
export function createOptions(ctx: CommandContext, foreground: boolean): CreateOptions {
  const v = ctx.values;
  return {
    root: ctx.global.root,
    id: ctx.operands[0]!,
    bundle: str(v, "bundle"),
    pidFile: str(v, "pid-file"),
    consoleSocket: str(v, "console-socket"),
    noPivot: bool(v, "no-pivot"),
    noNewKeyring: bool(v, "no-new-keyring"),
    preserveFds: parsePreserveFds(str(v, "preserve-fds")),
    foreground,
    debug: ctx.global.debug,
    systemdCgroup: ctx.global.systemdCgroup,
  };
}

export async function run(ctx: CommandContext): Promise<number> {
  await createContainer(createOptions(ctx, false));
  return 0;
}
