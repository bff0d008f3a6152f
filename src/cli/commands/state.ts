import type { CommandContext } from "../context.ts";
import { loadContainer, stateText } from "../../lifecycle/status.ts";
import { writeOut } from "../../log.ts";

export function run(ctx: CommandContext): number {
  writeOut(stateText(loadContainer(ctx.global.root, ctx.operands[0]!)));
  return 0;
}
