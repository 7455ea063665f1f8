/** The text of `--help`, made from the commands' own definitions. */
import type { Command, OptionDef } from "./command";

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionDef> = {
  json: { type: "boolean", description: "Print JSON (errors too, on stderr) for scripts" },
  help: { type: "boolean", short: "h", description: "Show this help" },
};

function usageLine(command: Command): string {
  return ["switchboard", ...command.words, ...command.args].join(" ");
}

function optionLines(options: Record<string, OptionDef>): string[] {
  const entries = Object.entries(options).map(([name, option]) => {
    const names = `${option.short ? `-${option.short}, ` : "    "}--${name}`;
    return [`${names}${option.value ? ` ${option.value}` : ""}`, option.description] as const;
  });
  const width = Math.max(...entries.map(([label]) => label.length));
  return entries.map(([label, description]) => `  ${label.padEnd(width)}  ${description}`);
}

/** `switchboard topics create --help`: usage, details, options and examples. */
export function commandHelp(command: Command): string {
  const lines = [`Usage: ${usageLine(command)} [options]`, "", command.summary];
  if (command.details) lines.push("", ...wrap(command.details));
  lines.push("", "Options:", ...optionLines({ ...command.options, ...GLOBAL_OPTIONS }));
  if (command.examples?.length) {
    lines.push("", "Examples:", ...command.examples.map((example) => `  ${example}`));
  }
  return `${lines.join("\n")}\n`;
}

function commandList(commands: readonly Command[]): string[] {
  const usages = commands.map((command) => usageLine(command).slice("switchboard ".length));
  const width = Math.max(...usages.map((usage) => usage.length));
  return commands.map((command, i) => `  ${(usages[i] ?? "").padEnd(width)}  ${command.summary}`);
}

/** `switchboard topics --help`: the group's commands. */
export function groupHelp(group: string, commands: readonly Command[]): string {
  return [
    `Usage: switchboard ${group} <command> [options]`,
    "",
    "Commands:",
    ...commandList(commands),
    "",
    `Run "switchboard ${group} <command> --help" for a command's options.`,
    "",
  ].join("\n");
}

/** `switchboard --help`: every command, the environment and the exit codes. */
export function mainHelp(commands: readonly Command[]): string {
  return [
    "switchboard: manage a Switchboard broker and publish to it",
    "",
    "Usage: switchboard <command> [options]",
    "",
    "Commands:",
    ...commandList(commands),
    "",
    "Environment:",
    "  SWITCHBOARD_URL    The broker, e.g. https://switchboard.example.com",
    "  SWITCHBOARD_TOKEN  The admin token (a publish token may only publish and show messages)",
    "",
    "Options for every command:",
    ...optionLines(GLOBAL_OPTIONS),
    "",
    "Exit codes: 0 success, 1 the broker refused the call or could not be reached, 2 usage.",
    'Run "switchboard <command> --help" for a command\'s options and examples.',
    "",
  ].join("\n");
}

function wrap(text: string, width = 96): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}
