/**
 * tsrun's entry: global flags, then the command. Every failure ends here as one line on
 * stderr (and in --log), with a non-zero exit; a stack trace only with --debug.
 */
import { parseArgs, optionHelp } from "./args.ts";
import { COMMANDS, GLOBAL_OPTIONS, findCommand, type CommandSpec } from "./commands.ts";
import { str, bool, type GlobalOptions } from "./context.ts";
import { configureLog, logDebug, logError, closeLog, isDebug, writeOut, type LogFormat } from "../log.ts";
import { TsrunError } from "../errors.ts";
import { VERSION, SPEC_VERSION, COMMIT } from "../version.ts";
import { defaultStateRoot, runningInUserNs } from "../linux/rootless.ts";
import { takeCallerFds } from "../linux/caller-fds.ts";
import { takeFrontendEnv } from "./frontend-env.ts";

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "tsrun: an OCI container runtime with runc's command line",
    "",
    "usage: tsrun [global options] <command> [command options] [operands]",
    "",
    "commands:",
    ...COMMANDS.map((c) => `   ${c.name.padEnd(width)}   ${c.summary}`),
    "",
    "global options:",
    optionHelp(GLOBAL_OPTIONS),
    "",
    "Run 'tsrun <command> --help' for a command's options.",
    "",
  ].join("\n");
}

function commandHelp(c: CommandSpec): string {
  const help = { name: "help", short: "h", type: "boolean" as const, description: "show this help" };
  return [
    `tsrun ${c.name}: ${c.summary}`,
    "",
    `usage: tsrun [global options] ${c.name}${c.options.length ? " [options]" : ""}${c.operands ? " " + c.operands : ""}`,
    "",
    "options:",
    optionHelp([...c.options, help]),
    "",
  ].join("\n");
}

function globalOptions(values: Record<string, unknown>): GlobalOptions {
  const rootless = (values.rootless as string | undefined) ?? "auto";
  if (rootless !== "true" && rootless !== "false" && rootless !== "auto") {
    throw new TsrunError(`invalid --rootless value "${rootless}": want true, false or auto`);
  }
  const given = values.root as string | undefined;
  const byDefault = given === undefined ? defaultStateRoot(process.env, process.geteuid?.() ?? 0, () => runningInUserNs()) : undefined;
  return {
    root: given ?? byDefault!.root,
    rootFromXdg: byDefault?.xdg === true,
    debug: values.debug === true,
    systemdCgroup: values["systemd-cgroup"] === true,
    rootless,
  };
}

async function dispatch(argv: string[]): Promise<number> {
  const g = parseArgs(argv, GLOBAL_OPTIONS, { stopAtFirstOperand: true, context: "" });
  const logFormat = str(g.values, "log-format") ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    throw new TsrunError(`invalid --log-format "${logFormat}": want text or json`);
  }
  configureLog({ file: str(g.values, "log"), format: logFormat as LogFormat, debug: bool(g.values, "debug") });
  logDebug(`main: arguments parsed (timeOrigin ${performance.timeOrigin.toFixed(3)})`);
  if (bool(g.values, "version")) {
    const { libseccompVersion } = await import("../linux/helper-path.ts");
    // runc's lines, which callers parse (Docker takes "<name> version <v>" and "commit: <c>").
    writeOut(`tsrun version ${VERSION}\ncommit: ${COMMIT}\nspec: ${SPEC_VERSION}\nlibseccomp: ${(await libseccompVersion()) ?? "unknown"}\n`);
    return 0;
  }
  const [name, ...rest] = g.operands;
  if (name === undefined || name === "help") {
    writeOut(mainHelp());
    return name === undefined && !bool(g.values, "help") ? 1 : 0;
  }
  const command = findCommand(name);
  if (!command) throw new TsrunError(`unknown command "${name}" (run 'tsrun --help' for the list)`);
  const helpOption = { name: "help", short: "h", type: "boolean" as const, description: "" };
  const parsed = parseArgs(rest, [...command.options, helpOption], {
    stopAtFirstOperand: command.stopAtFirstOperand === true,
    context: command.name,
  });
  if (bool(parsed.values, "help")) {
    writeOut(commandHelp(command));
    return 0;
  }
  const n = parsed.operands.length;
  if (n < command.minOperands || (command.maxOperands >= 0 && n > command.maxOperands)) {
    const want = command.operands || "no operands";
    throw new TsrunError(`${command.name}: expects ${want}, got ${n === 0 ? "none" : parsed.operands.map((o) => `"${o}"`).join(" ")}`);
  }
  const mod = await command.load();
  logDebug("command module loaded");
  try {
    return await mod.run({ global: globalOptions(g.values), values: parsed.values, operands: parsed.operands });
  } catch (err) {
    if (command.failureStatus === undefined) throw err;
    throw new CommandFailure(err, command.failureStatus);
  }
}

/** A failure of a command that has its own failure status (CommandSpec.failureStatus). */
class CommandFailure extends Error {
  constructor(
    readonly error: unknown,
    readonly exitCode: number,
  ) {
    super("command failed");
  }
}

export async function main(argv: string[]): Promise<number> {
  takeFrontendEnv(process.env);
  takeCallerFds(process.env);
  try {
    return await dispatch(argv);
  } catch (caught) {
    const failure = caught instanceof CommandFailure ? caught : undefined;
    const err = failure ? failure.error : caught;
    if (err instanceof TsrunError) {
      // Several problems (config.json) are several complete lines: each is its own log entry,
      // so a caller showing the last error line still shows a whole message.
      for (const line of err.message.split("\n")) logError(line);
      return failure?.exitCode ?? err.exitCode;
    }
    const e = err as Error;
    logError(`internal error: ${e?.message ?? String(err)}`);
    if (isDebug() && e?.stack) process.stderr.write(e.stack + "\n");
    return failure?.exitCode ?? 1;
  } finally {
    logDebug("main done");
    closeLog();
  }
}
