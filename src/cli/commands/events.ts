import { bool, str, type CommandContext } from "../context.ts";
import { parseDuration, streamEvents } from "../../lifecycle/events.ts";
import { writeOut } from "../../log.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const intervalMs = parseDuration(str(ctx.values, "interval") ?? "5s");
  await streamEvents(ctx.global.root, ctx.operands[0]!, { once: bool(ctx.values, "stats"), intervalMs }, (e) => {
    writeOut(JSON.stringify(e) + "\n");
  });
  return 0;
}
