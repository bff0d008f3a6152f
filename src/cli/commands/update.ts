import { str, type CommandContext } from "../context.ts";
import { updateContainer } from "../../lifecycle/update.ts";
import { UPDATE_FLAGS } from "../commands.ts";
import { rootlessContext } from "../../linux/rootless.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const flags = Object.fromEntries(UPDATE_FLAGS.map((name) => [name, str(ctx.values, name)]));
  await updateContainer(ctx.global.root, ctx.operands[0]!, { resourcesFile: str(ctx.values, "resources"), flags, rootless: rootlessContext(ctx.global.rootless) });
  return 0;
}
