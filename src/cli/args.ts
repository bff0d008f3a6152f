/**
 * A small Go-flag style argument parser, driven by declarative option tables.
 *
 * Why not node:util.parseArgs: runc's callers rely on Go's flag semantics, which parseArgs
 * cannot express: single-dash long flags (`-root`), `--flag=true|false` for booleans, and
 * stopping at the first operand for commands that pass the rest through (`exec ID cmd -x`,
 * `ps ID -ef`). This parser does exactly that and nothing more, in well under a millisecond.
 */
import { TsrunError } from "../errors.ts";

export type OptionType = "boolean" | "string" | "strings";

export interface OptionSpec {
  name: string;
  short?: string;
  type: OptionType;
  /** Shown in help; for string options also the placeholder, e.g. "DIR". */
  arg?: string;
  description: string;
  /** Accepted for compatibility; ignored without a word. */
  ignored?: boolean;
}

export type OptionValues = Record<string, boolean | string | string[] | undefined>;

export interface Parsed {
  values: OptionValues;
  operands: string[];
}

export interface ParseOptions {
  /** After the first operand everything is an operand (Go's flag package behaviour). */
  stopAtFirstOperand: boolean;
  /** Names the command in error messages ("create"); empty for the global flags. */
  context: string;
}

function findOption(options: OptionSpec[], name: string): OptionSpec | undefined {
  for (const o of options) if (o.name === name || o.short === name) return o;
  return undefined;
}

function fail(context: string, message: string): never {
  throw new TsrunError(context ? `${context}: ${message}` : message);
}

function parseBool(text: string, flag: string, context: string): boolean {
  if (text === "true" || text === "1") return true;
  if (text === "false" || text === "0") return false;
  fail(context, `invalid boolean value "${text}" for flag --${flag}`);
}

export function parseArgs(argv: string[], options: OptionSpec[], how: ParseOptions): Parsed {
  const values: OptionValues = {};
  const operands: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      i++;
      break;
    }
    if (arg.length < 2 || arg[0] !== "-") {
      operands.push(arg);
      if (how.stopAtFirstOperand) {
        i++;
        break;
      }
      continue;
    }
    const body = arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const inline = eq >= 0 ? body.slice(eq + 1) : undefined;
    const opt = findOption(options, name);
    if (!opt) fail(how.context, `unknown flag: ${arg.startsWith("--") ? "--" : "-"}${name}`);
    if (opt.type === "boolean") {
      values[opt.name] = inline === undefined ? true : parseBool(inline, opt.name, how.context);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) fail(how.context, `flag --${opt.name} needs a value`);
      value = argv[++i]!;
    }
    if (opt.type === "strings") {
      const list = (values[opt.name] as string[] | undefined) ?? [];
      list.push(value);
      values[opt.name] = list;
    } else {
      values[opt.name] = value;
    }
  }
  for (; i < argv.length; i++) operands.push(argv[i]!);
  return { values, operands };
}

export function optionHelp(options: OptionSpec[]): string {
  const rows = options
    .filter((o) => !o.ignored)
    .map((o) => {
      const names = (o.short ? `-${o.short}, ` : "") + `--${o.name}` + (o.type === "boolean" ? "" : ` ${o.arg ?? "VALUE"}`);
      return [names, o.description + (o.type === "strings" ? " (repeatable)" : "")] as const;
    });
  const width = Math.max(0, ...rows.map(([n]) => n.length));
  return rows.map(([n, d]) => `   ${n.padEnd(width)}   ${d}`).join("\n");
}
