import type { CommandContext } from "../context.ts";
import { loadContainer, stateJson } from "../../lifecycle/status.ts";
import { writeOut } from "../../log.ts";

export function run(ctx: CommandContext): number {
  writeOut(JSON.stringify(stateJson(loadContainer(ctx.global.root, ctx.operands[0]!)), null, 2) + "\n");
  return 0;
}
