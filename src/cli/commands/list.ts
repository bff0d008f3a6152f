import { bool, str, type CommandContext } from "../context.ts";
import { TsrunError } from "../../errors.ts";
import { listIds } from "../../lifecycle/state-store.ts";
import { loadContainer, stateJson } from "../../lifecycle/status.ts";
import { writeOut } from "../../log.ts";

export function run(ctx: CommandContext): number {
  const format = str(ctx.values, "format") ?? "table";
  if (format !== "table" && format !== "json") throw new TsrunError(`invalid --format "${format}": want table or json`);
  const ids = listIds(ctx.global.root);
  if (bool(ctx.values, "quiet")) {
    writeOut(ids.map((id) => id + "\n").join(""));
    return 0;
  }
  const states = ids.flatMap((id) => {
    try {
      return [stateJson(loadContainer(ctx.global.root, id))];
    } catch {
      return []; // removed while we were listing
    }
  });
  if (format === "json") {
    writeOut(JSON.stringify(states) + "\n");
    return 0;
  }
  const rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], ...states.map((s) => [s.id, s.pid, s.status, s.bundle, s.created, s.owner].map(String))];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  writeOut(rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]! + 3))).join("").trimEnd() + "\n").join(""));
  return 0;
}
