/** check: every problem of a bundle that can be found without running it, each with its JSON path. */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { str, type CommandContext } from "../context.ts";
import { errnoText, formatProblem, TsrunError, type Problem } from "../../errors.ts";
import { parseJsonText, validateConfig } from "../../spec/validate.ts";
import { checkBundle } from "../../spec/check-bundle.ts";
import { unknownKeys } from "../../spec/unknown-keys.ts";
import { writeOut } from "../../log.ts";

export function run(ctx: CommandContext): number {
  const bundle = resolve(str(ctx.values, "bundle") ?? ".");
  const file = join(bundle, "config.json");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new TsrunError(`config.json: cannot read ${file}: ${errnoText(err)}`);
  }
  const parsed = parseJsonText(text);
  if ("error" in parsed) throw new TsrunError(`config.json: invalid JSON: ${parsed.error}`);
  const { config, problems, warnings } = validateConfig(parsed.value);
  const findings: Problem[] = [...problems];
  if (config) findings.push(...checkBundle(bundle, config));
  const allWarnings = [...warnings, ...unknownKeys(parsed.value)];
  for (const p of findings) writeOut(formatProblem(p) + "\n");
  for (const w of allWarnings) writeOut(`warning: ${formatProblem(w)}\n`);
  if (findings.length === 0) {
    writeOut(`${bundle}: no problems found${allWarnings.length ? ` (${allWarnings.length} warning${allWarnings.length === 1 ? "" : "s"})` : ""}\n`);
    return 0;
  }
  process.stderr.write(`tsrun: ${findings.length} problem${findings.length === 1 ? "" : "s"} in ${bundle}\n`);
  return 1;
}
