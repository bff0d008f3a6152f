import type { CommandContext } from "../context.ts";
import { frontendStartFailure, startContainer } from "../../lifecycle/start.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const failed = frontendStartFailure();
  if (failed) throw failed;
  await startContainer(ctx.global.root, ctx.operands[0]!);
  return 0;
}
