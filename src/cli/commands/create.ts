import { bool, str, type CommandContext } from "../context.ts";
import { createContainer, parsePreserveFds, type CreateOptions } from "../../lifecycle/create.ts";
import { explainRootlessError } from "../../lifecycle/rootless.ts";
import { prepareXdgRoot, rootlessContext } from "../../linux/rootless.ts";

/** The options create and run share, from their common flags. */
export function createOptions(ctx: CommandContext, foreground: boolean): CreateOptions {
  const v = ctx.values;
  return {
    root: ctx.global.root,
    id: ctx.operands[0]!,
    bundle: str(v, "bundle"),
    pidFile: str(v, "pid-file"),
    consoleSocket: str(v, "console-socket"),
    pidfdSocket: str(v, "pidfd-socket"),
    noPivot: bool(v, "no-pivot"),
    noNewKeyring: bool(v, "no-new-keyring"),
    preserveFds: parsePreserveFds(str(v, "preserve-fds")),
    foreground,
    debug: ctx.global.debug,
    systemdCgroup: ctx.global.systemdCgroup,
    rootless: rootlessContext(ctx.global.rootless),
  };
}

/** create and run: the XDG state root made as runc makes it, and rootless errors explained. */
export async function withRootless<T>(ctx: CommandContext, opts: CreateOptions, fn: () => Promise<T>): Promise<T> {
  try {
    if (ctx.global.rootFromXdg) prepareXdgRoot(opts.root);
    return await fn();
  } catch (err) {
    throw explainRootlessError(err, opts.rootless);
  }
}

export async function run(ctx: CommandContext): Promise<number> {
  const opts = createOptions(ctx, false);
  await withRootless(ctx, opts, () => createContainer(opts));
  return 0;
}
