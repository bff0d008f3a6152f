import { str, type CommandContext } from "../context.ts";
import { TsrunError } from "../../errors.ts";
import { containerPids, psTable } from "../../lifecycle/ps.ts";
import { writeOut } from "../../log.ts";

export function run(ctx: CommandContext): number {
  const format = str(ctx.values, "format") ?? "table";
  const [id, ...psArgs] = ctx.operands;
  const pids = containerPids(ctx.global.root, id!);
  if (format === "json") {
    if (psArgs.length) throw new TsrunError("ps options cannot be combined with --format json");
    writeOut(JSON.stringify(pids) + "\n");
    return 0;
  }
  if (format !== "table") throw new TsrunError(`invalid --format "${format}": want table or json`);
  writeOut(psTable(pids, psArgs));
  return 0;
}
