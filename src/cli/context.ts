import type { OptionValues } from "./args.ts";

/** The global flags every command sees (they come before the command, as with runc). */
export interface GlobalOptions {
  root: string;
  /** No --root: the root is $XDG_RUNTIME_DIR/tsrun (rootless caller), kept 0700 with the sticky bit as runc does. */
  rootFromXdg: boolean;
  debug: boolean;
  systemdCgroup: boolean;
  rootless: "true" | "false" | "auto";
}

export interface CommandContext {
  global: GlobalOptions;
  values: OptionValues;
  operands: string[];
}

/** What each src/cli/commands/<name>.ts module exports. */
export interface CommandModule {
  run(ctx: CommandContext): Promise<number> | number;
}

export function str(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function bool(values: OptionValues, name: string): boolean {
  return values[name] === true;
}

export function strs(values: OptionValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : [];
}
