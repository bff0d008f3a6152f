import { realpathSync } from "node:fs";
import { resolve } from "node:path";
import { bool, str, type CommandContext } from "../context.ts";
import { TsrunError } from "../../errors.ts";
import { createContainer, parsePreserveFds, type CreateOptions } from "../../lifecycle/create.ts";
import { explainRootlessError } from "../../lifecycle/rootless.ts";
import { prepareXdgRoot, rootlessContext } from "../../linux/rootless.ts";

function samePath(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * The bundle: --bundle (runc's only form) or the operand after the id (the runtime-spec's
 * `create <container-id> <path-to-bundle>`); both may be given only when they name one directory.
 */
export function bundleOperand(ctx: CommandContext, command: string): string | undefined {
  const flag = str(ctx.values, "bundle");
  const operand = ctx.operands[1];
  if (operand === undefined) return flag;
  if (flag !== undefined && !samePath(flag, operand)) {
    throw new TsrunError(`${command}: the bundle is given twice and differs: --bundle ${flag} and the operand ${operand}`);
  }
  return operand;
}

/** The options create and run share, from their common flags. */
export function createOptions(ctx: CommandContext, foreground: boolean, command = "create"): CreateOptions {
  const v = ctx.values;
  return {
    root: ctx.global.root,
    id: ctx.operands[0]!,
    bundle: bundleOperand(ctx, command),
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
