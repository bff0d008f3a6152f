import type { CommandContext } from "../context.ts";
import { startContainer } from "../../lifecycle/start.ts";

export async function run(ctx: CommandContext): Promise<number> {
  await startContainer(ctx.global.root, ctx.operands[0]!);
  return 0;
}
