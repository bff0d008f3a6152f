import { bool, type CommandContext } from "../context.ts";
import { runContainer } from "../../lifecycle/run.ts";
import { createOptions } from "./create.ts";

export function run(ctx: CommandContext): Promise<number> {
  const detach = bool(ctx.values, "detach");
  return runContainer({ ...createOptions(ctx, !detach), detach, keep: bool(ctx.values, "keep") });
}
