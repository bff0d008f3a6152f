import { bool, type CommandContext } from "../context.ts";
import { killContainer } from "../../lifecycle/kill.ts";
import { KILL_DEFAULT_SIGNAL, parseSignal } from "../../linux/signals.ts";

export function run(ctx: CommandContext): number {
  const signal = parseSignal(ctx.operands[1] ?? KILL_DEFAULT_SIGNAL);
  killContainer(ctx.global.root, ctx.operands[0]!, signal, bool(ctx.values, "all"));
  return 0;
}
