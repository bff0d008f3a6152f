import type { CommandContext } from "../context.ts";
import { resumeContainer } from "../../lifecycle/pause.ts";

export function run(ctx: CommandContext): number {
  resumeContainer(ctx.global.root, ctx.operands[0]!);
  return 0;
}
