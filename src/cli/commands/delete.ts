import { bool, type CommandContext } from "../context.ts";
import { deleteContainer } from "../../lifecycle/delete.ts";
import { TsrunError } from "../../errors.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const force = bool(ctx.values, "force");
  try {
    await deleteContainer(ctx.global.root, ctx.operands[0]!, force);
  } catch (err) {
    // As runc and crun: `delete --force` of a container that does not exist succeeds silently.
    // podman runs it after every failed create, and would otherwise show a second error.
    if (force && err instanceof TsrunError && err.message === "container does not exist") return 0;
    throw err;
  }
  return 0;
}
