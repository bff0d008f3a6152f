import type { CommandContext } from "../context.ts";
import { pauseContainer } from "../../lifecycle/pause.ts";

export function run(ctx: CommandContext): number {
  pauseContainer(ctx.global.root, ctx.operands[0]!);
  return 0;
}
