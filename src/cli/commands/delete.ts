import { bool, type CommandContext } from "../context.ts";
import { deleteContainer } from "../../lifecycle/delete.ts";

export function run(ctx: CommandContext): number {
  deleteContainer(ctx.global.root, ctx.operands[0]!, bool(ctx.values, "force"));
  return 0;
}
