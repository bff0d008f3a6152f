import { bool, type CommandContext } from "../context.ts";
import { runContainer } from "../../lifecycle/run.ts";
import { createOptions, withRootless } from "./create.ts";

export function run(ctx: CommandContext): Promise<number> {
  const detach = bool(ctx.values, "detach");
  const opts = createOptions(ctx, !detach, "run");
  return withRootless(ctx, opts, () => runContainer({ ...opts, detach, keep: bool(ctx.values, "keep") }));
}
