import type { CommandContext } from "../context.ts";
import { startContainer } from "../../lifecycle/start.ts";

export function run(ctx: CommandContext): number {
  startContainer(ctx.global.root, ctx.operands[0]!);
  return 0;
}
